"""Resolving the workspace and settings for a command, shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from engine.core.settings import Settings, load_settings
from engine.core.workspace import Workspace, resolve_workspace


def open_workspace(
    ctx: typer.Context | None, workspace: Path | None, overrides: dict[str, Any] | None = None
) -> tuple[Workspace, Settings]:
    """The command's workspace (its own option, else the global one, else env/cwd) and settings."""
    chosen = workspace
    if chosen is None and ctx is not None and isinstance(ctx.obj, dict):
        chosen = ctx.obj.get("workspace")
    space = resolve_workspace(chosen)
    return space, load_settings(space.root, overrides)
