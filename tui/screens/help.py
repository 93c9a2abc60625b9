"""Help: the keys of the app and the order in which the work is done."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static

KEYS = (
    ("F1", "this help"),
    ("F2 ... F6", "Stats, Train, Auth, Simulate, History"),
    ("F7", "enrol a member from photos and clips"),
    ("ctrl+r", "run: train, simulate, authenticate (Stats, History: refresh)"),
    ("Esc", "cancel a run; close a form or a panel; Auth: back to the files"),
    ("ctrl+b", "Auth: show or hide the file tree"),
    ("ctrl+l", "Auth: clear the picked files"),
    ("Tab", "next field or button; Enter in a path field moves on"),
    ("a typed path", "absolute, inside the workspace, or from where the app was started"),
    ("ctrl+p", "every command by name (sample, help, screens, theme)"),
    ("ctrl+t", "dark or light theme"),
    ("ctrl+q", "quit"),
)
FLOW = (
    "1. Data: the sample (ctrl+p, Sample workspace; or mmauth demo), or your own photos and "
    "clips under data/raw/ (README: Your own photos and recordings).",
    "2. mmauth merge and mmauth features turn them into tables (Stats, F2, shows what is there).",
    "3. Train (F3): the face, voice and product models; metrics and confusion matrices.",
    "4. Auth (F4): pick a photo and a clip, ctrl+r, and watch every step decide.",
    "5. Simulate (F5): every probe against the members; rates and a DET plot.",
    "6. History (F6): the audit log of attempts. Enrol (F7) adds a member at any time.",
)


class HelpScreen(ModalScreen[None]):
    """Keys and flow, over the current screen; Esc or F1 closes it."""

    BINDINGS = [Binding("escape,f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-panel"):
            yield Label("Keys", classes="section")
            # Letters and digits are never keys: typing goes into the field you are in.
            yield Static("\n".join(f"[b]{key:<10}[/] {what}" for key, what in KEYS), id="help-keys")
            yield Label("The order of the work", classes="section")
            yield Static("\n".join(FLOW), id="help-flow", markup=False)
        # The keys of this panel, not of the screen under it.
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
