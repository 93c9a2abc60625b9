"""Authenticate: pick a photo and a clip, preview them, and watch the flow decide step by step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DirectoryTree, Footer, Header, Input, Label, Static

from engine.workspace import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from tui.errors import engine_errors
from tui.screens.base import EngineScreen
from tui.session import session_of
from tui.widgets.image_preview import ImagePreview
from tui.widgets.media_tree import MediaTree
from tui.widgets.steps import StepRow
from tui.widgets.waveform import Waveform

PREVIEW_MAX_SIDE = 320
STEP_TITLES = {"face": "Face", "product": "Product", "voice": "Voice", "decision": "Decision"}


def is_audio(path: Path) -> bool:
    """Whether a picked file goes to the voice slot (else it is taken as a photo)."""
    return path.suffix.lower() in AUDIO_SUFFIXES


def step_detail(step: Any) -> str:
    """What a step found: its score against its threshold, then its message."""
    parts = []
    score, threshold = getattr(step, "score", None), getattr(step, "threshold", None)
    if score is not None and threshold is not None:
        relation = ">=" if score >= threshold else "<"
        parts.append(f"{score:.3f} {relation} {threshold:.3f}")
    elif score is not None:
        parts.append(f"{score:.3f}")
    if getattr(step, "message", ""):
        parts.append(step.message)
    return "  ".join(parts)


def step_state(step: Any) -> str:
    """The widget state of an engine step's status."""
    status = str(getattr(step, "status", "")).lower()
    if status in {"passed", "ok", "pass", "granted", "accepted"}:
        return "passed"
    if status in {"skipped", "not_run", "skip"}:
        return "skipped"
    return "failed"


class AuthenticateScreen(EngineScreen):
    """File pickers over the workspace's photos and clips, previews, and the animated decision."""

    BINDINGS = [
        Binding("ctrl+r", "run", "Run"),
        Binding("ctrl+l", "clear", "Clear"),
    ]
    step_delay = 0.4
    """Seconds between lighting up one step and the next."""

    class Decided(Message):
        """The engine returned a decision for the picked files."""

        def __init__(self, decision: Any) -> None:
            super().__init__()
            self.decision = decision

    def compose(self) -> ComposeResult:
        workspace = session_of(self).workspace
        root = workspace.raw_dir if workspace.raw_dir.is_dir() else workspace.root
        yield Header()
        with Horizontal(id="authenticate"):
            yield MediaTree(
                root, (*IMAGE_SUFFIXES, *AUDIO_SUFFIXES), bare_names=True, id="media-tree"
            )
            with Vertical(id="auth-main"):
                with Horizontal(classes="path-row"):
                    yield Label("Photo", classes="path-label")
                    yield Input(placeholder="path of a face photo", id="face-path")
                with Horizontal(classes="path-row"):
                    yield Label("Clip", classes="path-label")
                    yield Input(placeholder="path of a voice clip", id="voice-path")
                with Horizontal(id="previews"):
                    yield ImagePreview(id="face-preview")
                    with Vertical(id="clip-preview"):
                        yield Waveform(id="waveform")
                        yield Label("", id="clip-caption")
                with Horizontal(classes="toolbar"):
                    yield Button("Run", compact=True, id="run", variant="primary")
                    yield Button("Clear", compact=True, id="clear")
                yield Vertical(id="steps")
                yield Static("Pick a photo and a clip, then Run.", id="decision")
        yield Footer()

    async def on_mount(self) -> None:
        await self.show_waiting_steps(list(STEP_TITLES))

    @on(DirectoryTree.FileSelected, "#media-tree")
    def file_picked(self, event: DirectoryTree.FileSelected) -> None:
        target = "#voice-path" if is_audio(event.path) else "#face-path"
        field = self.query_one(target, Input)
        field.value = str(event.path)
        self.preview(field)

    @on(Input.Submitted)
    def path_typed(self, event: Input.Submitted) -> None:
        self.preview(event.input)

    def preview(self, field: Input) -> None:
        path = Path(field.value).expanduser() if field.value.strip() else None
        if field.id == "face-path":
            if path is None:
                self.query_one("#face-preview", ImagePreview).clear()
            else:
                self.load_photo(path)
        elif path is None:
            self.query_one("#waveform", Waveform).clear()
            self.query_one("#clip-caption", Label).update("")
        else:
            self.load_clip(path)

    @work(thread=True, exclusive=True, group="photo", exit_on_error=False)
    def load_photo(self, path: Path) -> None:
        from engine.imaging import read_image

        preview = self.query_one("#face-preview", ImagePreview)
        with engine_errors(self.app):
            settings = session_of(self).settings()
            image = read_image(path, max_pixels=settings.face.max_pixels, max_side=PREVIEW_MAX_SIDE)
            self.app.call_from_thread(preview.show, image.pixels)
            return
        self.app.call_from_thread(preview.clear, "cannot show this photo")

    @work(thread=True, exclusive=True, group="clip", exit_on_error=False)
    def load_clip(self, path: Path) -> None:
        from engine.audio import load_audio

        waveform = self.query_one("#waveform", Waveform)
        caption = self.query_one("#clip-caption", Label)
        with engine_errors(self.app):
            settings = session_of(self).settings()
            samples = load_audio(path, settings.voice)
            seconds = len(samples) / settings.voice.sample_rate
            self.app.call_from_thread(waveform.show, samples)
            self.app.call_from_thread(
                caption.update, f"{seconds:.2f} s at {settings.voice.sample_rate} Hz"
            )
            return
        self.app.call_from_thread(waveform.clear, "cannot show this clip")
        self.app.call_from_thread(caption.update, "")

    async def action_clear(self) -> None:
        """Forget the picked files and the last decision."""
        for field in self.query(Input):
            field.value = ""
            self.preview(field)
        await self.show_waiting_steps(list(STEP_TITLES))
        self.query_one("#decision", Static).update("Pick a photo and a clip, then Run.")

    @on(Button.Pressed, "#run")
    async def run_pressed(self) -> None:
        await self.action_run()

    @on(Button.Pressed, "#clear")
    async def clear_pressed(self) -> None:
        await self.action_clear()

    async def action_run(self) -> None:
        """Authenticate the picked photo and clip."""
        face = self.query_one("#face-path", Input).value.strip()
        voice = self.query_one("#voice-path", Input).value.strip()
        if not face or not voice:
            self.notify("Pick a face photo and a voice clip first.", title="Nothing to run")
            return
        self.query_one("#run", Button).disabled = True
        await self.show_waiting_steps(list(STEP_TITLES))
        self.query_one("#step-face", StepRow).set_state("running", "identifying the face...")
        decision = self.query_one("#decision", Static)
        decision.set_classes("")
        decision.update("Running...")
        self.authenticate(Path(face).expanduser(), Path(voice).expanduser())

    @work(thread=True, exclusive=True, group="auth", exit_on_error=False)
    def authenticate(self, face: Path, voice: Path) -> None:
        from engine.auth import authenticate

        session = session_of(self)
        try:
            with engine_errors(self.app):
                decision = authenticate(
                    session.workspace,
                    session.settings(),
                    face,
                    voice,
                    bundle=session.model_bundle(),
                )
                self.post_message(self.Decided(decision))
                return
            self.app.call_from_thread(self.run_failed)
        except BaseException:
            self.app.call_from_thread(self.run_failed)
            raise

    async def run_failed(self) -> None:
        self.query_one("#run", Button).disabled = False
        await self.show_waiting_steps(list(STEP_TITLES))
        self.query_one("#decision", Static).update("Could not run: see the notification.")

    async def show_waiting_steps(self, names: list[str]) -> None:
        """Rows for the given steps plus the decision, all waiting."""
        container = self.query_one("#steps", Vertical)
        await container.remove_children()
        await container.mount_all(
            StepRow(name, STEP_TITLES.get(name, name.replace("_", " ").capitalize()))
            for name in [*[n for n in names if n != "decision"], "decision"]
        )

    async def on_authenticate_screen_decided(self, message: Decided) -> None:
        decision = message.decision
        steps = list(decision.steps)
        await self.show_waiting_steps([step.name for step in steps])
        self.light_step(decision, steps, 0)

    def light_step(self, decision: Any, steps: list[Any], index: int) -> None:
        """Mark step ``index`` as running, then show its outcome and move on to the next."""
        if index < len(steps):
            step = steps[index]
            row = self.query_one(f"#step-{step.name}", StepRow)
            row.set_state("running", "...")

            def finish() -> None:
                row.set_state(step_state(step), step_detail(step))  # type: ignore[arg-type]
                self.light_step(decision, steps, index + 1)

            self.set_timer(self.step_delay / 2, finish)
            return
        self.show_decision(decision)

    def show_decision(self, decision: Any) -> None:
        row = self.query_one("#step-decision", StepRow)
        banner = self.query_one("#decision", Static)
        if decision.granted:
            row.set_state("passed", f"GRANTED  {decision.seconds:.2f} s")
            banner.set_classes("-granted")
            banner.update(
                f"GRANTED: welcome, {decision.member}. Recommended category: {decision.category}."
            )
        else:
            row.set_state("failed", f"DENIED ({decision.reason})  {decision.seconds:.2f} s")
            banner.set_classes("-denied")
            banner.update(f"DENIED ({decision.reason}): {decision.message}")
        self.query_one("#run", Button).disabled = False
