"""A photo drawn with half-block characters: two pixels per cell, any terminal with colour."""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

UPPER_HALF = "\u2580"


class ImagePreview(Widget):
    """Shows an RGB image scaled to fit, keeping its aspect ratio (a cell is two pixels tall)."""

    DEFAULT_CSS = """
    ImagePreview {
        width: 1fr;
        height: 1fr;
        min-height: 4;
        content-align: center middle;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._image: Any = None
        self._rows: list[Strip] = []
        self._fitted_to: tuple[int, int] = (0, 0)
        self.placeholder = "no photo"

    def show(self, pixels: Any) -> None:
        """Draw an image given as an RGB uint8 array (height x width x 3); None clears it."""
        from PIL import Image

        self._image = None if pixels is None else Image.fromarray(pixels).convert("RGB")
        self._fitted_to = (0, 0)
        self.refresh()

    def clear(self, placeholder: str = "no photo") -> None:
        """Remove the picture and show ``placeholder`` instead."""
        self.placeholder = placeholder
        self.show(None)

    def _fit(self, width: int, height: int) -> None:
        from PIL import Image

        self._fitted_to = (width, height)
        self._rows = []
        if self._image is None or width <= 0 or height <= 0:
            return
        image_width, image_height = self._image.size
        scale = min(width / image_width, 2 * height / image_height)
        columns = max(1, int(image_width * scale))
        pixel_rows = max(2, int(image_height * scale) // 2 * 2)
        small = self._image.resize((columns, pixel_rows), Image.Resampling.BILINEAR)
        pixels = small.load()
        left = (width - columns) // 2
        top = (height - pixel_rows // 2) // 2
        blank = Strip([Segment(" " * width)])
        self._rows = [blank] * top
        for row in range(0, pixel_rows, 2):
            segments = [Segment(" " * left)]
            for column in range(columns):
                upper = pixels[column, row]
                lower = pixels[column, row + 1]
                style = Style(color=_hex(upper), bgcolor=_hex(lower))
                segments.append(Segment(UPPER_HALF, style))
            self._rows.append(Strip(segments))

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._image is None:
            if y == height // 2:
                text = self.placeholder[:width].center(width)
                return Strip([Segment(text, self.rich_style)])
            return Strip.blank(width, self.rich_style)
        if self._fitted_to != (width, height):
            self._fit(width, height)
        if y < len(self._rows):
            return self._rows[y].extend_cell_length(width, self.rich_style)
        return Strip.blank(width, self.rich_style)


def _hex(rgb: tuple[int, int, int]) -> str:
    return f"#{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}"
