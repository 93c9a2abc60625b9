"""A mel spectrogram drawn with half-block characters: two frequency bands per cell."""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

UPPER_HALF = "\u2580"
# Colour ramp from the floor (quiet) to the loudest cell: dark blue, purple, orange, yellow.
_RAMP = ((10, 10, 40), (90, 30, 120), (200, 70, 60), (250, 170, 40), (255, 250, 180))


def level_colour(level: float) -> str:
    """Hex colour of a level in [0, 1] (0 = the floor, 1 = the loudest cell)."""
    level = min(1.0, max(0.0, level))
    position = level * (len(_RAMP) - 1)
    index = min(int(position), len(_RAMP) - 2)
    weight = position - index
    low, high = _RAMP[index], _RAMP[index + 1]
    red, green, blue = (round(a + (b - a) * weight) for a, b in zip(low, high, strict=True))
    return f"#{red:02x}{green:02x}{blue:02x}"


class Spectrogram(Widget):
    """Shows a (bands x frames) matrix of dB values, the lowest band at the bottom."""

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
        from engine.voices.views import pool_matrix

        self._drawn_for = (width, height)
        pooled = pool_matrix(self._db, rows=2 * height, cols=width)
        levels = (pooled - self._floor_db) / -self._floor_db
        self._rows = []
        for row in range(height):
            # Row 0 of the matrix is the lowest band: the top cell row shows the highest two.
            upper = levels[2 * (height - row) - 1]
            lower = levels[2 * (height - row) - 2]
            self._rows.append(
                Strip(
                    [
                        Segment(
                            UPPER_HALF,
                            Style(color=level_colour(top), bgcolor=level_colour(bottom)),
                        )
                        for top, bottom in zip(upper, lower, strict=True)
                    ]
                )
            )

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._db is None or width <= 0 or height <= 0:
            return Strip.blank(width, self.rich_style)
        if self._drawn_for != (width, height):
            self._draw(width, height)
        return self._rows[y] if y < len(self._rows) else Strip.blank(width, self.rich_style)
