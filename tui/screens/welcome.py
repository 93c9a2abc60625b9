"""Welcome: on an empty folder, write the sample workspace and prepare it, with progress."""

from __future__ import annotations

import threading
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Label, Static

from engine.core.errors import InputError
from engine.core.progress import Progress
from tui.screens.base import EngineModal, RunScreen, run_and_report
from tui.session import session_of
from tui.text import shown
from tui.widgets.stage_progress import RunEnding, StageProgress

WELCOME = (
    "This folder holds no workspace yet. The sample is a complete one: 4 members, 6 strangers, "
    "220 customers, drawn faces and synthesised voices. Write it here, or write it and run "
    "merge, features, train and simulate (a few minutes; you can watch and cancel), the same "
    "as mmauth demo. To use your own photos and clips instead, see the README's layout."
)


class WelcomeScreen(EngineModal[bool]):
    """Dismissed with True when the workspace changed (the sample or its stages were written)."""

    BINDINGS = [Binding("escape", "close", "Close")]

    class Progressed(RunScreen.Progressed):
        """A stage of the preparation reported progress (sent from the worker thread)."""

    class Finished(RunScreen.Finished):
        """The preparation ended."""

    def compose(self) -> ComposeResult:
        with Vertical(id="welcome-panel"):
            yield Label("Welcome to mmauth", classes="title")
            yield Static(WELCOME, id="welcome-text")
            yield StageProgress(id="welcome-stages")
            with Horizontal(classes="toolbar"):
                yield Button("Sample + all stages", id="prepare", variant="primary", compact=True)
                yield Button("Sample only", id="sample-only", compact=True)
                yield Button("Close", id="close", compact=True)
        # The keys of this panel, not of the screen under it.
        yield Footer()

    def on_mount(self) -> None:
        self.cancel: threading.Event | None = None
        self.changed = False
        self.query_one("#prepare", Button).focus()

    @on(Button.Pressed, "#prepare")
    def prepare_pressed(self) -> None:
        self.start(run_stages=True)

    @on(Button.Pressed, "#sample-only")
    def sample_pressed(self) -> None:
        self.start(run_stages=False)

    def start(self, *, run_stages: bool) -> None:
        if self.cancel is not None:
            return
        self.cancel = threading.Event()
        for button in self.query(Button):
            button.disabled = button.id != "close"
        close = self.query_one("#close", Button)
        close.label = "Cancel"
        close.focus()
        self.prepare(run_stages, self.cancel)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def prepare(self, run_stages: bool, cancel: threading.Event) -> None:
        from engine.core.workspace import is_empty_workspace
        from engine.sample.demo import run_demo
        from engine.sample.workspace import write_sample_workspace

        session = session_of(self)
        workspace = session.workspace

        def prepare() -> Any:
            # The result is the sample's report (None when the demo found a prepared workspace).
            if run_stages:
                return run_demo(workspace, session.settings(), self.report_progress, cancel).sample
            if not is_empty_workspace(workspace.root):
                raise InputError(
                    "the folder is not empty, and the sample would replace its data/raw and "
                    "mmauth.toml: open an empty or new folder (mmauth sample --force overwrites)",
                    path=str(workspace.root),
                )
            return write_sample_workspace(
                workspace.root, progress=self.report_progress, cancel=cancel
            )

        run_and_report(self, prepare, self.Finished)

    def report_progress(self, event: Progress) -> None:
        self.post_message(self.Progressed(event))

    def on_welcome_screen_progressed(self, message: Progressed) -> None:
        self.query_one(StageProgress).report(message.event)

    def on_welcome_screen_finished(self, message: Finished) -> None:
        self.cancel = None
        self.changed = True
        self.query_one(StageProgress).finish(message.ending)
        session_of(self).forget_models()
        if message.ending == RunEnding.DONE:
            self.notify("The workspace is ready: see Stats, Train and Simulate.", title="Sample")
            sample = message.result
            note = sample.previous_records_note() if sample is not None else None
            if note is not None:
                self.notify(shown(note), title="Earlier workspace", timeout=20)
            self.dismiss(True)
            return
        close = self.query_one("#close", Button)
        close.label = "Close"
        close.disabled = False
        close.focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        if self.cancel is not None:
            self.cancel.set()
            self.query_one(StageProgress).stopping()
            return
        self.dismiss(self.changed)
