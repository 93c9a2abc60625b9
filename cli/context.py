"""Resolving the workspace and settings for a command, shared by every command."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from engine.core.settings import Settings, load_settings
from engine.core.workspace import Workspace, existing_workspace, resolve_workspace

_opened: contextvars.ContextVar[Workspace | None] = contextvars.ContextVar(
    "opened_workspace", default=None
)


def open_workspace(
    ctx: typer.Context | None,
    workspace: Path | None,
    overrides: dict[str, Any] | None = None,
    *,
    create: bool = False,
) -> tuple[Workspace, Settings]:
    """The command's workspace (its own option, else the global one, else env/cwd) and settings.

    Only the commands that make workspaces (``sample``, ``demo``) pass ``create``; every other
    command refuses a folder that does not exist (MissingWorkspaceError, exit 2), so a
    mistyped path creates nothing.
    """
    chosen = workspace
    if chosen is None and ctx is not None and isinstance(ctx.obj, dict):
        chosen = ctx.obj.get("workspace")
    space = resolve_workspace(chosen) if create else existing_workspace(chosen)
    # For the error handler, which names the paths of an error as within this workspace.
    _opened.set(space)
    return space, load_settings(space.root, overrides)


def opened_workspace() -> Workspace | None:
    """The workspace the running command opened, if any."""
    return _opened.get()


@contextlib.contextmanager
def command_scope() -> Iterator[None]:
    """Inside: opened_workspace() is the workspace opened inside, not one of an earlier
    command run in the same process (tests)."""
    token = _opened.set(None)
    try:
        yield
    finally:
        _opened.reset(token)
