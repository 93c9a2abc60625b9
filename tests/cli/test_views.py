import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import create_app
from engine.core.workspace import Workspace
from tests.engine.audio_signals import speech_like, with_silence, write

runner = CliRunner()


def test_voice_view_writes_a_png_and_reports_the_speech(workspace: Workspace) -> None:
    clip = write(
        workspace.root / "take.wav", with_silence(speech_like(0.6), 16_000, 0.4, 0.2), 16_000
    )
    png = workspace.root / "views" / "take.png"
    args = ["voice-view", str(clip), "--png", str(png), "-w", str(workspace.root), "--json"]
    result = runner.invoke(create_app(), args)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["png"] == str(png) and png.read_bytes()[:4] == b"\x89PNG"
    assert shown["speech"][0] == pytest.approx(0.4, abs=0.03)
    assert shown["duration_s"] == pytest.approx(1.2, abs=0.01)


def test_voice_view_draws_in_the_terminal(workspace: Workspace) -> None:
    clip = write(workspace.root / "take.flac", speech_like(0.5), 16_000)
    result = runner.invoke(
        create_app(), ["voice-view", str(clip), "--width", "30", "-w", str(workspace.root)]
    )
    assert result.exit_code == 0, result.output
    assert "▀" in result.stdout and "take.flac: 0.50 s at 16000 Hz" in result.stdout


def test_voice_view_refuses_a_bad_file_with_exit_2(workspace: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    result = runner.invoke(create_app(), ["voice-view", str(bad), "-w", str(workspace.root)])
    assert result.exit_code == 2 and "not a readable audio file" in result.stderr
    silent = write(tmp_path / "silent.wav", np.zeros(16_000, dtype=np.float32), 16_000)
    result = runner.invoke(
        create_app(), ["voice-view", str(silent), "--cleaned", "-w", str(workspace.root)]
    )
    assert result.exit_code == 2 and "no speech" in result.stderr


def test_a_png_that_cannot_be_written_exits_2_naming_it(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = write(workspace.root / "take.wav", speech_like(0.5), 16_000)
    (tmp_path / "a.jpg").write_bytes(b"a photo")
    monkeypatch.chdir(tmp_path)
    args = ["-w", str(workspace.root), "voice-view", str(clip), "--png", "a.jpg/out.png"]
    result = runner.invoke(create_app(), args)
    assert result.exit_code == 2, result.output
    assert "cannot write a.jpg/out.png: a.jpg is a file, not a folder" in result.stderr
    assert (tmp_path / "a.jpg").read_bytes() == b"a photo"
