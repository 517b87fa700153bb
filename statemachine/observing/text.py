"""Text from a log, a store or a spec, made safe to show on a terminal.

Event strings are data: a threadId holding ESC [ 2 J would clear the screen of whoever reads a
report, and one holding a newline would forge a line of it. Every C0 control (U+0000-U+001F), DEL
and every C1 control (U+0080-U+009F, which some terminals obey like ESC [) is written as a visible
escape, `\\x1b`; nothing else changes, so printable text, including non-ASCII, reads as it is.
"""

from __future__ import annotations

__all__ = ["visible", "visible_lines"]

_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
_ONE_LINE = {c: f"\\x{c:02x}" for c in _CONTROLS}
_LINES = {c: e for c, e in _ONE_LINE.items() if c not in (0x0A, 0x09)}


def visible(text: str) -> str:
    """One field of a line: every control character escaped, newlines and tabs included."""
    return text.translate(_ONE_LINE)


def visible_lines(text: str) -> str:
    """A whole report: every control character escaped but the newlines and tabs that lay it out."""
    return text.translate(_LINES)
