"""Cleaning one customer table at a time: exact duplicates, types, outliers and missing values.

Every action is logged as a CleaningAction for the merge report; a value that cannot be read
(an id missing, a number or date that is none) raises InputError naming its file, column and row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from typing import cast

import numpy as np
import pandas as pd

from engine.core.errors import InputError
from engine.customers.read import ROLES, Role, Table

MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "missing", "-", "?"})
UNKNOWN_LEVEL = "unknown"


@dataclasses.dataclass(frozen=True)
class CleaningAction:
    """One thing the cleaning did to a column, with how many values it touched."""

    table: str
    """``profiles``, ``transactions`` or ``mapping``."""
    column: str
    """Column touched (``*`` for whole rows)."""
    action: str
    """``drop_duplicates``, ``drop_missing_category``, ``clip_outliers``, ``impute_median``,
    ``fill_unknown``, ``decimal_comma`` or ``read_as_categorical``."""
    count: int
    """Rows or values affected."""
    detail: str = ""
    """Parameters of the action, e.g. the clipping bounds or the imputed median."""


class Cleaner:
    """Duplicates, types, outliers and missing values, one table at a time, with a log."""

    def __init__(self, columns: Mapping[str, str], outlier_iqr: float) -> None:
        self.columns = columns
        self.outlier_iqr = outlier_iqr
        self.actions: list[CleaningAction] = []
        self.duplicates: dict[str, int] = {}
        self.missing_category = 0

    def clean(self, table: Table) -> pd.DataFrame:
        frame = table.frame
        duplicated = frame.duplicated(keep="first")
        self.duplicates[table.name] = int(duplicated.sum())
        self._log(table, "*", "drop_duplicates", int(duplicated.sum()), "exact copies of a row")
        frame = frame.loc[~duplicated]
        cleaned = pd.DataFrame(index=frame.index)
        for role in ROLES:
            if role.table != table.name or role.name not in self.columns:
                continue
            column = self.columns[role.name]
            cleaned[column] = self._convert(table, frame[column], role)
        if table.name == "transactions":
            category = cleaned[self.columns["category"]]
            self.missing_category = int(category.isna().sum())
            self._log(table, category.name, "drop_missing_category", self.missing_category)
            cleaned = cleaned.loc[category.notna()]
        return cleaned

    def _convert(self, table: Table, text: pd.Series, role: Role) -> pd.Series:
        missing = text.str.lower().isin(MISSING_MARKERS)
        kind = role.kind
        if kind == "auto":
            numbers = _parse_numbers(text, missing, table.decimal_comma)
            kind = "numeric" if numbers.notna().sum() == (~missing).sum() else "categorical"
            if kind == "categorical":
                self._log(
                    table,
                    text.name,
                    "read_as_categorical",
                    int((~missing).sum()),
                    "not all numbers",
                )
        if kind == "id":
            if missing.any():
                row = first_row(missing)
                raise InputError(
                    "the id is missing", path=str(table.path), column=str(text.name), row=row
                )
            return text
        if kind == "target":
            return text.where(~missing)
        if kind == "categorical":
            self._log(table, text.name, "fill_unknown", int(missing.sum()), f"as {UNKNOWN_LEVEL!r}")
            return text.where(~missing, UNKNOWN_LEVEL)
        if kind == "date":
            return _require_dates(table, text, missing)
        values = _require_numbers(table, text, missing)
        if table.decimal_comma:
            commas = int(text.str.contains(",", regex=False).sum())
            self._log(table, text.name, "decimal_comma", commas, "4,9 read as 4.9")
        if values.isna().all():
            raise InputError(
                "the column has no values at all",
                path=str(table.path),
                column=str(text.name),
                row=int(text.index[0]),
            )
        values = self._clip(table, values)
        median = values.median()
        self._log(table, text.name, "impute_median", int(values.isna().sum()), f"median {median:g}")
        return values.fillna(median)

    def _clip(self, table: Table, values: pd.Series) -> pd.Series:
        known = values.dropna()
        if self.outlier_iqr <= 0 or known.empty:
            return values
        lower_quartile, upper_quartile = known.quantile([0.25, 0.75])
        spread = self.outlier_iqr * (upper_quartile - lower_quartile)
        low, high = lower_quartile - spread, upper_quartile + spread
        outside = int(((values < low) | (values > high)).sum())
        self._log(
            table,
            str(values.name),
            "clip_outliers",
            outside,
            f"to [{low:g}, {high:g}] ({self.outlier_iqr:g} IQR beyond the quartiles)",
        )
        return values.clip(low, high)

    def _log(
        self, table: Table, column: Hashable, action: str, count: int, detail: str = ""
    ) -> None:
        if count:
            self.actions.append(CleaningAction(table.name, str(column), action, count, detail))


def first_row(mask: pd.Series) -> int:
    """The row number (index label) of the first true value in ``mask``."""
    return int(cast(int, mask.idxmax()))


def _parse_numbers(text: pd.Series, missing: pd.Series, decimal_comma: bool) -> pd.Series:
    candidate = text.where(~missing)
    if decimal_comma:
        candidate = candidate.str.replace(",", ".", regex=False)
    numbers = pd.to_numeric(candidate, errors="coerce").astype(float)
    return numbers.where(np.isfinite(numbers))


def _require_numbers(table: Table, text: pd.Series, missing: pd.Series) -> pd.Series:
    numbers = _parse_numbers(text, missing, table.decimal_comma)
    _raise_first_bad(table, text, numbers.isna() & ~missing, "is not a number")
    return numbers


def _require_dates(table: Table, text: pd.Series, missing: pd.Series) -> pd.Series:
    dates = pd.to_datetime(text.where(~missing), errors="coerce", format="mixed")
    _raise_first_bad(table, text, dates.isna() & ~missing, "is not a date (use YYYY-MM-DD)")
    return dates


def _raise_first_bad(table: Table, text: pd.Series, bad: pd.Series, problem: str) -> None:
    if bad.any():
        row = first_row(bad)
        raise InputError(
            f"{text[row]!r} {problem}", path=str(table.path), column=str(text.name), row=row
        )


def check_transaction_ids(
    raw: Table, transactions: pd.DataFrame, columns: Mapping[str, str]
) -> None:
    if "transaction_id" not in columns:
        return
    ids = transactions[columns["transaction_id"]]
    repeated = ids.duplicated(keep="first")
    if repeated.any():
        row = first_row(repeated)
        first = int(ids.index[ids == ids[row]][0])
        raise InputError(
            f"transaction {ids[row]!r} already appears at row {first} with other values",
            path=str(raw.path),
            column=columns["transaction_id"],
            row=row,
        )
