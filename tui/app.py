"""mmauth-tui: screens for workspace statistics, training, authentication, simulation, history."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker

from engine.core.workspace import Workspace, resolve_workspace
from tui.errors import notify_failed_worker
from tui.screens.stats import StatsScreen
from tui.session import Session

DARK_THEME = "textual-dark"
LIGHT_THEME = "textual-light"
SCREEN_TITLES = {
    "stats": "Stats",
    "training": "Train",
    "authenticate": "Auth",
    "simulation": "Simulate",
    "history": "History",
}


def later(module: str, screen: str) -> Callable[[], Screen[None]]:
    """A screen factory importing its module on first use, so start-up loads only Stats."""

    def make() -> Screen[None]:
        return getattr(importlib.import_module(f"tui.screens.{module}"), screen)()

    return make


class MmauthApp(App[None]):
    """The terminal app over one workspace; every screen calls the engine in worker threads."""

    CSS_PATH = "mmauth.tcss"
    TITLE = "mmauth"
    MODES = {
        "stats": StatsScreen,
        "training": later("training", "TrainingScreen"),
        "authenticate": later("authenticate", "AuthenticateScreen"),
        "simulation": later("simulation", "SimulationScreen"),
        "history": later("history", "HistoryScreen"),
    }
    DEFAULT_MODE = "stats"
    BINDINGS = [
        *(
            Binding(str(number), f"switch_mode('{mode}')", title, tooltip=f"Show {title}")
            for number, (mode, title) in enumerate(SCREEN_TITLES.items(), start=1)
        ),
        Binding("e", "enrol", "Enrol"),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.session = Session(workspace)
        self.sub_title = workspace.root.name

    def action_toggle_theme(self) -> None:
        """Switch between the dark and the light theme."""
        self.theme = LIGHT_THEME if self.theme == DARK_THEME else DARK_THEME

    def action_enrol(self) -> None:
        """Open the enrolment form over the current screen."""
        self.push_screen(later("enrol", "EnrolScreen")())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, title in SCREEN_TITLES.items():
            yield SystemCommand(
                f"Show {title}", f"Switch to the {title} screen", lambda m=mode: self.switch_mode(m)
            )
        yield SystemCommand(
            "Enrol a member", "Add a member from photos and clips", self.action_enrol
        )
        yield SystemCommand(
            "Toggle dark/light", "Switch the colour theme", self.action_toggle_theme
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        notify_failed_worker(self, event)


def create_app(workspace: Path | str | None = None) -> MmauthApp:
    """The app for a workspace (option, else $MMAUTH_WORKSPACE, else the current directory)."""
    return MmauthApp(resolve_workspace(workspace))


def run_app(workspace: Path | None = None) -> None:
    """Open the terminal app on a workspace (used by `mmauth tui`)."""
    create_app(workspace).run()


def main() -> None:
    """Console entry point `mmauth-tui [WORKSPACE]`."""
    import sys

    arguments = sys.argv[1:]
    if arguments and arguments[0] in {"-h", "--help"}:
        print(
            "usage: mmauth-tui [WORKSPACE]  (default: $MMAUTH_WORKSPACE, else the current folder)"
        )
        return
    if arguments and arguments[0] in {"-w", "--workspace"}:
        arguments = arguments[1:]
    chosen = Path(arguments[0]) if arguments else None
    from engine.core.errors import MissingWorkspaceError
    from engine.core.text import printable
    from engine.core.workspace import existing_workspace

    try:
        existing_workspace(chosen)
    except MissingWorkspaceError as error:
        print(f"{error.title}: {printable(error.message)}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    run_app(chosen)
