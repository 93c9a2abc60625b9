"""Rich renderables both front ends draw with (the CLI prints them, the TUI's widgets paint them).

Only rich is imported here, never textual, so ``mmauth`` can use it without loading the app.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

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


class SpectrogramView:
    """A (bands x frames) matrix of dB values drawn with half blocks, two bands per cell and the
    lowest band at the bottom; values are relative to the loudest cell (0 dB), floored at
    ``floor_db``.

    The matrix is pooled to ``width`` x ``height`` cells (default: the console's width and
    height, else half the bands).
    """

    def __init__(
        self,
        spectrogram_db: Any,
        *,
        floor_db: float = -80.0,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        self.spectrogram_db = spectrogram_db
        self.floor_db = floor_db
        self.width = width
        self.height = height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from engine.voices.views import pool_matrix

        width = self.width or options.max_width
        height = self.height or options.height or (len(self.spectrogram_db) + 1) // 2
        pooled = pool_matrix(self.spectrogram_db, rows=2 * height, cols=width)
        levels = (pooled - self.floor_db) / -self.floor_db
        for row in range(height):
            # Row 0 of the matrix is the lowest band: the top cell row shows the highest two.
            upper = levels[2 * (height - row) - 1]
            lower = levels[2 * (height - row) - 2]
            for top, bottom in zip(upper, lower, strict=True):
                yield Segment(
                    UPPER_HALF, Style(color=level_colour(top), bgcolor=level_colour(bottom))
                )
            yield Segment.line()
