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


def test_a_value_no_comparison_holds_for_is_weaker_and_refused_as_a_setting(
    workspace: Workspace,
) -> None:
    """NaN compares false with everything: it must not pass for a tightening, and the settings
    refuse it (a NaN window or lock switched the lockout off)."""
    from engine.core.errors import ConfigError
    from engine.core.settings import load_settings

    nan = float("nan")
    for name in ("lockout_window_s", "lockout_duration_s", "replay_photo_residual"):
        assert weakened(dataclasses.replace(AuthSettings(), **{name: nan}), AuthSettings())
        with pytest.raises(ConfigError, match=f"auth.{name} must be"):
            load_settings(workspace.root, {f"auth.{name}": nan})


def test_training_accepts_stricter_defences_but_not_looser_ones(workspace: Workspace) -> None:
    """Training (also run inside enroll and remove) takes stricter settings in; looser ones
    only through mmauth models trust, which the audit log records."""
    from engine.core.settings import load_settings
    from engine.models.training import train_models
    from tests.engine.model_fixtures import write_merged_dataset

    write_merged_dataset(workspace)
    fast = {"models.cv_splits": 3, "models.cv_repeats": 2}
    strict = load_settings(workspace.root, {**fast, "auth.lockout_attempts": 3})
    assert not train_models(workspace, strict, which=("product",)).notes
    assert accepted_defences(workspace).lockout_attempts == 3
    loose = load_settings(workspace.root, {**fast, "auth.lockout_attempts": 1000})
    notes = train_models(workspace, loose, which=("product",)).notes
    assert accepted_defences(workspace).lockout_attempts == 3
    assert any(n.startswith("settings: auth.lockout_attempts = 1000 (accepted 3") for n in notes)
