"""`mmauth sample` and `mmauth demo` through the CLI: JSON, refusal without --force, summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import create_app
from engine.sample import demo, workspace as sample
from engine.sample.demo import DemoStage

runner = CliRunner()


@pytest.fixture(autouse=True)
def few_customers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample, "CUSTOMERS", 60)


def _sample(root: Path, *extra: str):
    return runner.invoke(
        create_app(),
        ["sample", "-w", str(root), "--members", "1", "--strangers", "1", "--seed", "4", *extra],
    )


def test_sample_writes_the_workspace_and_reports_json(tmp_path):
    root = tmp_path / "workspace"
    result = _sample(root, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["sample"]["members"] == ["alice"]
    assert report["sample"]["strangers"] == ["mallory"]
    assert report["sample"]["enrolment_photos"] == 3
    assert (root / "data/raw/faces/alice/neutral.png").is_file()
    assert (root / "mmauth.toml").is_file()


def test_data_left_by_a_killed_sample_run_is_put_back_and_protected(tmp_path):
    root = tmp_path / "workspace"
    staging = root / f"{sample.STAGING_PREFIX}killed"
    mine = staging / sample.PREVIOUS_RAW / "customers" / "mine.csv"
    mine.parent.mkdir(parents=True)
    mine.write_text("a,b\n1,2\n")
    (staging / sample.OWNER_FILE).write_text("not a pid")
    refused = _sample(root)
    assert refused.exit_code == 2
    assert "previous data/raw/ has been put back" in " ".join(refused.stderr.split())
    assert (root / "data/raw/customers/mine.csv").read_text() == "a,b\n1,2\n"
    assert not staging.exists()


def test_sample_in_a_deleted_workspace_s_folder_says_where_its_records_went(tmp_path):
    from engine.core.installation import workspace_state_dir, write_state

    root = tmp_path / "workspace"
    write_state(workspace_state_dir(root) / "audit.json", {"seq": 3, "hash": "ab"})
    result = _sample(root)
    assert result.exit_code == 0, result.output
    note = " ".join(result.stderr.split())
    assert "earlier workspace" in note and "audit log starts afresh" in note
    assert "/retired/" in note
    again = _sample(tmp_path / "other")
    assert "earlier workspace" not in again.stderr


def test_sample_refuses_a_non_empty_workspace_without_force(tmp_path):
    root = tmp_path / "workspace"
    assert _sample(root).exit_code == 0
    before = (root / "data/raw" / sample.MANIFEST_NAME).read_bytes()
    refused = _sample(root, "--json")
    assert refused.exit_code == 2
    assert json.loads(refused.stdout)["ok"] is False
    assert "use --force" in " ".join(refused.stderr.split())
    assert (root / "data/raw" / sample.MANIFEST_NAME).read_bytes() == before
    forced = runner.invoke(
        create_app(), ["sample", "-w", str(root), "--members", "2", "--strangers", "0", "--force"]
    )
    assert forced.exit_code == 0, forced.output
    assert (root / "data/raw/faces/bruno/smiling.png").is_file()
    assert not (root / "data/raw/probes/faces/mallory").exists()
    assert "Sample workspace" in forced.stdout


def test_sample_rejects_bad_counts(tmp_path):
    result = runner.invoke(create_app(), ["sample", "-w", str(tmp_path / "w"), "--members", "0"])
    assert result.exit_code == 2
    assert not (tmp_path / "w" / "data").exists()


def test_demo_summarises_every_stage(tmp_path, monkeypatch):
    monkeypatch.setattr(
        demo,
        "DEMO_STAGES",
        (
            DemoStage("merge", "engine.customers.merge", "merge_customers", cancellable=False),
            DemoStage("later", "engine.not_written_yet", "run", cancellable=True),
        ),
    )
    root = tmp_path / "workspace"
    result = runner.invoke(
        create_app(), ["demo", "-w", str(root), "--members", "1", "--strangers", "0", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["demo"]
    assert summary["sample"]["seed"] == 0
    assert [(s["name"], s["status"]) for s in summary["stages"]] == [
        ("merge", "done"),
        ("later", "not available"),
    ]
    again = runner.invoke(create_app(), ["demo", "-w", str(root)], terminal_width=200)
    assert again.exit_code == 0, again.output
    assert "not available" in again.stdout
    assert "customers from" in again.stdout
    assert "data/merged_dataset.csv" in again.stdout


def test_demo_refuses_a_folder_that_is_not_a_workspace(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(create_app(), ["demo", "-w", str(tmp_path)])
    assert result.exit_code == 2
    assert "not empty" in " ".join(result.stderr.split())
