"""Help text: every command's options as they are used, and what the commands really do."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from cli.main import create_app

runner = CliRunner()


def command_paths() -> list[list[str]]:
    """Every command of `mmauth`, sub-apps included, as the words that name it."""
    paths: list[list[str]] = [[]]

    def walk(command: object, path: list[str]) -> None:
        for name, child in getattr(command, "commands", {}).items():
            paths.append([*path, name])
            walk(child, [*path, name])

    walk(typer.main.get_command(create_app()), [])
    return paths


def help_text(*words: str) -> str:
    result = runner.invoke(create_app(), [*words, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("path", command_paths(), ids=lambda path: " ".join(path) or "mmauth")
def test_flags_show_no_value_placeholder(path: list[str]) -> None:
    # A flag takes no value (`--json true` is refused): its help row must not suggest one.
    text = help_text(*path)
    assert "<bool>" not in text
    assert "--help " in text


def test_json_is_a_flag_without_a_value() -> None:
    assert runner.invoke(create_app(), ["members", "--json", "true"]).exit_code == 2


def test_evaluate_describes_the_and_decision_not_fusion() -> None:
    text = " ".join(help_text("evaluate").split())
    assert "fused" not in text and "fusion" not in text
    assert "the decision (face AND voice: both must match)" in text


def test_train_names_the_state_files_it_writes() -> None:
    text = " ".join(help_text("train").split())
    assert "models/{face,voice,product}.skops" in text
    assert "models/{face,voice,product}.state.npz" in text
