"""Cold login: `mmauth authenticate` as a fresh process against the floor of its libraries.

    .venv/bin/python -m benchmarks.cold_login [--runs 7] [--workspace WS] [--pairs 4]

Without ``--workspace``, a sample workspace is written (`mmauth sample`, 4 members) with
``face.backend = "dlib"`` set explicitly in its mmauth.toml, then merged, featurised and
trained by the product's own commands. Each round runs, in an order that alternates between
rounds, three fresh processes: the floor (``python -c "import dlib, sklearn.linear_model,
numpy"``), one ``mmauth authenticate --face F --voice V --json`` (a genuine probe pair) and one
``mmauth authenticate --pairs CSV --json`` with ``--pairs`` pairs. Reported: median wall time and
peak resident memory (``ru_maxrss`` of each child, from ``os.wait4``) of each, the ratio of the
login to the floor taken within each round (median and range), and the attempt's own steps from
its JSON. The machine is shared: compare within a round, not across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MMAUTH = Path(sys.executable).parent / "mmauth"
FLOOR = [sys.executable, "-c", "import dlib, sklearn.linear_model, numpy"]


def prepare(root: Path) -> None:
    """A trained sample workspace with the dlib face backend."""
    _run([str(MMAUTH), "sample", "-w", str(root), "--json"])
    settings = root / "mmauth.toml"
    text = settings.read_text(encoding="utf-8")
    if 'backend = "dlib"' not in text:
        settings.write_text(text + '\n[face]\nbackend = "dlib"\n', encoding="utf-8")
    for command in ("merge", "features", "train"):
        _run([str(MMAUTH), command, "-w", str(root), "--json"])


def genuine_pairs(root: Path, count: int) -> list[tuple[Path, Path]]:
    """Probe pairs of enrolled members (photo i with recording i of the same member)."""
    probes = root / "data" / "raw" / "probes"
    members = sorted(p.name for p in (root / "data" / "raw" / "faces").iterdir() if p.is_dir())
    pairs = []
    for member in members:
        faces = sorted((probes / "faces" / member).iterdir())
        voices = sorted((probes / "voices" / member).iterdir())
        pairs += list(zip(faces, voices, strict=False))
    return pairs[:count]


def timed(command: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak resident KiB and stdout of one fresh process."""
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        return seconds, usage.ru_maxrss, output.read().decode("utf-8", "replace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workspace", type=Path, help="A trained workspace (dlib backend).")
    parser.add_argument("--pairs", type=int, default=4, help="Pairs in the --pairs CSV run.")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = arguments.workspace
        if root is None:
            root = Path(scratch) / "workspace"
            started = time.perf_counter()
            prepare(root)
            print(f"workspace prepared in {time.perf_counter() - started:.0f} s", flush=True)
        pairs = genuine_pairs(root, arguments.pairs)
        csv_path = Path(scratch) / "pairs.csv"
        csv_path.write_text(
            "face,voice\n" + "".join(f"{face},{voice}\n" for face, voice in pairs),
            encoding="utf-8",
        )
        login = [str(MMAUTH), "authenticate", "-w", str(root), "--json"]
        commands = {
            "floor": FLOOR,
            "login": [*login, "--face", str(pairs[0][0]), "--voice", str(pairs[0][1])],
            "login_pairs": [*login, "--pairs", str(csv_path)],
        }
        timed(commands["floor"])  # warm the page cache once, untimed
        first = json.loads(timed(commands["login"])[2].splitlines()[0])
        if first["reason"].startswith("models_"):
            raise SystemExit(f"the workspace's models cannot be used: {first['message']}")
        results: dict[str, list[tuple[float, int, str]]] = {name: [] for name in commands}
        for run in range(arguments.runs):
            order = list(commands) if run % 2 == 0 else list(reversed(commands))
            for name in order:
                results[name].append(timed(commands[name]))
        report = summarise(results, len(pairs))
        report["load_average"] = os.getloadavg()
    print(json.dumps(report, indent=2))


def summarise(results: dict[str, list[tuple[float, int, str]]], n_pairs: int) -> dict[str, object]:
    report: dict[str, object] = {}
    for name, runs in results.items():
        report[f"{name}_wall_s"] = round(statistics.median(r[0] for r in runs), 3)
        report[f"{name}_peak_mib"] = round(statistics.median(r[1] for r in runs) / 1024, 1)
    for name in ("login", "login_pairs"):
        ratios = [
            run[0] / floor[0] for run, floor in zip(results[name], results["floor"], strict=True)
        ]
        report[f"{name}_over_floor"] = round(statistics.median(ratios), 2)
        report[f"{name}_over_floor_range"] = [round(min(ratios), 2), round(max(ratios), 2)]
    memory = [
        run[1] / floor[1] for run, floor in zip(results["login"], results["floor"], strict=True)
    ]
    report["login_memory_over_floor"] = round(statistics.median(memory), 2)
    last = json.loads(results["login"][-1][2].splitlines()[0])
    report["login_decision"] = f"{last['decision']} ({last['reason']})"
    report["login_steps_ms"] = {s["name"]: round(1000 * s["seconds"]) for s in last["steps"]}
    report["pairs_per_process"] = n_pairs
    decisions = [json.loads(line) for line in results["login_pairs"][-1][2].splitlines() if line]
    report["pairs_decisions"] = [d.get("decision") for d in decisions]
    return report


def _run(command: list[str]) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command[:2])} failed:\n{completed.stderr[-2000:]}")


if __name__ == "__main__":
    main()
