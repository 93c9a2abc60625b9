"""Outside values (file names, member names, messages quoting them) made safe for the screen."""

from __future__ import annotations

from textual.markup import escape

from engine.core.text import printable


def shown(value: object) -> str:
    """``value`` for a widget that reads markup: control characters as visible escapes
    (engine.core.text.printable), markup brackets escaped."""
    return escape(printable(value))
