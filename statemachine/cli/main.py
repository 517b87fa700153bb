"""Command line: `python -m statemachine SUBCOMMAND` (also installed as `session-lifecycle`).

Exit codes: 0 success; 1 the input or the checked property was bad (a malformed line, a
violated invariant); 2 the command could not run (unreadable file, bad arguments, bad spec,
standard output full or closed); 141 the reader of standard output went away (`... | head`), as
for a program killed by SIGPIPE.

Output files (`-o`, `--snapshot-out`, `--trace-out`, ...) are written only to a regular file or a
new name, through a temporary file beside it and a rename; a symlink, FIFO, device or directory
there is refused. `-` and `/dev/stdout` mean standard output. Text for people escapes terminal
control characters (ESC as `\\x1b`); JSON output is JSON.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from statemachine.cli.common import EXIT_BROKEN_PIPE, EXIT_USAGE
from statemachine.cli.outputs import OutputError, guarded_streams, silence_stdout
from statemachine.core.version import __version__
from statemachine.spec.model import SpecError

__all__ = ["CONSOLE_PROG", "MODULE_PROG", "SUBCOMMANDS", "build_parser", "cli_reference", "main",
           "subcommand_parsers"]

# The program name in usage lines: the console script's, unless started as `python -m statemachine`.
CONSOLE_PROG = "session-lifecycle"
MODULE_PROG = "python -m statemachine"

# Each is the module `statemachine.cli.<name>`, with `add_parser(subparsers)`; in this order in `--help`.
SUBCOMMANDS = ("replay", "adapt", "verify", "export", "diagram", "timeline", "audit", "attention", "docs", "store")

Handler = Callable[[argparse.Namespace], int]


def _terminal_columns() -> int:
    """`shutil.get_terminal_size().columns`, without importing shutil (and its compression
    modules) on every start: $COLUMNS, else the terminal's width, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         width if width is not None else _terminal_columns() - 2)


class _Parser(argparse.ArgumentParser):
    subcommands: argparse.Action | None = None  # the subparsers action; `.choices` maps names to parsers

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # argparse exits 2 already; keep it, no traceback
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def add_subparsers(self, **kwargs: Any) -> Any:
        self.subcommands = super().add_subparsers(**kwargs)
        return self.subcommands


def subcommand_parsers(
    parser: argparse.ArgumentParser | None = None, *, width: int | None = None
) -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser, by name (the CLI reference is generated from their `--help`).
    `parser` defaults to `build_parser()`; `width` fixes the help's line width (argparse otherwise
    follows the terminal)."""
    parser = parser if parser is not None else build_parser()
    assert isinstance(parser, _Parser) and parser.subcommands is not None
    parsers: dict[str, argparse.ArgumentParser] = dict(parser.subcommands.choices or {})
    if width is not None:
        for sub in parsers.values():
            sub.formatter_class = functools.partial(argparse.HelpFormatter, width=width)
    return parsers


def cli_reference(parser: argparse.ArgumentParser | None = None) -> tuple[str, dict[str, argparse.ArgumentParser]]:
    """What the generated CLI page is made from: this module's docstring and each subcommand's parser."""
    return __doc__ or "", subcommand_parsers(parser, width=100)


def build_parser(prog: str = MODULE_PROG, *, only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only` (one of SUBCOMMANDS), just that subcommand, which
    parses and helps exactly as in the whole one and costs less to build (only its module is
    imported)."""
    parser = _Parser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # `docs` writes the CLI page, made from this parser: handed down rather than imported back.
    parser.set_defaults(cli_reference=cli_reference)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in SUBCOMMANDS if only is None else (only,):
        importlib.import_module(f"statemachine.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = CONSOLE_PROG) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    only = arguments[0] if arguments and arguments[0] in SUBCOMMANDS else None
    with guarded_streams():
        try:
            parser = build_parser(prog, only=only)
            args = parser.parse_args(arguments)
            # A flag that would be silently ignored in this combination is an argparse error.
            check: Callable[[argparse.Namespace], str | None] | None = getattr(args, "combination_check", None)
            problem = check(args) if check is not None else None
            if problem is not None:
                subcommand_parsers(parser)[args.command].error(problem)
            from statemachine.core.wire import setting_error

            if setting_error() is not None:  # a mistyped decoder name is not silently replaced
                print(f"{args.command}: {setting_error()}", file=sys.stderr)
                return EXIT_USAGE
            handler: Handler = args.handler
            code = handler(args)
            sys.stdout.flush()  # a closed pipe or a full disk shows here, inside the handlers below, not at exit
            return code
        except SpecError as exc:
            print(f"spec error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            # The reader of standard output went away (`... | head`): stop quietly, as SIGPIPE would.
            silence_stdout()
            return EXIT_BROKEN_PIPE
        except OutputError as exc:
            print(f"{only or prog}: {exc}", file=sys.stderr)
            silence_stdout()
            return EXIT_USAGE
