"""Recordings made in a room: the words between pauses of steady noise, as a phone or a laptop
records them. Genuine members' takes re-recorded that way, and members enrolled from such takes
facing strangers recorded the same way, through the product's own stages, with the speech
detector as it is and with its edge cut switched off (the detector before it: every frame within
``voice.trim_top_db`` of the loudest counts, wherever it is).

    .venv/bin/python -m benchmarks.room_noise [--noise 0.002 0.005] [--json FILE]

The people are those of benchmarks.shared_workspace (four members, two strangers; Yale faces,
FSDD voices; members enrol takes 0-4 of "one" and "seven", probes are takes 5-9). A room take
is the FSDD take scaled to a peak of 0.5, with 1.0 s before and 1.5 s after it, under Gaussian
noise of the given standard deviation (0.002 is about -54 dBFS, 0.005 about -46 dBFS), at
FSDD's 8 kHz. Results in docs/BENCHMARKS.md, "Recordings made in a room".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from benchmarks.shared_workspace import arrange
from engine.core.metrics import wilson_interval
from engine.core.workspace import Workspace, member_folders

PAUSE_BEFORE_S, PAUSE_AFTER_S = 1.0, 1.5


def room_take(source: Path, target: Path, noise: float, seed: int) -> Path:
    """``source`` recorded in a room: see the module docstring."""
    speech, sr = soundfile.read(source, dtype="float64")
    speech = 0.5 * speech / max(float(np.abs(speech).max()), 1e-9)
    silent = [np.zeros(int(s * sr)) for s in (PAUSE_BEFORE_S, PAUSE_AFTER_S)]
    audio = np.concatenate([silent[0], speech, silent[1]])
    audio += noise * np.random.default_rng(seed).standard_normal(len(audio))
    target.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(target, audio, sr, subtype="PCM_16")
    return target


@contextlib.contextmanager
def detector(edge_cut: bool) -> Iterator[None]:
    """The product's speech detector, with its edge cut on (as shipped) or off."""
    import engine.voices.audio as audio

    saved = audio.EDGE_PAUSE_S, dict(audio.SPEECH_DETECTOR)
    if not edge_cut:
        # Longer than any recording (voice.max_duration_s): no pause is ever cut.
        audio.EDGE_PAUSE_S = audio.SPEECH_DETECTOR["edge_pause_s"] = 1e6
    try:
        yield
    finally:
        audio.EDGE_PAUSE_S = saved[0]
        audio.SPEECH_DETECTOR.clear()
        audio.SPEECH_DETECTOR.update(saved[1])


def trained(root: Path, enrol_noise: float | None) -> tuple[Workspace, Any, Any]:
    """The arranged workspace, its enrolment takes made room takes when ``enrol_noise`` is
    given, with features extracted and face and voice models trained; its settings and a
    warm authenticator that neither logs nor locks."""
    from engine.auth.flow import Authenticator
    from engine.core.settings import load_settings
    from engine.faces.extract import extract_face_features
    from engine.models.training import train_models
    from engine.voices.extract import extract_voice_features

    arranged = arrange(root)
    space = Workspace(arranged.root)
    if enrol_noise is not None:
        for index, path in enumerate(sorted(space.voices_dir.rglob("*.wav"))):
            room_take(path, path, enrol_noise, seed=index)
    # In this process: worker processes would import the detector afresh, edge cut and all.
    settings = load_settings(space.root, {"jobs": 1})
    extract_face_features(space, settings)
    extract_voice_features(space, settings)
    train_models(space, settings, which=("face", "voice"))
    return space, settings, Authenticator(space, settings, record=False, lockout=False)


def face_of(space: Workspace, authenticator: Any, person: str, clip: Path) -> Path | None:
    """A probe photo of ``person`` that the face step identifies as them."""
    from engine.auth.words import Step, StepStatus

    for photo in member_folders(space.probe_faces_dir).get(person, []):
        decision = authenticator.authenticate(photo, clip)
        if decision.step(Step.FACE).status == StepStatus.PASSED and decision.member == person:
            return photo
    return None


def rate(granted: int, trials: int) -> dict[str, Any]:
    low, high = wilson_interval(granted, trials)
    return {
        "granted": granted,
        "trials": trials,
        "rate": granted / max(trials, 1),
        "low": low,
        "high": high,
    }


def run(noises: tuple[float, ...], work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for edge_cut in (True, False):
        name = "edge cut (default)" if edge_cut else "no edge cut (before)"
        with detector(edge_cut):
            results[name] = measure(noises, work / ("cut" if edge_cut else "whole"))
    return results


def measure(noises: tuple[float, ...], work: Path) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    space, _, authenticator = trained(work / "clean", None)
    members = sorted(member_folders(space.voices_dir))
    probes = member_folders(space.probe_voices_dir)
    takes = {m: [c for c in probes[m] if not c.name.startswith("three")] for m in members}
    faces = {m: face_of(space, authenticator, m, takes[m][0]) for m in members}
    variants: dict[str, float | None] = {"as recorded": None} | {f"room {n:g}": n for n in noises}
    for label, noise in variants.items():
        granted = trials = 0
        for m in members:
            if faces[m] is None:
                continue
            for index, clip in enumerate(takes[m]):
                if noise is not None:
                    clip = room_take(clip, work / "probes" / label / m / clip.name, noise, index)
                trials += 1
                granted += authenticator.authenticate(faces[m], clip).granted
        rows[f"clean enrolment, genuine {label}"] = rate(granted, trials)
    loud = max(noises)
    space, _, authenticator = trained(work / "room", loud)
    probes = member_folders(space.probe_voices_dir)
    strangers = sorted(set(probes) - set(members))
    faces = {m: face_of(space, authenticator, m, probes[m][0]) for m in members}
    genuine = impostor = genuine_trials = impostor_trials = 0
    for m in members:
        if faces[m] is None:
            continue
        for index, clip in enumerate(c for c in probes[m] if not c.name.startswith("three")):
            take = room_take(clip, work / "room-probes" / m / clip.name, loud, 100 + index)
            genuine_trials += 1
            genuine += authenticator.authenticate(faces[m], take).granted
        for s in strangers:
            for index, clip in enumerate(probes[s]):
                take = room_take(clip, work / "room-probes" / s / clip.name, loud, 200 + index)
                impostor_trials += 1
                impostor += authenticator.authenticate(faces[m], take).granted
    rows[f"room enrolment {loud:g}, genuine room takes"] = rate(genuine, genuine_trials)
    rows[f"room enrolment {loud:g}, strangers' room takes (accepted)"] = rate(
        impostor, impostor_trials
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.002, 0.005])
    parser.add_argument("--json", type=Path, help="also write the results here")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mmauth-room-") as folder:
        work = Path(folder)
        # The installation's records (signing key, trusted models) stay in the run's folder.
        os.environ.setdefault("MMAUTH_CONFIG_DIR", str(work / "config"))
        results = run(tuple(arguments.noise), work)
    for design, rows in results.items():
        print(design)
        for label, row in rows.items():
            print(
                f"  {label:52s} {row['granted']:4d}/{row['trials']:<4d} = {row['rate']:6.1%} "
                f"[{row['low']:.1%}, {row['high']:.1%}]"
            )
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
