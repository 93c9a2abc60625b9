"""The sample workspace: deterministic bytes, the workspace layout, valid media, usable tables."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from PIL import Image

from engine.core.errors import CancelledError, InputError
from engine.core.fileio import file_sha256
from engine.core.settings import load_settings
from engine.core.workspace import Workspace, is_empty_workspace
from engine.sample import voices as sample_voices, workspace as sample_module
from engine.sample.workspace import (
    ENROL_TAKES,
    MANIFEST_NAME,
    MEMBER_PROBE_DIFFICULTIES,
    MEMBER_PROBE_TAKES,
    STRANGER_PROBE_DIFFICULTIES,
    STRANGER_PROBE_TAKES,
    WRONG_PHRASE_TAKES,
    SampleReport,
    recover_interrupted_run,
    write_sample_workspace,
)

EXPRESSIONS = ("neutral", "smiling", "surprised")
PHRASES = ("yes_approve", "confirm_transaction")


def _hashes(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): file_sha256(path)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, SampleReport]]:
    """Small samples: two with the same seed, one with an extra stranger, one other seed."""
    runs = {"first": (3, 2, 1), "again": (3, 2, 1), "more_strangers": (3, 1, 3), "other": (4, 1, 0)}
    written = {}
    for name, (seed, members, strangers) in runs.items():
        root = tmp_path_factory.mktemp(name) / "workspace"
        report = write_sample_workspace(root, members=members, strangers=strangers, seed=seed)
        written[name] = (root, report)
    return written


def test_same_seed_gives_identical_bytes(generated):
    first, again = _hashes(generated["first"][0]), _hashes(generated["again"][0])
    assert len(first) == generated["first"][1].files
    assert first == again


def test_different_seed_gives_different_files(generated):
    first, other = _hashes(generated["first"][0]), _hashes(generated["other"][0])
    shared = set(first) & set(other)
    media = [name for name in shared if name.endswith((".png", ".wav", ".csv"))]
    assert media
    assert all(first[name] != other[name] for name in media if not name.endswith("members.csv"))


def test_other_people_do_not_change_a_members_files(generated):
    first, more = _hashes(generated["first"][0]), _hashes(generated["more_strangers"][0])
    alice = [name for name in first if "/alice/" in name]
    assert len(alice) > 10
    assert all(more[name] == first[name] for name in alice)


def test_some_strangers_are_lookalikes_of_members(generated):
    _, report = generated["more_strangers"]
    assert report.lookalikes == {"mallory": "alice"}
    assert generated["first"][1].lookalikes == {}


def test_manifest_lists_every_file_with_its_hash(generated):
    import json

    root, _ = generated["first"]
    manifest = json.loads((root / "data/raw" / MANIFEST_NAME).read_text())
    on_disk = _hashes(root)
    on_disk.pop(f"data/raw/{MANIFEST_NAME}")
    assert manifest["files"] == on_disk
    assert manifest["seed"] == 3


def test_layout_follows_the_workspace_contract(generated):
    root, report = generated["first"]
    space = Workspace(root)
    assert report.members == ("alice", "bruno")
    assert report.strangers == ("mallory",)
    assert sorted(p.name for p in space.faces_dir.iterdir()) == list(report.members)
    assert sorted(p.name for p in space.voices_dir.iterdir()) == list(report.members)
    labels = sorted([*report.members, *report.strangers])
    assert sorted(p.name for p in space.probe_faces_dir.iterdir()) == labels
    assert sorted(p.name for p in space.probe_voices_dir.iterdir()) == labels
    for member in report.members:
        assert sorted(p.name for p in (space.faces_dir / member).iterdir()) == sorted(
            f"{e}.png" for e in EXPRESSIONS
        )
        expected = {f"{phrase}_{n}.wav" for phrase in PHRASES for n in range(1, ENROL_TAKES + 1)}
        assert {p.name for p in (space.voices_dir / member).iterdir()} == expected
        assert len(list((space.probe_faces_dir / member).iterdir())) == len(
            MEMBER_PROBE_DIFFICULTIES
        )
        probe_clips = {p.name for p in (space.probe_voices_dir / member).iterdir()}
        assert len(probe_clips) == 2 * MEMBER_PROBE_TAKES + WRONG_PHRASE_TAKES
        # A phrase the member never enrolled, for the wrong-phrase check.
        assert f"deny_payment_{WRONG_PHRASE_TAKES}.wav" in probe_clips
    stranger = report.strangers[0]
    assert len(list((space.probe_faces_dir / stranger).iterdir())) == len(
        STRANGER_PROBE_DIFFICULTIES
    )
    assert len(list((space.probe_voices_dir / stranger).iterdir())) == 2 * STRANGER_PROBE_TAKES
    assert not list(root.glob(".mmauth-sample-*")), "the staging folder was left behind"


def test_settings_file_is_valid_and_names_the_backend(generated):
    root, report = generated["first"]
    settings = load_settings(root, environ={})
    assert settings.face.backend == report.face_backend
    assert settings.seed == 3


def test_photos_are_colour_and_large_enough(generated):
    root, _ = generated["first"]
    photos = sorted(root.rglob("*.png"))
    assert photos
    for path in photos:
        with Image.open(path) as image:
            assert image.mode == "RGB"
            assert min(image.size) >= 256
            pixels = np.asarray(image, dtype=float)
        # Colour for real: the channels differ somewhere on the face.
        assert np.abs(pixels[..., 0] - pixels[..., 2]).mean() > 3, path


def test_recordings_are_16k_mono_16bit_within_duration(generated):
    root, _ = generated["first"]
    clips = sorted(root.rglob("*.wav"))
    assert clips
    for path in clips:
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
        assert 1.0 <= info.duration <= 2.5, path
        samples, _ = soundfile.read(str(path))
        assert 0.1 < np.abs(samples).max() < 1.0, path


def _mfcc(path: Path) -> np.ndarray:
    import librosa

    samples, rate = soundfile.read(str(path), dtype="float32")
    trimmed, _ = librosa.effects.trim(samples, top_db=30)
    features = librosa.feature.mfcc(y=trimmed, sr=rate, n_mfcc=13)
    return (features - features.mean(axis=1, keepdims=True))[1:]


def _dtw_cost(first: np.ndarray, second: np.ndarray) -> float:
    import librosa

    cost, path = librosa.sequence.dtw(first, second)
    return float(cost[-1, -1] / len(path))


def test_a_phrase_check_tells_the_two_phrases_apart(generated):
    root, report = generated["first"]
    voices = Workspace(root).voices_dir
    for member in report.members:
        takes = {p: [_mfcc(voices / member / f"{p}_{n}.wav") for n in (1, 2, 3)] for p in PHRASES}
        same = [_dtw_cost(takes[p][i], takes[p][j]) for p in PHRASES for i, j in ((0, 1), (1, 2))]
        different = [
            _dtw_cost(a, b) for a in takes["yes_approve"] for b in takes["confirm_transaction"]
        ]
        assert max(same) < min(different), member
        probes = Workspace(root).probe_voices_dir / member
        unenrolled = [_mfcc(probes / f"deny_payment_{n}.wav") for n in (1, 2)]
        against_enrolled = [_dtw_cost(a, b) for a in unenrolled for p in PHRASES for b in takes[p]]
        assert max(same) < min(against_enrolled), member


def test_customer_tables_have_the_assignment_shape(generated):
    root, report = generated["first"]
    folder = Workspace(root).customers_dir
    profiles = pd.read_csv(folder / "customer_social_profiles.csv")
    transactions = pd.read_csv(folder / "customer_transactions.csv")
    mapping = pd.read_csv(folder / "id_mapping.csv")
    members = pd.read_csv(folder / "members.csv")
    assert list(profiles.columns) == [
        "customer_id_new",
        "social_media_platform",
        "engagement_score",
        "purchase_interest_score",
        "review_sentiment",
    ]
    assert list(transactions.columns) == [
        "customer_id_legacy",
        "transaction_id",
        "purchase_amount",
        "purchase_date",
        "product_category",
        "customer_rating",
    ]
    assert list(mapping.columns) == ["customer_id_legacy", "customer_id_new"]
    assert profiles["customer_id_new"].str.fullmatch(r"A\d+").all()
    assert pd.api.types.is_integer_dtype(transactions["customer_id_legacy"])
    assert set(transactions["product_category"]) == {
        "Sports",
        "Electronics",
        "Clothing",
        "Groceries",
        "Books",
    }
    assert profiles.duplicated().sum() >= 3
    assert mapping.duplicated().sum() >= 3
    assert transactions["customer_rating"].isna().sum() >= 3
    assert transactions["transaction_id"].is_unique
    pd.to_datetime(transactions["purchase_date"], format="%Y-%m-%d")
    # The mapping is a shuffle: stripping the "A" never gives the legacy id.
    stripped = mapping["customer_id_new"].str[1:].astype(int)
    assert (stripped != mapping["customer_id_legacy"]).all()
    assert profiles["customer_id_new"].nunique() >= 150
    assert list(members["member"]) == list(report.members)
    linked = set(mapping["customer_id_new"]) & set(profiles["customer_id_new"])
    assert set(members["customer_id"]) <= linked


def test_the_merge_reads_the_sample_and_finds_every_member(generated):
    from engine.core.settings import Settings
    from engine.customers.merge import merge_customers

    root, report = generated["first"]
    space = Workspace(root)
    merge_report = merge_customers(space, Settings())
    merged = pd.read_csv(space.merged_dataset)
    members = pd.read_csv(space.members_file)
    assert merge_report.customers_out == len(merged) >= 150
    assert set(members["customer_id"]) <= set(merged["customer_id"])
    assert merged["preferred_category"].nunique() == 5


def test_invalid_counts_are_refused(tmp_path):
    with pytest.raises(InputError, match="members must be between"):
        write_sample_workspace(tmp_path / "w", members=0)
    with pytest.raises(InputError, match="strangers must be between"):
        write_sample_workspace(tmp_path / "w", strangers=-1)
    assert not (tmp_path / "w" / "data").exists()


def test_a_failure_midway_leaves_the_workspace_untouched(tmp_path, monkeypatch):
    root = tmp_path / "workspace"
    (root / "data" / "raw" / "customers").mkdir(parents=True)
    (root / "data" / "raw" / "customers" / "mine.csv").write_text("a,b\n1,2\n")
    calls = {"count": 0}
    real = sample_voices.synthesise

    def failing(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] > 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(sample_voices, "synthesise", failing)
    with pytest.raises(InputError, match="cannot write the sample workspace: disk full"):
        write_sample_workspace(root, members=1, strangers=0)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "data",
        "data/raw",
        "data/raw/customers",
        "data/raw/customers/mine.csv",
    ]


def test_an_unwritable_folder_is_a_clear_error(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(InputError, match="not a folder"):
        write_sample_workspace(blocked, members=1, strangers=0)
    with pytest.raises(InputError, match="cannot write here"):
        write_sample_workspace(blocked / "inside", members=1, strangers=0)


def test_cancel_stops_and_writes_nothing(tmp_path):
    cancel = threading.Event()
    cancel.set()
    root = tmp_path / "workspace"
    with pytest.raises(CancelledError):
        write_sample_workspace(root, members=1, strangers=0, cancel=cancel)
    assert is_empty_workspace(root)


def test_rewriting_replaces_the_previous_raw_data(tmp_path, monkeypatch):
    root = tmp_path / "workspace"
    stale = root / "data" / "raw" / "faces" / "old_member" / "neutral.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not a photo")
    (root / "models").mkdir()
    monkeypatch.setattr(sample_module, "CUSTOMERS", 40)
    write_sample_workspace(root, members=1, strangers=0)
    assert not stale.exists()
    assert (root / "models").is_dir(), "derived folders are left alone"
    assert (root / "data" / "raw" / "faces" / "alice" / "neutral.png").is_file()


def test_empty_workspace_check(tmp_path):
    assert is_empty_workspace(tmp_path / "absent")
    (tmp_path / ".hidden").write_text("")
    assert is_empty_workspace(tmp_path)
    (tmp_path / "file.txt").write_text("")
    assert not is_empty_workspace(tmp_path)


def finished_pid() -> int:
    """The pid of a process that has ended (as a killed run's would be)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def stale_staging(root, name, pid):
    staging = root / f"{sample_module.STAGING_PREFIX}{name}"
    staging.mkdir(parents=True)
    (staging / sample_module.OWNER_FILE).write_text(str(pid))
    return staging


def test_a_killed_runs_staging_is_removed_and_a_live_ones_kept(tmp_path):
    root = tmp_path / "workspace"
    dead = stale_staging(root, "dead", finished_pid())
    (dead / "data" / "raw").mkdir(parents=True)
    unowned = root / f"{sample_module.STAGING_PREFIX}unowned"
    unowned.mkdir()
    live = stale_staging(root, "live", os.getppid())
    assert recover_interrupted_run(root) is False
    assert not dead.exists() and not unowned.exists()
    assert live.is_dir(), "a running sample's staging folder is left alone"


def test_a_run_killed_mid_swap_gets_its_previous_raw_back(tmp_path):
    root = tmp_path / "workspace"
    staging = stale_staging(root, "swap", finished_pid())
    mine = staging / sample_module.PREVIOUS_RAW / "customers" / "mine.csv"
    mine.parent.mkdir(parents=True)
    mine.write_text("a,b\n1,2\n")
    assert is_empty_workspace(root)
    assert recover_interrupted_run(root) is True
    assert (root / "data" / "raw" / "customers" / "mine.csv").read_text() == "a,b\n1,2\n"
    assert not staging.exists()
    assert not is_empty_workspace(root), "the restored data is protected from being replaced"
