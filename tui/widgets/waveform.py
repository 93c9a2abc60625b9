"""A recording's waveform drawn as its min/max envelope, two levels per character cell."""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from textual.strip import Strip
from textual.widget import Widget

# Half-block glyphs for (upper half filled, lower half filled).
_GLYPHS = {
    (False, False): " ",
    (True, False): "\u2580",
    (False, True): "\u2584",
    (True, True): "\u2588",
}


def envelope(samples: Any, columns: int) -> list[tuple[float, float]]:
    """(min, max) of the samples falling in each of ``columns`` equal slices, scaled to [-1, 1]."""
    import numpy as np

    values = np.asarray(samples, dtype=float).ravel()
    if values.size == 0 or columns <= 0:
        return []
    peak = float(np.max(np.abs(values))) or 1.0
    slices = np.array_split(values / peak, min(columns, values.size))
    return [(float(part.min()), float(part.max())) for part in slices]


class Waveform(Widget):
    """Shows the envelope of a mono signal; the caption (e.g. its duration) is set by the caller."""

    DEFAULT_CSS = """
    Waveform {
        width: 1fr;
        height: 6;
        color: $accent;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._samples: Any = None
        self._cells: list[str] = []
        self._drawn_for: tuple[int, int] = (0, 0)
        self.placeholder = "no clip"

    def show(self, samples: Any) -> None:
        """Draw a mono signal (any numeric sequence); None clears the view."""
        self._samples = samples
        self._drawn_for = (0, 0)
        self.refresh()

    def clear(self, placeholder: str = "no clip") -> None:
        """Remove the waveform and show ``placeholder`` instead."""
        self.placeholder = placeholder
        self.show(None)

    def _draw(self, width: int, height: int) -> None:
        self._drawn_for = (width, height)
        levels = 2 * height
        rows = [[" "] * width for _ in range(height)]
        for column, (low, high) in enumerate(envelope(self._samples, width)):
            # Level 0 is the top half-cell; amplitude +1 maps to the top, -1 to the bottom.
            top = int(round((1 - high) / 2 * (levels - 1)))
            bottom = int(round((1 - low) / 2 * (levels - 1)))
            for row in range(height):
                upper = top <= 2 * row <= bottom
                lower = top <= 2 * row + 1 <= bottom
                rows[row][column] = _GLYPHS[(upper, lower)]
        self._cells = ["".join(row) for row in rows]

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        style = self.rich_style
        if self._samples is None:
            text = self.placeholder[:width].center(width) if y == height // 2 else " " * width
            return Strip([Segment(text, style)])
        if self._drawn_for != (width, height):
            self._draw(width, height)
        return Strip([Segment(self._cells[y] if y < len(self._cells) else " " * width, style)])
