"""Snapshots of every screen at 100x30 and at 80x24 on a fixed workspace, the welcome and the
error panel (update: pytest --snapshot-update)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TabbedContent

from engine.core.workspace import Workspace
from tests.tui.conftest import add_attempts, settle, stats_shown, until
from tui.app import LIGHT_THEME, create_app

SIZE = (100, 30)


async def steady(pilot: Pilot[object]) -> None:
    """Let the first screen's statistics and every worker finish; stop cursors blinking."""
    await stats_shown(pilot)
    await settled(pilot)


async def settled(pilot: Pilot[object]) -> None:
    await settle(pilot, pilot.app)
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def after_key(key: str) -> Callable[[Pilot[object]], Awaitable[None]]:
    """A run_before that waits for the Stats screen, presses ``key`` and lets that settle."""

    async def run_before(pilot: Pilot[object]) -> None:
        await steady(pilot)
        await pilot.press(key)
        await settled(pilot)

    return run_before


def test_stats_overview(snap_compare, small_workspace: Workspace) -> None:  # noqa: ANN001
    assert snap_compare(create_app(small_workspace.root), terminal_size=SIZE, run_before=steady)


def test_stats_customers(snap_compare, small_workspace: Workspace) -> None:  # noqa: ANN001
    async def customers_tab(pilot: Pilot[object]) -> None:
        await steady(pilot)
        pilot.app.screen.query_one(TabbedContent).active = "customers-tab"
        await pilot.pause()

    assert snap_compare(
        create_app(small_workspace.root), terminal_size=SIZE, run_before=customers_tab
    )


def test_stats_features_light_theme(snap_compare, small_workspace: Workspace) -> None:  # noqa: ANN001
    async def features_tab(pilot: Pilot[object]) -> None:
        pilot.app.theme = LIGHT_THEME
        await steady(pilot)
        pilot.app.screen.query_one(TabbedContent).active = "features-tab"
        await pilot.pause()

    assert snap_compare(
        create_app(small_workspace.root), terminal_size=SIZE, run_before=features_tab
    )


def test_authenticate_with_picked_files(snap_compare, small_workspace: Workspace) -> None:  # noqa: ANN001
    async def picked(pilot: Pilot[object]) -> None:
        await after_key("f4")(pilot)
        for field, path in (
            ("#face-path", "data/raw/probes/faces/ana/dim.png"),
            ("#voice-path", "data/raw/probes/voices/ana/yes_approve_3.wav"),
        ):
            entry = pilot.app.screen.query_one(field, Input)
            entry.value = path
            entry.focus()
            await pilot.press("enter")
        await settled(pilot)

    assert snap_compare(create_app(small_workspace.root), terminal_size=SIZE, run_before=picked)


def test_training_before_any_model(snap_compare, small_workspace: Workspace) -> None:  # noqa: ANN001
    assert snap_compare(
        create_app(small_workspace.root), terminal_size=SIZE, run_before=after_key("f3")
    )


def test_simulation_idle(snap_compare, small_workspace: Workspace) -> None:  # noqa: ANN001
    assert snap_compare(
        create_app(small_workspace.root), terminal_size=SIZE, run_before=after_key("f5")
    )


def test_history_of_four_attempts(snap_compare, small_workspace: Workspace) -> None:  # noqa: ANN001
    add_attempts(small_workspace)
    assert snap_compare(
        create_app(small_workspace.root), terminal_size=SIZE, run_before=after_key("f6")
    )


def test_enrol_form(snap_compare, small_workspace: Workspace) -> None:  # noqa: ANN001
    assert snap_compare(
        create_app(small_workspace.root), terminal_size=SIZE, run_before=after_key("f7")
    )


def test_authenticate_decision_at_80x24(snap_compare, small_workspace: Workspace) -> None:  # noqa: ANN001
    async def decided(pilot: Pilot[object]) -> None:
        await after_key("f4")(pilot)
        for field, path in (
            ("#face-path", "data/raw/probes/faces/zoe/zoe.png"),
            ("#voice-path", "data/raw/probes/voices/zoe/yes_approve_1.wav"),
        ):
            entry = pilot.app.screen.query_one(field, Input)
            entry.value = path
            entry.focus()
            await pilot.press("enter")
        await pilot.press("ctrl+r")
        await settled(pilot)

    assert snap_compare(
        create_app(small_workspace.root), terminal_size=(80, 24), run_before=decided
    )


SMALL = (80, 24)


def test_welcome_on_an_empty_folder(snap_compare, workspace: Workspace) -> None:  # noqa: ANN001
    async def welcomed(pilot: Pilot[object]) -> None:
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "WelcomeScreen")
        await settled(pilot)

    assert snap_compare(create_app(workspace.root), terminal_size=SIZE, run_before=welcomed)


def test_error_panel_when_simulating_without_models(
    snap_compare, small_workspace: Workspace
) -> None:  # noqa: ANN001
    async def failed(pilot: Pilot[object]) -> None:
        await after_key("f5")(pilot)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "ErrorScreen")
        await settled(pilot)

    assert snap_compare(create_app(small_workspace.root), terminal_size=SIZE, run_before=failed)


@pytest.mark.parametrize("key", ["f2", "f3", "f4", "f5", "f6", "f7", "f1"])
def test_layout_at_80x24(snap_compare, small_workspace: Workspace, key: str) -> None:  # noqa: ANN001
    add_attempts(small_workspace)
    assert snap_compare(
        create_app(small_workspace.root), terminal_size=SMALL, run_before=after_key(key)
    )
