"""A confusion matrix as a table: correct counts green, errors red, zeros dimmed."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text


def confusion_table(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> Table:
    """Rows are true classes, columns predicted ones."""
    table = Table(title="true \u2193  predicted \u2192", box=None, padding=(0, 1))
    table.add_column("", style="bold", no_wrap=True, max_width=16)
    for label in labels:
        table.add_column(str(label)[:8], justify="right", no_wrap=True)
    for row_index, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        cells = []
        for column_index, count in enumerate(row):
            if not count:
                style = "dim"
            elif row_index == column_index:
                style = "bold green"
            else:
                style = "bold red"
            cells.append(Text(str(int(count)), style=style))
        table.add_row(str(label), *cells)
    return table
