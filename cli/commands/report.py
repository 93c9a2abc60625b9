"""`mmauth report`: reports/report.html and its figures, rebuilt from the workspace's files."""

from __future__ import annotations

import typer

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


def report(
    ctx: typer.Context, workspace: WorkspaceOption = None, as_json: JsonOption = False
) -> None:
    """Write reports/report.html with figures of the customers, features and trained models.

    Sections whose input is missing say which command creates it; the report is still written.
    """
    with handle_errors(as_json):
        from engine.reports.html import build_report

        space, _ = open_workspace(ctx, workspace)
        with progress_bars(not as_json) as progress:
            result = build_report(space, progress=progress)
        if as_json:
            print_json(
                {
                    "ok": True,
                    "html": space.relative(result.html),
                    "figures": [space.relative(path) for path in result.figures],
                    "sections": [
                        {"title": s.title, "figures": len(s.figures), "missing": s.missing}
                        for s in result.sections
                    ],
                    "seconds": round(result.seconds, 2),
                }
            )
            return
        for section in result.sections:
            state = (
                f"[yellow]{shown(section.missing)}[/]"
                if section.missing
                else f"{len(section.figures)} figure(s)"
            )
            console.print(f"[bold]{shown(section.title)}[/]: {state}", highlight=False)
        console.print(
            f"Wrote {shown(space.relative(result.html))} with {len(result.figures)} figures "
            f"in {result.seconds:.1f} s."
        )


def register(app: typer.Typer) -> None:
    app.command("report")(report)
