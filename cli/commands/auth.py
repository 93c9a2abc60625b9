"""`mmauth authenticate` (one attempt through the whole flow) and `mmauth history` (the audit log)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.context import open_workspace
from cli.output import JsonOption, WorkspaceOption, console, handle_errors, print_json
from engine.auth.words import Decision, Origin, Step, StepStatus, compare_scores, score_pair

_MARKS = {
    StepStatus.PASSED: "[green]✔[/]",
    StepStatus.FAILED: "[red]✘[/]",
    StepStatus.SKIPPED: "[dim]-[/]",
}


def authenticate(
    ctx: typer.Context,
    face: Annotated[
        Path, typer.Option("--face", help="Photo of the person's face.", show_default=False)
    ],
    voice: Annotated[
        Path,
        typer.Option("--voice", help="Recording of the approval phrase.", show_default=False),
    ],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Authenticate a person by face, then voice; show the recommended product on success.

    Exit status 0 when GRANTED, 1 when DENIED (the reason is printed: no_face, unknown_face,
    voice_mismatch, phrase_mismatch, replay_suspected, locked_out, bad_input, ...), 2 on usage
    errors or unusable settings.
    """
    with handle_errors(as_json):
        from engine.auth.flow import authenticate as run_authentication

        space, settings = open_workspace(ctx, workspace)
        on_step = None if as_json else show_step
        decision = run_authentication(space, settings, face, voice, on_step=on_step)
    if as_json:
        print_json({"ok": decision.granted, **decision.as_dict()})
    else:
        show_decision(decision)
    raise typer.Exit(code=0 if decision.granted else 1)


def show_step(step: Any) -> None:
    """One line per finished step: mark, name, score against threshold, time, what it found."""
    if step.name == Step.DECISION:
        return
    score = ""
    if step.score is not None and step.threshold is not None:
        score = compare_scores(step.score, step.threshold)
    console.print(
        f"{_MARKS.get(step.status, '?')} [bold]{step.name:<8}[/] {score:<17} "
        f"[dim]{step.seconds * 1000:6.0f} ms[/]  {escape(step.message)}",
        highlight=False,
    )


def show_decision(decision: Any) -> None:
    if decision.granted:
        console.print(
            f"\n[bold green]{Decision.GRANTED}[/] {escape(decision.member)}", highlight=False
        )
        if decision.category is not None:
            console.print(
                f"Recommended product category: [bold]{escape(decision.category)}[/] "
                f"(model confidence {decision.confidence:.0%})",
                highlight=False,
            )
    else:
        console.print(
            f"\n[bold red]{Decision.DENIED}[/] ({decision.reason}): {escape(decision.message)}",
            highlight=False,
        )
    console.print(f"[dim]{decision.seconds:.2f} s, attempt #{decision.attempt_id}[/]")


def history(
    ctx: typer.Context,
    member: Annotated[
        str | None, typer.Option("--member", "-m", help="Only attempts identified as this member.")
    ] = None,
    decision: Annotated[
        str | None, typer.Option("--decision", help="GRANTED or DENIED.", case_sensitive=False)
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Newest attempts shown.")] = 50,
    simulated: Annotated[
        bool, typer.Option("--simulated", help="Include attempts recorded by mmauth simulate.")
    ] = False,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the audit log of authentication attempts, newest first, and active lockouts."""
    with handle_errors(as_json):
        import time

        from engine.auth.store import open_store
        from engine.core.errors import ConfigError

        if decision is not None and decision.upper() not in tuple(Decision):
            raise ConfigError(f"--decision must be GRANTED or DENIED, not {decision!r}")
        space, _ = open_workspace(ctx, workspace)
        store = open_store(space)
        attempts = store.history(
            member=member,
            decision=decision.upper() if decision else None,
            origin=None if simulated else Origin.LIVE,
            limit=limit,
        )
        now = time.time()
        locks = [lock for lock in store.lockouts(member) if lock.until > now]
    if as_json:
        print_json(
            {
                "ok": True,
                "attempts": [_attempt_dict(a) for a in attempts],
                "active_lockouts": [vars(lock) for lock in locks],
            }
        )
        return
    table = Table(title=f"Authentication attempts ({len(attempts)} shown, newest first)")
    for column in ("#", "time (UTC)", "decision", "reason", "member", "face", "voice", "ms"):
        table.add_column(column, justify="right" if column in ("#", "ms") else "left")
    for attempt in attempts:
        style = "green" if attempt.decision == Decision.GRANTED else "red"
        table.add_row(
            str(attempt.id),
            _when(attempt.at),
            f"[{style}]{attempt.decision}[/]",
            attempt.reason,
            escape(attempt.identified_member or "-"),
            score_pair(attempt.face_score, attempt.face_threshold),
            score_pair(attempt.voice_score, attempt.voice_threshold),
            f"{attempt.seconds * 1000:.0f}",
        )
    console.print(table)
    for lock in locks:
        console.print(
            f"[yellow]{escape(lock.member)} is locked until {_when(lock.until)} "
            f"after {lock.failures} failed attempts[/]"
        )


def _attempt_dict(attempt: Any) -> dict[str, Any]:
    import dataclasses

    values = dataclasses.asdict(attempt)
    values["time"] = _when(attempt.at)
    return values


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def register(app: typer.Typer) -> None:
    app.command("authenticate")(authenticate)
    app.command("history")(history)
