"""A correlation matrix as coloured cells: blue for negative, red for positive, numbers inside."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.widgets import Static


def correlation_colour(value: float) -> str:
    """Background colour of a correlation: white at 0, saturated red at +1 and blue at -1."""
    strength = max(0.0, min(1.0, abs(value)))
    fade = int(round(255 * (1 - 0.85 * strength)))
    return f"rgb(255,{fade},{fade})" if value >= 0 else f"rgb({fade},{fade},255)"


class Heatmap(Static):
    """Rows name the variables in full; columns are numbered to fit a narrow terminal."""

    DEFAULT_CSS = """
    Heatmap {
        width: auto;
        height: auto;
    }
    """

    def show(self, names: Sequence[str], matrix: Sequence[Sequence[float]]) -> None:
        """Draw a square matrix whose rows and columns are ``names``."""
        table = Table(box=None, padding=(0, 0), show_edge=False, pad_edge=False)
        table.add_column("", no_wrap=True, max_width=28, overflow="ellipsis")
        for index in range(len(names)):
            table.add_column(f"{index + 1:>6}", justify="right", no_wrap=True)
        for index, (name, row) in enumerate(zip(names, matrix, strict=True)):
            cells = [
                Text(f" {value:5.2f}", style=f"black on {correlation_colour(value)}")
                for value in row
            ]
            table.add_row(f"{index + 1:>2} {name}", *cells)
        self.update(table)
