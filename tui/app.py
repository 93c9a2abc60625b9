"""mmauth-tui: screens for workspace statistics, training, authentication, simulation, history."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker

from engine.core.errors import InputError
from engine.core.workspace import Workspace, is_empty_workspace, resolve_workspace
from tui.errors import notify_failed_worker
from tui.navigation import ENROL_KEY, HELP_KEY, SCREEN_TITLES, screen_key
from tui.screens.lazy import later
from tui.screens.stats import StatsScreen
from tui.session import Session

DARK_THEME = "textual-dark"
LIGHT_THEME = "textual-light"


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
    # Function keys and ctrl chords only: a letter or digit typed into a path never fires one.
    BINDINGS = [
        Binding(HELP_KEY, "help", "Help"),
        *(
            # Shown on every screen's top line (ScreenBar) rather than in the footer.
            Binding(screen_key(mode), f"switch_mode('{mode}')", title, show=False)
            for mode, title in SCREEN_TITLES.items()
        ),
        Binding(ENROL_KEY, "enrol", "Enrol"),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.session = Session(workspace)
        self.sub_title = workspace.root.name

    def on_mount(self) -> None:
        if is_empty_workspace(self.session.workspace.root):
            self.action_welcome()

    def action_toggle_theme(self) -> None:
        """Switch between the dark and the light theme."""
        self.theme = LIGHT_THEME if self.theme == DARK_THEME else DARK_THEME

    def action_enrol(self) -> None:
        """Open the enrolment form over the current screen."""
        self.push_screen(later("enrol", "EnrolScreen")())

    def action_help(self) -> None:
        """Show the keys and the order of the work."""
        self.push_screen(later("help", "HelpScreen")())

    def action_welcome(self) -> None:
        """Offer to write the sample workspace here (and to prepare it)."""
        self.push_screen(later("welcome", "WelcomeScreen")(), self.welcome_closed)

    def welcome_closed(self, changed: bool | None) -> None:
        # Stats counts the new workspace; it also recounts whenever it is shown again.
        if changed and isinstance(self.screen, StatsScreen):
            self.screen.action_refresh_stats()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Keys and the order of the work (F1)", self.action_help)
        for mode, title in SCREEN_TITLES.items():
            yield SystemCommand(
                f"Show {title}",
                f"Switch to the {title} screen ({screen_key(mode).upper()})",
                lambda m=mode: self.switch_mode(m),
            )
        yield SystemCommand(
            "Enrol a member", "Add a member from photos and clips (F7)", self.action_enrol
        )
        yield SystemCommand(
            "Sample workspace",
            "Write the sample workspace here, then merge, features and train",
            self.action_welcome,
        )
        yield SystemCommand(
            "Toggle dark/light", "Switch the colour theme (ctrl+t)", self.action_toggle_theme
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        notify_failed_worker(self, event)


def open_folder(folder: Path | str | None, *, create: bool = False) -> Workspace:
    """The workspace at ``folder`` (option, else $MMAUTH_WORKSPACE, else the current directory);
    a folder that does not exist is created when ``create``, else refused with InputError."""
    workspace = resolve_workspace(folder)
    if workspace.root.is_dir():
        return workspace
    if workspace.root.exists():
        raise InputError("is a file, not a workspace folder", path=str(workspace.root))
    if not create:
        raise InputError(
            "no such folder; pass --create to create it (the app then offers the sample)",
            path=str(workspace.root),
        )
    try:
        workspace.root.mkdir(parents=True)
    except OSError as error:
        raise InputError(f"cannot create it: {error.strerror}", path=str(workspace.root)) from error
    return workspace


def create_app(workspace: Path | str | None = None) -> MmauthApp:
    """The app for a workspace (option, else $MMAUTH_WORKSPACE, else the current directory)."""
    return MmauthApp(resolve_workspace(workspace))


def run_app(workspace: Path | None = None, *, create: bool = False) -> None:
    """Open the terminal app on a workspace folder (used by `mmauth tui`); InputError for a
    folder that does not exist unless ``create``."""
    from tui.child_processes import child_output_to, worker_log_path

    app = MmauthApp(open_folder(workspace, create=create))
    with child_output_to(worker_log_path()):
        app.run()


USAGE = """usage: mmauth-tui [--create] [WORKSPACE]

Opens the terminal app on WORKSPACE (default: $MMAUTH_WORKSPACE, else the current folder).
  --create   create WORKSPACE when it does not exist (the app then offers the sample)
Keys: F1 help, F2-F6 screens, F7 enrol, ctrl+r run, Esc cancel, ctrl+p commands, ctrl+q quit."""


def main() -> None:
    """Console entry point `mmauth-tui [--create] [WORKSPACE]`."""
    import sys

    from engine.core.errors import MmauthError
    from engine.core.text import printable, printable_lines

    arguments = sys.argv[1:]
    if {"-h", "--help"} & set(arguments):
        print(USAGE)
        return
    create = "--create" in arguments
    folders = [a for a in arguments if a not in {"--create", "-w", "--workspace"}]
    if len(folders) > 1:
        sys.exit(f"mmauth-tui: one workspace folder, not {len(folders)}\n{USAGE}")
    try:
        run_app(Path(folders[0]) if folders else None, create=create)
    except MmauthError as error:
        print(
            f"mmauth-tui: {printable(error.title)}: {printable_lines(error.lines)}",
            file=sys.stderr,
        )
        raise SystemExit(error.exit_code) from None
