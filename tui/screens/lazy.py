"""Screens made on first use: their modules (and the engine modules they pull in) load only then,
so start-up loads the Stats screen alone."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from textual.screen import Screen


def later(module: str, screen: str) -> Callable[[], Screen[Any]]:
    """A factory for the screen class ``screen`` of ``tui.screens.<module>``."""

    def make() -> Screen[Any]:
        return getattr(importlib.import_module(f"tui.screens.{module}"), screen)()

    return make
