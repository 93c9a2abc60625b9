"""Reading the customer tables: finding the files, their CSV text cells and each role's column.

Two table shapes are understood. The *assignment* shape has several profile rows per customer (one
per platform, ids like ``A178``), transactions under legacy ids (``178``) and a many-to-many
``id_mapping.csv`` between the two id spaces. The *profile* shape has one profile row per customer
and transactions under the same ids. Columns are found through roles (``amount``, ``category``,
...): each shape has default column names per role, and ``merge.columns`` in mmauth.toml overrides
them. Problems raise InputError naming the file, column and row.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pandas as pd

from engine.core.errors import ConfigError, InputError
from engine.core.settings import MergeSettings

TableName = Literal["profiles", "transactions", "mapping"]
Kind = Literal["id", "numeric", "categorical", "auto", "date", "target"]

DELIMITERS = (",", ";", "\t", "|")


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


def absent_optional_columns(
    tables: Mapping[TableName, Table], shape: str, overrides: Mapping[str, str]
) -> dict[str, list[str]]:
    """Per table read, the columns of optional roles the shape expects and the table lacks.

    The merge goes on without them (the merged dataset just has fewer features), so they are
    reported: a product model trained on them cannot score customers merged without them.
    """
    columns = role_columns(shape, overrides)
    absent: dict[str, list[str]] = {name: [] for name in tables}
    for role in ROLES:
        column = columns.get(role.name)
        table = tables.get(role.table)
        if table is None or column is None or role.required:
            continue
        if column not in table.frame.columns:
            absent[role.table].append(column)
    return absent
