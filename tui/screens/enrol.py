"""Enrol: add a member from photos and clips picked in the workspace or typed as paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DirectoryTree, Footer, Input, Label, Static

from engine.core.text import printable, printable_lines
from engine.core.workspace import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from tui.errors import engine_errors
from tui.screens.authenticate import is_audio
from tui.screens.base import EngineModal
from tui.screens.confirm import ConfirmScreen
from tui.session import session_of
from tui.text import shown
from tui.widgets.media_tree import MediaTree, first_folder
from tui.widgets.path_row import labelled_input


def unusable_file(path: Path) -> str | None:
    """Why a file cannot be enrolled, or None when it is an existing photo or clip."""
    if not path.exists():
        return "no such file"
    if not path.is_file():
        return "a folder, not a file"
    suffix = path.suffix.lower()
    if suffix and suffix not in IMAGE_SUFFIXES and suffix not in AUDIO_SUFFIXES:
        return f"not a photo or a clip ({suffix})"
    return None


class EnrolScreen(EngineModal[str | None]):
    """A form over the current screen; dismissed with the enrolled member's name (or None)."""

    BINDINGS = [Binding("ctrl+r", "enrol", "Enrol"), Binding("escape", "dismiss_form", "Close")]

    def compose(self) -> ComposeResult:
        workspace = session_of(self).workspace
        with Vertical(id="enrol-form"):
            yield Label("Enrol a member", classes="title")
            yield labelled_input("Name", "member name (letters, digits, - and _)", "member-name")
            yield labelled_input("Customer", "customer id (optional)", "customer-id")
            yield labelled_input(
                "Add file", "type a path and press Enter, or pick below", "add-path"
            )
            yield MediaTree(
                first_folder(workspace.raw_dir, workspace.root),
                (*IMAGE_SUFFIXES, *AUDIO_SUFFIXES),
                bare_names=True,
                id="enrol-tree",
            )
            yield Static("No files yet.", id="picked")
            with Horizontal(classes="toolbar"):
                yield Button("Enrol", compact=True, id="enrol", variant="primary")
                yield Button("Clear files", compact=True, id="clear-files")
                yield Button("Close", compact=True, id="close")
        # The keys of this panel, not of the screen under it.
        yield Footer()

    def on_mount(self) -> None:
        self.faces: list[Path] = []
        self.voices: list[Path] = []

    def add_file(self, path: Path) -> None:
        """Add a photo or clip to the files to enrol (a second pick removes it again); a file
        that does not exist or is of no known kind is refused at once, not at Enrol."""
        problem = unusable_file(path)
        if problem:
            self.notify(f"{path}: {problem}", title="File not added", severity="warning", timeout=8)
            return
        chosen = self.voices if is_audio(path) else self.faces
        if path in chosen:
            chosen.remove(path)
        else:
            chosen.append(path)
        self.show_picked()

    def show_picked(self) -> None:
        """List the picked files and mark them in the tree."""
        if not self.faces and not self.voices:
            self.query_one("#picked", Static).update("No files yet.")
        else:
            self.query_one("#picked", Static).update(
                f"{len(self.faces)} photos: {', '.join(p.name for p in self.faces) or '-'}\n"
                f"{len(self.voices)} clips: {', '.join(p.name for p in self.voices) or '-'}"
            )
        self.query_one("#enrol-tree", MediaTree).mark_picked([*self.faces, *self.voices])

    @on(DirectoryTree.FileSelected, "#enrol-tree")
    def file_picked(self, event: DirectoryTree.FileSelected) -> None:
        self.add_file(event.path)

    @on(Input.Submitted, "#add-path")
    def path_typed(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            path = session_of(self).typed_file(text)
            self.add_file(path.resolve())
            if unusable_file(path) is None:
                event.input.value = ""

    @on(Button.Pressed, "#clear-files")
    def clear_files(self) -> None:
        cleared = len(self.faces) + len(self.voices)
        self.faces, self.voices = [], []
        self.show_picked()
        if cleared:
            self.notify(f"{cleared} files taken off the list.", title="Cleared")

    @on(Button.Pressed, "#close")
    def action_dismiss_form(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#enrol")
    def action_enrol(self) -> None:
        """Enrol the named member with the picked files."""
        name = self.query_one("#member-name", Input).value.strip()
        customer = self.query_one("#customer-id", Input).value.strip() or None
        if not name:
            self.notify("Give the member a name.", title="Nothing to enrol", severity="warning")
            return
        if self.query_one("#enrol", Button).disabled:
            return  # already enrolling
        self.query_one("#enrol", Button).disabled = True
        self.enrol(name, customer, list(self.faces), list(self.voices))

    @work(thread=True, exclusive=True, exit_on_error=False)
    def enrol(
        self,
        name: str,
        customer: str | None,
        faces: list[Path],
        voices: list[Path],
        replace: bool = False,
    ) -> None:
        from engine.auth.enrol import enrol_member
        from engine.auth.enrol_files import ReplacementRefusedError

        session = session_of(self)
        result: Any = None
        refused: ReplacementRefusedError | None = None
        try:
            with engine_errors(self.app, pinned=True):
                session.prepare_processes()  # enrolment extracts features with jobs processes
                try:
                    result = enrol_member(
                        session.workspace,
                        session.settings(),
                        name,
                        faces=faces,
                        voices=voices,
                        customer_id=customer,
                        replace=replace,
                    )
                except ReplacementRefusedError as error:
                    # Not a failure: a question for the user, asked before anything changed.
                    refused = error
                else:
                    session.forget_models()
        finally:
            # Also after an unexpected error (shown by the worker's failure handler).
            if refused is not None:
                request = (name, customer, faces, voices)
                self.app.call_from_thread(self.confirm_replacing, request, refused.files)
            else:
                self.app.call_from_thread(self.enrolled, name, result)

    def confirm_replacing(
        self,
        request: tuple[str, str | None, list[Path], list[Path]],
        files: tuple[str, ...],
    ) -> None:
        """Ask before the member's files of the same names are replaced; enrol again with
        ``replace`` only when the user confirms."""
        name = request[0]
        text = printable_lines(
            (
                f"{name} already has enrolment files of these names; enrolling replaces them "
                "(the old files are lost):",
                *(f"  {path}" for path in files),
            )
        )

        def answered(replace: bool | None) -> None:
            if replace:
                self.enrol(*request, replace=True)
                return
            self.enrolled(name, None)
            self.notify("Nothing was changed.", title="Enrolment cancelled")

        self.app.push_screen(
            ConfirmScreen(printable(f"Replace {name}'s files?"), text, "Replace"), answered
        )

    def enrolled(self, name: str, result: Any) -> None:
        button = self.query_one("#enrol", Button)
        button.disabled = False
        if result is None:
            # Back on Enrol, not on the next button (Clear files would lose the picks).
            button.focus()
            return
        self.notify(f"{name} is enrolled. Welcome!", title="Enrolled")
        for note in result.notes:
            self.notify(shown(note), title="Enrolment note", severity="warning", timeout=30)
        self.dismiss(name)
