import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import create_app
from engine.core.workspace import Workspace

runner = CliRunner()


def test_config_show_json_reflects_toml_and_flags(workspace: Workspace) -> None:
    workspace.settings_file.write_text('[face]\nbackend = "dlib"\n', encoding="utf-8")
    result = runner.invoke(create_app(), ["config", "show", "-w", str(workspace.root), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["settings"]["face"]["backend"] == "dlib"
    assert shown["workspace"] == str(workspace.root)


def test_global_workspace_option_and_environment(workspace: Workspace, monkeypatch) -> None:
    workspace.settings_file.write_text("seed = 9\n", encoding="utf-8")
    result = runner.invoke(create_app(), ["-w", str(workspace.root), "config", "show", "--json"])
    assert json.loads(result.stdout)["settings"]["seed"] == 9
    monkeypatch.setenv("MMAUTH_WORKSPACE", str(workspace.root))
    result = runner.invoke(create_app(), ["config", "show", "--json"])
    assert json.loads(result.stdout)["settings"]["seed"] == 9


def test_bad_settings_exit_2_with_a_message(workspace: Workspace) -> None:
    workspace.settings_file.write_text("[face]\nbackend = 3\n", encoding="utf-8")
    result = runner.invoke(create_app(), ["config", "show", "-w", str(workspace.root)])
    assert result.exit_code == 2
    assert "face.backend must be one of classic, dlib" in result.stderr


def test_people_get_a_table(workspace: Workspace) -> None:
    result = runner.invoke(create_app(), ["config", "show", "-w", str(workspace.root)])
    assert result.exit_code == 0
    assert "face.backend" in result.stdout and Path(workspace.root).name in result.stdout
