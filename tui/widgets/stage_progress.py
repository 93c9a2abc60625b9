"""One progress bar per stage of long engine work, created as the stages report in."""

from __future__ import annotations

from enum import StrEnum

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Label, ProgressBar

from engine.core.progress import Progress


class RunEnding(StrEnum):
    """How a run of long work ended, as its unfinished bars say."""

    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class StageBar(Horizontal):
    """A stage's name, its bar and its latest message."""

    DEFAULT_CSS = """
    StageBar {
        height: 1;
    }
    StageBar > .stage-name {
        width: 16;
        text-style: bold;
    }
    StageBar > ProgressBar {
        width: 30;
    }
    StageBar > .stage-message {
        width: 1fr;
        color: $text-muted;
        text-overflow: ellipsis;
        text-wrap: nowrap;
    }
    StageBar.-failed > .stage-name, StageBar.-failed > .stage-message {
        color: $error;
    }
    StageBar.-cancelled > .stage-name, StageBar.-cancelled > .stage-message {
        color: $warning;
    }
    """

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage = stage
        self.bar = ProgressBar(show_eta=False)
        self.message = Label("", classes="stage-message")

    def compose(self) -> ComposeResult:
        yield Label(self.stage, classes="stage-name")
        yield self.bar
        yield self.message

    def report(self, event: Progress) -> None:
        """Move the bar to the event's step."""
        self.bar.update(total=event.total or None, progress=event.step)
        self.message.update(event.message)

    @property
    def complete(self) -> bool:
        """Whether the stage reported its last step."""
        return self.bar.total is not None and self.bar.progress >= self.bar.total

    def end(self, ending: RunEnding) -> None:
        """Stop the bar: full when the run is done, else frozen where it stopped and marked."""
        if ending == RunEnding.DONE:
            total = self.bar.total or 1
            self.bar.update(total=total, progress=total)
            return
        # A bar of unknown length animates until it has one: freeze it empty.
        self.bar.update(total=self.bar.total or 1, progress=self.bar.progress)
        self.add_class(f"-{ending}")
        self.message.update(f"{ending}: {self.message.content}" if self.message.content else ending)


class StageProgress(VerticalScroll):
    """Bars for every stage seen since the last reset, in order of appearance."""

    DEFAULT_CSS = """
    StageProgress {
        height: auto;
        max-height: 8;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.bars: dict[str, StageBar] = {}

    def reset(self) -> None:
        """Remove every bar, before a new run."""
        self.bars = {}
        self.remove_children()

    def report(self, event: Progress) -> None:
        """Update (or add) the bar of the event's stage."""
        bar = self.bars.get(event.stage)
        if bar is None:
            bar = self.bars[event.stage] = StageBar(event.stage)
            self.mount(bar)
            self.call_after_refresh(bar.report, event)
            return
        bar.report(event)

    def stopping(self) -> None:
        """Say on the running bars that a cancel was asked for."""
        for bar in self.bars.values():
            if not bar.complete:
                bar.message.update("stopping at the next checkpoint...")

    def finish(self, ending: RunEnding) -> None:
        """Every bar shows how the run ended (unfinished ones marked cancelled or failed)."""
        for bar in self.bars.values():
            if ending == RunEnding.DONE or not bar.complete:
                # After the bar's own first report, which waits for it to be mounted.
                self.call_after_refresh(bar.end, ending)
