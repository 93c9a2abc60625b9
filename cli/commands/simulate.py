"""`mmauth simulate`: every probe through the real flow, in campaigns, with measured rates."""

from __future__ import annotations

from typing import Annotated, Any

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


def simulate(
    ctx: typer.Context,
    audit: Annotated[
        bool,
        typer.Option(
            "--audit",
            help="Also write the simulated attempts to the audit log (origin 'simulation'; "
            "they never count towards a lockout).",
        ),
    ] = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Processes for probe features.")
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run genuine, impostor, replay and bad-input campaigns over data/raw/probes.

    Prints per campaign the attempts, grants, denials by reason and the measured rates with
    Wilson 95% intervals; saves reports/simulation.json and reports/simulation.csv.
    """
    with handle_errors(as_json):
        from engine.auth.simulate import report_dict, run_simulation

        space, settings = open_workspace(ctx, workspace, {"jobs": jobs})
        with progress_bars(not as_json) as progress:
            report = run_simulation(space, settings, progress=progress, audit=audit)
    if as_json:
        print_json({"ok": True, **report_dict(report)})
        return
    show_report(report, space.relative)


def show_report(report: Any, relative: Any) -> None:
    """The campaign table, the pooled rates and how the campaigns were made."""
    from engine.core.metrics import format_rate

    table = Table(
        title=f"Simulation: {len(report.members)} members, {len(report.strangers)} strangers, "
        f"face backend {report.face_backend}",
        caption="rate = authorised success (genuine) or unauthorised block (the rest); "
        "\\[low, high] = Wilson 95% interval",
    )
    for column in ("campaign", "attempts", "granted", "denied by reason", "rate", "face", "voice"):
        table.add_column(column, justify="right" if column in ("attempts", "granted") else "left")
    for campaign in report.campaigns:
        reasons = ", ".join(f"{k} {v}" for k, v in campaign.denied_by_reason.items()) or "-"
        granted = str(campaign.granted)
        if campaign.wrong_member_grants:
            granted += f" [red]({campaign.wrong_member_grants} wrong member)[/]"
        table.add_row(
            campaign.name,
            str(campaign.attempts),
            granted,
            shown(reasons),
            format_rate(campaign.overall),
            format_rate(campaign.face),
            format_rate(campaign.voice),
        )
    console.print(table)
    for label, measured in (
        ("Authorised success rate (1 - system FNMR)", report.authorised_success),
        ("Unauthorised block rate (impostors)", report.unauthorised_block),
        ("Replay block rate (1 - APCER)", report.replay_block),
        ("Bad inputs denied", report.bad_input_denied),
    ):
        console.print(f"{label}: [bold]{measured}[/]", highlight=False)
    for note in report.notes:
        console.print(f"[dim]{shown(note)}[/]")
    console.print(
        f"[dim]{len(report.attempts)} attempts in {report.seconds:.1f} s; saved "
        f"{shown(relative(report.json_path))} and {shown(relative(report.csv_path))}[/]"
    )


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
