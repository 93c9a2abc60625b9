"""Helpers of the hardening suite."""

from __future__ import annotations

from pathlib import Path

from engine.auth.outcomes import AuthDecision
from engine.core.settings import load_settings
from engine.core.workspace import Workspace, member_folders


def attempt(workspace: Workspace, face: Path, voice: Path) -> AuthDecision:
    """One live attempt with the workspace's own models, store and settings (a cold start)."""
    from engine.auth.flow import authenticate

    return authenticate(workspace, load_settings(workspace.root), face, voice)


def genuine_pair(workspace: Workspace, member: str = "alice") -> tuple[Path, Path]:
    """A probe photo and recording of ``member`` that the trained models grant."""
    from engine.auth.flow import Authenticator

    settings = load_settings(workspace.root)
    authenticator = Authenticator(workspace, settings, record=False, lockout=False)
    for face in member_folders(workspace.probe_faces_dir)[member]:
        for voice in member_folders(workspace.probe_voices_dir)[member]:
            if authenticator.authenticate(face, voice).granted:
                return face, voice
    raise AssertionError(f"no probe pair of {member} is granted")
