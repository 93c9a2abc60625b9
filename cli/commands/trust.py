"""`mmauth models verify|trust`, `mmauth audit verify|acknowledge` and `mmauth unlock`: what an
operator does about trust on disk. Every change is written to the audit log."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from cli.context import open_workspace
from cli.output import (
    JsonOption,
    WorkspaceOption,
    YesOption,
    console,
    handle_errors,
    print_json,
    shown,
)

models_app = typer.Typer(help="Check the models' signature, or trust models on purpose.")
audit_app = typer.Typer(help="Check the audit log's chain, or acknowledge a tampered log.")


@models_app.command("verify")
def models_verify(
    ctx: typer.Context, workspace: WorkspaceOption = None, as_json: JsonOption = False
) -> None:
    """Check the models as authentication does: signature, files and members.

    Exit status 0 when they are trusted, 1 when they are refused (the reason is printed).
    """
    with handle_errors(as_json):
        from engine.auth.operator import models_trust

        space, _ = open_workspace(ctx, workspace)
        trust = models_trust(space)
    if as_json:
        print_json({"ok": trust.trusted, **dataclasses.asdict(trust)})
    elif trust.trusted:
        console.print(
            f"[green]Trusted:[/] {', '.join(trust.models)} signed by this installation "
            f"(key {trust.this_key}) for this workspace",
            highlight=False,
        )
    else:
        console.print(f"[bold red]Refused:[/] {shown(trust.problem)}", highlight=False)
    raise typer.Exit(code=0 if trust.trusted else 1)


@models_app.command("trust")
def models_trust_command(
    ctx: typer.Context,
    yes: YesOption = False,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign this workspace's models with this installation's key (models made elsewhere on
    purpose), and accept the workspace's current login defences (settings [auth]), also when
    they are looser than before. Only intact models whose members are enrolled here are
    signed; the trust is written to the audit log."""
    with handle_errors(as_json):
        from engine.auth.operator import models_trust, trust_models
        from engine.core.defences import accepted_defences, weakened

        space, settings = open_workspace(ctx, workspace)
        before = models_trust(space)
        loosened = weakened(settings.auth, accepted_defences(space))
        if before.trusted and not loosened:
            message = "the models are already trusted: nothing to do"
            if as_json:
                print_json({"ok": True, "changed": False, "message": message})
            else:
                console.print(message)
            return
        if not yes and not as_json:
            for problem in [before.problem, *loosened]:
                if problem:
                    console.print(f"[yellow]Now refused:[/] {shown(problem)}", highlight=False)
            typer.confirm(
                "Trust these models and settings, and sign them with this installation's key?",
                abort=True,
            )
        trusted = trust_models(space, settings.auth)
    if as_json:
        print_json({"ok": True, "changed": True, **dataclasses.asdict(trusted)})
        return
    signer = f"key {trusted.signed_by}" if trusted.signed_by else "nobody"
    console.print(
        f"[green]Trusted[/] {', '.join(trusted.models)}: signed with key {trusted.this_key} "
        f"(before: {shown(signer)}); recorded in the audit log",
        highlight=False,
    )


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context, workspace: WorkspaceOption = None, as_json: JsonOption = False
) -> None:
    """Walk the whole audit log's hash chain and compare it with this installation's record.

    Exit status 0 when intact, 1 when it was deleted, truncated or edited.
    """
    with handle_errors(as_json):
        from engine.auth.operator import verify_audit

        space, _ = open_workspace(ctx, workspace)
        status = verify_audit(space)
    if as_json:
        print_json({"ok": status.intact, **dataclasses.asdict(status)})
    elif status.intact:
        console.print(f"[green]Intact:[/] {status.entries} entries, chain and head verified")
    else:
        console.print("[bold red]The audit log was tampered with:[/]")
        for problem in status.problems:
            console.print(f"  {shown(problem)}", highlight=False)
        console.print(
            "Authentication is stopped. Find out what happened, then run mmauth audit acknowledge."
        )
    raise typer.Exit(code=0 if status.intact else 1)


@audit_app.command("acknowledge")
def audit_acknowledge(
    ctx: typer.Context,
    yes: YesOption = False,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Accept a tampered audit log as it is now, so that authentication resumes. The
    acknowledgement (with what was wrong) is written to the log; lockouts the log lost are
    restored from this installation's record."""
    with handle_errors(as_json):
        from engine.auth.operator import acknowledge_audit, verify_audit

        space, _ = open_workspace(ctx, workspace)
        if not yes and not as_json:
            status = verify_audit(space)
            if status.intact:
                console.print("The audit log is intact: nothing to acknowledge.")
                return
            for problem in status.problems:
                console.print(f"  {shown(problem)}", highlight=False)
            typer.confirm("Acknowledge these problems and resume authentication?", abort=True)
        acknowledged = acknowledge_audit(space)
    if as_json:
        print_json({"ok": True, "acknowledged": list(acknowledged.problems)})
    elif acknowledged.intact:
        console.print("The audit log is intact: nothing to acknowledge.")
    else:
        console.print(
            f"[green]Acknowledged[/] {len(acknowledged.problems)} problem(s); the acknowledgement "
            "is in the audit log and authentication resumes."
        )


def unlock(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The locked member.")],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lift a member's lockout before it expires (written to the audit log)."""
    with handle_errors(as_json):
        from engine.auth.operator import unlock_member

        space, _ = open_workspace(ctx, workspace)
        lock = unlock_member(space, name)
    if as_json:
        print_json({"ok": True, "unlocked": dataclasses.asdict(lock)})
        return
    console.print(
        f"[green]Unlocked[/] {shown(lock.member)} (locked after {lock.failures} failed "
        "attempts); recorded in the audit log",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.add_typer(audit_app, name="audit")
    app.command("unlock")(unlock)
