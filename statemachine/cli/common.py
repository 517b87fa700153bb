"""What every subcommand shares: exit codes, reading inputs, writing outputs, the spec, the
`--from` option."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, TypeVar

from statemachine.spec.load import builtin_spec, load_spec
from statemachine.spec.model import Spec

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a program ended by SIGPIPE

T = TypeVar("T")


def spec_of(args: argparse.Namespace) -> Spec:
    path = getattr(args, "spec", None)
    return load_spec(path) if path else builtin_spec()


def open_input(name: str) -> IO[bytes]:
    return sys.stdin.buffer if name == "-" else open(name, "rb")


def read_with(command: str, name: str, use: Callable[[IO[bytes]], T]) -> T | None:
    """Open `name` (- for standard input), run `use` on it, close it. None when it cannot be read
    (said on standard error, for exit 2); a closed standard output propagates (main ends quietly)."""
    try:
        stream = open_input(name)
    except OSError as exc:
        print(f"{command}: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
        return None
    try:
        return use(stream)
    except BrokenPipeError:
        raise
    except OSError as exc:
        print(f"{command}: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
        return None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def write_output(command: str, output: str | None, data: bytes) -> int:
    """`data` to standard output (no name, or -) or to the file named; exit 2 if it cannot be written."""
    if output in (None, "-"):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return EXIT_OK
    try:
        with open(output, "wb") as out:
            out.write(data)
    except OSError as exc:
        print(f"{command}: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


# -- the --from option: raw provider output --------------------------------------------------


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
    parser.add_argument("--from", dest="from_format", choices=formats, required=required, metavar="FORMAT",
                        help="the file is raw provider output in this format, adapted to events on the way "
                             "(see docs/adapters.md)")
    parser.add_argument("--on-eof", choices=EOF_SETTLEMENTS, default="interrupted",
                        help="with --from: how a turn still open at the end of the file is settled "
                             "(turn.completed interrupted or failed, or left open for the stale-turn bound)")
    parser.add_argument("--stream", default="", metavar="NAME", type=_stream_name,
                        help="with --from: a name for this stream, when a thread continues from an earlier one "
                             "(a resumed session, the next part of a log): keeps its synthesized ids apart")


def add_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", help="a spec file instead of the built-in one")


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BROKEN_PIPE",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_from",
    "add_spec",
    "open_input",
    "read_with",
    "spec_of",
    "write_output",
]
