"""JSON lines -> Python values: one set of rules, whichever decoder runs.

Two decoders read event lines: the standard library's `json` (always there) and msgspec (the
`[fast]` extra), chosen automatically when msgspec is importable. Both give the same result on
every line, because the rules are the stdlib's and msgspec only answers where it is certain to
agree:

- a line msgspec refuses for any reason (malformed JSON, but also NaN and Infinity, a lone
  surrogate, a number beyond the float range, a UTF-8 BOM, UTF-16 or UTF-32 text, an envelope
  field of the wrong type or an unknown top-level key) is decoded again by the stdlib, whose
  answer (a value, or its error message) is the one given;
- where msgspec accepts, it yields what the stdlib yields: integers of any size up to Python's
  4300-digit limit exactly, correctly rounded floats, the last of duplicate keys;
- nesting is bounded by `MAX_NESTING` on both paths, so neither library's recursion limit (both
  count the caller's stack) decides.

The decisions, case by case, are in docs/reliability.md ("Where JSON decoders differ").

Choose the decoder with the environment variable `STATEMACHINE_JSON` (`auto`, the default;
`json`; `msgspec`, which fails if it is not installed) or `use_decoder()`. Another value leaves
the default in place and is reported by `setting_error()`; the command line refuses to run with it.
"""

from __future__ import annotations

import codecs
import importlib.util
import json
import json.scanner
import os
from collections.abc import Callable
from typing import Any

from statemachine.core.event import EventError

__all__ = [
    "DECODERS",
    "MAX_NESTING",
    "decoder_name",
    "envelope_decoder",
    "fast_available",
    "line_loader",
    "loads_line",
    "scan_once",
    "setting_error",
    "too_deep",
    "use_decoder",
]

DECODERS = ("auto", "json", "msgspec")

# Deepest accepted nesting of arrays and objects in a line, the envelope itself being level 1.
# Payloads are shallow; a fixed bound, well inside both decoders' recursion limits (about 990
# levels from a shallow stack), makes the answer independent of which decoder ran.
MAX_NESTING = 200

_loads = json.loads

# The stdlib's C scanner itself, as `json.loads` calls it once the text is decoded and its leading
# whitespace skipped: (text, index) -> (value, end), StopIteration when no value starts there.
_make_scanner: Any = json.scanner.make_scanner  # typed by typeshed as a class; it is a factory
scan_once: Callable[[str, int], tuple[Any, int]] = _make_scanner(json.JSONDecoder())

# msgspec is imported on first use only (`import msgspec` costs more than the rest of a short replay).
_HAS_MSGSPEC = importlib.util.find_spec("msgspec") is not None


def fast_available() -> bool:
    """Is msgspec importable?"""
    return _HAS_MSGSPEC


def too_deep(line: str | bytes) -> bool:
    """Might this line nest deeper than `MAX_NESTING`? Cheap first: a line nested d levels deep
    has at least 2d characters and d opening brackets; only a line that might is walked."""
    if len(line) <= 2 * MAX_NESTING:
        return False
    if isinstance(line, bytes):
        return line.count(b"[") + line.count(b"{") > MAX_NESTING
    return line.count("[") + line.count("{") > MAX_NESTING


def _depth(value: object) -> int:
    """Nesting depth of a decoded value (iterative: the value may be nearly as deep as the stack)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > deepest:
            deepest = level
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


# Byte order marks of the encodings `json.loads(bytes)` detects besides UTF-8 (UTF-32's first:
# its little-endian mark begins with UTF-16's).
_OTHER_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
               (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def loads_line(line: str | bytes) -> Any:
    """The stdlib reading of one line: its value, or `EventError("line", ...)`. This is the rule
    both decoders follow.

    A UTF-8 byte order mark at the start is skipped, on a text line as on a bytes line (where
    `json.loads` skips it itself): editors put one at the start of a file. A bytes line that starts
    with a UTF-16 or UTF-32 mark but does not decode in that encoding is refused naming the mark:
    it is the first line of such a file, cut at a newline byte inside a two-byte character."""
    if isinstance(line, str) and line.startswith("\ufeff"):
        line = line[1:]
    try:
        data = _loads(line)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, UnicodeDecodeError) and isinstance(line, bytes):
            name = next((n for bom, n in _OTHER_BOMS if line.startswith(bom)), None)
            if name is not None:
                raise EventError("line", f"starts with a {name} byte order mark but is not {name} text: a log "
                                 f"must be UTF-8, one event per line (convert the file: iconv -f {name} "
                                 "-t UTF-8)") from None
        raise EventError("line", f"not valid JSON: {exc}") from None
    if too_deep(line) and _depth(data) > MAX_NESTING:
        raise EventError("line", f"not valid JSON: nested deeper than {MAX_NESTING} levels")
    return data


# -- msgspec ---------------------------------------------------------------------------------------


class _Msgspec:
    """msgspec's two decoders and the exceptions they raise, built on first use."""

    def __init__(self) -> None:
        import msgspec

        class WireEnvelope(msgspec.Struct, forbid_unknown_fields=True):
            """The envelope as msgspec decodes it: typed, so a wrong type falls back to the stdlib
            and so to the parser's own error; unknown keys fall back too (msgspec would skip them
            without reading them the way the stdlib does)."""

            eventId: str
            type: str
            provider: str
            threadId: str
            createdAt: str
            turnId: str | None = None
            payload: dict[str, Any] | None = None

        self.any: Callable[[str | bytes], Any] = msgspec.json.Decoder().decode
        self.envelope: Callable[[str | bytes], Any] = msgspec.json.Decoder(WireEnvelope).decode
        self.errors: tuple[type[Exception], ...] = (msgspec.DecodeError, ValueError, RecursionError)

        def loads(line: str | bytes) -> Any:
            if not too_deep(line):
                try:
                    return self.any(line)
                except self.errors:
                    pass
            return loads_line(line)  # the stdlib's answer, whatever msgspec said

        self.loads = loads


_msgspec: _Msgspec | None = None


def _fast() -> _Msgspec:
    global _msgspec
    if _msgspec is None:
        _msgspec = _Msgspec()
    return _msgspec


# -- the choice ------------------------------------------------------------------------------------

_chosen = "json"


def use_decoder(name: str) -> str:
    """Choose the line decoder for this process: "auto" (msgspec when importable), "json" or
    "msgspec". Returns the decoder now in use. Raises ValueError for another name, ImportError
    for "msgspec" without msgspec."""
    global _chosen
    if name not in DECODERS:
        raise ValueError(f"decoder must be one of {list(DECODERS)}, got {name!r}")
    if name == "msgspec" and not _HAS_MSGSPEC:
        raise ImportError("msgspec is not installed (pip install 'agent-session-lifecycle[fast]')")
    _chosen = "msgspec" if name == "msgspec" or (name == "auto" and _HAS_MSGSPEC) else "json"
    return _chosen


def decoder_name() -> str:
    """The decoder in use: "json" or "msgspec"."""
    return _chosen


def line_loader() -> Callable[[str | bytes], Any]:
    """line -> its value, or `EventError("line", ...)`, with the decoder in use."""
    return _fast().loads if _chosen == "msgspec" else loads_line


def envelope_decoder() -> tuple[Callable[[str | bytes], Any], tuple[type[Exception], ...]] | None:
    """For the batch path: (line -> a msgspec envelope with the wire's attribute names, the
    exceptions it raises for any line it does not decode the stdlib's way); None when the stdlib
    decoder is in use. The caller checks `too_deep` first and gives every refused line to the
    stdlib path."""
    if _chosen != "msgspec":
        return None
    fast = _fast()
    return fast.envelope, fast.errors


_setting_error: str | None = None


def setting_error() -> str | None:
    """Why the `STATEMACHINE_JSON` setting was not taken (an unknown name, or msgspec missing), or
    None. Importing never fails on it (the default decoder is used instead); the command line
    refuses to run with it."""
    return _setting_error


def _from_environment() -> None:
    global _setting_error
    raw = os.environ.get("STATEMACHINE_JSON", "auto")
    wanted = raw.strip().lower() or "auto"
    try:
        use_decoder(wanted)
    except (ValueError, ImportError) as exc:
        _setting_error = f"STATEMACHINE_JSON={raw!r}: {exc}"
        use_decoder("auto")


_from_environment()
