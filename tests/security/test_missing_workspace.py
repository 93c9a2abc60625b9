"""A mistyped workspace is refused (exit 2, naming it) by every command that reads one, and
nothing is created; only `sample` and `demo` create workspaces."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import create_app

runner = CliRunner()

READING_COMMANDS = [
    ["history"],
    ["authenticate", "--face", "x.png", "--voice", "x.wav"],
    ["members"],
    ["remove", "alice"],
    ["enroll", "alice", "--face", "x.png"],
    ["unlock", "alice"],
    ["features"],
    ["merge"],
    ["train"],
    ["evaluate"],
    ["simulate"],
    ["report"],
    ["config", "show"],
    ["models", "verify"],
    ["models", "trust", "--yes"],
    ["audit", "verify"],
    ["audit", "acknowledge", "--yes"],
]


@pytest.mark.parametrize("command", READING_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_missing_workspace_is_refused_and_not_created(tmp_path: Path, command: list[str]) -> None:
    typo = tmp_path / "typo" / "deeper"
    result = runner.invoke(create_app(), [*command, "-w", str(typo)])
    assert result.exit_code == 2, result.output
    assert "No such workspace" in result.stderr and str(typo) in result.stderr
    assert not (tmp_path / "typo").exists()


def test_a_file_is_not_a_workspace(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    result = runner.invoke(create_app(), ["history", "-w", str(a_file)])
    assert result.exit_code == 2


def test_an_empty_folder_is_a_workspace(tmp_path: Path) -> None:
    result = runner.invoke(create_app(), ["history", "-w", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
