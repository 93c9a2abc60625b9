"""The top-level screens and the function keys that show them (F1 is help, F7 enrol)."""

from __future__ import annotations

SCREEN_TITLES = {
    "stats": "Stats",
    "training": "Train",
    "authenticate": "Auth",
    "simulation": "Simulate",
    "history": "History",
}
"""Mode name -> title, in the order of the keys F2 to F6."""
FIRST_SCREEN_KEY = 2
HELP_KEY = "f1"
ENROL_KEY = "f7"


def screen_key(mode: str) -> str:
    """The function key that shows a top-level screen: function keys never collide with typing."""
    return f"f{FIRST_SCREEN_KEY + list(SCREEN_TITLES).index(mode)}"
