"""What every screen of the app shares: failed workers become notifications."""

from __future__ import annotations

from typing import Generic, TypeVar

from textual.screen import ModalScreen, Screen
from textual.worker import Worker

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
