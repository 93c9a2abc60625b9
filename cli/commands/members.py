"""`mmauth enroll`, `mmauth members` and `mmauth remove`: who can authenticate."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.context import open_workspace
from cli.output import (
    JsonOption,
    WorkspaceOption,
    YesOption,
    console,
    handle_errors,
    print_json,
    progress_bars,
    shown,
)


def enroll(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Member name (letters, digits, '_', '-', '.').")],
    faces: Annotated[
        list[Path] | None,
        typer.Option("--faces", "--face", help="Photos of the member's face (repeat the option)."),
    ] = None,
    voices: Annotated[
        list[Path] | None,
        typer.Option(
            "--voices",
            "--voice",
            help="Recordings of approval phrases, named `phrase_N.wav`, e.g. `yes_approve_1.wav` (repeat the option).",
        ),
    ] = None,
    customer: Annotated[
        str | None,
        typer.Option("--customer", help="Customer id to link in members.csv (for the product)."),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Replace the member's enrolment files that have the same names as new ones.",
        ),
    ] = False,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enrol a new member, or add files to an existing one, and update the models.

    Every photo must show a face and every recording hold speech, or nothing is changed. A
    file named like one the member already has is refused (exit status 2, the files named)
    unless --replace is given.
    """
    with handle_errors(as_json):
        from engine.auth.enrol import enrol_member

        space, settings = open_workspace(ctx, workspace)
        with progress_bars(not as_json) as progress:
            result = enrol_member(
                space,
                settings,
                name,
                faces=faces or [],
                voices=voices or [],
                customer_id=customer,
                progress=progress,
                replace=replace,
            )
    if as_json:
        print_json({"ok": True, **dataclasses.asdict(result)})
        return
    console.print(
        f"[green]Enrolled[/] {shown(result.member)}: {len(result.faces)} photos, "
        f"{len(result.voices)} recordings ({result.replaced} replaced) in {result.seconds:.1f} s",
        highlight=False,
    )
    if result.customer_id:
        console.print(f"Linked to customer {shown(result.customer_id)} in members.csv")
    for update in result.model_updates:
        console.print(f"  model {shown(update)}")
    for note in result.notes:
        console.print(f"[yellow]Note: {shown(note)}[/]", highlight=False)


def members(
    ctx: typer.Context, workspace: WorkspaceOption = None, as_json: JsonOption = False
) -> None:
    """List the members: their files, phrases, customer link and whether the models know them."""
    with handle_errors(as_json):
        from engine.auth.enrol import list_members

        space, _ = open_workspace(ctx, workspace)
        listed = list_members(space)
    if as_json:
        print_json({"ok": True, "members": [dataclasses.asdict(m) for m in listed]})
        return
    table = Table(title=f"Members of {shown(space.root)} ({len(listed)})")
    for column in (
        "member",
        "photos",
        "recordings",
        "phrases",
        "customer",
        "face model",
        "voice model",
        "enrolled (UTC)",
    ):
        table.add_column(column)
    for member in listed:
        table.add_row(
            shown(member.name),
            str(member.faces),
            str(member.voices),
            shown(", ".join(member.phrases)),
            shown(member.customer_id or "-"),
            _known(member.in_face_model),
            _known(member.in_voice_model),
            dt.datetime.fromtimestamp(member.enrolled_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
            if member.enrolled_at
            else "-",
        )
    console.print(table)


def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member to remove.")],
    yes: YesOption = False,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove a member: their enrolment files are deleted, the models updated and the customer
    link dropped; the audit log keeps their attempts. Asks first (not with --yes or --json)."""
    with handle_errors(as_json):
        from engine.auth.enrol import list_members, remove_member

        space, settings = open_workspace(ctx, workspace)
        member = next((m for m in list_members(space) if m.name == name), None)
        if member is not None and not yes and not as_json:
            console.print(
                f"{shown(name)}: {member.faces} photos and {member.voices} recordings are "
                "deleted, and the models updated; the audit log keeps their attempts.",
                highlight=False,
            )
            typer.confirm(f"Remove {shown(name)}?", abort=True)
        with progress_bars(not as_json) as progress:
            result = remove_member(space, settings, name, progress=progress)
    if as_json:
        print_json({"ok": True, **dataclasses.asdict(result)})
        return
    console.print(
        f"[green]Removed[/] {shown(result.member)}: {result.files_removed} files"
        + ("; customer link removed" if result.customer_link_removed else ""),
        highlight=False,
    )
    for update in result.model_updates:
        console.print(f"  model {shown(update)}")


def _known(flag: bool | None) -> str:
    if flag is None:
        return "[dim]no model[/]"
    return "[green]yes[/]" if flag else "[yellow]no[/]"


def register(app: typer.Typer) -> None:
    app.command("enroll")(enroll)
    app.command("members")(members)
    app.command("remove")(remove)
