"""`mmauth authenticate` (one attempt through the whole flow) and `mmauth history` (the audit log)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
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
    print_json_line,
    shown,
)
from engine.auth.words import (
    Decision,
    Integrity,
    Origin,
    Step,
    StepStatus,
    compare_scores,
    score_pair,
)

_MARKS = {
    StepStatus.PASSED: "[green]✔[/]",
    StepStatus.FAILED: "[red]✘[/]",
    StepStatus.SKIPPED: "[dim]-[/]",
}


def authenticate(
    ctx: typer.Context,
    face: Annotated[
        list[Path] | None,
        typer.Option(
            "--face", help="Photo of the person's face (repeat with --voice for several attempts)."
        ),
    ] = None,
    voice: Annotated[
        list[Path] | None,
        typer.Option("--voice", help="Recording of the approval phrase, one per --face."),
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs",
            help="CSV of attempts with columns face,voice (paths relative to the CSV's folder).",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Authenticate a person by face, then voice; show the recommended product on success.

    Several attempts run in one process (the models load once): repeat --face/--voice in pairs,
    or give --pairs CSV. With --json, one JSON object per attempt, one per line (JSON Lines).
    Exit status 0 when every attempt is GRANTED, 1 when one is DENIED (the reason is printed:
    no_face, multiple_faces, unknown_face, voice_mismatch, phrase_mismatch, replay_suspected,
    locked_out, bad_input, ...), 2 on usage errors or unusable settings.
    """
    attempts = _attempt_pairs(face or [], voice or [], pairs)
    all_granted = True
    with handle_errors(as_json):
        from engine.auth.flow import authenticate_many

        space, settings = open_workspace(ctx, workspace)
        on_step = None if as_json else show_step
        # Decided lazily, one attempt at a time, so that each is shown as soon as it is decided.
        decisions = authenticate_many(space, settings, attempts, on_step=on_step)
        for number, (face_path, voice_path) in enumerate(attempts, start=1):
            if not as_json and len(attempts) > 1:
                console.print(
                    f"[bold]Attempt {number}/{len(attempts)}[/]: {shown(str(face_path))} + "
                    f"{shown(str(voice_path))}",
                    highlight=False,
                )
            decision = next(decisions)
            all_granted &= decision.granted
            if as_json:
                print_json_line({"ok": decision.granted, **decision.as_dict()})
            else:
                show_decision(decision)
    raise typer.Exit(code=0 if all_granted else 1)


def _attempt_pairs(
    faces: list[Path], voices: list[Path], pairs_csv: Path | None
) -> list[tuple[Path, Path]]:
    """The (face, voice) pairs asked for: --face/--voice in order, then the CSV's rows."""
    if len(faces) != len(voices):
        raise typer.BadParameter(
            f"{len(faces)} --face and {len(voices)} --voice: give them in pairs",
            param_hint="--face/--voice",
        )
    attempts = list(zip(faces, voices, strict=True))
    if pairs_csv is not None:
        attempts += read_pairs_csv(pairs_csv)
    if not attempts:
        raise typer.BadParameter("give --face and --voice, or --pairs", param_hint="--face")
    return attempts


def read_pairs_csv(path: Path) -> list[tuple[Path, Path]]:
    """Rows of a CSV with ``face`` and ``voice`` columns; relative paths are taken from the
    CSV's folder, so a folder of probes with its list can be moved as one."""
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        header = reader.fieldnames or []
    if header and not {"face", "voice"} <= set(header):
        raise typer.BadParameter(f"{path.name} needs the columns face,voice", param_hint="--pairs")
    if not rows:
        # Else the check for no attempts at all blames --face, which was never meant.
        raise typer.BadParameter(f"{path.name} holds no attempts", param_hint="--pairs")
    attempts = []
    for line, row in enumerate(rows, start=2):
        if not row.get("face") or not row.get("voice"):
            raise typer.BadParameter(
                f"{path.name} line {line}: a face and a voice are needed", param_hint="--pairs"
            )
        attempts.append((path.parent / row["face"], path.parent / row["voice"]))
    return attempts


def show_step(step: Any) -> None:
    """One line per finished step: mark, name, score against threshold, time, what it found."""
    if step.name == Step.DECISION:
        return
    score = ""
    if step.score is not None and step.threshold is not None:
        score = compare_scores(step.score, step.threshold)
    console.print(
        f"{_MARKS.get(step.status, '?')} [bold]{step.name:<8}[/] {score:<17} "
        f"[dim]{step.seconds * 1000:6.0f} ms[/]  {shown(step.message)}",
        highlight=False,
    )


def show_decision(decision: Any) -> None:
    if decision.granted:
        console.print(
            f"\n[bold green]{Decision.GRANTED}[/] {shown(decision.member)}", highlight=False
        )
        if decision.category is not None:
            console.print(
                f"Recommended product category: [bold]{shown(decision.category)}[/] "
                f"(model confidence {decision.confidence:.0%})",
                highlight=False,
            )
    else:
        console.print(
            f"\n[bold red]{Decision.DENIED}[/] ({decision.reason}): {shown(decision.message)}",
            highlight=False,
        )
    recorded = (
        f"attempt #{decision.attempt_id}"
        if decision.attempt_id is not None
        else "not written to the audit log"
    )
    console.print(f"[dim]{decision.seconds:.2f} s, {recorded}[/]")


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

        from engine.auth.store import AttemptRecord, open_store
        from engine.core.errors import ConfigError

        if decision is not None and decision.upper() not in tuple(Decision):
            raise ConfigError(f"--decision must be GRANTED or DENIED, not {decision!r}")
        space, _ = open_workspace(ctx, workspace)
        store = open_store(space)
        chain = store.log.check_chain()
        events = store.log.events(limit=10)
        rows = store.history_with_marks(
            chain,
            member=member,
            decision=decision.upper() if decision else None,
            origin=None if simulated else Origin.LIVE,
            limit=limit,
        )
        attempts = [row for row in rows if isinstance(row, AttemptRecord)]
        marks = [row for row in rows if not isinstance(row, AttemptRecord)]
        now = time.time()
        locks = [lock for lock in store.lockouts(member) if lock.until > now]
    if as_json:
        print_json(
            {
                "ok": True,
                "attempts": [_attempt_dict(a) for a in attempts],
                "active_lockouts": [vars(lock) for lock in locks],
                "events": [dataclasses.asdict(event) for event in events],
                "audit_log_intact": chain.intact,
                "audit_log_problems": list(chain.problems),
                "audit_log_marks": [_mark_dict(mark) for mark in marks],
            }
        )
        return
    table = Table(title=f"Authentication attempts ({len(attempts)} shown, newest first)")
    columns = ["#", "time (UTC)", "decision", "reason", "member", "face", "voice", "ms"]
    # Only a log that does not verify gets the column, so an intact one reads as before.
    flagged = bool(marks) or any(attempt.integrity for attempt in attempts)
    for column in columns + (["audit log"] if flagged else []):
        table.add_column(column, justify="right" if column in ("#", "ms") else "left")
    for row in rows:
        if not isinstance(row, AttemptRecord):
            colour = "yellow" if row.kind == Integrity.ACKNOWLEDGED else "red"
            when = _when(row.at) if row.at is not None else ""
            # What was acknowledged is long and listed with the events below the table.
            text = f"by {row.actor}" if row.kind == Integrity.ACKNOWLEDGED else row.text
            cells = ["", when, f"[{colour}]{row.kind}[/]", "", "", "", "", ""]
            table.add_row(*cells, f"[{colour}]{shown(text)}[/]")
            continue
        style = "green" if row.decision == Decision.GRANTED else "red"
        cells = [
            str(row.id),
            _when(row.at),
            f"[{style}]{row.decision}[/]",
            shown(row.reason),
            shown(row.identified_member or "-"),
            score_pair(row.face_score, row.face_threshold),
            score_pair(row.voice_score, row.voice_threshold),
            f"{row.seconds * 1000:.0f}",
        ]
        if flagged:
            cells.append(f"[bold red]{row.integrity}[/]" if row.integrity else "")
        table.add_row(*cells)
    console.print(table)
    for lock in locks:
        console.print(
            f"[yellow]{shown(lock.member)} is locked until {_when(lock.until)} "
            f"after {lock.failures} failed attempts (mmauth unlock lifts it)[/]"
        )
    for event in events:
        console.print(
            f"[dim]{_when(event.at)} {event.kind} by {shown(event.actor)}"
            + (f" ({shown(event.member)})" if event.member else "")
            + f": {shown(event.detail)}[/]",
            highlight=False,
        )
    if not chain.intact:
        console.print(
            f"[bold red]The audit log was tampered with:[/] {shown('; '.join(chain.problems))}. "
            "Authentication is stopped until mmauth audit acknowledge.",
            highlight=False,
        )


def _attempt_dict(attempt: Any) -> dict[str, Any]:
    values = dataclasses.asdict(attempt)
    values["time"] = _when(attempt.at)
    return values


def _mark_dict(mark: Any) -> dict[str, Any]:
    values = dataclasses.asdict(mark)
    values["time"] = _when(mark.at) if mark.at is not None else None
    return values


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def register(app: typer.Typer) -> None:
    app.command("authenticate")(authenticate)
    app.command("history")(history)
