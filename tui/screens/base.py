"""What the screens of the app share: failed workers become notifications, and long engine
runs (training, simulation) start, report progress and cancel the same way."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from textual import on
from textual.binding import Binding
from textual.dom import DOMNode
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button
from textual.worker import Worker

from engine.core.errors import CancelledError, MmauthError
from engine.core.progress import Progress
from tui.errors import notify_error, notify_failed_worker, show_error
from tui.session import session_of
from tui.widgets.stage_progress import RunEnding, StageProgress


class EngineScreen(Screen[None]):
    """A top-level screen whose slow work runs in workers (started with exit_on_error=False)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        notify_failed_worker(self.app, event)


ResultType = TypeVar("ResultType")


class EngineModal(ModalScreen[ResultType], Generic[ResultType]):
    """A modal screen with the same handling of failed workers."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        notify_failed_worker(self.app, event)


def run_and_report(
    node: DOMNode, call: Callable[[], Any], finished: Callable[[Any, RunEnding], Message]
) -> None:
    """In a worker thread: call the engine and post ``finished(result, ending)`` to ``node``
    however the call ends.

    An engine error is shown in the error panel, a cancellation as a notification; an
    unexpected exception is re-raised for the worker's failure handler (the panel too).
    """
    result, ending = None, RunEnding.FAILED
    try:
        # Long work may start worker processes (jobs > 1).
        session_of(node).prepare_processes()
        result = call()
        ending = RunEnding.DONE
    except CancelledError as error:
        ending = RunEnding.CANCELLED
        node.app.call_from_thread(notify_error, node.app, error)
    except MmauthError as error:
        node.app.call_from_thread(show_error, node.app, error)
    finally:
        node.post_message(finished(result, ending))


class RunScreen(EngineScreen):
    """A screen running one long, cancellable engine job at a time.

    Subclasses compose a ``#start`` and a ``#cancel`` button and a StageProgress, implement
    ``action_start`` (which calls ``begin_run`` and starts a thread worker whose body is
    ``run_engine``, passing ``report_progress`` and the cancel event to the engine), and handle
    ``on_run_screen_progressed`` and ``on_run_screen_finished`` (calling ``end_run``).
    """

    BINDINGS = [Binding("ctrl+r", "start", "Run"), Binding("escape", "cancel", "Cancel")]

    class Progressed(Message):
        """The engine reported progress (sent from the worker thread)."""

        def __init__(self, event: Progress) -> None:
            super().__init__()
            self.event = event

    class Finished(Message):
        """The run ended: ``result`` is the engine's result, None unless ``ending`` is DONE."""

        def __init__(self, result: Any, ending: RunEnding) -> None:
            super().__init__()
            self.result = result
            self.ending = ending

    cancel_event: threading.Event | None = None

    def action_start(self) -> None:
        raise NotImplementedError

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # None shows the key dimmed in the footer: Run while a run goes, Cancel while none does.
        if action == "start":
            return self.cancel_event is None or None
        if action == "cancel":
            return self.cancel_event is not None or None
        return True

    def begin_run(self) -> threading.Event | None:
        """The new run's cancel event, with the buttons switched; None while one is running."""
        if self.cancel_event is not None:
            self.notify("A run is already going; cancel it first.", title="Busy")
            return None
        self.cancel_event = threading.Event()
        self.query_one(StageProgress).reset()
        self.query_one("#start", Button).disabled = True
        cancel = self.query_one("#cancel", Button)
        cancel.disabled = False
        cancel.focus()
        self.refresh_bindings()
        return self.cancel_event

    def run_engine(self, call: Callable[[], Any]) -> None:
        """The body of a run's worker: call the engine and post Finished however it ends."""
        run_and_report(self, call, self.Finished)

    def end_run(self, ending: RunEnding) -> None:
        """Bars show how the run ended; buttons back for the next run."""
        self.cancel_event = None
        self.query_one(StageProgress).finish(ending)
        start = self.query_one("#start", Button)
        start.disabled = False
        self.query_one("#cancel", Button).disabled = True
        if self.focused is None or self.focused.disabled:
            start.focus()
        self.refresh_bindings()

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
        if self.cancel_event is not None and not self.cancel_event.is_set():
            self.cancel_event.set()
            self.query_one(StageProgress).stopping()
            self.notify("Stopping at the next checkpoint...", title="Cancelling")
