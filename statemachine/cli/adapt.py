"""`adapt`: raw provider output (Codex, Claude, ACP) in, a JSONL event log out."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Any

from statemachine.cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, open_input, reason, say, visible
from statemachine.cli.formats import Sample, add_from, make_from_adapter, nothing_understood
from statemachine.cli.outputs import AtomicFile, OutputRefused, is_stdout

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from statemachine.replay.raw import adapt_lines

    to_file = not is_stdout(args.output)
    if to_file and args.file != "-" and os.path.abspath(args.output) == os.path.abspath(args.file):
        say("adapt", f"{args.output} is the input file; writing it would erase what is being read")
        return EXIT_USAGE
    errors: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        try:
            out = stack.enter_context(AtomicFile(args.output)) if to_file else None
        except OutputRefused as exc:
            say("adapt", str(exc))
            return EXIT_USAGE
        write = out.write if out is not None else sys.stdout.buffer.write
        try:
            stream = open_input(args.file)
        except OSError as exc:
            say("adapt", f"cannot read {args.file}: {reason(exc)}")
            return EXIT_USAGE
        if stream is not sys.stdin.buffer:
            stack.enter_context(stream)
        adapter = make_from_adapter(args)
        sample = Sample(args.file, stream)
        try:
            for event in adapt_lines(adapter, sample.source, errors):
                write(json.dumps(event, ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n")
        except BrokenPipeError:
            raise  # standard output's reader left: not the input's fault (main ends quietly)
        except OSError as exc:  # writes raise OutputRefused or OutputError: this is the input
            say("adapt", f"cannot read {args.file}: {reason(exc)}")
            return EXIT_USAGE
        except OutputRefused as exc:
            say("adapt", str(exc))
            return EXIT_USAGE
        if nothing_understood("adapt", args.from_format, adapter, sample):
            return EXIT_BAD_INPUT  # no file written: an empty log would only hide the mistake
        if out is not None:
            try:
                out.commit()
            except OutputRefused as exc:
                say("adapt", str(exc))
                return EXIT_USAGE
        else:
            sys.stdout.buffer.flush()
    for e in errors:
        print(f"line {e['line']}: malformed: {visible(e['error'])}", file=sys.stderr)
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
