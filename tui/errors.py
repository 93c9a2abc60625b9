"""How the terminal app shows errors: as notifications with a title, never as a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from textual.app import App
from textual.worker import Worker, WorkerState

from engine.core.errors import CancelledError, MmauthError


def notify_error(app: App[Any], error: BaseException) -> None:
    """Show an error as a notification: the engine's own title and message when it has them."""
    if isinstance(error, CancelledError):
        app.notify(error.message, title=error.title, severity="warning")
    elif isinstance(error, MmauthError):
        app.notify(error.message, title=error.title, severity="error", timeout=10)
    else:
        app.notify(
            f"{type(error).__name__}: {error}",
            title="Unexpected error",
            severity="error",
            timeout=10,
        )


@contextlib.contextmanager
def engine_errors(app: App[Any]) -> Iterator[None]:
    """Inside a worker: an engine error becomes a notification and the worker ends quietly."""
    try:
        yield
    except MmauthError as error:
        notify_error(app, error)


def notify_failed_worker(app: App[Any], event: Worker.StateChanged) -> None:
    """Workers run with exit_on_error=False; this turns their unexpected failures into notices."""
    if event.state == WorkerState.ERROR and event.worker.error is not None:
        notify_error(app, event.worker.error)
