"""Product recommendations from the workspace: the merged customer table as the product model's
training data, a member's customer link, and the category recommended to a member."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from engine.core.errors import InputError, MissingStageError
from engine.core.workspace import Workspace
from engine.customers.members import read_members

if TYPE_CHECKING:
    import pandas as pd

    from engine.models.loading import ModelBundle

ID_COLUMN = "customer_id"
TARGET_COLUMN = "preferred_category"


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """A product category recommended to one member."""

    category: str
    confidence: float
    """The model's probability of ``category``."""
    probabilities: dict[str, float]
    """Probability of every category, most likely first."""
    customer_id: str = ""
    """The customer the member is linked to."""
    beats_baseline: bool = False
    """Whether the model behind it was measured to beat guessing (see ModelComparison)."""


def load_product_table(workspace: Workspace) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Features, target and the columns left out (not numeric) of data/merged_dataset.csv."""
    table = read_merged_dataset(workspace)
    path = workspace.relative(workspace.merged_dataset)
    if TARGET_COLUMN not in table.columns:
        raise InputError(
            "has no target column; re-run mmauth merge", path=path, column=TARGET_COLUMN
        )
    labelled = table[table[TARGET_COLUMN].notna()]
    candidates = labelled.drop(columns=[ID_COLUMN, TARGET_COLUMN], errors="ignore")
    numeric = candidates.select_dtypes(include="number")
    ignored = [c for c in candidates.columns if c not in numeric.columns]
    if numeric.shape[1] == 0:
        raise InputError("has no numeric feature columns to learn from", path=path)
    if labelled[TARGET_COLUMN].nunique() < 2:
        raise InputError(
            "needs at least two product categories to learn a preference",
            path=path,
            column=TARGET_COLUMN,
        )
    return numeric.reset_index(drop=True), labelled[TARGET_COLUMN].astype(str).to_numpy(), ignored


def read_merged_dataset(workspace: Workspace) -> pd.DataFrame:
    """data/merged_dataset.csv with customer ids as text; MissingStageError before a merge."""
    import pandas as pd

    if not workspace.merged_dataset.is_file():
        raise MissingStageError(
            f"{workspace.relative(workspace.merged_dataset)} is missing: run mmauth merge first"
        )
    try:
        return pd.read_csv(workspace.merged_dataset, dtype={ID_COLUMN: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(
            f"cannot be read as CSV ({error}); re-run mmauth merge",
            path=workspace.relative(workspace.merged_dataset),
        ) from error


def member_customer(workspace: Workspace, member: str) -> str:
    """The customer id members.csv links ``member`` to."""
    path = workspace.relative(workspace.members_file)
    if not workspace.members_file.is_file():
        raise InputError(
            f"is missing, so member {member!r} has no customer link; add a line "
            f"'{member},<customer_id>' under the header 'member,customer_id'",
            path=path,
        )
    customer_id = read_members(workspace).get(member)
    if customer_id is None:
        raise InputError(
            f"member {member!r} has no customer link; add a line '{member},<customer_id>'",
            path=path,
        )
    return customer_id


def recommend_for_member(workspace: Workspace, bundle: ModelBundle, member: str) -> Recommendation:
    """The category the product model recommends to an enrolled member."""
    recommender = bundle.product
    if recommender is None:
        raise MissingStageError("no product model is trained: run mmauth train --only product")
    customer_id = member_customer(workspace, member)
    row = _customer_row(workspace, customer_id)
    if row is None:
        raise InputError(
            f"customer {customer_id!r}, linked to member {member!r}, is not in the merged "
            "customer data; fix the link in data/raw/customers/members.csv or re-run mmauth merge",
            path=workspace.relative(workspace.merged_dataset),
            column=ID_COLUMN,
        )
    columns = [str(column) for column in recommender.feature_names_in_]
    absent = [column for column in columns if column not in row]
    if absent:
        raise InputError(
            _absent_columns_message(workspace, absent),
            path=workspace.relative(workspace.merged_dataset),
        )
    features = [_number(row[column]) for column in columns]
    probabilities = recommender.predict_proba(np.asarray([features], dtype=np.float64))[0]
    order = np.argsort(probabilities)[::-1]
    ranked = {str(recommender.classes_[i]): float(probabilities[i]) for i in order}
    category = next(iter(ranked))
    return Recommendation(
        category=category,
        confidence=ranked[category],
        probabilities=ranked,
        customer_id=customer_id,
        beats_baseline=bool(recommender.comparison_.beats_baseline),
    )


def _absent_columns_message(workspace: Workspace, absent: list[str]) -> str:
    """Why the merged dataset lacks columns the product model was trained on, and what to do:
    the merge report names the input table that lacks an expected column (a merged column is
    derived from it, so its own name helps nobody)."""
    import json

    trained_on = f"the product model was trained on columns this file lacks ({', '.join(absent)})"
    try:
        report = json.loads(workspace.merge_report.read_text(encoding="utf-8"))
        missing = {
            str(report["files"].get(table, table)): [str(column) for column in columns]
            for table, columns in report.get("missing_columns", {}).items()
            if columns
        }
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        missing = {}
    if not missing:
        return (
            f"{trained_on}; run mmauth merge, and if the columns stay missing, train the "
            "product model on the tables as they are: mmauth train --only product"
        )
    lacking = "; ".join(f"{path} has no column {', '.join(cols)}" for path, cols in missing.items())
    return (
        f"{trained_on}: the last mmauth merge found that {lacking}. Restore the column(s) and "
        "run mmauth merge, or train the product model on the tables as they are: mmauth train "
        "--only product"
    )


def _customer_row(workspace: Workspace, customer_id: str) -> dict[str, str] | None:
    """The first row of data/merged_dataset.csv for ``customer_id``, read with the csv module:
    a login reads one row, and pandas would be most of its start-up."""
    import csv

    if not workspace.merged_dataset.is_file():
        raise MissingStageError(
            f"{workspace.relative(workspace.merged_dataset)} is missing: run mmauth merge first"
        )
    try:
        with workspace.merged_dataset.open(encoding="utf-8", newline="") as stream:
            for row in csv.DictReader(stream):
                if (row.get(ID_COLUMN) or "").strip() == customer_id:
                    return row
    except (csv.Error, UnicodeDecodeError) as error:
        raise InputError(
            f"cannot be read as CSV ({error}); re-run mmauth merge",
            path=workspace.relative(workspace.merged_dataset),
        ) from error
    return None


def _number(text: str) -> float:
    """A merged cell as the product model reads it: empty is missing (NaN)."""
    if not text.strip():
        return float("nan")
    try:
        return float(text)
    except ValueError as error:
        raise InputError(f"product features must be numeric, not {text!r}") from error
