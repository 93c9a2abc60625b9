"""Fixtures of the hardening suite: the engine tests' enrolled workspace with stand-in models
(fast), and a real trained sample workspace (slow, built once per session)."""

from __future__ import annotations

from tests.engine.test_auth import space, template  # noqa: F401  (fixtures)
