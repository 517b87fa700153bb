"""`diagram`: the lifecycle drawn (Mermaid text, or DOT/SVG/PNG through Graphviz)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from statemachine.cli.common import EXIT_USAGE, add_spec, say, spec_of
from statemachine.cli.outputs import is_stdout, write_output

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from statemachine.rendering.diagrams import EXTENSIONS, FORMATS, DiagramUnavailable, format_for_path, render

    if args.output not in (None, "-") and os.path.splitext(args.output)[1] and format_for_path(args.output) is None:
        # A known format written under another extension (Mermaid text in x.jpg) only misleads.
        print(f"diagram: cannot write {args.output}: unknown extension; use one of {', '.join(EXTENSIONS)}",
              file=sys.stderr)
        return EXIT_USAGE
    implied = format_for_path(args.output) if args.output not in (None, "-") else None
    fmt = args.format or implied or "mermaid"
    if implied is not None and implied != fmt:
        print(f"diagram: {args.output} is a {implied} file name but --format is {fmt}; "
              f"give --format {implied} or another file name (formats: {', '.join(FORMATS)})", file=sys.stderr)
        return EXIT_USAGE
    if fmt == "png" and is_stdout(args.output) and sys.stdout.isatty():
        say("diagram", "PNG is binary and standard output is a terminal: give -o FILE.png, or redirect it")
        return EXIT_USAGE
    try:
        data = render(spec_of(args), fmt)
    except DiagramUnavailable as exc:
        print(f"diagram: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return write_output("diagram", args.output, data)


def add_parser(sub: Any) -> None:
    diagram = sub.add_parser(
        "diagram", help="draw the lifecycle (Mermaid text, or DOT/SVG/PNG through Graphviz)",
        description=(
            "Draw the lifecycle: statuses and the events that move between them. Mermaid needs nothing "
            "else; DOT, SVG and PNG need Graphviz (exit 2 naming what to install when it is missing). "
            "The format is --format, else the one -o's extension implies; an unknown extension is refused."
        ),
    )
    diagram.add_argument("--format", choices=["mermaid", "dot", "svg", "png"],
                         help="output format (default: implied by -o's extension, else mermaid)")
    diagram.add_argument("-o", "--output", metavar="FILE", help="write to this file instead of standard output")
    add_spec(diagram)
    diagram.set_defaults(handler=run)
