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


class Waveform(Widget):
    """Shows the envelope of a mono signal, the detected speech in the accent colour and the
    silence around it dimmed; the caption (e.g. its duration) is set by the caller."""

    DEFAULT_CSS = """
    Waveform {
        width: 1fr;
        height: 6;
        color: $accent;
    }
    Waveform > .waveform--silence {
        color: $text-muted;
    }
    """
    COMPONENT_CLASSES = {"waveform--silence"}

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._samples: Any = None
        self._speech: tuple[float, float] | None = None
        self._cells: list[str] = []
        self._drawn_for: tuple[int, int] = (0, 0)
        self.placeholder = "no clip"

    def show(self, samples: Any, speech: tuple[float, float] | None = None) -> None:
        """Draw a mono signal; ``speech`` is the (start, end) fraction of it holding speech.

        None clears the view.
        """
        self._samples = samples
        self._speech = speech
        self._drawn_for = (0, 0)
        self.refresh()

    def clear(self, placeholder: str = "no clip") -> None:
        """Remove the waveform and show ``placeholder`` instead."""
        self.placeholder = placeholder
        self.show(None)

    def _draw(self, width: int, height: int) -> None:
        import numpy as np

        from engine.voices.views import waveform_envelope

        self._drawn_for = (width, height)
        levels = 2 * height
        rows = [[" "] * width for _ in range(height)]
        samples = np.asarray(self._samples, dtype=np.float32)
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        lows, highs = waveform_envelope(samples / (peak or 1.0), width=width)
        for column, (low, high) in enumerate(zip(lows, highs, strict=True)):
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
        line = self._cells[y] if y < len(self._cells) else " " * width
        if self._speech is None:
            return Strip([Segment(line, self.get_component_rich_style("waveform--silence"))])
        start, end = (int(round(f * width)) for f in self._speech)
        silence = self.get_component_rich_style("waveform--silence")
        return Strip(
            [
                Segment(line[:start], silence),
                Segment(line[start:end], style),
                Segment(line[end:], silence),
            ]
        )
