"""The product model on the assignment's real customer tables, whose values look random."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.core.settings import load_settings
from engine.core.workspace import Workspace
from engine.models.training import train_models

pytestmark = pytest.mark.shared


def test_the_comparison_on_the_shared_tables_is_honest_about_the_baseline(
    workspace: Workspace, shared_customers: Path
) -> None:
    tabular = pytest.importorskip("engine.customers.merge")
    workspace.customers_dir.mkdir(parents=True)
    for table in shared_customers.glob("*.csv"):
        shutil.copyfile(table, workspace.customers_dir / table.name)
    settings = load_settings(workspace.root, {"models.cv_repeats": 1})
    tabular.merge_customers(workspace, settings)

    result = train_models(workspace, settings, which=("product",))
    comparison = result.manifest["models"]["product"]["metrics"]
    assert comparison["n_train"] + comparison["n_test"] in (54, 55)
    # The tables carry no usable signal: the honest outcome is "no better than guessing".
    assert comparison["beats_baseline"] is False
    assert result.product_verdict.startswith("No candidate beats the baseline.")
    assert "not shown to be better than guessing" in result.product_verdict
    assert comparison["f1_score"] < 0.45
