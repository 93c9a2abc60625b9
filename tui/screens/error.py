"""The error panel: a failure of long work stays on screen, with its cause and what to do, until
the user dismisses it (as harlequin's error modal does)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static


class ErrorScreen(ModalScreen[None]):
    """A modal naming what failed, why, and what to do; Escape, Enter or the button closes it."""

    BINDINGS = [Binding("escape", "dismiss_panel", "Dismiss")]

    def __init__(self, title: str, message: str, advice: str) -> None:
        super().__init__()
        self.error_title = title
        self.error_text = message
        self.advice = advice

    def compose(self) -> ComposeResult:
        with Vertical(id="error-panel"):
            yield Label(self.error_title, id="error-title", markup=False)
            yield Static(self.error_text, id="error-message", markup=False)
            yield Label("What to do", classes="section")
            yield Static(self.advice, id="error-advice", markup=False)
            yield Button("Dismiss", id="dismiss-error", variant="error", compact=True)
        # The keys of this panel, not of the screen under it.
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#dismiss-error", Button).focus()

    @on(Button.Pressed, "#dismiss-error")
    def action_dismiss_panel(self) -> None:
        self.dismiss(None)
