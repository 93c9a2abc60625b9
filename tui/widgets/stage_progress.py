"""One progress bar per stage of long engine work, created as the stages report in."""

from __future__ import annotations

from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Label, ProgressBar

from engine.core.progress import Progress


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
    """

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage = stage
        self.bar = ProgressBar(show_eta=False)
        self.message = Label("", classes="stage-message")

    def compose(self):
        yield Label(self.stage, classes="stage-name")
        yield self.bar
        yield self.message

    def report(self, event: Progress) -> None:
        """Move the bar to the event's step."""
        self.bar.update(total=event.total or None, progress=event.step)
        self.message.update(event.message)


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
