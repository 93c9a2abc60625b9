"""`mmauth merge`: the customer tables -> data/merged_dataset.csv, with a report of every row."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from cli.context import open_workspace
from cli.output import (
    JsonOption,
    WorkspaceOption,
    console,
    handle_errors,
    print_json,
    progress_bars,
    shown,
)

if TYPE_CHECKING:
    from engine.customers.merge import MergeReport


def merge(
    ctx: typer.Context, workspace: WorkspaceOption = None, as_json: JsonOption = False
) -> None:
    """Clean and merge the customer tables of data/raw/customers/ into one row per customer.

    Exit status 0 on success, 2 when a table is missing or malformed (nothing is written then).
    """
    with handle_errors(as_json):
        from engine.customers.merge import merge_customers

        space, settings = open_workspace(ctx, workspace)
        with progress_bars(not as_json) as progress:
            report = merge_customers(space, settings, progress=progress)
        if as_json:
            print_json({"ok": True, "notes": report.column_notes(), "report": report.to_dict()})
            return
        show_report(report)


def show_report(report: MergeReport) -> None:
    """Print the merge report as tables a person can check row by row."""
    tables = Table(title=f"Customer merge ({report.shape} shape)")
    for heading in ("table", "file", "rows in", "duplicates", "outcome of the other rows"):
        tables.add_column(
            heading, justify="right" if heading in ("rows in", "duplicates") else "left"
        )
    for name, outcomes in report.row_outcomes.items():
        rest = ", ".join(
            f"{count} {outcome.replace('_', ' ')}"
            for outcome, count in outcomes.items()
            if outcome != "duplicate" and count
        )
        tables.add_row(
            shown(name),
            shown(PurePosixPath(report.files.get(name, "")).name),
            str(report.rows_in[name]),
            str(report.duplicates_dropped[name]),
            rest,
        )
    console.print(tables)

    ids = Table(title="Ids")
    for heading in ("side", "distinct", "matched", "unmatched", "e.g. unmatched"):
        ids.add_column(heading)
    for side, count in report.ids_in.items():
        ids.add_row(
            side,
            str(count),
            str(report.matched_ids.get(side, "")),
            str(report.unmatched_ids.get(side, "")),
            shown(", ".join(report.unmatched_id_examples.get(side, [])[:5])),
        )
    console.print(ids)

    if report.cleaning:
        cleaning = Table(title="Cleaning")
        for heading in ("table", "column", "action", "count", "detail"):
            cleaning.add_column(heading)
        for action in report.cleaning:
            cleaning.add_row(
                shown(action.table),
                shown(action.column),
                action.action,
                str(action.count),
                shown(action.detail),
            )
        console.print(cleaning)

    expansions = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.many_to_many.items())
    classes = shown(", ".join(f"{k} {v}" for k, v in report.target_counts.items()))
    console.print(f"Many-to-many: {expansions}")
    console.print(
        f"Joined rows: [bold]{report.joined_rows}[/] after cleaning "
        f"({report.joined_rows_as_given} on the tables as given) "
        f"for [bold]{report.customers_out}[/] customers"
    )
    console.print(
        f"Preferred category: {classes} ({report.target_ties_broken} ties broken by the latest "
        "purchase)"
    )
    console.print(
        f"Wrote {report.rows_out} rows x {len(report.feature_columns)} features to "
        f"{shown(report.outputs['merged_dataset'])}; report in "
        f"{shown(report.outputs['merge_report'])}"
    )
    for note in report.column_notes():
        console.print(f"[yellow]Note: {shown(note)}[/]", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("merge")(merge)
