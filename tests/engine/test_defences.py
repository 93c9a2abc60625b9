"""Login defences in the workspace's settings may tighten, never loosen unnoticed."""

from __future__ import annotations

import dataclasses

import pytest

from engine.core.defences import (
    WEAKER_WHEN_HIGHER,
    WEAKER_WHEN_LOWER,
    WeakenedDefencesError,
    accepted_defences,
    check_defences,
    record_defences,
    weakened,
)
from engine.core.settings import AuthSettings
from engine.core.workspace import Workspace


def test_every_defence_has_a_direction() -> None:
    """A new [auth] setting must say which way is weaker, or it could be loosened unnoticed."""
    names = {f.name for f in dataclasses.fields(AuthSettings)}
    assert set(WEAKER_WHEN_HIGHER) | set(WEAKER_WHEN_LOWER) == names
    assert not set(WEAKER_WHEN_HIGHER) & set(WEAKER_WHEN_LOWER)


@pytest.mark.parametrize(
    ("change", "loosens"),
    [
        ({"replay_photo_residual": 0.0}, True),
        ({"replay_photo_residual": 12.0}, False),
        ({"replay_audio_similarity": 1.0}, True),
        ({"replay_audio_similarity": 0.95}, False),
        ({"lockout_attempts": 1000}, True),
        ({"lockout_attempts": 3}, False),
        ({"lockout_window_s": 1.0}, True),
        ({"lockout_duration_s": 0.0}, True),
        ({"lockout_duration_s": 3600.0}, False),
    ],
)
def test_weaker_is_told_from_stricter(change: dict[str, float], loosens: bool) -> None:
    current = dataclasses.replace(AuthSettings(), **change)
    found = weakened(current, AuthSettings())
    assert bool(found) is loosens
    if loosens:
        (name,) = change
        assert found[0].startswith(f"auth.{name} = ")


def test_the_defaults_are_the_baseline_until_an_operator_accepts_others(
    workspace: Workspace,
) -> None:
    loose = AuthSettings(replay_photo_residual=0.0, replay_audio_similarity=1.0)
    check_defences(workspace, AuthSettings())
    with pytest.raises(WeakenedDefencesError) as refused:
        check_defences(workspace, loose)
    assert "auth.replay_photo_residual = 0.0 (accepted 8.0" in refused.value.message
    assert "auth.replay_audio_similarity = 1.0 (accepted 0.975" in refused.value.message
    assert "mmauth models trust" in refused.value.message
    record_defences(workspace, loose)
    assert accepted_defences(workspace) == loose
    check_defences(workspace, loose)
    # Once looser ones are accepted, going back to the defaults is tightening: allowed.
    check_defences(workspace, AuthSettings())
