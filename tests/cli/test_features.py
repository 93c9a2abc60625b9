import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import create_app
from engine.core.workspace import Workspace

runner = CliRunner()


@pytest.fixture
def photo_workspace(workspace: Workspace, shared_yalefaces: Path) -> Workspace:
    """Two members enrolled with two real Yale photos each, one probe; no augmentation."""
    for member, subject in (("ana", "subject01"), ("ben", "subject02")):
        folder = workspace.faces_dir / member
        folder.mkdir(parents=True)
        for condition in ("normal", "happy"):
            shutil.copy(shared_yalefaces / f"{subject}.{condition}", folder)
    probes = workspace.probe_faces_dir / "ana"
    probes.mkdir(parents=True)
    shutil.copy(shared_yalefaces / "subject01.glasses", probes)
    workspace.settings_file.write_text("[face_augment]\ncopies = 0\n", encoding="utf-8")
    return workspace


def features(workspace: Workspace, *flags: str):  # noqa: ANN201
    return runner.invoke(
        create_app(), ["features", "-w", str(workspace.root), "--no-voices", *flags]
    )


def test_features_exit_0_and_write_the_table(photo_workspace: Workspace) -> None:
    result = features(photo_workspace, "--face-backend", "classic")
    assert result.exit_code == 0, result.output
    assert "faces" in result.stdout and "classic" in result.stdout
    table = pd.read_csv(photo_workspace.image_features)
    assert len(table) == 5 and set(table.member) == {"ana", "ben"}
    assert (table.backend == "classic").all()


def test_face_backend_flag_and_json_output(photo_workspace: Workspace) -> None:
    result = features(photo_workspace, "--face-backend", "dlib", "--json")
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)["runs"]
    assert run["backend"] == "dlib" and run["rows"] == 5 and run["failures"] == []
    assert pd.read_csv(photo_workspace.image_features).filter(like="feature_").shape[1] == 128


def test_corrupt_photo_exits_1_and_is_listed(photo_workspace: Workspace) -> None:
    corrupt = photo_workspace.faces_dir / "ben" / "scan.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    result = features(photo_workspace, "--json")
    assert result.exit_code == 1
    (run,) = json.loads(result.stdout)["runs"]
    assert [f["source"] for f in run["failures"]] == ["data/raw/faces/ben/scan.jpg"]
    assert run["rows"] == 5  # every other photo still made it into the table
    people = features(photo_workspace)
    assert people.exit_code == 1
    assert "data/raw/faces/ben/scan.jpg" in people.stdout


def test_missing_photo_folder_exits_2(workspace: Workspace) -> None:
    result = features(workspace)
    assert result.exit_code == 2
    assert "data/raw/faces does not exist" in result.stderr


def test_recordings_only_are_processed_and_photos_reported_skipped(workspace: Workspace) -> None:
    from tests.tui.conftest import write_clip

    for member, pitch in (("ana", 120), ("ben", 180)):
        for take in (1, 2):
            write_clip(workspace.voices_dir / member / f"yes_approve_{take}.wav", pitch)
    workspace.settings_file.write_text("[voice_augment]\ncopies = 0\n", encoding="utf-8")
    result = runner.invoke(create_app(), ["features", "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    assert "skipped photos: none under data/raw/faces/" in result.stdout
    assert "no enrolment photos" not in result.output
    assert workspace.audio_features.is_file() and not workspace.image_features.exists()
