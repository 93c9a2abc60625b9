"""The customer-data merge: social profiles + transactions (+ an id mapping) -> one row per customer.

The stage runs read (engine.customers.read), clean, join and features in turn, then writes
data/merged_dataset.csv and data/merge_report.json together. The output is keyed by the profile
table's ids, the space ``members.csv`` refers to.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from engine.core.errors import InputError
from engine.core.fileio import atomic_write_files
from engine.core.progress import Progress, ProgressCallback, no_progress
from engine.core.settings import MergeSettings, Settings
from engine.core.workspace import Workspace
from engine.customers.clean import Cleaner, CleaningAction, check_transaction_ids
from engine.customers.features import CUSTOMER_ID, TARGET, customer_rows
from engine.customers.join import LINK, Join, join_size_as_given, join_tables
from engine.customers.read import (
    FILE_CANDIDATES,
    Table,
    TableName,
    absent_optional_columns,
    detect_shape,
    locate_tables,
    read_table,
    resolve_roles,
)

_STAGE = "merge"


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
    missing_columns: dict[str, list[str]]
    """Columns of optional roles per table that the shape expects and the table lacks (left out
    of the merged dataset, so it has fewer features than usual)."""
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

    def column_notes(self) -> list[str]:
        """In words: expected columns a table lacks, and columns no role uses."""
        notes = []
        for table, columns in self.missing_columns.items():
            if columns:
                notes.append(
                    f"{self.files.get(table, table)} lacks the expected column(s) "
                    f"{', '.join(columns)}: merged without them (fewer features); a product "
                    "model trained with them must be trained again: mmauth train --only product"
                )
        for table, columns in self.ignored_columns.items():
            if columns:
                notes.append(
                    f"{self.files.get(table, table)}: column(s) {', '.join(columns)} ignored "
                    "(no role uses them; [merge.columns] in mmauth.toml maps a role to a column)"
                )
        return notes

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
    cleaner = Cleaner(columns, merge.outlier_iqr)
    profiles = cleaner.clean(tables["profiles"])
    transactions = cleaner.clean(tables["transactions"])
    mapping = cleaner.clean(tables["mapping"]) if "mapping" in tables else None
    check_transaction_ids(tables["transactions"], transactions, columns)
    join = join_tables(tables, profiles, transactions, mapping, columns)
    merged, ties = customer_rows(profiles, transactions, join.pairs, columns)
    unmatched = join.unmatched()
    report = MergeReport(
        shape=shape,
        files={name: str(table.path) for name, table in tables.items()},
        columns=dict(columns),
        ignored_columns={
            name: [c for c in table.frame.columns if c not in columns.values()]
            for name, table in tables.items()
        },
        missing_columns=absent_optional_columns(tables, shape, merge.columns),
        rows_in={name: len(table.frame) for name, table in tables.items()},
        duplicates_dropped={name: cleaner.duplicates[name] for name in tables},
        row_outcomes=_row_outcomes(cleaner, join, tables),
        ids_in=join.ids_in(),
        matched_ids={
            "profiles": len(join.customers),
            "transactions": int(join.pairs[LINK].nunique()),
        },
        unmatched_ids={side: len(ids) for side, ids in unmatched.items()},
        unmatched_id_examples={side: sorted(ids)[:10] for side, ids in unmatched.items()},
        many_to_many=join.many_to_many(),
        joined_rows=join.joined_rows,
        joined_rows_as_given=join_size_as_given(tables, columns),
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


def _row_outcomes(
    cleaner: Cleaner, join: Join, tables: Mapping[TableName, Table]
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


def write_outputs(workspace: Workspace, merged: pd.DataFrame, report: MergeReport) -> None:
    """Write the dataset and the report, both or neither (the report describes the dataset)."""
    report_text = json.dumps(report.to_dict(), indent=2) + "\n"
    dataset_text = merged.to_csv(index=False, lineterminator="\n")
    atomic_write_files(
        {
            workspace.merged_dataset: dataset_text.encode("utf-8"),
            workspace.merge_report: report_text.encode("utf-8"),
        }
    )
