"""Authenticate: pick a photo and a clip, preview them, and watch the flow decide step by step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DirectoryTree, Footer, Input, Label, Static

from engine.auth.words import STEP_NAMES, Decision, StepStatus, compare_scores
from engine.core.errors import MmauthError
from engine.core.text import printable
from engine.core.workspace import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from tui.errors import engine_errors
from tui.screens.base import EngineScreen
from tui.session import session_of
from tui.text import shown
from tui.widgets.image_preview import ImagePreview
from tui.widgets.media_tree import MediaTree, first_folder
from tui.widgets.path_row import labelled_input
from tui.widgets.screen_bar import ScreenBar
from tui.widgets.spectrogram import Spectrogram
from tui.widgets.steps import StepRow
from tui.widgets.waveform import Waveform

PREVIEW_MAX_SIDE = 320


def is_audio(path: Path) -> bool:
    """Whether a picked file goes to the voice slot (else it is taken as a photo)."""
    return path.suffix.lower() in AUDIO_SUFFIXES


def step_detail(step: Any) -> str:
    """What a step found: its score against its threshold, then its message."""
    parts = []
    if step.score is not None and step.threshold is not None:
        parts.append(compare_scores(step.score, step.threshold))
    elif step.score is not None:
        parts.append(f"{step.score:.4f}")
    if step.message:
        parts.append(printable(step.message))
    return "  ".join(parts)


class AuthenticateScreen(EngineScreen):
    """File pickers over the workspace's photos and clips, previews, and the animated decision."""

    BINDINGS = [
        Binding("ctrl+r", "run", "Run"),
        Binding("ctrl+l", "clear", "Clear"),
        Binding("ctrl+b", "toggle_tree", "Files"),
        Binding("escape", "focus_tree", "Files", show=False),
    ]

    class StepDone(Message):
        """The engine finished one step of the running attempt (sent from its thread)."""

        def __init__(self, step: Any) -> None:
            super().__init__()
            self.step = step

    class Decided(Message):
        """The engine returned a decision for the picked files."""

        def __init__(self, decision: Any) -> None:
            super().__init__()
            self.decision = decision

    def compose(self) -> ComposeResult:
        workspace = session_of(self).workspace
        root = first_folder(workspace.raw_dir / "probes", workspace.raw_dir, workspace.root)
        yield ScreenBar("authenticate")
        with Horizontal(id="authenticate"):
            yield MediaTree(
                root, (*IMAGE_SUFFIXES, *AUDIO_SUFFIXES), bare_names=True, id="media-tree"
            )
            with Vertical(id="auth-main"):
                yield labelled_input("Photo", "path of a face photo", "face-path")
                yield labelled_input("Clip", "path of a voice clip", "voice-path")
                with Horizontal(id="previews"):
                    yield ImagePreview(id="face-preview")
                    with Vertical(id="clip-preview"):
                        yield Waveform(id="waveform")
                        yield Spectrogram(id="spectrogram")
                        yield Label("", id="clip-caption")
                with Horizontal(classes="toolbar"):
                    yield Button("Run", compact=True, id="run", variant="primary")
                    yield Button("Clear", compact=True, id="clear")
                with Vertical(id="steps"):
                    for name in STEP_NAMES:
                        yield StepRow(name, name.label)
                yield Static("Pick a photo and a clip, then Run.", id="decision")
        yield Footer()

    @on(DirectoryTree.FileSelected, "#media-tree")
    def file_picked(self, event: DirectoryTree.FileSelected) -> None:
        target = "#voice-path" if is_audio(event.path) else "#face-path"
        field = self.query_one(target, Input)
        field.value = str(event.path)
        self.preview(field)

    @on(Input.Submitted)
    def path_typed(self, event: Input.Submitted) -> None:
        self.preview(event.input)
        # Enter moves on: from the photo to the clip, from the clip to Run.
        following = "#voice-path" if event.input.id == "face-path" else "#run"
        self.query_one(following).focus()

    def action_focus_tree(self) -> None:
        """Leave a path field for the file tree (shown again if it was hidden)."""
        tree = self.query_one("#media-tree", MediaTree)
        tree.display = True
        tree.focus()

    def action_toggle_tree(self) -> None:
        """Hide the file tree to give the previews the width, or show it again."""
        tree = self.query_one("#media-tree", MediaTree)
        tree.display = not tree.display
        if not tree.display and tree.has_focus:
            self.query_one("#face-path", Input).focus()

    def typed_path(self, field: Input) -> Path | None:
        """The path in a field (Session.typed_file)."""
        text = field.value.strip()
        return session_of(self).typed_file(text) if text else None

    def preview(self, field: Input) -> None:
        path = self.typed_path(field)
        picked = (self.typed_path(entry) for entry in self.query(Input))
        self.query_one("#media-tree", MediaTree).mark_picked(p for p in picked if p is not None)
        if field.id == "face-path":
            if path is None:
                self.query_one("#face-preview", ImagePreview).clear()
            else:
                self.load_photo(path, self.query_one("#face-preview", ImagePreview))
        elif path is None:
            self.query_one("#waveform", Waveform).clear()
            self.query_one("#spectrogram", Spectrogram).show(None)
            self.query_one("#clip-caption", Label).update("")
        else:
            self.load_clip(
                path,
                self.query_one("#waveform", Waveform),
                self.query_one("#spectrogram", Spectrogram),
                self.query_one("#clip-caption", Label),
            )

    @work(thread=True, exclusive=True, group="photo", exit_on_error=False)
    def load_photo(self, path: Path, preview: ImagePreview) -> None:
        from engine.faces.images import read_image

        with engine_errors(self.app):
            settings = session_of(self).settings()
            image = read_image(path, max_pixels=settings.face.max_pixels, max_side=PREVIEW_MAX_SIDE)
            self.app.call_from_thread(preview.show, image.pixels)
            return
        self.app.call_from_thread(preview.clear, "cannot show this photo")

    @work(thread=True, exclusive=True, group="clip", exit_on_error=False)
    def load_clip(
        self, path: Path, waveform: Waveform, spectrogram: Spectrogram, caption: Label
    ) -> None:
        from engine.voices.views import VIEW_TOP_DB, clip_signal, mel_spectrogram_db

        with engine_errors(self.app):
            signal = clip_signal(path, session_of(self).settings())
            duration = len(signal.samples) / signal.sample_rate
            if signal.speech is None:
                speech, words = None, "no speech found"
            else:
                speech = (signal.speech[0] / duration, signal.speech[1] / duration)
                words = f"speech {signal.speech[0]:.2f}-{signal.speech[1]:.2f} s"
            mel_db = mel_spectrogram_db(signal.samples, sr=signal.sample_rate)
            self.app.call_from_thread(waveform.show, signal.samples, speech)
            self.app.call_from_thread(spectrogram.show, mel_db, -VIEW_TOP_DB)
            self.app.call_from_thread(caption.update, f"{duration:.2f} s clip, {words}")
            return
        self.app.call_from_thread(waveform.clear, "cannot use this clip")
        self.app.call_from_thread(spectrogram.show, None)
        self.app.call_from_thread(caption.update, "")

    def action_clear(self) -> None:
        """Forget the picked files and the last decision, and start again at the photo field."""
        for field in self.query(Input):
            field.value = ""
            self.preview(field)
        self.show_waiting_steps()
        self.query_one("#decision", Static).update("Pick a photo and a clip, then Run.")
        self.query_one("#face-path", Input).focus()

    @on(Button.Pressed, "#run")
    def run_pressed(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#clear")
    def clear_pressed(self) -> None:
        self.action_clear()

    def action_run(self) -> None:
        """Authenticate the picked photo and clip."""
        face = self.typed_path(self.query_one("#face-path", Input))
        voice = self.typed_path(self.query_one("#voice-path", Input))
        if face is None or voice is None:
            self.notify("Pick a face photo and a voice clip first.", title="Nothing to run")
            return
        self.query_one("#run", Button).disabled = True
        self.show_waiting_steps()
        self.query_one("#step-input", StepRow).set_state("running", "...")
        decision = self.query_one("#decision", Static)
        decision.set_classes("")
        decision.update("Running...")
        self.authenticate(face, voice)

    @work(thread=True, exclusive=True, group="auth", exit_on_error=False)
    def authenticate(self, face: Path, voice: Path) -> None:
        from engine.auth.flow import authenticate

        session = session_of(self)
        decision = None
        try:
            with engine_errors(self.app):
                settings = session.settings()
                try:
                    bundle = session.model_bundle()
                except MmauthError:
                    # The engine's own "models" step reports why, and logs the attempt.
                    bundle = None
                decision = authenticate(
                    session.workspace,
                    settings,
                    face,
                    voice,
                    bundle=bundle,
                    on_step=self.post_step,
                )
        finally:
            self.post_message(self.Decided(decision))

    def post_step(self, step: Any) -> None:
        """Called from the engine's thread as each step finishes."""
        self.post_message(self.StepDone(step))

    def show_waiting_steps(self) -> None:
        """Every step of the flow back to waiting."""
        for row in self.query(StepRow):
            row.set_state("waiting")

    def on_authenticate_screen_step_done(self, message: StepDone) -> None:
        step = message.step
        self.query_one(f"#step-{step.name}", StepRow).set_state(step.status, step_detail(step))
        names = list(STEP_NAMES)
        following = names.index(step.name) + 1 if step.name in names else len(names)
        if step.status == StepStatus.PASSED and following < len(names):
            self.query_one(f"#step-{names[following]}", StepRow).set_state("running", "...")

    def on_authenticate_screen_decided(self, message: Decided) -> None:
        self.query_one("#run", Button).disabled = False
        if message.decision is None:
            self.query_one("#decision", Static).update("Could not run: see the notification.")
            return
        self.show_decision(message.decision)

    def show_decision(self, decision: Any) -> None:
        # The decision lists every step, those never reached included (as skipped).
        for step in decision.steps:
            self.query_one(f"#step-{step.name}", StepRow).set_state(step.status, step_detail(step))
        banner = self.query_one("#decision", Static)
        if decision.granted:
            banner.set_classes("-granted")
            banner.update(
                f"{Decision.GRANTED}: welcome, {shown(decision.member)}. "
                f"Recommended category: {shown(decision.category)}."
            )
        else:
            banner.set_classes("-denied")
            banner.update(f"{Decision.DENIED} ({decision.reason}): {shown(decision.message)}")
        self.query_one("#run", Button).disabled = False
