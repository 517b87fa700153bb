"""`adapt`: raw provider output (Codex, Claude, ACP) in, a JSONL event log out."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import IO, Any

from statemachine.cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, add_from, open_input

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from statemachine.adapters import make_adapter
    from statemachine.replay.raw import adapt_lines

    writes_file = args.output not in (None, "-") and args.file != "-"
    if writes_file and os.path.abspath(args.output) == os.path.abspath(args.file):
        print(f"adapt: {args.output} is the input file; writing it would erase what is being read", file=sys.stderr)
        return EXIT_USAGE
    try:
        stream = open_input(args.file)
    except OSError as exc:
        print(f"adapt: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    errors: list[dict[str, Any]] = []
    try:
        with contextlib.ExitStack() as stack:
            if stream is not sys.stdin.buffer:
                stack.enter_context(stream)
            if args.output in (None, "-"):
                out: IO[bytes] = sys.stdout.buffer
            else:
                out = stack.enter_context(open(args.output, "wb"))
            adapter = make_adapter(args.from_format, on_eof=args.on_eof, stream=args.stream)
            for event in adapt_lines(adapter, stream, errors):
                out.write(json.dumps(event, ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n")
            out.flush()
    except OSError as exc:
        print(f"adapt: {exc.filename or args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    for e in errors:
        print(f"line {e['line']}: malformed: {e['error']}", file=sys.stderr)
    return EXIT_BAD_INPUT if errors else EXIT_OK


def add_parser(sub: Any) -> None:
    adapt = sub.add_parser(
        "adapt",
        help="turn raw provider output (Codex, Claude, ACP) into a JSONL event log",
        description=(
            "Read raw provider output, one message per line, and write the lifecycle events it means "
            "as JSONL, one envelope per line; the same file gives the same events every time. Malformed "
            "lines are reported on standard error. Exit 0 when every line was read, 1 when any line was "
            "malformed, 2 when the command could not run."
        ),
    )
    adapt.add_argument("file", help="raw JSONL file, or - for standard input")
    adapt.add_argument("-o", "--output", metavar="FILE", help="write to this file instead of standard output")
    add_from(adapt, required=True)
    adapt.set_defaults(handler=run)
