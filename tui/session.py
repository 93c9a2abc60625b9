"""What every screen shares: the workspace, its settings and the loaded models."""

from __future__ import annotations

import threading
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
        self.processes_ready = threading.Event()
        """Set once worker processes can be started (tui.child_processes)."""

    def settings(self) -> Settings:
        """Settings as mmauth.toml and the environment say now (raises ConfigError); waits
        until worker processes can start, since the work these settings are for may start some."""
        self.processes_ready.wait()
        return load_settings(self.workspace.root)

    def prepare_processes(self) -> None:
        """Start what worker processes need (call from a worker thread, after the first paint)."""
        from tui.child_processes import start_resource_trackers, worker_log_path

        try:
            start_resource_trackers(worker_log_path())
        finally:
            # A failure here is the worker's to report; waiting forever would hide it.
            self.processes_ready.set()

    def model_bundle(self) -> Any:
        """The verified model bundle, loaded on first use (call from a worker thread)."""
        with self._lock:
            if self._bundle is None:
                from engine.models.persistence import load_model_bundle

                self._bundle = load_model_bundle(self.workspace)
            return self._bundle

    def forget_models(self) -> None:
        """Drop the loaded models, e.g. after training wrote new ones."""
        with self._lock:
            self._bundle = None


def session_of(node: DOMNode) -> Session:
    """The session of the app a widget or screen belongs to."""
    return node.app.session  # type: ignore[attr-defined]
