import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import create_app
from engine.core.workspace import Workspace
from tests.engine.model_fixtures import write_image_features, write_merged_dataset

runner = CliRunner()
FAST_TOML = "[models]\ncv_splits = 3\ncv_repeats = 2\n"


def test_train_only_product_prints_the_metrics_table(workspace: Workspace) -> None:
    write_merged_dataset(workspace)
    workspace.settings_file.write_text(FAST_TOML, encoding="utf-8")
    result = runner.invoke(create_app(), ["train", "-w", str(workspace.root), "--only", "product"])
    assert result.exit_code == 0, result.output
    assert "Held-out metrics" in result.stdout
    assert "product" in result.stdout and "±" in result.stdout
    assert "Product model:" in result.stdout and "baselines" in result.stdout
    assert "stratified (baseline)" in result.stdout
    summary = pd.read_csv(workspace.training_summary)
    assert list(summary["model"]) == ["product"]


def test_train_json_reports_the_summary_and_verdict(workspace: Workspace) -> None:
    write_merged_dataset(workspace)
    workspace.settings_file.write_text(FAST_TOML, encoding="utf-8")
    result = runner.invoke(
        create_app(), ["train", "-w", str(workspace.root), "--only", "product", "--json"]
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["ok"] and shown["trained"] == ["product"]
    row = shown["summary"][0]
    assert row["model"] == "product" and row["eer"] is None and 0 < row["f1_score"] <= 1
    assert shown["product_verdict"] and shown["manifest"] == "models/manifest.json"
    comparison = shown["product_comparison"]
    names = [c["name"] for c in comparison["candidates"]]
    assert names == [
        "logistic_regression",
        "random_forest",
        "hist_gradient_boosting",
        "majority",
        "stratified",
    ]
    assert comparison["best"] == row["chosen"]
    assert {d["metric"] for d in comparison["differences"]} == {"accuracy", "f1_score", "log_loss"}


def test_train_without_inputs_names_the_command_and_exits_2(workspace: Workspace) -> None:
    result = runner.invoke(create_app(), ["train", "-w", str(workspace.root), "--json"])
    assert result.exit_code == 2
    shown = json.loads(result.stdout)
    assert (
        not shown["ok"]
        and "run mmauth merge and mmauth features first" in shown["error"]["message"]
    )
    result = runner.invoke(create_app(), ["train", "-w", str(workspace.root), "--only", "product"])
    assert result.exit_code == 2 and "run mmauth merge" in result.stderr


def test_train_refuses_an_unknown_model_choice(workspace: Workspace) -> None:
    result = runner.invoke(create_app(), ["train", "-w", str(workspace.root), "--only", "iris"])
    assert result.exit_code == 2 and "iris" in result.output


def test_a_face_backend_other_than_the_extracted_one_is_refused(workspace: Workspace) -> None:
    write_image_features(workspace)  # classic features
    result = runner.invoke(
        create_app(),
        ["train", "-w", str(workspace.root), "--only", "face", "--face-backend", "dlib"],
    )
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "holds classic features, not dlib: run mmauth features --face-backend dlib" in message


def test_train_prints_a_threshold_note_when_impostors_pass_too_often(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.models.training as training

    seen = []

    def note(name, evaluation, target_fmr):
        seen.append((name, evaluation["n_impostor"], target_fmr))
        return f"{name}: too many impostors pass"

    monkeypatch.setattr(training, "calibration_note", note)
    write_image_features(workspace)
    workspace.settings_file.write_text(FAST_TOML, encoding="utf-8")
    result = runner.invoke(
        create_app(), ["train", "-w", str(workspace.root), "--only", "face"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "Note: face: too many impostors pass" in result.stdout
    assert seen and seen[0][0] == "face" and seen[0][2] == 0.01
    as_json = runner.invoke(
        create_app(), ["train", "-w", str(workspace.root), "--only", "face", "--json"]
    )
    assert json.loads(as_json.stdout)["notes"] == ["face: too many impostors pass"]


def test_models_that_cannot_be_saved_exit_2_and_leave_the_previous_ones(
    workspace: Workspace,
) -> None:
    from engine.models.loading import load_model_bundle

    write_merged_dataset(workspace)
    workspace.settings_file.write_text(FAST_TOML, encoding="utf-8")
    train = ["train", "-w", str(workspace.root), "--only", "product", "--json"]
    assert runner.invoke(create_app(), train).exit_code == 0
    before = {p.name: p.read_bytes() for p in workspace.models_dir.iterdir()}
    workspace.manifest.rename(workspace.root / "manifest.json")
    workspace.manifest.mkdir()
    # Other metrics: every file of models/ would change.
    workspace.settings_file.write_text(FAST_TOML.replace("repeats = 2", "repeats = 3"), "utf-8")
    result = runner.invoke(create_app(), train)
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["error"] == {
        "title": "Cannot write",
        "message": "cannot write models/manifest.json: it is a folder, not a file",
    }
    workspace.manifest.rmdir()
    (workspace.root / "manifest.json").rename(workspace.manifest)
    assert {p.name: p.read_bytes() for p in workspace.models_dir.iterdir()} == before
    load_model_bundle(workspace, require=("product",))


def test_one_photo_per_member_is_refused_with_exit_2(workspace: Workspace) -> None:
    write_image_features(workspace, photos=1)
    result = runner.invoke(create_app(), ["train", "-w", str(workspace.root), "--only", "face"])
    assert result.exit_code == 2, result.output
    assert "ana, bo, cy, dee have one photo each" in " ".join(result.stderr.split())
