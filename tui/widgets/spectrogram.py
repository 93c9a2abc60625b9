"""A mel spectrogram drawn with half-block characters: two frequency bands per cell."""

from __future__ import annotations

from typing import Any

from textual.strip import Strip
from textual.widget import Widget

from cli.render import SpectrogramView


class Spectrogram(Widget):
    """Shows a (bands x frames) matrix of dB values, the lowest band at the bottom, with the
    renderable ``mmauth voice-view`` prints (cli.render.SpectrogramView)."""

    DEFAULT_CSS = """
    Spectrogram {
        width: 1fr;
        height: 4;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._db: Any = None
        self._floor_db = -80.0
        self._rows: list[Strip] = []
        self._drawn_for: tuple[int, int] = (0, 0)

    def show(self, spectrogram_db: Any, floor_db: float = -80.0) -> None:
        """Draw dB values relative to the loudest cell (0 dB), floored at ``floor_db``; None
        clears the view."""
        self._db, self._floor_db = spectrogram_db, floor_db
        self._drawn_for = (0, 0)
        self.refresh()

    def _draw(self, width: int, height: int) -> None:
        self._drawn_for = (width, height)
        view = SpectrogramView(self._db, floor_db=self._floor_db, width=width, height=height)
        console = self.app.console
        lines = console.render_lines(
            view, console.options.update_dimensions(width, height), pad=False
        )
        self._rows = [Strip(line, width) for line in lines]

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._db is None or width <= 0 or height <= 0:
            return Strip.blank(width, self.rich_style)
        if self._drawn_for != (width, height):
            self._draw(width, height)
        return self._rows[y] if y < len(self._rows) else Strip.blank(width, self.rich_style)
