"""A yes/no question over the current screen, for a step that cannot be undone."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismissed with True when the action is confirmed; Escape or Cancel answers False.

    ``title`` and ``text`` are shown as plain text (never markup): make outside values in them
    printable first. Cancel has the focus, so Enter alone never confirms.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, text: str, action: str) -> None:
        super().__init__()
        self.question_title = title
        self.question_text = text
        self.action_label = action

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-panel"):
            yield Label(self.question_title, id="confirm-title", markup=False)
            yield Static(self.question_text, id="confirm-text", markup=False)
            with Horizontal(classes="toolbar"):
                yield Button(self.action_label, id="confirm", variant="warning", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#confirm")
    def confirmed(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
