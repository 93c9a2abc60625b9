"""The steps of an authentication, each lit up as it passes or fails."""

from __future__ import annotations

from typing import Literal

from textual.content import Content
from textual.widgets import Static

from engine.auth.words import StepStatus

StepState = Literal["waiting", "running"] | StepStatus
"""An engine status, or the two a step has on screen before the engine reports it."""
_MARKS: dict[str, str] = {
    "waiting": "[dim]\u00b7[/]",
    "running": "[b $warning]\u2026[/]",
    StepStatus.PASSED: "[b $success]\u2714[/]",
    StepStatus.FAILED: "[b $error]\u2718[/]",
    StepStatus.SKIPPED: "[dim]-[/]",
}


class StepRow(Static):
    """One step: a mark, its name and what it found (score against threshold, or why)."""

    DEFAULT_CSS = """
    StepRow {
        height: 1;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    StepRow.-passed { background: $success 15%; }
    StepRow.-failed { background: $error 15%; }
    StepRow.-running { background: $warning 15%; }
    """

    def __init__(self, step: str, title: str) -> None:
        super().__init__(id=f"step-{step}")
        self.step = step
        self.title = title
        self.state: StepState = "waiting"
        self.detail = ""

    def on_mount(self) -> None:
        self.set_state("waiting")

    def set_state(self, state: StepState, detail: str = "") -> None:
        """Show the step in ``state`` with ``detail`` beside its name."""
        self.remove_class(f"-{self.state}")
        self.state, self.detail = state, detail
        self.add_class(f"-{state}")
        self.update(
            Content.from_markup(
                f"{_MARKS[state]} [b]$title[/] $detail", title=f"{self.title:<9}", detail=detail
            )
        )
