"""`docs`: write (or check) every generated page under docs/."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from statemachine.cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, add_spec, spec_of

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    # What the CLI page is made from, handed down by main (which builds the whole parser).
    cli_reference = args.cli_reference
    from statemachine.rendering.diagrams import DiagramUnavailable
    from statemachine.rendering.docgen import stale, write_docs

    try:
        if args.check:
            differing = stale(args.out, spec_of(args), cli_reference())
            for name in differing:
                print(f"docs: {args.out}/{name} is out of date; run: python -m statemachine docs", file=sys.stderr)
            return EXIT_BAD_INPUT if differing else EXIT_OK
        for path in write_docs(args.out, spec_of(args), cli_reference()):
            print(f"wrote {path}")
    except DiagramUnavailable as exc:
        print(f"docs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        raise  # the reader of standard output went away: main() ends quietly
    except OSError as exc:
        print(f"docs: cannot write to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
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
