"""`mmauth evaluate`: figures as a table or JSON, and a clear error without models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import engine.models.evaluation
from cli.main import create_app
from engine.core.workspace import Workspace
from engine.models.face import FaceIdentifier
from engine.models.loading import ModelBundle
from tests.engine.test_biometrics import face_rows
from tests.engine.test_evaluation import write_face_table


@pytest.fixture
def centres() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {f"p{i}": rng.normal(0, 2.0, 24) for i in range(12)}


def test_evaluate_without_models_says_what_to_run(workspace: Workspace) -> None:
    result = CliRunner().invoke(create_app(), ["evaluate", "-w", str(workspace.root), "--json"])
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert "mmauth train" in document["error"]["message"]


def test_evaluate_prints_figures_and_json(
    workspace: Workspace, centres: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y, groups = face_rows(dict(list(centres.items())[:9]), np.random.default_rng(8))
    model = FaceIdentifier(backend="dlib").fit(X, y, groups)
    write_face_table(workspace, model, centres)
    bundle = ModelBundle(face=model, voice=None, product=None, manifest={})
    real = engine.models.evaluation.evaluate_models

    def with_bundle(space, settings, bundle_=None, progress=None, cancel=None):  # noqa: ANN001
        return real(space, settings, bundle=bundle, progress=progress)

    monkeypatch.setattr(engine.models.evaluation, "evaluate_models", with_bundle)
    app = create_app()
    shown = CliRunner().invoke(app, ["evaluate", "-w", str(workspace.root)])
    assert shown.exit_code == 0, shown.output
    assert "rank-1" in shown.output and "FNIR" in shown.output
    assert "FPIR" in shown.output and "reports/evaluation.json" in shown.output
    as_json = CliRunner().invoke(app, ["evaluate", "-w", str(workspace.root), "--json"])
    document = json.loads(as_json.stdout)
    assert document["ok"] is True
    assert document["face"]["identification_accuracy"]["trials"] == 18
    assert document["voice"] is None
