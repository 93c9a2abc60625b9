"""Speed and size of `mmauth sample` at the default size (4 members, 6 strangers).

    .venv/bin/python -m benchmarks.sample [--runs 5] [--members 4] [--strangers 6]

Each run writes the whole sample workspace into a fresh temporary folder (customers, faces,
voices, probes, manifest; the staging folder and the final rename included) with seed = run
number. Prints each run's wall time, the median, the number and size of the files, the time
spent per part on the median run's profile-free split, and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from engine import sample_faces, sample_voices
from engine.sample import write_sample_workspace


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

    render = _Timed(sample_faces.render_face)
    detect = _Timed(sample_faces.cascade_finds_face)
    synthesise = _Timed(sample_voices.synthesise)
    sample_faces_render, sample_faces_detect = (
        sample_faces.render_face,
        sample_faces.cascade_finds_face,
    )
    sample_faces.render_face, sample_faces.cascade_finds_face = render, detect
    sample_voices.synthesise = synthesise
    times, parts = [], []
    try:
        for run in range(args.runs):
            with tempfile.TemporaryDirectory() as folder:
                before = (render.seconds, detect.seconds, synthesise.seconds)
                started = time.perf_counter()
                report = write_sample_workspace(
                    Path(folder) / "workspace",
                    members=args.members,
                    strangers=args.strangers,
                    seed=run,
                )
                elapsed = time.perf_counter() - started
            after = (render.seconds, detect.seconds, synthesise.seconds)
            times.append(elapsed)
            parts.append([b - a for a, b in zip(before, after, strict=True)])
            print(
                f"run {run}: {elapsed:.2f} s, {report.files} files, "
                f"{report.total_bytes / 1e6:.1f} MB, {report.enrolment_retakes} enrolment retakes"
            )
    finally:
        sample_faces.render_face, sample_faces.cascade_finds_face = (
            sample_faces_render,
            sample_faces_detect,
        )
    median_run = sorted(range(len(times)), key=times.__getitem__)[len(times) // 2]
    render_s, detect_s, voice_s = parts[median_run]
    print(f"median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})")
    print(
        f"median run: rendering faces {render_s:.2f} s, enrolment face checks {detect_s:.2f} s, "
        f"voice synthesis {voice_s:.2f} s, the rest (PNG/WAV encoding, tables, writing) "
        f"{times[median_run] - render_s - detect_s - voice_s:.2f} s"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
