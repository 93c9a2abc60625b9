"""Authentication speed: warm attempts per face backend, the machinery's share, a fresh process.

    .venv/bin/python -m benchmarks.auth [--backends classic dlib] [--rounds 3] [--keep DIR]

For each face backend, a workspace is arranged from the shared real data (benchmarks/
shared_workspace.py: 4 members, 2 strangers) and prepared with the product's own commands
(`mmauth merge`, `features`, `train`). Then:

1. Warm: the models are loaded once (an Authenticator, as the TUI keeps it) and every genuine
   probe pair is authenticated ``--rounds`` times, with the audit log written and the replay
   check and the lockout check on (its limit raised so that repeated denials cannot lock a
   member mid-benchmark). Right before
   each attempt, the same pair's features alone are computed (``face_vector``, and
   ``voice_sample`` when the attempt reaches the voice step). Reported: p50/p95 of the attempt,
   median of the features, and the machinery's share = median over attempts of
   (attempt - features) / features, measured on the same pair in the same moment (the machine is
   shared and noisy).
2. Fresh process: ``mmauth authenticate --json`` run 3 times as a new process under
   ``python -X importtime``: wall time split into imports (lazy ones included) and the rest,
   and the attempt's own steps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.shared_workspace import arrange, link_customers

MMAUTH = Path(sys.executable).parent / "mmauth"


def prepare(root: Path, backend: str) -> tuple[str, ...]:
    """Arrange the workspace and run merge, features and train in it."""
    arranged = arrange(root)
    (root / "mmauth.toml").write_text(f'[face]\nbackend = "{backend}"\n', encoding="utf-8")
    _mmauth("merge", root)
    link_customers(root, arranged.members)
    for command in ("features", "train"):
        _mmauth(command, root, check=command == "train")
    return arranged.members


def _mmauth(command: str, root: Path, *extra: str, check: bool = True) -> float:
    started = time.perf_counter()
    completed = subprocess.run(
        [str(MMAUTH), command, "-w", str(root), *extra, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check and completed.returncode not in (0, 1):
        raise SystemExit(f"mmauth {command} failed:\n{completed.stderr[-2000:]}")
    return time.perf_counter() - started


def genuine_pairs(root: Path, members: tuple[str, ...]) -> list[tuple[Path, Path]]:
    from engine.auth.campaigns import cycle_pairs
    from engine.core.workspace import Workspace, member_folders

    space = Workspace(root)
    faces = member_folders(space.probe_faces_dir)
    voices = member_folders(space.probe_voices_dir)
    pairs = []
    for member in members:
        clips = [v for v in voices.get(member, []) if not v.name.startswith("three")]
        pairs += cycle_pairs(faces.get(member, []), clips)
    return pairs


def warm(root: Path, pairs: list[tuple[Path, Path]], rounds: int) -> dict[str, float]:
    from engine.auth.flow import Authenticator
    from engine.auth.store import AuditStore
    from engine.core.defences import record_defences
    from engine.core.settings import load_settings
    from engine.core.workspace import Workspace
    from engine.faces.extract import face_vector
    from engine.models.loading import load_model_bundle
    from engine.voices.extract import voice_sample

    space = Workspace(root)
    # The lockout is checked and counted as in real use, but can never lock a member here:
    # accepted for this benchmark workspace as an operator's mmauth models trust would.
    settings = load_settings(root, {"auth.lockout_attempts": 10**9})
    record_defences(space, settings.auth)
    with tempfile.TemporaryDirectory() as scratch:
        flow = Authenticator(
            space,
            settings,
            bundle=load_model_bundle(space, require=("face", "voice")),
            store=AuditStore(Path(scratch) / "audit.db"),
        )
        for face, voice in pairs[:2]:  # warm-up: first-call costs (dlib models, numba DTW)
            flow.authenticate(face, voice)
        attempts, features, shares, reached_voice = [], [], [], 0
        reasons: dict[str, int] = {}
        steps: dict[str, list[float]] = {}
        for _ in range(rounds):
            for face, voice in pairs:
                try:
                    started = time.perf_counter()
                    face_vector(face, settings)
                    face_seconds = time.perf_counter() - started
                    started = time.perf_counter()
                    voice_sample(voice, settings)
                    voice_seconds = time.perf_counter() - started
                except Exception:  # noqa: BLE001 - a probe the pipeline refuses is skipped
                    continue
                started = time.perf_counter()
                decision = flow.authenticate(face, voice)
                attempt_seconds = time.perf_counter() - started
                reasons[decision.reason] = reasons.get(decision.reason, 0) + 1
                if decision.reason == "internal_error":
                    continue  # a broken step is not a timing of the flow
                # Compare with the features of the steps that ran (a face the model rejects
                # stops the flow before the voice is extracted).
                ran_voice = decision.step("voice").status != "skipped"
                reached_voice += ran_voice
                feature_seconds = face_seconds + (voice_seconds if ran_voice else 0.0)
                attempts.append(attempt_seconds)
                features.append(feature_seconds)
                shares.append((attempt_seconds - feature_seconds) / feature_seconds)
                for step in decision.steps:
                    steps.setdefault(step.name, []).append(step.seconds)
    if not attempts:
        raise SystemExit(f"no attempt ran through the flow: {reasons}")
    ordered = sorted(attempts)
    return {
        "attempts": len(attempts),
        "reached_voice": reached_voice,
        "decisions": reasons,
        "p50_ms": 1000 * statistics.median(attempts),
        "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "features_p50_ms": 1000 * statistics.median(features),
        "machinery_share_median": statistics.median(shares),
        **{f"step_{name}_ms": 1000 * statistics.median(v) for name, v in steps.items()},
    }


def fresh_process(root: Path, face: Path, voice: Path, runs: int = 3) -> dict[str, object]:
    """``mmauth authenticate`` as a new process, traced with ``-X importtime``: per run, the
    wall time, the time spent importing modules (wherever the import happens, lazy ones
    included) and the rest; medians over ``runs``. Plus the steps of the attempt itself."""
    arguments = ["authenticate", "--face", str(face), "--voice", str(voice), "-w", str(root)]
    walls, imports, decision = [], [], {}
    for _ in range(runs):
        started = time.perf_counter()
        traced = subprocess.run(
            [sys.executable, "-X", "importtime", str(MMAUTH), *arguments, "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        walls.append(time.perf_counter() - started)
        imports.append(_import_seconds(traced.stderr))
        decision = json.loads(traced.stdout)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    interpreter = time.perf_counter() - started
    return {
        "wall_s": statistics.median(walls),
        "imports_s": statistics.median(imports),
        "rest_s": statistics.median(w - i for w, i in zip(walls, imports, strict=True)),
        "interpreter_start_s": interpreter,
        "attempt_s": decision["seconds"],
        "attempt_steps_s": {step["name"]: round(step["seconds"], 3) for step in decision["steps"]},
        "decision": f"{decision['decision']} ({decision['reason']})",
    }


def _import_seconds(importtime_log: str) -> float:
    """Total import time from ``-X importtime`` output: the cumulative column of the lines
    whose module name is not indented (top-level imports, wherever they happen)."""
    total_us = 0
    for line in importtime_log.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, name = line.split("|")
            if not name.startswith("  ") and cumulative.strip().isdigit():
                total_us += int(cumulative)
    return total_us / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["classic", "dlib"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="Keep the workspaces under this folder.")
    parser.add_argument(
        "--reuse", action="store_true", help="Reuse trained workspaces found under --keep."
    )
    arguments = parser.parse_args()
    base = arguments.keep or Path(tempfile.mkdtemp(prefix="mmauth-bench-auth-"))
    results = {}
    try:
        for backend in arguments.backends:
            root = base / backend
            if arguments.reuse and (root / "models" / "manifest.json").is_file():
                members = tuple(sorted(p.name for p in (root / "data/raw/faces").iterdir()))
            else:
                shutil.rmtree(root, ignore_errors=True)
                started = time.perf_counter()
                members = prepare(root, backend)
                print(f"[{backend}] workspace prepared in {time.perf_counter() - started:.0f} s")
            pairs = genuine_pairs(root, members)
            results[backend] = {
                "warm": warm(root, pairs, arguments.rounds),
                "fresh": fresh_process(root, *pairs[0]),
            }
            print(json.dumps({backend: results[backend]}, indent=2))
    finally:
        if arguments.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
