"""Progress events and cancellation: plain Python that any front end can render."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from engine.core.errors import CancelledError


@dataclasses.dataclass(frozen=True)
class Progress:
    """One step of long work, as reported to a front end."""

    stage: str
    """Which stage is running, e.g. ``faces``, ``voices``, ``train.face``."""
    step: int
    """Steps completed so far in this stage."""
    total: int
    """Steps this stage has in all (0 when unknown)."""
    message: str = ""
    """What just happened, for a log line."""
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Figures measured at this step, e.g. a fold's F1 or a finished model's EER."""


ProgressCallback = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """A callback that ignores progress, for callers that do not show it."""


def check_cancelled(cancel: threading.Event | None, stage: str) -> None:
    """Raise CancelledError when ``cancel`` is set; called between units of work."""
    if cancel is not None and cancel.is_set():
        raise CancelledError(f"{stage} was cancelled; nothing partial was written")
