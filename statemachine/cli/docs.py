"""`docs`: write (or check) every generated page under docs/.

Everything is generated before anything is written: without Graphviz (the SVG) the command stops
with exit 2 and leaves no directory or file behind. Each page is written as any output file is
(`cli.common.write_file`): a regular file or a new name, through a temporary file and a rename.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path
from typing import Any

from statemachine.cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, add_spec, reason, say, spec_of
from statemachine.cli.outputs import OutputRefused, output_directory, write_file

__all__ = ["add_parser", "run"]


# A hand-written page read to fill its generated blocks; past this it is left alone.
_MAX_PAGE_BYTES = 4 << 20


def _current(path: str, expected: int) -> bytes | None:
    """What a generated page holds now: at most one byte more than the regeneration (enough to
    tell them apart), None when it is missing or not a regular file (a FIFO is never opened)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as f:
            return f.read(expected + 1)
    except OSError:
        return None


def run(args: argparse.Namespace) -> int:
    from statemachine.rendering.diagrams import DiagramUnavailable
    from statemachine.rendering.docgen import BLOCK_PAGES, fill_blocks, generate

    out = args.out
    why = output_directory(out)
    if why is not None:
        say("docs", f"cannot write to {out}: {why}")
        return EXIT_USAGE
    spec = spec_of(args)
    try:
        # What the CLI page is made from, handed down by main (which builds the whole parser).
        pages = generate(spec, args.cli_reference())
    except DiagramUnavailable as exc:
        say("docs", str(exc))
        return EXIT_USAGE
    # Hand-written pages with generated blocks (tables of names), where the directory has them.
    for name in BLOCK_PAGES:
        current = _current(os.path.join(out, name), _MAX_PAGE_BYTES)
        if current is None:
            continue
        if len(current) > _MAX_PAGE_BYTES:
            say("docs", f"{out}/{name} is longer than {_MAX_PAGE_BYTES} bytes: its generated blocks are left alone")
            return EXIT_USAGE
        try:
            text = current.decode("utf-8")
        except UnicodeDecodeError:
            say("docs", f"{out}/{name} is not UTF-8 text")
            return EXIT_USAGE
        filled = fill_blocks(text, spec).encode("utf-8")
        if filled != current:
            pages[name] = filled
    if args.check:
        differing = [name for name, content in pages.items()
                     if _current(os.path.join(out, name), len(content)) != content]
        for name in differing:
            say("docs", f"{out}/{name} is out of date; run: python -m statemachine docs")
        return EXIT_BAD_INPUT if differing else EXIT_OK
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        say("docs", f"cannot write to {out}: {reason(exc)}")
        return EXIT_USAGE
    for name, content in pages.items():
        path = str(Path(out) / name)
        try:
            write_file(path, content)
        except OutputRefused as exc:
            say("docs", str(exc))
            return EXIT_USAGE
        print(f"wrote {path}")
    sys.stdout.flush()
    return EXIT_OK


def add_parser(sub: Any) -> None:
    docs = sub.add_parser(
        "docs", help="write every generated doc (lifecycle page and SVG, CLI reference)",
        description=(
            "Write every generated page under docs/ (the lifecycle page and its SVG, the CLI reference), "
            "or with --check write nothing and exit 1 when one is out of date."
        ),
    )
    docs.add_argument("--out", default="docs", metavar="DIR", help="the directory to write into")
    docs.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated doc is out of date")
    add_spec(docs)
    docs.set_defaults(handler=run)
