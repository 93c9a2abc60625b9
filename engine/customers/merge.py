"""The customer-data merge: social profiles + transactions (+ an id mapping) -> one row per customer.

Two table shapes are understood. The *assignment* shape has several profile rows per customer (one
per platform, ids like ``A178``), transactions under legacy ids (``178``) and a many-to-many
``id_mapping.csv`` between the two id spaces. The *profile* shape has one profile row per customer
and transactions under the same ids. Columns are found through roles (``amount``, ``category``,
...): each shape has default column names per role, and ``merge.columns`` in mmauth.toml overrides
them. The output is keyed by the profile table's ids, the space ``members.csv`` refers to.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from engine.core.errors import ConfigError, InputError
from engine.core.fileio import atomic_open
from engine.core.progress import Progress, ProgressCallback, no_progress
from engine.core.settings import MergeSettings, Settings
from engine.core.workspace import Workspace

TableName = Literal["profiles", "transactions", "mapping"]
Kind = Literal["id", "numeric", "categorical", "auto", "date", "target"]

CUSTOMER_ID = "customer_id"
TARGET = "preferred_category"
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "missing", "-", "?"})
DELIMITERS = (",", ";", "\t", "|")
MAX_CATEGORY_LEVELS = 20
"""Categorical columns keep their most frequent levels as one-hot shares; the rest go to _other."""
UNKNOWN_LEVEL = "unknown"
_STAGE = "merge"
# Internal column names of the join, unlike any input column name.
_LINK = "__transaction_customer__"
_CUSTOMER = "__profile_customer__"


@dataclasses.dataclass(frozen=True)
class Role:
    """What one column means to the merge."""

    name: str
    """Key of the role in ``merge.columns``."""
    table: TableName
    """The table the column belongs to."""
    kind: Kind
    """How values are read: ``auto`` is numeric when every value is a number, else categorical."""
    required: bool = False
    """Whether the merge refuses to run without the column."""


ROLES: tuple[Role, ...] = (
    Role("profile_id", "profiles", "id", required=True),
    Role("platform", "profiles", "categorical"),
    Role("sentiment", "profiles", "categorical"),
    Role("engagement", "profiles", "numeric"),
    Role("purchase_interest", "profiles", "numeric"),
    Role("age", "profiles", "numeric"),
    Role("gender", "profiles", "categorical"),
    Role("location", "profiles", "categorical"),
    Role("activity", "profiles", "auto"),
    Role("followers", "profiles", "numeric"),
    Role("posts_per_week", "profiles", "numeric"),
    Role("transaction_customer_id", "transactions", "id", required=True),
    Role("transaction_id", "transactions", "id"),
    Role("amount", "transactions", "numeric", required=True),
    Role("frequency", "transactions", "numeric"),
    Role("date", "transactions", "date"),
    Role("recency_days", "transactions", "numeric"),
    Role("rating", "transactions", "numeric"),
    Role("category", "transactions", "target", required=True),
    Role("mapping_transaction_id", "mapping", "id", required=True),
    Role("mapping_profile_id", "mapping", "id", required=True),
)
ROLE_BY_NAME = {role.name: role for role in ROLES}

_MAPPING_COLUMNS = {
    "mapping_transaction_id": "customer_id_legacy",
    "mapping_profile_id": "customer_id_new",
}
DEFAULT_COLUMNS: dict[str, dict[str, str]] = {
    "assignment": {
        "profile_id": "customer_id_new",
        "platform": "social_media_platform",
        "engagement": "engagement_score",
        "purchase_interest": "purchase_interest_score",
        "sentiment": "review_sentiment",
        "transaction_customer_id": "customer_id_legacy",
        "transaction_id": "transaction_id",
        "amount": "purchase_amount",
        "date": "purchase_date",
        "category": "product_category",
        "rating": "customer_rating",
        **_MAPPING_COLUMNS,
    },
    "profile": {
        "profile_id": "customer_id",
        "age": "age",
        "gender": "gender",
        "location": "location",
        "activity": "social_media_activity",
        "followers": "followers_count",
        "posts_per_week": "posts_per_week",
        "engagement": "engagement_rate",
        "transaction_customer_id": "customer_id",
        "transaction_id": "transaction_id",
        "amount": "purchase_amount",
        "frequency": "purchase_frequency",
        "recency_days": "last_purchase_days",
        "rating": "satisfaction_score",
        "category": "product_category",
        **_MAPPING_COLUMNS,
    },
}
"""Column name of each role, per table shape."""

FILE_CANDIDATES: dict[TableName, tuple[str, ...]] = {
    "profiles": ("customer_social_profiles.csv", "customer_profiles.csv"),
    "transactions": ("customer_transactions.csv", "transactions.csv"),
    "mapping": ("id_mapping.csv",),
}
"""Usual file names of each table in data/raw/customers/ (``merge.*_file`` picks another)."""
_FILE_SETTING: dict[TableName, str] = {
    "profiles": "profiles_file",
    "transactions": "transactions_file",
    "mapping": "mapping_file",
}


@dataclasses.dataclass(frozen=True)
class Table:
    """One input table as read from disk: every cell as stripped text."""

    name: TableName
    """Which table this is."""
    path: Path
    """The file it came from."""
    frame: pd.DataFrame
    """Cells as text; the index is each row's spreadsheet row number (header = row 1)."""
    delimiter: str
    """Field separator found in the header line."""
    header_row: int
    """Row number of the header (1 unless blank lines precede it)."""

    @property
    def decimal_comma(self) -> bool:
        """Files separated by ``;`` (European spreadsheets) may write 4,9 for 4.9."""
        return self.delimiter != ","


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


@dataclasses.dataclass(frozen=True)
class MergeReport:
    """What the merge read, dropped, matched and wrote: every input row is accounted for."""

    shape: str
    """Table shape used: ``assignment`` or ``profile``."""
    files: dict[str, str]
    """Input file per table, relative to the workspace."""
    columns: dict[str, str]
    """Column used for each role found (role -> column name)."""
    ignored_columns: dict[str, list[str]]
    """Columns per table that no role uses (left out of the merged dataset)."""
    rows_in: dict[str, int]
    """Data rows read per table."""
    duplicates_dropped: dict[str, int]
    """Exact duplicate rows dropped per table (the first copy is kept)."""
    row_outcomes: dict[str, dict[str, int]]
    """Per table, where every row read went; the counts add up to ``rows_in``. Profiles:
    duplicate, matched, no_transactions. Transactions: duplicate, missing_category, matched (to
    at least one customer), id_not_in_mapping, no_profile (mapped only to ids without a
    profile). Mapping: duplicate, used, id_without_transactions, id_without_profile."""
    ids_in: dict[str, int]
    """Distinct ids per side: profiles, transactions and both columns of the mapping."""
    matched_ids: dict[str, int]
    """Distinct profile ids that got transactions, and transaction ids that reached a profile."""
    unmatched_ids: dict[str, int]
    """Distinct ids per side that found no partner (profiles without transactions, ...)."""
    unmatched_id_examples: dict[str, list[str]]
    """Up to ten unmatched ids per side, sorted, to look into."""
    many_to_many: dict[str, int]
    """How the mapping multiplied rows: ids with several partners and the extra rows it made."""
    joined_rows: int
    """Rows of transactions x mapping x profiles after cleaning (one per transaction and profile
    row of a customer it belongs to)."""
    joined_rows_as_given: int
    """The same join on the tables exactly as read, duplicates included."""
    customers_out: int
    """Customers in the merged dataset: profile ids with at least one transaction."""
    rows_out: int
    """Rows written to merged_dataset.csv (one per customer)."""
    feature_columns: list[str]
    """Columns of the merged dataset besides ``customer_id`` and the target."""
    target_counts: dict[str, int]
    """Customers per preferred category (the majority class is a recommender's baseline)."""
    target_ties_broken: int
    """Customers whose most frequent categories tied and were decided by the latest purchase."""
    cleaning: list[CleaningAction]
    """Every cleaning action, in the order taken."""
    outputs: dict[str, str]
    """Files written, relative to the workspace."""

    def unaccounted_rows(self) -> dict[str, int]:
        """Per table, rows read minus rows with a recorded outcome (zero when all is well)."""
        return {
            table: self.rows_in[table] - sum(outcomes.values())
            for table, outcomes in self.row_outcomes.items()
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def merge_customers(
    workspace: Workspace, settings: Settings, progress: ProgressCallback = no_progress
) -> MergeReport:
    """Merge the customer tables into data/merged_dataset.csv and data/merge_report.json.

    Raises InputError naming the file, column and row of the first problem; then nothing is
    written.
    """
    steps = 4

    def step(number: int, message: str) -> None:
        progress(Progress(_STAGE, number, steps, message))

    paths = locate_tables(workspace.customers_dir, settings.merge)
    tables = {name: read_table(path, name) for name, path in paths.items()}
    step(1, "read " + ", ".join(f"{t.path.name} ({len(t.frame)} rows)" for t in tables.values()))
    merged, report = merge_tables(tables, settings.merge)
    step(2, f"joined {report.joined_rows} rows for {report.customers_out} customers")
    outputs = {
        "merged_dataset": workspace.relative(workspace.merged_dataset),
        "merge_report": workspace.relative(workspace.merge_report),
    }
    report = dataclasses.replace(
        report,
        files={name: workspace.relative(table.path) for name, table in tables.items()},
        outputs=outputs,
    )
    step(3, "writing outputs")
    write_outputs(workspace, merged, report)
    step(4, f"wrote {report.rows_out} rows to {outputs['merged_dataset']}")
    return report


def locate_tables(folder: Path, merge: MergeSettings) -> dict[TableName, Path]:
    """The profile, transaction and (when present) mapping files in ``folder``."""
    found: dict[TableName, Path] = {}
    for name, candidates in FILE_CANDIDATES.items():
        chosen = getattr(merge, _FILE_SETTING[name])
        if chosen:
            path = folder / chosen
            if not path.is_file():
                raise InputError(
                    f"merge.{_FILE_SETTING[name]} names a file that does not exist", path=str(path)
                )
            found[name] = path
            continue
        present = [folder / candidate for candidate in candidates if (folder / candidate).is_file()]
        if len(present) > 1:
            raise InputError(
                f"both {present[0].name} and {present[1].name} could be the {name} table; "
                f"set merge.{_FILE_SETTING[name]} in mmauth.toml to choose",
                path=str(folder),
            )
        if present:
            found[name] = present[0]
        elif name != "mapping":
            raise InputError(
                f"missing file: no {name} table ({' or '.join(candidates)}) in this folder; "
                f"set merge.{_FILE_SETTING[name]} to use another name",
                path=str(folder),
            )
    return found


def read_table(path: Path, name: TableName) -> Table:
    """Read a CSV file as text cells, accepting a UTF-8 BOM and ``;``/tab/``|`` separators."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read the file: {error.strerror}", path=str(path)) from error
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            f"not UTF-8 text (byte {error.start} is {data[error.start]:#04x}); save it as UTF-8",
            path=str(path),
        ) from error
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), "")
    if not header_line:
        raise InputError("the file is empty", path=str(path))
    delimiter = max(DELIMITERS, key=header_line.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [cell.strip() for cell in next(reader)]
    while not any(header):
        header = [cell.strip() for cell in next(reader)]
    header_row = reader.line_num
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise InputError(
            "the header repeats this column", path=str(path), column=repeated[0], row=header_row
        )
    rows: list[list[str]] = []
    row_numbers: list[int] = []
    try:
        for record in reader:
            if not "".join(record).strip():
                continue
            if len(record) != len(header):
                raise InputError(
                    f"{len(record)} fields where the header has {len(header)} "
                    f"(separator {delimiter!r})",
                    path=str(path),
                    row=reader.line_num,
                )
            rows.append([cell.strip() for cell in record])
            row_numbers.append(reader.line_num)
    except csv.Error as error:
        raise InputError(f"not valid CSV: {error}", path=str(path), row=reader.line_num) from error
    if not rows:
        raise InputError(
            "the file has a header but no data rows", path=str(path), row=header_row + 1
        )
    frame = pd.DataFrame(
        rows, columns=header, index=pd.Index(row_numbers, name="row"), dtype=object
    )
    return Table(name=name, path=path, frame=frame, delimiter=delimiter, header_row=header_row)


def detect_shape(tables: Mapping[TableName, Table], merge: MergeSettings) -> str:
    """The table shape: ``merge.shape`` when set, else the one whose required columns exist."""
    if merge.shape != "auto":
        return merge.shape
    missing = {
        shape: _missing_required(tables, role_columns(shape, merge.columns))
        for shape in DEFAULT_COLUMNS
    }
    fits = [shape for shape, absent in missing.items() if not absent]
    if len(fits) == 1:
        return fits[0]
    if len(fits) > 1:
        return "assignment" if "mapping" in tables else "profile"
    closest = min(missing, key=lambda shape: len(missing[shape]))
    table_name, column = missing[closest][0]
    table = tables[table_name]
    raise InputError(
        f"missing column (the tables match neither known shape; closest is {closest!r}: "
        f"columns found {', '.join(table.frame.columns)}; map roles in [merge.columns])",
        path=str(table.path),
        column=column,
        row=table.header_row,
    )


def role_columns(shape: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """Role -> column name for a shape, with ``merge.columns`` overrides applied."""
    unknown = sorted(set(overrides) - set(ROLE_BY_NAME))
    if unknown:
        raise ConfigError(
            f"merge.columns: unknown role {unknown[0]!r}; known roles: {', '.join(ROLE_BY_NAME)}"
        )
    return {**DEFAULT_COLUMNS[shape], **overrides}


def _missing_required(
    tables: Mapping[TableName, Table], columns: Mapping[str, str]
) -> list[tuple[TableName, str]]:
    """Required profile and transaction columns absent from the tables (the mapping is optional
    in some shapes, so it does not decide the shape)."""
    return [
        (role.table, columns[role.name])
        for role in ROLES
        if role.required
        and role.table != "mapping"
        and columns[role.name] not in tables[role.table].frame.columns
    ]


def resolve_roles(
    tables: Mapping[TableName, Table], shape: str, overrides: Mapping[str, str]
) -> dict[str, str]:
    """Role -> column for the roles whose column exists; a missing required or chosen column
    raises InputError."""
    columns = role_columns(shape, overrides)
    present: dict[str, str] = {}
    for role in ROLES:
        if role.table not in tables:
            continue
        table = tables[role.table]
        column = columns.get(role.name)
        if column is None:
            continue
        if column in table.frame.columns:
            present[role.name] = column
        elif role.required or role.name in overrides:
            raise InputError(
                f"missing column (needed as {role.name}; columns found: "
                f"{', '.join(table.frame.columns)})",
                path=str(table.path),
                column=column,
                row=table.header_row,
            )
    if "date" in present and "recency_days" in present:
        del present["recency_days"]
    return present


def merge_tables(
    tables: Mapping[TableName, Table], merge: MergeSettings
) -> tuple[pd.DataFrame, MergeReport]:
    """Clean, join and aggregate tables already read; pure (reads and writes no file)."""
    shape = detect_shape(tables, merge)
    if shape == "assignment" and "mapping" not in tables:
        raise InputError(
            f"missing file {FILE_CANDIDATES['mapping'][0]}: transactions of the assignment shape "
            "carry legacy ids that only the id mapping links to profile ids",
            path=str(tables["transactions"].path.parent),
        )
    columns = resolve_roles(tables, shape, merge.columns)
    cleaner = _Cleaner(columns, merge.outlier_iqr)
    profiles = cleaner.clean(tables["profiles"])
    transactions = cleaner.clean(tables["transactions"])
    mapping = cleaner.clean(tables["mapping"]) if "mapping" in tables else None
    _check_transaction_ids(tables["transactions"], transactions, columns)
    join = _join(tables, profiles, transactions, mapping, columns)
    merged, ties = _customer_rows(profiles, transactions, join.pairs, columns)
    unmatched = join.unmatched()
    report = MergeReport(
        shape=shape,
        files={name: str(table.path) for name, table in tables.items()},
        columns=dict(columns),
        ignored_columns={
            name: [c for c in table.frame.columns if c not in columns.values()]
            for name, table in tables.items()
        },
        rows_in={name: len(table.frame) for name, table in tables.items()},
        duplicates_dropped={name: cleaner.duplicates[name] for name in tables},
        row_outcomes=_row_outcomes(cleaner, join, tables),
        ids_in=join.ids_in(),
        matched_ids={
            "profiles": len(join.customers),
            "transactions": int(join.pairs[_LINK].nunique()),
        },
        unmatched_ids={side: len(ids) for side, ids in unmatched.items()},
        unmatched_id_examples={side: sorted(ids)[:10] for side, ids in unmatched.items()},
        many_to_many=join.many_to_many(),
        joined_rows=join.joined_rows,
        joined_rows_as_given=_join_size_as_given(tables, columns),
        customers_out=len(merged),
        rows_out=len(merged),
        feature_columns=[c for c in merged.columns if c not in (CUSTOMER_ID, TARGET)],
        target_counts={
            str(k): int(v) for k, v in merged[TARGET].value_counts().sort_index().items()
        },
        target_ties_broken=ties,
        cleaning=list(cleaner.actions),
        outputs={},
    )
    return merged, report


class _Cleaner:
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
                row = int(missing.idxmax())
                raise InputError(
                    "the id is missing", path=str(table.path), column=text.name, row=row
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

    def _log(self, table: Table, column: str, action: str, count: int, detail: str = "") -> None:
        if count:
            self.actions.append(CleaningAction(table.name, str(column), action, count, detail))


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
        row = int(bad.idxmax())
        raise InputError(
            f"{text[row]!r} {problem}", path=str(table.path), column=str(text.name), row=row
        )


def _check_transaction_ids(
    raw: Table, transactions: pd.DataFrame, columns: Mapping[str, str]
) -> None:
    if "transaction_id" not in columns:
        return
    ids = transactions[columns["transaction_id"]]
    repeated = ids.duplicated(keep="first")
    if repeated.any():
        row = int(repeated.idxmax())
        first = int(ids.index[ids == ids[row]][0])
        raise InputError(
            f"transaction {ids[row]!r} already appears at row {first} with other values",
            path=str(raw.path),
            column=columns["transaction_id"],
            row=row,
        )


@dataclasses.dataclass(frozen=True)
class _Join:
    """Transactions attributed to profile ids through the links, and the bookkeeping of it."""

    profile_ids: pd.Series
    """Profile id of each cleaned profile row."""
    transaction_ids: pd.Series
    """Customer id of each cleaned transaction row, in the transactions' id space."""
    links: pd.DataFrame
    """Transaction-side id (_LINK) -> profile id (_CUSTOMER): the mapping, or each id to itself."""
    pairs: pd.DataFrame
    """One row per (customer, transaction): the cleaned transaction columns plus _LINK and
    _CUSTOMER, indexed by the transaction's row number."""
    has_mapping: bool
    """Whether the links came from an id mapping file."""

    @functools.cached_property
    def known_profiles(self) -> set[str]:
        return set(self.profile_ids)

    @functools.cached_property
    def customers(self) -> set[str]:
        return set(self.pairs[_CUSTOMER])

    @property
    def joined_rows(self) -> int:
        return int(self.pairs[_CUSTOMER].map(self.profile_ids.value_counts()).sum())

    def outcomes(self) -> dict[str, dict[str, int]]:
        """Where each cleaned row went, per table."""
        profile_matched = self.profile_ids.isin(self.customers)
        mapped = self.transaction_ids.isin(set(self.links[_LINK]))
        matched = self.transaction_ids.index.isin(self.pairs.index)
        outcomes = {
            "profiles": {
                "matched": int(profile_matched.sum()),
                "no_transactions": int((~profile_matched).sum()),
            },
            "transactions": {
                "matched": int(matched.sum()),
                "id_not_in_mapping": int((~mapped).sum()),
                "no_profile": int((mapped & ~matched).sum()),
            },
        }
        if self.has_mapping:
            has_transactions = self.links[_LINK].isin(set(self.transaction_ids))
            has_profile = self.links[_CUSTOMER].isin(self.known_profiles)
            outcomes["mapping"] = {
                "used": int((has_transactions & has_profile).sum()),
                "id_without_transactions": int((~has_transactions).sum()),
                "id_without_profile": int((has_transactions & ~has_profile).sum()),
            }
        return outcomes

    def ids_in(self) -> dict[str, int]:
        ids = {
            "profiles": len(self.known_profiles),
            "transactions": int(self.transaction_ids.nunique()),
        }
        if self.has_mapping:
            ids["mapping_transaction_ids"] = int(self.links[_LINK].nunique())
            ids["mapping_profile_ids"] = int(self.links[_CUSTOMER].nunique())
        return ids

    def unmatched(self) -> dict[str, set[str]]:
        return {
            "profiles": self.known_profiles - self.customers,
            "transactions": set(self.transaction_ids) - set(self.pairs[_LINK]),
        }

    def many_to_many(self) -> dict[str, int]:
        """Ids with several partners, and the rows the expansion added to the join."""
        used = self.links.loc[
            self.links[_CUSTOMER].isin(self.known_profiles)
            & self.links[_LINK].isin(set(self.transaction_ids))
        ]
        return {
            "transaction_ids_to_several_customers": int(
                (used.groupby(_LINK)[_CUSTOMER].nunique() > 1).sum()
            ),
            "customers_from_several_transaction_ids": int(
                (used.groupby(_CUSTOMER)[_LINK].nunique() > 1).sum()
            ),
            "transactions_to_several_customers": int((self.pairs.index.value_counts() > 1).sum()),
            "extra_rows_from_mapping": len(self.pairs) - self.pairs.index.nunique(),
            "extra_rows_from_profile_rows": self.joined_rows - len(self.pairs),
        }


def _links(
    tables: Mapping[TableName, Table],
    mapping: pd.DataFrame | None,
    transaction_ids: pd.Series,
    profile_ids: pd.Series,
    columns: Mapping[str, str],
) -> pd.DataFrame:
    """Transaction-side id -> profile id: the mapping's rows, or each id to itself."""
    if mapping is None:
        identity = sorted(set(transaction_ids))
        return pd.DataFrame({_LINK: identity, _CUSTOMER: identity})
    links = pd.DataFrame(
        {
            _LINK: mapping[columns["mapping_transaction_id"]],
            _CUSTOMER: mapping[columns["mapping_profile_id"]],
        }
    )
    _check_mapping_reaches(tables, links, set(transaction_ids), set(profile_ids), columns)
    return links


def _join(
    tables: Mapping[TableName, Table],
    profiles: pd.DataFrame,
    transactions: pd.DataFrame,
    mapping: pd.DataFrame | None,
    columns: Mapping[str, str],
) -> _Join:
    """Attribute transactions to profile ids; no match at all is an InputError."""
    profile_ids = profiles[columns["profile_id"]]
    transaction_ids = transactions[columns["transaction_customer_id"]]
    links = _links(tables, mapping, transaction_ids, profile_ids, columns)
    reaching = links.loc[links[_CUSTOMER].isin(set(profile_ids))]
    attributed = transactions.assign(**{_LINK: transaction_ids}).reset_index()
    pairs = attributed.merge(reaching, on=_LINK, how="inner").set_index(transactions.index.name)
    join = _Join(profile_ids, transaction_ids, links, pairs, has_mapping=mapping is not None)
    if pairs.empty:
        raise InputError(
            f"no transaction reaches a profile: none of these ids matches "
            f"{tables['profiles'].path.name} column {columns['profile_id']!r}"
            + (" through the id mapping" if mapping is not None else ""),
            path=str(tables["transactions"].path),
            column=columns["transaction_customer_id"],
            row=int(transactions.index[0]),
        )
    return join


def _check_mapping_reaches(
    tables: Mapping[TableName, Table],
    links: pd.DataFrame,
    transaction_ids: set[str],
    profile_ids: set[str],
    columns: Mapping[str, str],
) -> None:
    """A mapping none of whose ids exist on one side maps to nowhere: that is a wrong file."""
    mapping = tables["mapping"]
    for side, known, other in (
        (_LINK, transaction_ids, "transactions"),
        (_CUSTOMER, profile_ids, "profiles"),
    ):
        if not links[side].isin(known).any():
            role = "mapping_transaction_id" if side == _LINK else "mapping_profile_id"
            target_role = "transaction_customer_id" if side == _LINK else "profile_id"
            first_row = int(links.index[0])
            raise InputError(
                f"the id mapping maps to nowhere: {links[side].iloc[0]!r} and every other id "
                f"in this column is absent from {tables[other].path.name} column "
                f"{columns[target_role]!r}",
                path=str(mapping.path),
                column=columns[role],
                row=first_row,
            )


def _row_outcomes(
    cleaner: _Cleaner, join: _Join, tables: Mapping[TableName, Table]
) -> dict[str, dict[str, int]]:
    """Where every row read went, per table: dropped by cleaning, or its fate in the join."""
    outcomes: dict[str, dict[str, int]] = {}
    for table, joined in join.outcomes().items():
        dropped = {"duplicate": cleaner.duplicates[table]}
        if table == "transactions":
            dropped["missing_category"] = cleaner.missing_category
        outcomes[table] = {**dropped, **joined}
        # A gap here is a bug in this module, not bad input.
        if sum(outcomes[table].values()) != len(tables[table].frame):
            raise AssertionError(f"{table}: rows read and outcomes disagree: {outcomes[table]}")
    return outcomes


def _join_size_as_given(tables: Mapping[TableName, Table], columns: Mapping[str, str]) -> int:
    """Rows of transactions x mapping x profiles on the tables as read (no cleaning at all)."""
    profile_rows = tables["profiles"].frame[columns["profile_id"]].value_counts()
    transaction_rows = (
        tables["transactions"].frame[columns["transaction_customer_id"]].value_counts()
    )
    if "mapping" in tables:
        mapping = tables["mapping"].frame
        links = mapping[[columns["mapping_transaction_id"], columns["mapping_profile_id"]]]
        links.columns = [_LINK, _CUSTOMER]
    else:
        links = pd.DataFrame({_LINK: transaction_rows.index, _CUSTOMER: transaction_rows.index})
    per_link = links[_LINK].map(transaction_rows).fillna(0)
    per_customer = links[_CUSTOMER].map(profile_rows).fillna(0)
    return int((per_link * per_customer).sum())


def _customer_rows(
    profiles: pd.DataFrame,
    transactions: pd.DataFrame,
    pairs: pd.DataFrame,
    columns: Mapping[str, str],
) -> tuple[pd.DataFrame, int]:
    """One row per customer: profile features, transaction aggregates, engineered ratios, target."""
    customers = sorted(set(pairs[_CUSTOMER]))
    profile_part, representative = _profile_features(
        profiles.loc[profiles[columns["profile_id"]].isin(customers)],
        profiles,
        columns,
    )
    transaction_part = _transaction_features(pairs, transactions, columns)
    merged = profile_part.join(transaction_part, how="inner")
    merged = merged.join(_engineered_features(merged, representative, columns))
    target, ties = _preferred_category(pairs, columns)
    merged[TARGET] = target
    merged.index.name = CUSTOMER_ID
    return merged.reset_index(), ties


def _profile_features(
    matched: pd.DataFrame, all_profiles: pd.DataFrame, columns: Mapping[str, str]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Numeric profile columns (mean/min/max when a customer has several rows) and categorical
    shares; also which output column stands for each numeric role."""
    id_column = columns["profile_id"]
    grouped = matched.groupby(id_column, sort=True)
    several_rows = bool((grouped.size() > 1).any())
    parts: list[pd.DataFrame | pd.Series] = [grouped.size().rename("profile_rows")]
    representative: dict[str, str] = {}
    for role in ROLES:
        if role.table != "profiles" or role.name not in columns or role.kind == "id":
            continue
        column = columns[role.name]
        values = matched[column]
        if pd.api.types.is_numeric_dtype(values):
            if several_rows:
                stats = grouped[column].agg(["mean", "min", "max"])
                stats.columns = [f"{column}_{stat}" for stat in stats.columns]
                parts.append(stats)
                representative[role.name] = f"{column}_mean"
            else:
                parts.append(grouped[column].first())
                representative[role.name] = column
        else:
            parts.append(_category_shares(matched, all_profiles[column], id_column, column))
    return pd.concat(parts, axis=1), representative


def _category_shares(
    matched: pd.DataFrame, every_value: pd.Series, id_column: str, column: str
) -> pd.DataFrame:
    """Share of each customer's rows at each level: one-hot when a customer has one row."""
    levels = every_value.value_counts().index[:MAX_CATEGORY_LEVELS]
    names = {level: f"{column}_{_slug(level)}" for level in levels}
    kept = matched[column].isin(levels)
    # Levels that differ only in case or punctuation share one column.
    encoded = matched[column].where(kept).map(names).fillna(f"{column}_other")
    shares = pd.get_dummies(encoded, dtype=float).groupby(matched[id_column].to_numpy()).mean()
    every_level = sorted(set(names.values()))
    if not kept.all():
        every_level.append(f"{column}_other")
    return shares.reindex(columns=every_level, fill_value=0.0)


def _slug(value: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(value).lower()).strip("_") or "blank"


_TRANSACTION_STATS = {
    "amount": ("sum", "mean", "min", "max"),
    "rating": ("mean", "min", "max"),
    "frequency": ("mean",),
}


def _transaction_features(
    pairs: pd.DataFrame, transactions: pd.DataFrame, columns: Mapping[str, str]
) -> pd.DataFrame:
    """Count, amount and rating aggregates and recency per customer."""
    grouped = pairs.groupby(_CUSTOMER, sort=True)
    parts: list[pd.DataFrame | pd.Series] = [grouped.size().rename("transaction_count")]
    for role, stats in _TRANSACTION_STATS.items():
        if role in columns:
            aggregated = grouped[columns[role]].agg(list(stats))
            aggregated.columns = [f"{columns[role]}_{stat}" for stat in stats]
            parts.append(aggregated)
    if "date" in columns:
        dates = grouped[columns["date"]]
        latest_in_data = transactions[columns["date"]].max()
        parts.append((latest_in_data - dates.max()).dt.days.rename("recency_days"))
        parts.append((dates.max() - dates.min()).dt.days.rename("active_days"))
    elif "recency_days" in columns:
        parts.append(grouped[columns["recency_days"]].min().rename("recency_days"))
    features = pd.concat(parts, axis=1)
    # A customer whose every date is missing has no recency; the median stands in.
    return features.fillna(features.median(numeric_only=True))


def _engineered_features(
    merged: pd.DataFrame, representative: Mapping[str, str], columns: Mapping[str, str]
) -> pd.DataFrame:
    """Ratios between social and spending behaviour, where both columns exist."""
    amount = columns["amount"]
    ratios = {
        "spending_per_follower": (f"{amount}_sum", representative.get("followers")),
        "spending_per_post": (f"{amount}_sum", representative.get("posts_per_week")),
        "engagement_spending_ratio": (representative.get("engagement"), f"{amount}_mean"),
        "interest_spending_ratio": (representative.get("purchase_interest"), f"{amount}_mean"),
    }
    engineered = pd.DataFrame(index=merged.index)
    for name, (numerator, denominator) in ratios.items():
        if numerator is None or denominator is None:
            continue
        top, bottom = merged[numerator], merged[denominator]
        # Zero followers or zero spending has no meaningful ratio; 0 keeps the column numeric.
        engineered[name] = np.where(bottom > 0, top / bottom.where(bottom > 0), 0.0)
    return engineered


def _preferred_category(pairs: pd.DataFrame, columns: Mapping[str, str]) -> tuple[pd.Series, int]:
    """Most frequent category per customer; ties go to the category bought most recently."""
    category = columns["category"]
    if "date" in columns:
        dates = pairs[columns["date"]]
        nanoseconds = dates.to_numpy(dtype="datetime64[ns]").astype("int64").astype(float)
        recent = pd.Series(nanoseconds, index=pairs.index).where(dates.notna(), -np.inf)
    elif "recency_days" in columns:
        recent = -pairs[columns["recency_days"]]
    else:
        recent = pd.Series(0.0, index=pairs.index)
    keyed = pd.DataFrame(
        {
            CUSTOMER_ID: pairs[_CUSTOMER].to_numpy(),
            "category": pairs[category].to_numpy(),
            "recent": recent.astype(float).to_numpy(),
            # Same day, same category count: the later row in the file was the later purchase.
            "row": pairs.index.to_numpy(),
        }
    )
    stats = (
        keyed.groupby([CUSTOMER_ID, "category"])
        .agg(count=("row", "size"), recent=("recent", "max"), row=("row", "max"))
        .reset_index()
    )
    top_count = stats.groupby(CUSTOMER_ID)["count"].transform("max")
    tied = stats.loc[stats["count"] == top_count].groupby(CUSTOMER_ID).size()
    ranked = stats.sort_values(
        [CUSTOMER_ID, "count", "recent", "row"], ascending=[True, False, False, False]
    ).drop_duplicates(CUSTOMER_ID)
    return ranked.set_index(CUSTOMER_ID)["category"], int((tied > 1).sum())


def write_outputs(workspace: Workspace, merged: pd.DataFrame, report: MergeReport) -> None:
    """Write the dataset and the report to temporary files first, then rename both into place."""
    report_text = json.dumps(report.to_dict(), indent=2) + "\n"
    with contextlib.ExitStack() as stack:
        dataset = stack.enter_context(
            atomic_open(workspace.merged_dataset, "w", encoding="utf-8", newline="")
        )
        report_file = stack.enter_context(
            atomic_open(workspace.merge_report, "w", encoding="utf-8", newline="")
        )
        merged.to_csv(dataset, index=False, lineterminator="\n")
        report_file.write(report_text)
