"""`mmauth sample` writes the demo workspace; `mmauth demo` runs the whole system on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cli.context import open_workspace
from cli.output import (
    JsonOption,
    WorkspaceOption,
    console,
    error_console,
    handle_errors,
    print_json,
    progress_bars,
    shown,
)

if TYPE_CHECKING:
    from engine.sample.demo import DemoResult
    from engine.sample.workspace import SampleReport


def sample(
    ctx: typer.Context,
    members: Annotated[
        int, typer.Option("--members", min=1, help="Enrolled people (photos, takes, probes).")
    ] = 4,
    strangers: Annotated[
        int, typer.Option("--strangers", min=0, help="People who only appear as probes.")
    ] = 6,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Same seed, same bytes.")] = 0,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace data/raw/ and mmauth.toml of a workspace that is not empty."
        ),
    ] = False,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a complete, realistic sample workspace: customers, faces, voices and probes.

    Refuses a workspace that is not empty unless --force is given; then only data/raw/ and
    mmauth.toml are replaced (derived files such as models/ are left alone: re-run the stages).
    """
    with handle_errors(as_json):
        from engine.core.errors import InputError
        from engine.core.workspace import is_empty_workspace
        from engine.sample.workspace import (
            recover_interrupted_run,
            write_sample_workspace,
        )

        space, _ = open_workspace(ctx, workspace, create=True)
        if recover_interrupted_run(space.root):
            error_console.print(
                "Note: an earlier sample run was stopped while replacing data/raw/; the previous "
                "data/raw/ has been put back."
            )
        if not force and not is_empty_workspace(space.root):
            raise InputError(
                f"{space.root} is not empty; use --force to replace its data/raw/ and "
                "mmauth.toml with the sample, or choose another folder with --workspace"
            )
        with progress_bars(not as_json) as progress:
            report = write_sample_workspace(
                space.root, members=members, strangers=strangers, seed=seed, progress=progress
            )
    if as_json:
        print_json({"ok": True, "sample": report.to_dict()})
        return
    show_sample(report)
    note_previous_records(report)


def demo(
    ctx: typer.Context,
    members: Annotated[
        int, typer.Option("--members", min=1, help="Members of the sample, when one is written.")
    ] = 4,
    strangers: Annotated[
        int,
        typer.Option("--strangers", min=0, help="Strangers of the sample, when one is written."),
    ] = 6,
    seed: Annotated[
        int | None,
        typer.Option("--seed", min=0, help="Seed of the sample, when one is written."),
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the sample workspace if the folder is empty, then merge -> features -> train ->
    simulate, and summarise what each stage measured."""
    with handle_errors(as_json):
        from engine.sample.demo import run_demo

        space, settings = open_workspace(ctx, workspace, create=True)
        with progress_bars(not as_json) as progress:
            result = run_demo(
                space, settings, progress=progress, seed=seed, members=members, strangers=strangers
            )
    if as_json:
        print_json({"ok": True, "demo": result.to_dict()})
        return
    show_demo(result)
    if result.sample is not None:
        note_previous_records(result.sample)


def note_previous_records(report: SampleReport) -> None:
    """Say so when the records of a deleted workspace at this path were retired."""
    note = report.previous_records_note()
    if note is not None:
        error_console.print(f"Note: {shown(note)}", highlight=False)


def show_sample(report: SampleReport) -> None:
    """What the sample holds and where."""
    table = Table(title=f"Sample workspace {shown(report.root)} (seed {report.seed})")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("notes")
    table.add_row("members", str(len(report.members)), ", ".join(report.members))
    table.add_row("strangers", str(len(report.strangers)), ", ".join(report.strangers) or "-")
    table.add_row(
        "look-alikes",
        str(len(report.lookalikes)),
        ", ".join(
            f"{stranger} resembles {member}" for stranger, member in report.lookalikes.items()
        )
        or "-",
    )
    table.add_row("enrolment photos", str(report.enrolment_photos), "data/raw/faces/<member>/")
    table.add_row("probe photos", str(report.probe_photos), "data/raw/probes/faces/<label>/")
    table.add_row("enrolment clips", str(report.enrolment_clips), "data/raw/voices/<member>/")
    table.add_row("probe clips", str(report.probe_clips), "data/raw/probes/voices/<label>/")
    table.add_row(
        "customers",
        str(report.customers),
        f"{report.transactions} transactions, data/raw/customers/",
    )
    console.print(table)
    console.print(
        f"[dim]{report.files} files, {report.total_bytes / 1e6:.1f} MB; face backend "
        f"{report.face_backend} (mmauth.toml). Next: mmauth demo -w {shown(report.root)}[/]",
        highlight=False,
    )


def show_demo(result: DemoResult) -> None:
    """The summary table: what each stage processed and measured, and where outputs are."""
    table = Table(title=f"mmauth demo on {shown(result.workspace)}", show_lines=True)
    table.add_column("stage")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("what it measured")
    if result.sample is not None:
        sample = result.sample
        table.add_row(
            "sample",
            "written",
            "",
            f"{len(sample.members)} members, {len(sample.strangers)} strangers, "
            f"{sample.enrolment_photos + sample.probe_photos} photos, "
            f"{sample.enrolment_clips + sample.probe_clips} clips, {sample.customers} customers",
        )
    for stage in result.stages:
        status = "[green]done[/]" if stage.status == "done" else "[yellow]not available[/]"
        text = _describe(stage.name, stage.headline) if stage.status == "done" else stage.detail
        # Lines of the description stay lines; each is made safe on its own.
        safe = "\n".join(shown(line) for line in text.split("\n"))
        table.add_row(stage.name, status, f"{stage.seconds:.1f}", safe)
    console.print(table)
    console.print(f"Members: {shown(', '.join(result.members) or '-')}", highlight=False)
    outputs = ", ".join(f"{name} {path}" for name, path in result.outputs.items())
    console.print(f"[dim]Outputs: {shown(outputs)}[/]", highlight=False)
    console.print(f"[dim]Total {result.seconds:.1f} s.[/]")


def _describe(name: str, headline: dict[str, Any]) -> str:
    if name == "merge":
        return (
            f"{headline['customers']} customers from {headline['joined_rows']} joined rows, "
            f"{headline['duplicates_dropped']} duplicates dropped -> {headline['output']}"
        )
    if name in ("faces", "voices"):
        return (
            f"{headline['files']} files ({headline['cached']} cached, {headline['failures']} "
            f"failed) -> {headline['rows']} rows, backend {headline['backend']} "
            f"-> {headline['output']}"
        )
    if name == "train":
        lines = [
            f"{model}: " + ", ".join(f"{key} {_number(value)}" for key, value in figures.items())
            for model, figures in headline["models"].items()
        ]
        if headline["product_verdict"]:
            lines.append(headline["product_verdict"])
        lines += [f"Note: {note}" for note in headline.get("notes", [])]
        return "\n".join(lines)
    if name == "simulate":
        return "\n".join(
            f"{label}: {_rate(headline[key])}"
            for label, key in (
                ("authorised success", "authorised_success"),
                ("unauthorised blocked", "unauthorised_block"),
                ("replays blocked", "replay_block"),
                ("bad inputs denied", "bad_input_denied"),
            )
        )
    return ", ".join(f"{key} {value}" for key, value in headline.items())


def _number(value: Any) -> str:
    if isinstance(value, dict):
        return _rate(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _rate(measured: dict[str, Any]) -> str:
    from engine.core.metrics import Rate, format_rate

    return format_rate(Rate(**measured))


def register(app: typer.Typer) -> None:
    app.command("sample")(sample)
    app.command("demo")(demo)
