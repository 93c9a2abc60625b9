"""How the CLI talks: rich output for people, JSON for programs, one error handler for both."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress as RichProgress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from engine.core.errors import MmauthError, OutputError
from engine.core.progress import Progress, ProgressCallback, no_progress
from engine.core.text import printable, printable_lines

console = Console()
error_console = Console(stderr=True)

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder (default: $MMAUTH_WORKSPACE, else the current directory).",
        file_okay=False,
        resolve_path=True,
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def shown(value: object) -> str:
    """An outside value (path, name, message quoting them) ready for rich markup: control
    characters as visible escapes, markup brackets escaped. Use it for every such value."""
    return escape(printable(value))


def shown_lines(lines: Iterable[object]) -> str:
    """Lines the program composed (an error's ``lines``) for rich markup: each escaped on its
    own (``shown``), joined by real line breaks."""
    return escape(printable_lines(lines))


def print_json(value: Any) -> None:
    """Write one JSON document to stdout (no rich markup, no wrapping)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_json_line(value: Any) -> None:
    """Write one JSON object on one line of stdout (JSON Lines: one object per record)."""
    sys.stdout.write(json.dumps(value, default=str) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def handle_errors(as_json: bool = False) -> Iterator[None]:
    """Turn MmauthError into a message on stderr (and JSON on stdout) and its exit code."""
    from cli.context import command_scope

    with command_scope():
        try:
            yield
        except MmauthError as error:
            lines = error_lines(error)
            if as_json:
                message = "\n".join(lines)
                print_json({"ok": False, "error": {"title": error.title, "message": message}})
            error_console.print(
                f"[bold red]{shown(error.title)}:[/] {shown_lines(lines)}", highlight=False
            )
            raise typer.Exit(code=error.exit_code) from None


def error_lines(error: MmauthError) -> tuple[str, ...]:
    """An error's lines, an output path named as within the command's workspace."""
    from cli.context import opened_workspace

    space = opened_workspace()
    if isinstance(error, OutputError) and space is not None:
        return (error.shown(space.relative),)
    return error.lines


@contextlib.contextmanager
def progress_bars(enabled: bool = True) -> Iterator[ProgressCallback]:
    """A progress callback drawing one rich bar per engine stage; a no-op when disabled."""
    if not enabled or not error_console.is_terminal:
        yield no_progress
        return
    tasks: dict[str, TaskID] = {}
    with RichProgress(
        TextColumn("[bold]{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[message]}", style="dim"),
        console=error_console,
        transient=False,
    ) as bars:

        def update(event: Progress) -> None:
            if event.stage not in tasks:
                tasks[event.stage] = bars.add_task(
                    event.stage, total=event.total or None, message=""
                )
            bars.update(
                tasks[event.stage],
                completed=event.step,
                total=event.total or None,
                message=shown(event.message[-60:]),
            )

        yield update


def on_progress_lines(write: Callable[[str], None]) -> ProgressCallback:
    """A progress callback that writes one plain line per event (for logs and non-terminals)."""

    def update(event: Progress) -> None:
        write(f"[{event.stage}] {event.step}/{event.total} {printable(event.message)}")

    return update
