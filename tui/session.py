"""What every screen shares: the workspace, its settings and the loaded models."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from textual.dom import DOMNode

from engine.core.settings import Settings, load_settings
from engine.core.workspace import Workspace


class Session:
    """The workspace the app works on, with settings read afresh and models loaded once."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._bundle: Any = None
        self._lock = threading.Lock()
        self._processes_prepared = False

    def settings(self) -> Settings:
        """Settings as mmauth.toml and the environment say now (raises ConfigError)."""
        return load_settings(self.workspace.root)

    def prepare_processes(self) -> None:
        """Make worker processes startable while Textual owns stderr (tui.child_processes);
        call from a worker thread before engine work that may start some. Only the first call
        does anything (it imports joblib, so it is not done at start-up)."""
        from tui.child_processes import start_resource_trackers, worker_log_path

        with self._lock:
            if not self._processes_prepared:
                start_resource_trackers(worker_log_path())
                self._processes_prepared = True

    def model_bundle(self) -> Any:
        """The verified model bundle, loaded on first use and again whenever models/manifest.json
        changed since (mmauth train, enroll or remove run from a shell while the app is open);
        call from a worker thread."""
        with self._lock:
            if self._bundle is None or not self._bundle.is_current(self.workspace):
                from engine.models.loading import load_model_bundle

                self._bundle = load_model_bundle(self.workspace)
            return self._bundle

    def typed_file(self, text: str) -> Path:
        """The file a person typed: a relative path is one inside the workspace, else, when
        only that exists, one from the folder the app was started in (where a shell's paths,
        pasted, lead); when neither exists the workspace's, so the error names where it looked."""
        typed = Path(text).expanduser()
        inside = self.workspace.root / typed
        if typed.is_absolute() or os.path.lexists(inside) or not os.path.lexists(typed):
            return inside
        return typed.absolute()

    def forget_models(self) -> None:
        """Drop the loaded models, e.g. after training wrote new ones."""
        with self._lock:
            self._bundle = None


def session_of(node: DOMNode) -> Session:
    """The session of the app a widget or screen belongs to."""
    return node.app.session  # type: ignore[attr-defined]
