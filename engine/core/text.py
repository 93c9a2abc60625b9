"""Text from outside (file names, member names, messages quoting them) made safe to show.

A file name may hold a newline, a carriage return or a terminal escape sequence: printed as it
is, ``x\\nGRANTED alice`` draws a line that mmauth never wrote, and ESC sequences recolour,
move the cursor or retitle the terminal. ``printable`` turns every such character into a
visible escape, so one value always shows as one line of plain characters. Both front ends
pass every outside value through it before display (the CLI then escapes rich markup too).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Unicode categories that move, hide or reorder what follows: controls (C0, DEL, C1), line and
# paragraph separators, and format characters (bidirectional overrides, zero-width joiners).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cf"})


def printable(text: object) -> str:
    """``text`` (or ``str(text)``) with control, separator and format characters shown as
    visible escapes (``\\n``, ``\\x1b``, ``\\u202e``); everything else is kept as it is."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(_escaped(character) for character in value)


def printable_lines(lines: Iterable[object]) -> str:
    """Lines the program composed (an error's ``lines``), each made ``printable`` on its own and
    joined by real line breaks: only the program's own breaks break the text."""
    return "\n".join(printable(line) for line in lines)


def _escaped(character: str) -> str:
    if character in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[character]
    if unicodedata.category(character) not in _UNSAFE_CATEGORIES:
        return character
    code = ord(character)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
