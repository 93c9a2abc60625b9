"""The demo's orchestration: the sample when the folder is empty, every stage accounted for."""

from __future__ import annotations

import pytest

from engine.core.errors import InputError
from engine.core.progress import Progress
from engine.core.settings import Settings
from engine.core.workspace import Workspace
from engine.sample import demo, workspace as sample
from engine.sample.demo import DEMO_STAGES, DemoStage, run_demo, stage_function

MERGE_ONLY = (
    DemoStage("merge", "engine.customers.merge", "merge_customers", cancellable=False),
    DemoStage("future", "engine.no_such_stage", "run", cancellable=True),
    DemoStage("renamed", "engine.customers.merge", "no_such_function", cancellable=True),
)


@pytest.fixture
def small_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "DEMO_STAGES", MERGE_ONLY)
    monkeypatch.setattr(sample, "CUSTOMERS", 60)


def test_the_demo_runs_the_five_stages_in_order():
    assert [stage.name for stage in DEMO_STAGES] == [
        "merge",
        "faces",
        "voices",
        "train",
        "simulate",
    ]
    for stage in DEMO_STAGES:
        assert callable(stage_function(stage)), stage


def test_writes_the_sample_then_reports_every_stage(workspace: Workspace, small_sample):
    events: list[Progress] = []
    result = run_demo(workspace, Settings(), progress=events.append, seed=2, members=2, strangers=1)
    assert result.sample is not None and result.sample.seed == 2
    assert result.members == result.sample.members
    statuses = {stage.name: stage.status for stage in result.stages}
    assert statuses == {"merge": "done", "future": "not available", "renamed": "not available"}
    merge = result.stages[0]
    assert merge.headline["customers"] >= 50
    assert merge.headline["output"] == "data/merged_dataset.csv"
    assert workspace.merged_dataset.is_file()
    assert "stage not available yet" in result.stages[1].detail
    assert "engine.no_such_stage.run" in result.stages[1].detail
    assert {event.stage for event in events} >= {"sample", "demo"}
    as_json = result.to_dict()
    assert [stage["status"] for stage in as_json["stages"]] == [
        "done",
        "not available",
        "not available",
    ]


def test_reuses_a_workspace_that_has_data(workspace: Workspace, small_sample):
    sample.write_sample_workspace(workspace.root, members=1, strangers=0, seed=1)
    before = (workspace.raw_dir / sample.MANIFEST_NAME).read_bytes()
    result = run_demo(workspace, Settings(), seed=9)
    assert result.sample is None
    assert (workspace.raw_dir / sample.MANIFEST_NAME).read_bytes() == before


def test_refuses_a_folder_with_other_files_and_no_data(workspace: Workspace, small_sample):
    (workspace.root / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty and has no data/raw"):
        run_demo(workspace, Settings())
    assert not workspace.data_dir.exists()
