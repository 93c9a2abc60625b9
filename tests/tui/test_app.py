"""The terminal app's main paths, driven with Textual's Pilot."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, Label, Select, TabbedContent

from cli.render import level_colour
from engine.core.workspace import Workspace
from tests.tui.conftest import (
    add_attempts,
    close_welcome,
    notifications,
    screen_text,
    settle,
    stats_shown,
    until,
)
from tui.app import DARK_THEME, LIGHT_THEME, create_app
from tui.widgets.image_preview import ImagePreview
from tui.widgets.spectrogram import Spectrogram
from tui.widgets.steps import StepRow
from tui.widgets.waveform import Waveform

SIZE = (100, 30)


def table_rows(table: DataTable[object]) -> list[tuple[str, ...]]:
    return [tuple(str(cell) for cell in table.get_row_at(i)) for i in range(table.row_count)]


async def test_function_keys_and_palette_commands_switch_screens(
    small_workspace: Workspace,
) -> None:
    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert app.current_mode == "stats"
        for key, mode in zip(
            ("f3", "f4", "f5", "f6"),
            ("training", "authenticate", "simulation", "history"),
            strict=True,
        ):
            await pilot.press(key)
            await settle(pilot, app)
            assert app.current_mode == mode
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert {"Show Stats", "Show Auth", "Enrol a member", "Toggle dark/light"} <= set(titles)


async def test_theme_toggles_between_dark_and_light(small_workspace: Workspace) -> None:
    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        app.theme = DARK_THEME
        await pilot.press("ctrl+t")
        assert app.theme == LIGHT_THEME
        await pilot.press("ctrl+t")
        assert app.theme == DARK_THEME


async def test_stats_show_members_counts_and_customers(small_workspace: Workspace) -> None:
    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await stats_shown(pilot)
        members = table_rows(app.screen.query_one("#members", DataTable))
        assert members == [("ana", "A101", "3", "4", "1", "1"), ("ben", "A102", "3", "4", "1", "1")]
        probes = table_rows(app.screen.query_one("#probes", DataTable))
        assert ("zoe", "stranger", "1", "1") in probes
        assert "Every input is present." in screen_text(app)
        app.screen.query_one(TabbedContent).active = "photos-tab"
        await pilot.pause()
        photos = table_rows(app.screen.query_one("#photos", DataTable))
        assert ("ana", "neutral", "flip", "1") in photos and len(photos) == 18
        app.screen.query_one(TabbedContent).active = "customers-tab"
        await pilot.pause()
        assert "40 customers" in screen_text(app)
        categories = table_rows(app.screen.query_one("#categories", DataTable))
        assert sorted(categories) == [
            (c, "10") for c in ("Books", "Clothing", "Electronics", "Sports")
        ]


async def test_stats_name_the_commands_that_create_missing_data(workspace: Workspace) -> None:
    app = create_app(workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await close_welcome(pilot)
        await stats_shown(pilot)
        text = screen_text(app)
        assert "data/merged_dataset.csv is missing: run mmauth merge" in text
        assert "data/image_features.csv is missing: run mmauth features" in text


async def test_history_filters_by_member_and_decision(small_workspace: Workspace) -> None:
    add_attempts(small_workspace)
    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        await settle(pilot, app)
        table = app.screen.query_one("#attempts", DataTable)
        assert [row[1:4] for row in table_rows(table)] == [
            ("GRANTED", "ok", "ben"),
            ("DENIED", "unknown_face", "-"),
            ("DENIED", "voice_mismatch", "ana"),
            ("GRANTED", "ok", "ana"),
        ]
        app.screen.query_one("#member-filter", Select).value = "ana"
        await settle(pilot, app)
        assert [row[1] for row in table_rows(table)] == ["DENIED", "GRANTED"]
        app.screen.query_one("#decision-filter", Select).value = "DENIED"
        await settle(pilot, app)
        assert [row[2] for row in table_rows(table)] == ["voice_mismatch"]
        assert "The voice does not match ana." in screen_text(app)


async def test_history_flags_acknowledged_tampering_where_it_was(
    small_workspace: Workspace,
) -> None:
    import sqlite3

    from engine.auth.operator import acknowledge_audit

    add_attempts(small_workspace)
    connection = sqlite3.connect(small_workspace.database)
    with connection:
        connection.execute("UPDATE attempts SET decision = 'GRANTED', reason = 'ok' WHERE id = 2")
        connection.execute("DELETE FROM attempts WHERE id = 3")
    connection.close()
    acknowledge_audit(small_workspace, now=1_767_229_200.0)
    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        await settle(pilot, app)
        table = app.screen.query_one("#attempts", DataTable)
        assert [row[1:3] for row in table_rows(table)] == [
            ("audit log", "acknowledged"),
            ("GRANTED", "ok"),
            ("audit log", "deleted"),
            ("GRANTED (edited)", "ok"),
            ("GRANTED", "ok"),
        ]
        table.move_cursor(row=3)
        await settle(pilot, app)
        assert "audit log: edited: hash does not match" in screen_text(app)
        table.move_cursor(row=2)
        await settle(pilot, app)
        assert "entry 3 of the audit log is missing (deleted)" in screen_text(app)


async def test_history_without_a_database_says_how_to_make_attempts(workspace: Workspace) -> None:
    app = create_app(workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await close_welcome(pilot)
        await pilot.press("f6")
        await settle(pilot, app)
        assert "No attempts yet" in screen_text(app)
        assert not workspace.database.exists()


async def pick(pilot, app, field: str, path: Path, *, typed: bool = False) -> None:  # noqa: ANN001
    """Enter a path into a field of the Authenticate screen (typed key by key when ``typed``)."""
    entry = app.screen.query_one(f"#{field}", Input)
    entry.focus()
    if typed:
        await pilot.press(*path.relative_to(app.session.workspace.root).as_posix())
    else:
        entry.value = str(path)
    await pilot.press("enter")
    await settle(pilot, app)


async def test_authenticate_previews_the_picked_files(small_workspace: Workspace) -> None:
    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await settle(pilot, app)
        photo = small_workspace.faces_dir / "ana" / "neutral.png"
        await pick(pilot, app, "face-path", photo, typed=True)
        await pick(
            pilot, app, "voice-path", small_workspace.voices_dir / "ana" / "yes_approve_1.wav"
        )
        assert app.screen.query_one("#face-path", Input).value == "data/raw/faces/ana/neutral.png"
        assert app.screen.query_one(ImagePreview)._image is not None  # noqa: SLF001
        assert app.screen.query_one(Waveform)._samples is not None  # noqa: SLF001
        assert app.screen.query_one(Spectrogram)._db.shape[0] == 64  # noqa: SLF001
        caption = str(app.screen.query_one("#clip-caption", Label).content)
        assert caption.startswith("0.80 s clip, speech 0.")


async def test_authenticate_shows_bad_files_as_notifications(small_workspace: Workspace) -> None:
    broken = small_workspace.root / "broken.png"
    broken.write_bytes(b"not a picture")
    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await settle(pilot, app)
        await pick(pilot, app, "face-path", broken)
        assert any(n.startswith("Bad input: file broken.png") for n in notifications(app))
        assert "cannot show this photo" in screen_text(app)


async def test_authenticate_without_models_is_denied_with_the_reason(
    small_workspace: Workspace,
) -> None:
    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await settle(pilot, app)
        await pick(pilot, app, "face-path", small_workspace.probe_faces_dir / "ana" / "dim.png")
        await pick(
            pilot, app, "voice-path", small_workspace.probe_voices_dir / "ana" / "yes_approve_3.wav"
        )
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert "DENIED (models_missing)" in screen_text(app)
        assert app.screen.query_one("#step-input", StepRow).state == "passed"
        assert app.screen.query_one("#step-models", StepRow).state == "failed"
        assert app.screen.query_one("#step-voice", StepRow).state == "skipped"


def test_screens_import_no_heavy_library() -> None:
    """Start-up stays light: the engine's numeric stack loads only inside workers."""
    import subprocess
    import sys

    code = (
        "import importlib, sys\n"
        "for name in ('app', 'screens.training', 'screens.authenticate', 'screens.simulation',"
        " 'screens.history', 'screens.enrol'):\n"
        "    importlib.import_module('tui.' + name)\n"
        "heavy = ('pandas', 'numpy', 'sklearn', 'librosa', 'skimage', 'dlib', 'PIL')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_spectrogram_colours_run_from_the_floor_to_the_loudest() -> None:
    assert level_colour(-1.0) == level_colour(0.0) == "#0a0a28"
    assert level_colour(1.0) == level_colour(2.0) == "#fffab4"
    assert level_colour(0.5) == "#c8463c"


def test_a_missing_folder_is_refused_unless_created_on_request(tmp_path: Path) -> None:
    import subprocess
    import sys

    import pytest

    from engine.core.errors import InputError
    from tui.app import open_folder

    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match="no such folder; pass --create"):
        open_folder(missing)
    assert not missing.exists()
    assert open_folder(missing, create=True).root == missing and missing.is_dir()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("mmauth-tui")), str(tmp_path / "elsewhere")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and "no such folder" in done.stderr


async def test_a_failed_run_stays_on_screen_and_gives_the_buttons_back(
    small_workspace: Workspace,
) -> None:
    from textual.widgets import Button

    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await settle(pilot, app)
        simulation = app.screen
        await pilot.press("ctrl+r")  # no models in this workspace
        await settle(pilot, app)
        assert type(app.screen).__name__ == "ErrorScreen"
        text = screen_text(app)
        assert "Missing prerequisite" in text and "What to do" in text
        await pilot.pause(12)  # longer than any notification stays
        assert type(app.screen).__name__ == "ErrorScreen"
        await pilot.press("escape")
        assert app.screen is simulation
        assert simulation.query_one("#start", Button).disabled is False
        assert simulation.query_one("#cancel", Button).disabled is True


async def test_history_lists_every_member_and_stats_recount_when_shown(
    small_workspace: Workspace,
) -> None:
    from tests.tui.conftest import write_photo

    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await stats_shown(pilot)
        write_photo(small_workspace.faces_dir / "cleo" / "neutral.png", seed=3)
        await pilot.press("f6")
        await settle(pilot, app)
        members = app.screen.query_one("#member-filter", Select)
        assert [value for _, value in members._options[1:]] == ["ana", "ben", "cleo"]  # noqa: SLF001
        await pilot.press("f2")
        await until(pilot, lambda: "cleo" in screen_text(app))


async def test_welcome_writes_the_sample_into_an_empty_folder(workspace: Workspace) -> None:
    from engine.core.installation import workspace_state_dir, write_state

    # Records of a deleted workspace that lived at this path: retired, and the user told.
    write_state(workspace_state_dir(workspace.root) / "audit.json", {"seq": 3, "hash": "ab"})
    app = create_app(workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: type(app.screen).__name__ == "WelcomeScreen")
        await pilot.click("#sample-only")
        await until(pilot, lambda: type(app.screen).__name__ == "StatsScreen", timeout=180)
        await until(pilot, lambda: "alice" in screen_text(app))
        shown = notifications(app)
        assert any(n.startswith("Sample: The workspace is ready") for n in shown)
        assert any(n.startswith("Earlier workspace:") and "/retired/" in n for n in shown)
    assert workspace.settings_file.is_file()


async def test_an_enrolment_refusal_lists_its_files_on_lines(
    small_workspace: Workspace, tmp_path: Path
) -> None:
    from tests.tui.conftest import write_clip, write_photo

    write_photo(tmp_path / "front.png", seed=1)
    write_photo(tmp_path / "again" / "front.png", seed=2)
    forged = tmp_path / "x\nGRANTED ana.png"
    forged.write_bytes(b"")
    write_clip(tmp_path / "yes_approve_1.wav", pitch_hz=140.0)
    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("f7")
        await settle(pilot, app)
        app.screen.query_one("#member-name", Input).value = "newbie"
        add = app.screen.query_one("#add-path", Input)
        for path in ("front.png", "again/front.png", forged.name, "yes_approve_1.wav"):
            add.value = str(tmp_path / path)
            add.focus()
            await pilot.press("enter")
        await pilot.click("#enrol")
        await until(pilot, lambda: type(app.screen).__name__ == "ErrorScreen")
        # The engine's own line breaks stay breaks; the one in a file name stays visible.
        assert app.screen.error_text.splitlines() == [
            "cannot enrol these files:",
            f"  {tmp_path}/again/front.png: has the same file name as another input (front.png)",
            f"  {tmp_path}/x\\nGRANTED ana.png: is empty (0 bytes)",
        ]


async def test_enrolling_a_file_the_member_has_asks_before_replacing_it(
    small_workspace: Workspace, tmp_path: Path, monkeypatch
) -> None:
    from textual.widgets import Button, Static

    from tests.engine.test_enrol import install_fake_pipelines
    from tests.tui.conftest import write_photo

    install_fake_pipelines(monkeypatch)
    kept = small_workspace.faces_dir / "ana" / "neutral.png"
    original = kept.read_bytes()
    write_photo(tmp_path / "neutral.png", seed=77)
    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("f7")
        await settle(pilot, app)
        form = app.screen
        form.query_one("#member-name", Input).value = "ana"
        add = form.query_one("#add-path", Input)
        add.value = str(tmp_path / "neutral.png")
        add.focus()
        await pilot.press("enter")
        for answer, changed in (("#cancel", False), ("#confirm", True)):
            await pilot.click("#enrol")
            await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
            assert app.screen.query_one("#confirm-text", Static).content.splitlines() == [
                "ana already has enrolment files of these names; enrolling replaces them "
                "(the old files are lost):",
                "  data/raw/faces/ana/neutral.png",
            ]
            # Enter alone answers Cancel.
            assert app.screen.focused is app.screen.query_one("#cancel", Button)
            await pilot.click(answer)
            await settle(pilot, app)
            assert (kept.read_bytes() != original) is changed
        assert any(n == "Enrolment cancelled: Nothing was changed." for n in notifications(app))
        assert any(n == "Enrolled: ana is enrolled. Welcome!" for n in notifications(app))
        assert app.screen is not form  # dismissed once enrolled


async def test_an_output_that_cannot_be_written_is_named_within_the_workspace(
    small_workspace: Workspace,
) -> None:
    from engine.core.errors import OutputError
    from tui.errors import notify_error, show_error

    error = OutputError(small_workspace.manifest, "it is a folder, not a file")
    app = create_app(small_workspace.root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        notify_error(app, error)
        show_error(app, error)
        await pilot.pause()
        assert type(app.screen).__name__ == "ErrorScreen"
        text = " ".join(screen_text(app).split())
        assert "Cannot write" in text and "Make room for the file" in text
        assert "cannot write models/manifest.json: it is a folder, not a file" in text
        assert notifications(app) == [
            "Cannot write: cannot write models/manifest.json: it is a folder, not a file"
        ]
