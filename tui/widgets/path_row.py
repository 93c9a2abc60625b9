"""A labelled one-line input, as used for paths, names and ids in forms."""

from __future__ import annotations

from textual.containers import Horizontal
from textual.widgets import Input, Label


def labelled_input(label: str, placeholder: str, input_id: str) -> Horizontal:
    """A row of a short label and an input (styled by ``.path-row`` in mmauth.tcss).

    Focusing the input keeps its text unselected, so the next key adds to it rather than
    replacing it.
    """
    return Horizontal(
        Label(label, classes="path-label"),
        Input(placeholder=placeholder, id=input_id, select_on_focus=False),
        classes="path-row",
    )
