"""Fixtures of the hardening suite: the engine tests' enrolled workspace with stand-in models
(fast), and a copy of the real trained sample workspace (trained once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.workspace import Workspace
from tests.cli.test_auth import stand_in_models  # noqa: F401  (fixture)
from tests.conftest import copy_workspace
from tests.engine.test_auth import space, template  # noqa: F401  (fixtures)
from tests.tui.conftest import trained_workspace  # noqa: F401  (fixture)


@pytest.fixture
def trained(trained_workspace: Workspace, tmp_path: Path) -> Workspace:  # noqa: F811
    """A copy of the session's trained sample workspace (alice, bruno, chiara; mallory a
    stranger) at a path of its own, its models recorded for it as `mmauth models trust` would."""
    return copy_workspace(trained_workspace.root, tmp_path / "trained")
