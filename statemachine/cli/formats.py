"""The `--from` option: raw provider output (Codex, Claude, ACP) read through an adapter, and
what is said when the format given, or none, does not fit the input."""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Iterator, Sequence
from typing import IO, Any

from statemachine.cli.common import say

__all__ = [
    "SAMPLE_LINES",
    "Sample",
    "add_from",
    "formats_reading",
    "from_options_without_from",
    "input_name",
    "make_from_adapter",
    "nothing_understood",
    "only_with",
    "raw_format_hint",
]

# How many non-blank lines of an input are kept to tell which raw format it is in (each cut to
# SAMPLE_BYTES): enough for every format's first lifecycle event, few enough to try each adapter.
SAMPLE_LINES, SAMPLE_BYTES = 20, 64 << 10


class _Keeping:
    """A binary stream read as `bounded_lines` reads it (`readline(size)`), keeping its first
    non-blank lines."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._readline = stream.readline
        self.lines: list[bytes] = []
        self._line_start = True

    def readline(self, size: int = -1) -> bytes:
        chunk = self._readline(size)
        if self._line_start and len(self.lines) < SAMPLE_LINES and chunk.strip():
            self.lines.append(chunk[:SAMPLE_BYTES])
        self._line_start = chunk.endswith(b"\n")
        return chunk

    def __iter__(self) -> Iterator[bytes]:  # the line readers use readline(size): bounded
        return iter(self.readline, b"")


class Sample:
    """An input to read (`source`) and, afterwards, its first non-blank lines (`lines()`), which
    tell which raw format it was in. A regular file is read as it is (nothing slows its lines) and
    opened again for the sample; standard input or a pipe, which cannot be read twice, is read
    through a wrapper that keeps them."""

    def __init__(self, name: str, stream: IO[bytes]) -> None:
        self.name = name
        self._keeping: _Keeping | None = None
        self.source: Any = stream
        if name == "-" or not _regular(stream):
            self._keeping = self.source = _Keeping(stream)

    def lines(self) -> list[bytes]:
        if self._keeping is not None:
            return self._keeping.lines
        try:
            with open(self.name, "rb") as f:
                keeping = _Keeping(f)
                for _ in range(SAMPLE_LINES * 50):  # blank lines and parts of long ones included
                    if len(keeping.lines) >= SAMPLE_LINES or not keeping.readline(SAMPLE_BYTES + 1):
                        break
                return keeping.lines
        except OSError:
            return []


def _regular(stream: IO[bytes]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def formats_reading(lines: Sequence[bytes]) -> list[str]:
    """The raw formats (`--from` names) whose adapter makes a lifecycle event of these lines."""
    from statemachine.adapters import FORMATS, LineClock, make_adapter

    found = []
    for name in FORMATS:
        adapter = make_adapter(name, clock=LineClock())
        for line in lines:
            adapter.feed(line)
        if adapter.stats.events:
            found.append(name)
    return found


def input_name(name: str) -> str:
    return "standard input" if name == "-" else name


def make_from_adapter(args: argparse.Namespace) -> Any:
    """The adapter `--from`, `--on-eof` and `--stream` ask for (defaults applied here: the options
    default to None so that giving one without --from can be refused), on the line clock: a saved
    raw log gives the same events every time (a live caller uses the wall clock, the adapters'
    default)."""
    from statemachine.adapters import LineClock, make_adapter

    return make_adapter(args.from_format, on_eof=args.on_eof or "interrupted", stream=args.stream or "",
                        clock=LineClock())


def nothing_understood(command: str, format_name: str, adapter: Any, sample: Sample) -> bool:
    """Say so (one line, naming the formats that do read the input's first lines) and return True
    when lines were read but the adapter made no lifecycle event of any: the wrong `--from`."""
    if adapter.stats.events:
        return False
    lines = sample.lines()
    if not lines:
        return False  # empty, or blank lines only
    others = [f for f in formats_reading(lines) if f != format_name]
    if others:
        hint = f"its first lines read as {' or '.join(others)}: try --from {others[0]}"
    else:
        from statemachine.adapters import FORMATS

        hint = f"no format reads its first lines (formats: {', '.join(FORMATS)})"
    say(command, f"{input_name(sample.name)}: none of its {adapter.stats.lines} line(s) is {format_name} output "
                 f"with a lifecycle event; {hint}")
    return True


def raw_format_hint(command: str, sample: Sample) -> bool:
    """When every line of an envelope log was malformed: if its first lines read as a raw format,
    say so in one line (naming `--from FORMAT`) and return True."""
    formats = formats_reading(sample.lines())
    if not formats:
        return False
    say(command, f"{input_name(sample.name)} holds no lifecycle events but reads as raw {' or '.join(formats)} "
                 f"output: give --from {formats[0]}")
    return True


def _stream_name(value: str) -> str:
    from statemachine.adapters.base import check_stream_name

    try:
        return check_stream_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _AdapterNames(Sequence[str]):
    """`statemachine.adapters.<name>` (a tuple of names), imported when first read: argparse reads
    choices only to check a value given or to print help, and a replay of an envelope log needs
    no adapter."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _names(self) -> tuple[str, ...]:
        from statemachine import adapters

        names: tuple[str, ...] = getattr(adapters, self.name)
        return names

    def __getitem__(self, index: Any) -> Any:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def add_from(parser: argparse.ArgumentParser, *, required: bool) -> None:
    from statemachine.adapters.base import EOF_SETTLEMENTS

    formats = _AdapterNames("FORMATS")  # read when --from is given or help is printed
    # %(choices)s is expanded when the help is printed: the names come from the adapters themselves.
    parser.add_argument("--from", dest="from_format", choices=formats, required=required, metavar="FORMAT",
                        help="the file is raw provider output in this format (%(choices)s), adapted to events on "
                             "the way (see docs/adapters.md)")
    parser.add_argument("--on-eof", choices=EOF_SETTLEMENTS, default=None,
                        help="with --from: how a turn still open at the end of the file is settled "
                             "(turn.completed interrupted or failed, or left open for the stale-turn bound; "
                             "default interrupted)")
    parser.add_argument("--stream", default=None, metavar="NAME", type=_stream_name,
                        help="with --from: a name for this stream, when a thread continues from an earlier one "
                             "(a resumed session, the next part of a log): keeps its synthesized ids apart")


def from_options_without_from(args: argparse.Namespace) -> str | None:
    """`--on-eof` and `--stream` only mean something to an adapter: refused without `--from`."""
    if args.from_format is None:
        given = [flag for flag, value in (("--on-eof", args.on_eof), ("--stream", args.stream)) if value is not None]
        if given:
            return f"{only_with(given)} --from FORMAT (a raw provider log)"
    return None


def only_with(flags: Sequence[str]) -> str:
    """`--a only applies with` / `--a and --b only apply with`, for an argparse error."""
    return f"{' and '.join(flags)} only {'applies' if len(flags) == 1 else 'apply'} with"
