"""What every subcommand shares: exit codes, the spec, messages, reading inputs. Outputs are in
`statemachine.cli.outputs`, the `--from` option in `statemachine.cli.formats`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import IO, TypeVar

from statemachine.observing.text import visible
from statemachine.spec.load import builtin_spec
from statemachine.spec.model import Spec
from statemachine.verify.mutate import load_spec_or_mutant

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a program ended by SIGPIPE

T = TypeVar("T")


def spec_of(args: argparse.Namespace) -> Spec:
    path = getattr(args, "spec", None)
    return load_spec_or_mutant(path) if path else builtin_spec()


def say(command: str, message: str) -> None:
    """One line on standard error, `command: message` (control characters escaped on the way)."""
    print(f"{command}: {message}", file=sys.stderr)


def reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


# -- inputs ----------------------------------------------------------------------------------


def open_input(name: str) -> IO[bytes]:
    return sys.stdin.buffer if name == "-" else open(name, "rb")


def read_with(command: str, name: str, use: Callable[[IO[bytes]], T]) -> T | None:
    """Open `name` (- for standard input), run `use` on it, close it. None when it cannot be read
    (said on standard error, for exit 2); a closed standard output propagates (main ends quietly)."""
    try:
        stream = open_input(name)
    except OSError as exc:
        say(command, f"cannot read {name}: {reason(exc)}")
        return None
    try:
        return use(stream)
    except BrokenPipeError:
        raise
    except OSError as exc:
        say(command, f"cannot read {name}: {reason(exc)}")
        return None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


class TooLarge(ValueError):
    """A whole-file input is longer than its limit."""


def read_limited(name: str, limit: int, *, stdin: bool = True) -> bytes:
    """The whole of `name` (- for standard input, unless `stdin` is false), refused past `limit`
    bytes: one byte more is read at most, so an endless input (/dev/zero) costs `limit` bytes,
    never all the memory. OSError when it cannot be read, TooLarge past the limit."""
    stream = open_input(name) if stdin else open(name, "rb")  # noqa: SIM115 - closed below
    try:
        data = stream.read(limit + 1)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if len(data) > limit:
        raise TooLarge(f"longer than {limit} bytes, the limit for this input")
    return data


def whole_number(high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from 1 to `high`, or a one-line usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text[:40]!r}") from None
        if not 1 <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from 1 to {high}, got {value}")
        return value

    return parse


def add_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", help="a spec file instead of the built-in one, or a mutant file "
                        "(specs/mutants/: the built-in spec with its edits)")


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BROKEN_PIPE",
    "EXIT_OK",
    "EXIT_USAGE",
    "TooLarge",
    "add_spec",
    "open_input",
    "read_limited",
    "read_with",
    "reason",
    "say",
    "spec_of",
    "visible",
    "whole_number",
]
