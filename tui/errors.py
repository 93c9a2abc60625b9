"""How the terminal app shows errors: a failure of long work stays on screen in a panel with its
cause and what to do; small ones (a preview of a bad file) are notifications. Never a traceback.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from typing import Any

from textual.app import App
from textual.markup import escape
from textual.worker import Worker, WorkerState

from engine.core.errors import (
    CancelledError,
    ConfigError,
    EnrolmentError,
    InputError,
    MissingStageError,
    MmauthError,
    ModelIntegrityError,
    OutputError,
)
from engine.core.text import printable, printable_lines
from engine.core.workspace import Workspace
from tui.child_processes import worker_log_path

WHAT_TO_DO: tuple[tuple[type[MmauthError], str], ...] = (
    (ConfigError, "Correct the value in mmauth.toml (or the MMAUTH_ variable), then run again."),
    (MissingStageError, "Run the step the message names first, then run this again."),
    (ModelIntegrityError, "Train again (Train screen, F3) to write models this version accepts."),
    (EnrolmentError, "Change what the message names and enrol again."),
    (InputError, "Fix or remove the file the message names, then run again."),
    (
        OutputError,
        "Make room for the file the message names (move away what is in its place, free disk "
        "space or allow writing), then run again.",
    ),
)
"""Advice per kind of engine error, the most specific class first."""


def what_to_do(error: BaseException) -> str:
    """What a person can do about an error (the engine's message often says more)."""
    for kind, advice in WHAT_TO_DO:
        if isinstance(error, kind):
            return advice
    if isinstance(error, MmauthError):
        return "Read the message above, correct what it names and run again."
    return (
        f"This is a fault in mmauth or a library, not in your data. The details are in "
        f"{worker_log_path()}. Setting jobs = 1 in mmauth.toml runs the work in this process."
    )


def error_title(error: BaseException) -> str:
    """The headline of an error: the engine's own title, else that it was unexpected."""
    return error.title if isinstance(error, MmauthError) else "Unexpected error"


def error_message(error: BaseException, workspace: Workspace | None = None) -> str:
    """What went wrong, in a sentence (an output path named as within ``workspace``)."""
    if isinstance(error, OutputError) and workspace is not None:
        return error.shown(workspace.relative)
    return error.message if isinstance(error, MmauthError) else f"{type(error).__name__}: {error}"


def printable_message(error: BaseException, workspace: Workspace | None = None) -> str:
    """``error_message`` safe for the screen: an engine error's own lines stay lines, while a
    line break inside a quoted name shows as ``\\n``."""
    if isinstance(error, MmauthError) and not isinstance(error, OutputError):
        return printable_lines(error.lines)
    return printable(error_message(error, workspace))


def _workspace(app: App[Any]) -> Workspace | None:
    session = getattr(app, "session", None)
    return getattr(session, "workspace", None)


def log_traceback(error: BaseException) -> None:
    """Keep an unexpected error's traceback in the worker log, where the panel points."""
    with contextlib.suppress(OSError), worker_log_path().open("a", encoding="utf-8") as log:
        log.write("".join(traceback.format_exception(error)))


def notify_error(app: App[Any], error: BaseException) -> None:
    """Show an error as a notification: the engine's own title and message when it has them."""
    # Messages quote file and member names: shown escaped, never as markup.
    if isinstance(error, CancelledError):
        app.notify(
            escape(printable_message(error)), title=printable(error.title), severity="warning"
        )
    else:
        app.notify(
            escape(printable_message(error, _workspace(app))),
            title=printable(error_title(error)),
            severity="error",
            timeout=10,
        )


def show_error(app: App[Any], error: BaseException) -> None:
    """A failure of long work: a panel that stays until dismissed (a cancellation is only a
    notification: the user asked for it)."""
    if isinstance(error, CancelledError):
        notify_error(app, error)
        return
    from tui.screens.error import ErrorScreen

    if not isinstance(error, MmauthError):
        log_traceback(error)
    app.push_screen(
        ErrorScreen(
            printable(error_title(error)),
            printable_message(error, _workspace(app)),
            what_to_do(error),
        )
    )


@contextlib.contextmanager
def engine_errors(app: App[Any], *, pinned: bool = False) -> Iterator[None]:
    """Inside a worker: an engine error is shown (in a panel when ``pinned``, else as a
    notification) and the worker ends quietly."""
    try:
        yield
    except MmauthError as error:
        app.call_from_thread(show_error if pinned else notify_error, app, error)


def notify_failed_worker(app: App[Any], event: Worker.StateChanged) -> None:
    """Workers run with exit_on_error=False; their unexpected failures are shown in a panel."""
    if event.state == WorkerState.ERROR and event.worker.error is not None:
        show_error(app, event.worker.error)
