"""What the screens of the app share: failed workers become notifications, and long engine
runs (training, simulation) start, report progress and cancel the same way."""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar

from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button
from textual.worker import Worker

from engine.core.progress import Progress
from tui.errors import notify_failed_worker


class EngineScreen(Screen[None]):
    """A top-level screen whose slow work runs in workers (started with exit_on_error=False)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        notify_failed_worker(self.app, event)


ResultType = TypeVar("ResultType")


class EngineModal(ModalScreen[ResultType], Generic[ResultType]):
    """A modal screen with the same handling of failed workers."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        notify_failed_worker(self.app, event)


class RunScreen(EngineScreen):
    """A screen running one long, cancellable engine job at a time.

    Subclasses compose a ``#start`` and a ``#cancel`` button, implement ``action_start`` (which
    calls ``begin_run`` and starts a thread worker passing ``report_progress`` and the cancel
    event to the engine, then posting ``Finished``), and handle ``on_run_screen_progressed``
    and ``on_run_screen_finished`` (calling ``end_run``).
    """

    BINDINGS = [Binding("ctrl+r", "start", "Run"), Binding("x", "cancel", "Cancel")]

    class Progressed(Message):
        """The engine reported progress (sent from the worker thread)."""

        def __init__(self, event: Progress) -> None:
            super().__init__()
            self.event = event

    class Finished(Message):
        """The run ended: ``result`` is the engine's result, None when it failed or stopped."""

        def __init__(self, result: Any) -> None:
            super().__init__()
            self.result = result

    cancel_event: threading.Event | None = None

    def action_start(self) -> None:
        raise NotImplementedError

    def begin_run(self) -> threading.Event | None:
        """The new run's cancel event, with the buttons switched; None while one is running."""
        if self.cancel_event is not None:
            self.notify("A run is already going; cancel it first.", title="Busy")
            return None
        self.cancel_event = threading.Event()
        self.query_one("#start", Button).disabled = True
        self.query_one("#cancel", Button).disabled = False
        return self.cancel_event

    def end_run(self) -> None:
        """Buttons back for the next run."""
        self.cancel_event = None
        self.query_one("#start", Button).disabled = False
        self.query_one("#cancel", Button).disabled = True

    def report_progress(self, event: Progress) -> None:
        """The engine's progress callback: safe to call from the worker thread."""
        self.post_message(self.Progressed(event))

    @on(Button.Pressed, "#start")
    def start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        """Ask the running job to stop at its next checkpoint (nothing partial is written)."""
        if self.cancel_event is not None:
            self.cancel_event.set()
            self.notify("Stopping at the next checkpoint...", title="Cancelling")
