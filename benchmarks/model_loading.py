"""What loading the models costs a cold login: skops' import, skops vs state-file loading.

    .venv/bin/python -m benchmarks.model_loading --workspace WS [--runs 5]

1. Fresh processes, alternating: the floor (``import dlib, sklearn.linear_model, numpy``) and
   the floor plus ``import skops.io``; skops' share = (second - first) / first, per round.
2. In one process, for each model of the trained workspace WS: median ms to build it from its
   skops bytes (``skops.io.loads`` after ``get_untrusted_types``, what loading did before) and
   from its state file (``engine.models.state_file.loads``), both from bytes already in memory.
3. The voice model's DTW (numpy, all of a member's takes at once) for one probe against every
   enrolled take of WS's voice model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

FLOOR = "import dlib, sklearn.linear_model, numpy"


def _wall(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def skops_share(runs: int) -> dict[str, object]:
    shares, floors, with_skops = [], [], []
    for run in range(runs):
        pair = [FLOOR, FLOOR + "; import skops.io"]
        timings = [_wall(code) for code in (pair if run % 2 == 0 else pair[::-1])]
        floor, skops = timings if run % 2 == 0 else timings[::-1]
        floors.append(floor)
        with_skops.append(skops)
        shares.append((skops - floor) / floor)
    return {
        "floor_s": round(statistics.median(floors), 3),
        "floor_plus_skops_s": round(statistics.median(with_skops), 3),
        "skops_import_share_of_floor": round(statistics.median(shares), 2),
        "share_range": [round(min(shares), 2), round(max(shares), 2)],
    }


def _median_ms(function, runs: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return round(1000 * statistics.median(times), 2)


def loading(root: Path, runs: int) -> dict[str, object]:
    import skops.io

    from engine.core.blas import single_threaded_blas
    from engine.core.workspace import Workspace
    from engine.models import state_file
    from engine.models.dtw import dtw_costs
    from engine.models.loading import load_model_bundle
    from engine.models.model_files import allowed_types, model_path, state_path

    workspace = Workspace(root)
    bundle = load_model_bundle(workspace, require=())
    own = allowed_types()
    report: dict[str, object] = {}
    for name in ("face", "voice", "product"):
        if getattr(bundle, name) is None:
            continue
        skops_bytes = model_path(workspace, name).read_bytes()
        state_bytes = state_path(workspace, name).read_bytes()
        report[name] = {
            "skops_kib": len(skops_bytes) // 1024,
            "state_kib": len(state_bytes) // 1024,
            "skops_load_ms": _median_ms(
                lambda data=skops_bytes: skops.io.loads(
                    data, trusted=skops.io.get_untrusted_types(data=data)
                ),
                runs,
            ),
            "state_load_ms": _median_ms(
                lambda data=state_bytes: state_file.loads(data, own, source="benchmark"),
                runs,
            ),
        }
    if bundle.voice is not None:
        takes = bundle.voice.take_sequences_
        with single_threaded_blas():  # as in VoiceVerifier.verify
            report["dtw_one_probe_all_takes_ms"] = _median_ms(
                lambda: dtw_costs([takes[0]], takes), runs
            )
        report["dtw_takes"] = len(takes)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True, help="A trained workspace.")
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    report = {"skops_import": skops_share(arguments.runs)}
    report["loading"] = loading(arguments.workspace, arguments.runs)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
