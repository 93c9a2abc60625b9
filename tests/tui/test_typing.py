"""Typing never fires commands: a full path typed into any input after any action stays as typed,
and the screen stays where it was (the app's keys are function keys and ctrl chords)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual.pilot import Pilot
from textual.widgets import Input

from engine.core.workspace import Workspace
from tests.tui.conftest import settle, stats_shown
from tui.app import create_app

SIZE = (100, 30)
# Letters and digits that used to be keys (1-5, e, q, r, x) all appear in it.
TYPED_TAIL = "data/raw/probes/faces/ana/quiet_rex_12345.png"

Action = Callable[[Pilot[object]], Awaitable[None]]


async def type_path_into(pilot: Pilot[object], input_id: str, path: str) -> None:
    """Click an input, then type ``path`` into it key by key; it must end up there unchanged."""
    app = pilot.app
    screen, mode = app.screen, app.current_mode
    field = screen.query_one(f"#{input_id}", Input)
    field.value = ""
    await pilot.click(f"#{input_id}")
    await pilot.press(*path)
    await pilot.pause()
    assert field.value == path, f"{input_id}: {field.value!r}"
    assert app.screen is screen and app.current_mode == mode, "a typed key changed the screen"


async def test_paths_typed_on_auth_after_run_clear_and_screen_switch(
    small_workspace: Workspace,
) -> None:
    root = small_workspace.root
    path = f"{root}/{TYPED_TAIL}"

    async def run(pilot: Pilot[object]) -> None:
        screen = pilot.app.screen
        screen.query_one("#face-path", Input).value = "data/raw/probes/faces/ana/dim.png"
        screen.query_one(
            "#voice-path", Input
        ).value = "data/raw/probes/voices/ana/yes_approve_3.wav"
        await pilot.press("ctrl+r")

    async def clear(pilot: Pilot[object]) -> None:
        await pilot.press("ctrl+l")
        # Clearing starts again at the photo: typing goes there, not into the file tree.
        assert pilot.app.focused is pilot.app.screen.query_one("#face-path", Input)

    async def switch_screens(pilot: Pilot[object]) -> None:
        await pilot.press("f3", "f4")

    async def hide_and_show_files(pilot: Pilot[object]) -> None:
        await pilot.press("ctrl+b", "ctrl+b")

    actions: dict[str, Action] = {
        "run": run,
        "clear": clear,
        "screen switch": switch_screens,
        "file tree toggled": hide_and_show_files,
    }
    app = create_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await stats_shown(pilot)
        await pilot.press("f4")
        await settle(pilot, app)
        for name, action in actions.items():
            await action(pilot)
            await settle(pilot, app)
            for input_id in ("face-path", "voice-path"):
                await type_path_into(pilot, input_id, path)
            # Enter in the photo's field moves on without selecting the clip's text.
            await pilot.click("#face-path")
            await pilot.press("enter", "x")
            await settle(pilot, app)
            assert app.screen.query_one("#voice-path", Input).value == path + "x", name


async def test_paths_typed_in_the_enrol_form_after_each_action(small_workspace: Workspace) -> None:
    root = small_workspace.root
    path = f"{root}/{TYPED_TAIL}"

    async def open_form(pilot: Pilot[object]) -> None:
        await pilot.press("f7")

    async def clear_files(pilot: Pilot[object]) -> None:
        await pilot.click("#clear-files")

    async def enrol_without_a_name(pilot: Pilot[object]) -> None:
        pilot.app.screen.query_one("#member-name", Input).value = ""
        await pilot.press("ctrl+r")

    async def close_and_reopen(pilot: Pilot[object]) -> None:
        await pilot.press("escape", "f5", "f7")

    app = create_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await stats_shown(pilot)
        for action in (open_form, clear_files, enrol_without_a_name, close_and_reopen):
            await action(pilot)
            await settle(pilot, app)
            for input_id in ("member-name", "customer-id", "add-path"):
                await type_path_into(pilot, input_id, path)
        assert not (small_workspace.faces_dir / "quiet_rex_12345.png").exists()


def test_a_typed_relative_path_is_the_workspaces_else_the_start_folders(
    tmp_path, monkeypatch
) -> None:
    """A path pasted from the shell the app was started in works; the workspace's own files
    come first, and a path found nowhere is shown where the workspace would hold it."""
    from tui.session import Session

    root = tmp_path / "demo"
    (root / "data").mkdir(parents=True)
    (root / "data" / "in_workspace.png").touch()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in_workspace.png").touch()
    (tmp_path / "data" / "beside.png").touch()
    monkeypatch.chdir(tmp_path)
    session = Session(Workspace(root))
    assert session.typed_file("data/in_workspace.png") == root / "data" / "in_workspace.png"
    assert session.typed_file("demo/data/in_workspace.png") == root / "data" / "in_workspace.png"
    assert session.typed_file("data/beside.png") == tmp_path / "data" / "beside.png"
    assert session.typed_file("data/nowhere.png") == root / "data" / "nowhere.png"
    assert session.typed_file(str(tmp_path / "x.png")) == tmp_path / "x.png"


def test_the_apps_models_are_loaded_again_after_the_manifest_changed(tmp_path, monkeypatch) -> None:
    """mmauth train, enroll or remove run from a shell while the app is open: its next login
    uses the models now on disk, not the ones it loaded before."""
    import engine.models.loading as loading
    from tui.session import Session

    class Bundle:
        def __init__(self, manifest: str) -> None:
            self.manifest = manifest

        def is_current(self, workspace: Workspace) -> bool:
            return workspace.manifest.read_text() == self.manifest

    monkeypatch.setattr(
        loading, "load_model_bundle", lambda space, **_: Bundle(space.manifest.read_text())
    )
    space = Workspace(tmp_path)
    space.manifest.parent.mkdir()
    space.manifest.write_text("first")
    session = Session(space)
    first = session.model_bundle()
    assert session.model_bundle() is first
    space.manifest.write_text("after mmauth remove")
    assert session.model_bundle().manifest == "after mmauth remove"
