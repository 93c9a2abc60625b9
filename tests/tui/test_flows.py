"""Main paths on a trained sample workspace: authenticate, train, simulate, enrol, history."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import (
    Button,
    DataTable,
    DirectoryTree,
    Input,
    Log,
    Select,
    TabbedContent,
)

from engine.core.workspace import Workspace
from tests.conftest import copy_workspace
from tests.tui.conftest import notifications, screen_text, settle
from tui.app import create_app
from tui.widgets.steps import StepRow

SIZE = (100, 30)
MEMBER, STRANGER = "alice", "mallory"


def first_probes(workspace: Workspace, label: str) -> tuple[list[Path], list[Path]]:
    return (
        sorted((workspace.probe_faces_dir / label).iterdir()),
        sorted((workspace.probe_voices_dir / label).iterdir()),
    )


def granted_pair(workspace: Workspace, tmp_path: Path) -> tuple[str, str, object]:
    """The first of the member's probe pairs the engine grants (checked against a scratch
    audit store, so the workspace's log and lockouts stay untouched), as workspace-relative
    paths, with the engine's decision."""
    from engine.auth.flow import authenticate
    from engine.auth.store import AuditStore
    from engine.core.settings import load_settings

    settings = load_settings(workspace.root)
    scratch = AuditStore(tmp_path / "scratch.db")
    faces, voices = first_probes(workspace, MEMBER)
    tried = []
    for face in faces:
        for voice in voices:
            decision = authenticate(workspace, settings, face, voice, store=scratch)
            if decision.granted:
                return workspace.relative(face), workspace.relative(voice), decision
            tried.append(f"{face.name}+{voice.name}: {decision.reason}")
    raise AssertionError(f"the engine grants no genuine probe pair of {MEMBER}: {tried}")


async def authenticate(pilot, app, face: str, voice: str) -> str:  # noqa: ANN001
    """Pick both files in the file tree, press Run and return the decision banner's text."""
    tree = app.screen.query_one("#media-tree", DirectoryTree)
    root = app.session.workspace.root
    for relative in (face, voice):
        tree.post_message(DirectoryTree.FileSelected(tree.root, root / relative))
    await settle(pilot, app)
    assert app.screen.query_one("#face-path", Input).value == str(root / face)
    assert app.screen.query_one("#voice-path", Input).value == str(root / voice)
    await pilot.click("#run")
    await settle(pilot, app, timeout=60)
    return str(app.screen.query_one("#decision").content)


async def test_genuine_pair_is_granted_and_stranger_denied(
    trained_workspace: Workspace, tmp_path: Path
) -> None:
    face, voice, expected = granted_pair(trained_workspace, tmp_path)
    stranger_faces, stranger_voices = first_probes(trained_workspace, STRANGER)
    stranger = (
        trained_workspace.relative(stranger_faces[0]),
        trained_workspace.relative(stranger_voices[0]),
    )
    app = create_app(trained_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await settle(pilot, app)

        granted = await authenticate(pilot, app, face, voice)
        assert granted == (
            f"GRANTED: welcome, {MEMBER}. Recommended category: {expected.category}."
        )
        for step in (
            "input",
            "models",
            "face",
            "lockout",
            "replay",
            "product",
            "voice",
            "decision",
        ):
            assert app.screen.query_one(f"#step-{step}", StepRow).state == "passed"
        assert ">=" in app.screen.query_one("#step-face", StepRow).detail

        denied = await authenticate(pilot, app, *stranger)
        assert denied.startswith("DENIED (unknown_face)")
        face_row = app.screen.query_one("#step-face", StepRow)
        assert face_row.state == "failed" and " < " in face_row.detail
        assert app.screen.query_one("#step-voice", StepRow).state == "skipped"
        assert "DENIED (unknown_face)" in screen_text(app)

        # Both attempts are in the audit log, newest first.
        await pilot.press("escape", "f6")
        await settle(pilot, app)
        rows = app.screen.query_one("#attempts", DataTable)
        decisions = [rows.get_row_at(i)[1] for i in range(rows.row_count)]
        assert decisions[:2] == ["DENIED", "GRANTED"]


async def test_training_one_model_fills_metrics_log_and_confusion(
    trained_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.models.training as training

    # A workspace whose enrolled voices pass too often: the screen says so.
    monkeypatch.setattr(training, "calibration_note", lambda name, *_: f"{name}: [too] alike")
    app = create_app(trained_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot, app)
        metrics = app.screen.query_one("#metrics", DataTable)
        assert {"face", "voice", "product"} <= {str(key.value) for key in metrics.rows}

        app.screen.query_one("#which", Select).value = "voice"
        await pilot.click("#start")
        await settle(pilot, app, timeout=120)

        assert any(n.startswith("Training finished") for n in notifications(app))
        log = "\n".join(app.screen.query_one("#log", Log).lines)
        assert log.startswith("training voice")
        assert "[train.voice] voice model trained" in log
        assert "note: voice: [too] alike" in log
        # Markup in the note is shown as text, not read as markup.
        assert "Training note: voice: \\[too] alike" in notifications(app)
        assert app.screen.query_one("#stages").bars.keys() >= {"train.voice", "train.save"}
        eer = metrics.get_cell("voice", "eer")
        assert eer != "-" and 0.0 <= float(eer) <= 1.0
        assert app.screen.query_one("#cancel", Button).disabled is True


async def test_training_can_be_cancelled(trained_workspace: Workspace, tmp_path: Path) -> None:
    copy = copy_workspace(trained_workspace.root, tmp_path / "copy")
    app = create_app(copy.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot, app)
        await pilot.click("#start")
        await pilot.press("escape")
        await settle(pilot, app, timeout=120)
        assert any(n.startswith("Cancelled") for n in notifications(app))
        assert app.screen.query_one("#start", Button).disabled is False


async def test_simulation_shows_rates_and_det(trained_workspace: Workspace) -> None:
    app = create_app(trained_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await settle(pilot, app)
        await pilot.click("#start")
        await settle(pilot, app, timeout=180)
        assert any(n.startswith("Simulation finished") for n in notifications(app))
        rates = app.screen.query_one("#rates", DataTable)
        campaigns = [rates.get_row_at(i)[0] for i in range(rates.row_count)]
        assert {"genuine", "stranger_face", "cross_member", "replay", "bad_input"} <= set(campaigns)
        assert "authorised success" in screen_text(app)
        assert (trained_workspace.reports_dir / "simulation.json").is_file()
        app.screen.query_one("#simulation-tabs", TabbedContent).active = "det-tab"
        await pilot.pause(0.2)
        det = screen_text(app)
        assert "DET of the simulated attempts" in det and "FMR %" in det and "face" in det
    # A new session shows the last saved simulation without running it again.
    app = create_app(trained_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await settle(pilot, app)
        assert "Last simulation (reports/simulation.json" in screen_text(app)
        assert app.screen.query_one("#rates", DataTable).row_count == len(campaigns)
        assert not any(n.startswith("Simulation finished") for n in notifications(app))


async def test_unreadable_last_simulation_is_reported(small_workspace: Workspace) -> None:
    small_workspace.reports_dir.mkdir(parents=True, exist_ok=True)
    (small_workspace.reports_dir / "simulation.json").write_text("{broken")
    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await settle(pilot, app)
        assert any("reports/simulation.json" in n for n in notifications(app))
        assert app.screen.query_one("#start", Button).disabled is False


async def test_enrol_form_adds_a_member(trained_workspace: Workspace, tmp_path: Path) -> None:
    copy = copy_workspace(trained_workspace.root, tmp_path / "copy")
    faces, voices = first_probes(copy, STRANGER)
    # One of the photos is alice's: the screen says so after enrolling.
    borrowed = tmp_path / "borrowed.png"
    shutil.copyfile(sorted((copy.faces_dir / MEMBER).iterdir())[0], borrowed)
    faces.append(borrowed)
    app = create_app(copy.root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("f7")
        await settle(pilot, app)
        app.screen.query_one("#member-name", Input).value = "mallory"
        add = app.screen.query_one("#add-path", Input)
        for path in [*faces, *voices]:
            add.value = str(path)
            add.focus()
            await pilot.press("enter")
        assert "3 photos" in screen_text(app) and "2 clips" in screen_text(app)
        await pilot.click("#enrol")
        await settle(pilot, app, timeout=120)
        assert any(n == "Enrolled: mallory is enrolled. Welcome!" for n in notifications(app))
        assert any(
            n.startswith(
                "Enrolment note: face: data/raw/faces/mallory/borrowed.png, enrolled as mallory, "
                "looks more like alice's enrolment photos"
            )
            for n in notifications(app)
        ), notifications(app)
    assert len(list((copy.faces_dir / "mallory").iterdir())) == 3


async def test_training_screen_loads_the_saved_confusion_matrices(
    trained_workspace: Workspace,
) -> None:
    app = create_app(trained_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot, app)
        models = app.screen.query_one("#confusion-model", Select)
        # The voice model verifies a claimed member: it has no confusion matrix.
        assert [value for _, value in models._options[1:]] == ["face", "product"]  # noqa: SLF001
        app.screen.query_one("#training-tabs", TabbedContent).active = "confusion-tab"
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "true" in text and "predicted" in text and "Train a model" not in text
        assert "nan" not in screen_text(app)
