"""The login's defences as this installation last accepted them: a workspace's settings may
tighten them freely, never loosen them unnoticed.

The defences the flow reads at every login (lockout, replay bounds: ``settings.auth``) live in
the workspace's mmauth.toml, which whoever can write the workspace can edit: a replay bound of
0 lets every copy of an enrolment file through, a lockout of 1000 attempts allows guessing.
The installation records the settings it accepted, outside the workspace, when models are
trained or trusted (an operator's act); a login whose settings are weaker in any of them than
the record, or than the defaults where there is no record yet, is refused, naming each one.
Stricter settings need nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from engine.core.errors import MmauthError
from engine.core.installation import read_state, workspace_state_dir, write_state
from engine.core.settings import AuthSettings
from engine.core.workspace import Workspace

_POLICY_FILE = "auth_policy.json"

WEAKER_WHEN_HIGHER = {
    "lockout_attempts": "more denied attempts before a lock",
    "replay_audio_similarity": "fewer recording copies caught",
}
"""Settings where a larger value is a weaker defence, with what it allows."""
WEAKER_WHEN_LOWER = {
    "lockout_window_s": "denials counted over a shorter time",
    "lockout_duration_s": "a shorter lock",
    "replay_photo_residual": "fewer photo copies caught",
}
"""Settings where a smaller value is a weaker defence, with what it allows."""


class WeakenedDefencesError(MmauthError):
    """The workspace's settings loosen a defence this installation accepted."""

    title = "Defences weakened"


def weakened(current: AuthSettings, accepted: AuthSettings) -> list[str]:
    """Each setting of ``current`` that is a weaker defence than in ``accepted``, in words."""
    found = []
    for field in dataclasses.fields(AuthSettings):
        now, before = getattr(current, field.name), getattr(accepted, field.name)
        # "Not provably stricter" counts as weaker, so that a value no comparison holds for
        # (NaN) is never taken for a tightening.
        if field.name in WEAKER_WHEN_HIGHER and not now <= before:
            found.append(
                f"auth.{field.name} = {now} (accepted {before}: {WEAKER_WHEN_HIGHER[field.name]})"
            )
        elif field.name in WEAKER_WHEN_LOWER and not now >= before:
            found.append(
                f"auth.{field.name} = {now} (accepted {before}: {WEAKER_WHEN_LOWER[field.name]})"
            )
    return found


def accepted_defences(workspace: Workspace) -> AuthSettings:
    """The defences this installation last accepted for the workspace (the defaults before
    any); a damaged record counts as none."""
    record = read_state(workspace_state_dir(workspace.root) / _POLICY_FILE)
    values = record.get("auth") if record else None
    if not isinstance(values, dict):
        return AuthSettings()
    defaults = AuthSettings()
    kinds = {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(AuthSettings)}
    try:
        return AuthSettings(**{k: kinds[k](v) for k, v in values.items() if k in kinds})
    except (TypeError, ValueError):
        return defaults


def record_defences(workspace: Workspace, auth: AuthSettings) -> None:
    """Accept ``auth`` as the workspace's defences (``mmauth train``, ``mmauth models
    trust``)."""
    write_state(
        workspace_state_dir(workspace.root) / _POLICY_FILE,
        {
            "auth": dataclasses.asdict(auth),
            "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )


def check_defences(workspace: Workspace, auth: AuthSettings) -> None:
    """Refuse settings weaker than the accepted defences, naming each one and what to do."""
    found = weakened(auth, accepted_defences(workspace))
    if found:
        raise WeakenedDefencesError(
            "the workspace's settings (mmauth.toml, MMAUTH_* variables or flags) weaken "
            "defences this installation accepted: "
            + "; ".join(found)
            + ". Restore them; if the change is meant, mmauth models trust accepts the current "
            "settings (recorded in the audit log), as mmauth train does"
        )
