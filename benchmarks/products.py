"""The product model on the assignment's real customer tables, against its baselines.

    .venv/bin/python -m benchmarks.products [--seeds 0 1 2] [--loads 5]

Copies ../shared/datasets/customers into a temporary workspace, runs the merge, then for each
seed trains the product model exactly as `mmauth train --only product` does (repeated stratified
cross-validation, settings.models.cv_splits x cv_repeats) and prints every candidate's and
baseline's accuracy, macro-F1 and log loss (mean ± std over folds) and the verdict.

A positive control follows: the same 54 customers with the category replaced by the quartile of
their mean purchase amount (a relation the features contain). It shows the comparison can see a
signal when there is one, so "no better than guessing" on the real target is the data's answer,
not a broken pipeline.

Last, the time to load the verified model bundle: first load (hash check + skops
deserialisation) and later loads (hash check, deserialised objects reused).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

import engine.models.loading as loading
from engine.core.settings import Settings
from engine.core.workspace import Workspace
from engine.customers.merge import merge_customers
from engine.models.loading import load_model_bundle
from engine.models.training import train_models

CUSTOMERS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "customers"


def show(title: str, comparison) -> None:
    print(
        f"\n{title}: {comparison.n_samples} customers, {len(comparison.classes)} categories, "
        f"{comparison.cv_splits} folds x {comparison.cv_repeats} repeats"
    )
    print(f"  {'candidate':<24}{'accuracy':>16}{'macro-F1':>16}{'log loss':>18}")
    for c in comparison.candidates:
        name = c.name + (" *" if c.name == comparison.best else "")
        print(f"  {name:<24}{c.accuracy!s:>16}{c.f1_score!s:>16}{c.log_loss!s:>18}")
    for note in comparison.notes:
        print(f"  note: {note}")
    print(f"  verdict: {comparison.verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--loads", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workspace = Workspace(Path(folder))
        workspace.customers_dir.mkdir(parents=True)
        for table in CUSTOMERS.glob("*.csv"):
            shutil.copyfile(table, workspace.customers_dir / table.name)
        merge_customers(workspace, Settings())
        for seed in arguments.seeds:
            started = time.perf_counter()
            result = train_models(workspace, Settings(seed=seed), which=("product",))
            seconds = time.perf_counter() - started
            show(f"seed {seed}, real target ({seconds:.1f} s)", result.product_comparison)

        merged = pd.read_csv(workspace.merged_dataset)
        real_target = merged["preferred_category"].copy()
        merged["preferred_category"] = pd.qcut(
            merged["purchase_amount_mean"], 4, labels=["q1", "q2", "q3", "q4"]
        ).astype(str)
        merged.to_csv(workspace.merged_dataset, index=False)
        control = train_models(workspace, Settings(), which=("product",))
        show(
            "positive control: category = quartile of purchase_amount_mean",
            control.product_comparison,
        )
        merged["preferred_category"] = real_target
        merged.to_csv(workspace.merged_dataset, index=False)
        train_models(workspace, Settings(), which=("product",))

        first, later = [], []
        for _ in range(arguments.loads):
            loading._loaded_models.clear()
            started = time.perf_counter()
            load_model_bundle(workspace, require=("product",))
            first.append(time.perf_counter() - started)
            started = time.perf_counter()
            load_model_bundle(workspace, require=("product",))
            later.append(time.perf_counter() - started)
        size = (workspace.models_dir / "product.skops").stat().st_size
        print(
            f"\nload_model_bundle (product.skops, {size / 1024:.0f} KiB), median of "
            f"{arguments.loads}: first load {statistics.median(first) * 1000:.1f} ms, "
            f"later loads {statistics.median(later) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
