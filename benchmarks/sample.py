"""Speed and size of `mmauth sample` at the default size (4 members, 6 strangers).

    .venv/bin/python -m benchmarks.sample [--runs 5] [--members 4] [--strangers 6]

Each run writes the whole sample workspace into a fresh temporary folder (customers, faces,
voices, probes, manifest; the staging folder and the final rename included) with seed = run
number. Prints each run's wall time, the median, the time spent inside face rendering, the
enrolment face check and voice synthesis, the number and size of the files, and the peak RSS of
the process.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from engine.sample import face_rendering, voices as sample_voices, workspace as sample


class _Timed:
    """Wraps a function and adds up the time spent in it."""

    def __init__(self, function):  # noqa: ANN001
        self.function = function
        self.seconds = 0.0

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        started = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--strangers", type=int, default=6)
    args = parser.parse_args()

    timers = {
        "face rendering": _Timed(face_rendering.render_face),
        "enrolment face check": _Timed(face_rendering.detectors_find_face),
        "voice synthesis": _Timed(sample_voices.synthesise),
    }
    face_rendering.render_face = timers["face rendering"]
    face_rendering.detectors_find_face = timers["enrolment face check"]
    sample_voices.synthesise = timers["voice synthesis"]
    times = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            report = sample.write_sample_workspace(
                Path(folder) / "workspace", members=args.members, strangers=args.strangers, seed=run
            )
            times.append(time.perf_counter() - started)
        print(
            f"run {run}: {times[-1]:.2f} s; {report.files} files, "
            f"{report.total_bytes / 1e6:.1f} MB, {report.enrolment_retakes} enrolment retakes"
        )
    print(f"median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})")
    print(
        "per run, inside: "
        + ", ".join(f"{name} {timer.seconds / args.runs:.2f} s" for name, timer in timers.items())
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
