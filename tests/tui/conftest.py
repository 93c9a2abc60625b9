"""Fixtures of the terminal app's tests: small deterministic workspaces and pilot helpers."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from textual.app import App
from textual.pilot import Pilot

from engine.auth.store import AttemptRecord, open_store
from engine.core.settings import dump_toml, read_toml
from engine.core.workspace import Workspace

MEMBERS = ("ana", "ben")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (Textual's Pilot needs one)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**arguments))
    return True


CATEGORIES = ("Books", "Clothing", "Electronics", "Sports")


def write_photo(path: Path, seed: int) -> None:
    """A small colour picture (content does not matter to the statistics)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((48, 40, 3), dtype=np.uint8)
    pixels[:] = rng.integers(40, 200, size=3)
    pixels[12:36, 10:30] = rng.integers(120, 255, size=3)
    Image.fromarray(pixels).save(path)


def write_clip(path: Path, pitch_hz: float, seconds: float = 0.8) -> None:
    """A voiced-sounding tone with an envelope, 16 kHz mono."""
    import soundfile

    sr = 16_000
    t = np.arange(int(sr * seconds)) / sr
    envelope = np.sin(np.pi * t / seconds) ** 2
    signal = (
        0.5 * envelope * np.sin(2 * np.pi * pitch_hz * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, signal.astype(np.float32), sr)


def build_small_workspace(root: Path) -> Workspace:
    """Two members, a stranger, feature tables and a merged customer table, all seeded."""
    workspace = Workspace(root=root)
    rng = np.random.default_rng(7)
    for index, member in enumerate(MEMBERS):
        for take, emotion in enumerate(("neutral", "smiling", "surprised")):
            write_photo(workspace.faces_dir / member / f"{emotion}.png", seed=10 * index + take)
        for take in (1, 2):
            write_clip(workspace.voices_dir / member / f"yes_approve_{take}.wav", 120 + 40 * index)
            write_clip(
                workspace.voices_dir / member / f"confirm_transaction_{take}.wav", 130 + 40 * index
            )
        write_photo(workspace.probe_faces_dir / member / "dim.png", seed=50 + index)
        write_clip(workspace.probe_voices_dir / member / "yes_approve_3.wav", 120 + 40 * index)
    write_photo(workspace.probe_faces_dir / "zoe" / "zoe.png", seed=99)
    write_clip(workspace.probe_voices_dir / "zoe" / "yes_approve_1.wav", 210)
    workspace.members_file.parent.mkdir(parents=True, exist_ok=True)
    workspace.members_file.write_text("member,customer_id\nana,A101\nben,A102\n", encoding="utf-8")

    image_rows = [
        {"member": m, "emotion": e, "augmentation": a, "source": f"{m}/{e}", "role": "enrol"}
        for m in MEMBERS
        for e in ("neutral", "smiling", "surprised")
        for a in ("original", "flip", "noise")
    ]
    images = pd.DataFrame(image_rows)
    for i in range(4):
        images[f"feature_{i}"] = rng.normal(size=len(images)).round(4)
    images.to_csv(workspace.image_features, index=False)

    audio_rows = [
        {"member": m, "phrase": p, "augmentation": a, "source": f"{m}/{p}_{t}", "role": "enrol"}
        for m in MEMBERS
        for p in ("yes_approve", "confirm_transaction")
        for t in (1, 2)
        for a in ("original", "pitch")
    ]
    audio = pd.DataFrame(audio_rows)
    for i in range(3):
        audio[f"audio_feature_{i}"] = (rng.normal(size=len(audio)) + i).round(4)
    audio.to_csv(workspace.audio_features, index=False)

    customers = 40
    engagement = rng.uniform(10, 100, customers).round(2)
    pd.DataFrame(
        {
            "customer_id": [f"A{100 + i}" for i in range(customers)],
            "age": rng.integers(18, 70, customers),
            "engagement_score_mean": engagement,
            "purchase_amount_mean": (engagement * 5 + rng.normal(0, 60, customers)).round(2),
            "customer_rating_mean": rng.uniform(1, 5, customers).round(2),
            "preferred_category": [CATEGORIES[i % len(CATEGORIES)] for i in range(customers)],
        }
    ).to_csv(workspace.merged_dataset, index=False)
    return workspace


@pytest.fixture
def small_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A fresh small workspace named ``demo`` (the name shows in the header of snapshots)."""
    for variable in list(os.environ):
        if variable.startswith("MMAUTH_") and variable != "MMAUTH_REQUIRE_SHARED":
            monkeypatch.delenv(variable)
    return build_small_workspace(tmp_path / "demo")


def add_attempts(workspace: Workspace) -> None:
    """Four attempts at fixed times: granted and denied, for two members and a stranger."""
    store = open_store(workspace)
    base = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
    attempts = [
        ("GRANTED", "ok", "ana", "Books", 0.91, 0.88, "Welcome, ana."),
        ("DENIED", "voice_mismatch", "ana", None, 0.90, 0.41, "The voice does not match ana."),
        ("DENIED", "unknown_face", None, None, 0.32, None, "The face matches no member."),
        ("GRANTED", "ok", "ben", "Sports", 0.87, 0.79, "Welcome, ben."),
    ]
    for offset, (decision, reason, member, category, face, voice, message) in enumerate(attempts):
        store.record_attempt(
            AttemptRecord(
                at=base + 60 * offset,
                decision=decision,
                reason=reason,
                message=message,
                seconds=0.5 + offset / 10,
                steps=({"name": "face", "status": "passed" if member else "failed"},),
                face_path=f"data/raw/probes/faces/{member or 'zoe'}/dim.png",
                voice_path="data/raw/probes/voices/ana/yes_approve_3.wav",
                identified_member=member,
                claimed_member=member,
                category=category,
                face_score=face,
                face_threshold=0.6,
                voice_score=voice,
                voice_threshold=0.5 if member else None,
            )
        )


async def settle(pilot: Pilot[object], app: App[object], timeout: float = 30.0) -> None:
    """Wait until no worker of the app has run for a while (the directory trees' loaders
    excepted): workers started after the first paint get the time to start."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    idle_checks = 0
    while loop.time() < deadline:
        await pilot.pause(0.05)
        busy = [w for w in app.workers if w.is_running and w.name != "_loader"]
        idle_checks = 0 if busy else idle_checks + 1
        if idle_checks >= 3:
            return
    raise AssertionError(f"workers still running after {timeout} s: {busy}")


async def until(pilot: Pilot[object], condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until ``condition()`` holds (checked every 50 ms), then let workers settle."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met after {timeout} s")
        await pilot.pause(0.05)
    await settle(pilot, pilot.app, timeout)


async def stats_shown(pilot: Pilot[object]) -> None:
    """Wait until the Stats screen has loaded and shown the workspace's statistics."""
    await until(pilot, lambda: getattr(pilot.app.screen, "stats", None) is not None)


async def close_welcome(pilot: Pilot[object]) -> None:
    """On an empty folder the app opens on the welcome panel: close it (Esc)."""
    await until(pilot, lambda: type(pilot.app.screen).__name__ == "WelcomeScreen")
    await pilot.press("escape")
    await pilot.pause()


def screen_text(app: App[object]) -> str:
    """Everything visible on the screen (notifications included), as plain text lines."""
    strips = app.screen._compositor.render_strips()  # noqa: SLF001
    return "\n".join(strip.text for strip in strips)


def notifications(app: App[object]) -> list[str]:
    """``title: message`` of every notification the app is showing."""
    return [f"{n.title}: {n.message}" for n in app._notifications]  # noqa: SLF001


FAST_SETTINGS = {
    "face": {"backend": "dlib"},
    "face_augment": {"copies": 1},
    "voice_augment": {"copies": 1},
    "models": {"cv_splits": 3, "cv_repeats": 1},
}


@pytest.fixture(scope="session")
def trained_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The sample workspace (3 members, 1 stranger, dlib faces), merged, featurised and trained
    once per session with small augmentation and cross-validation settings."""
    from engine.core.settings import load_settings
    from engine.customers.merge import merge_customers
    from engine.faces.extract import extract_face_features
    from engine.models.training import train_models
    from engine.sample.workspace import write_sample_workspace
    from engine.voices.extract import extract_voice_features

    saved = {
        variable: os.environ.pop(variable)
        for variable in list(os.environ)
        if variable.startswith("MMAUTH_") and variable != "MMAUTH_REQUIRE_SHARED"
    }
    root = tmp_path_factory.mktemp("trained") / "sample"
    write_sample_workspace(root, members=3, strangers=1, seed=0)
    # Two probes of each kind per label keep features and the simulation quick.
    for folder in (root / "data/raw/probes/faces", root / "data/raw/probes/voices"):
        for label in folder.iterdir():
            for extra in sorted(label.iterdir())[2:]:
                extra.unlink()
    settings_file = root / "mmauth.toml"
    values = read_toml(settings_file)
    for section, updates in FAST_SETTINGS.items():
        values[section] = {**values.get(section, {}), **updates}
    settings_file.write_text(dump_toml(values), encoding="utf-8")
    workspace = Workspace(root=root)
    settings = load_settings(root)
    merge_customers(workspace, settings)
    extract_face_features(workspace, settings)
    extract_voice_features(workspace, settings)
    train_models(workspace, settings)
    os.environ.update(saved)
    return workspace


@pytest.fixture(scope="session")
def default_sample(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The sample workspace with the settings its mmauth.toml writes (jobs = 2: feature
    extraction on loky worker processes), merged, featurised and trained once per session.

    Three members and one stranger, two probes of each kind per member, keep it quick; the
    stranger keeps all its probes, for enrolment tests with files left over to authenticate.
    """
    from engine.core.settings import load_settings
    from engine.customers.merge import merge_customers
    from engine.faces.extract import extract_face_features
    from engine.models.training import train_models
    from engine.sample.workspace import write_sample_workspace
    from engine.voices.extract import extract_voice_features

    saved = {
        variable: os.environ.pop(variable)
        for variable in list(os.environ)
        if variable.startswith("MMAUTH_") and variable != "MMAUTH_REQUIRE_SHARED"
    }
    root = tmp_path_factory.mktemp("default") / "sample"
    report = write_sample_workspace(root, members=3, strangers=1, seed=0)
    for folder in (root / "data/raw/probes/faces", root / "data/raw/probes/voices"):
        for member in report.members:
            for extra in sorted((folder / member).iterdir())[2:]:
                extra.unlink()
    workspace = Workspace(root=root)
    settings = load_settings(root)
    assert settings.jobs == 2, "the sample's mmauth.toml no longer asks for worker processes"
    merge_customers(workspace, settings)
    extract_face_features(workspace, settings)
    extract_voice_features(workspace, settings)
    train_models(workspace, settings)
    os.environ.update(saved)
    return workspace
