"""`export`: the spec in another language (Promela for spin, the compiled engine's Python,
TypeScript, XState)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from statemachine.cli import export_ts
from statemachine.cli.common import EXIT_USAGE, add_spec, spec_of
from statemachine.cli.outputs import write_output

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from statemachine.verify.promela import PromelaError, export_promela

    spec = spec_of(args)
    if args.format in export_ts.FORMATS:
        try:
            data = export_ts.render(args.format, spec)
        except ValueError as exc:
            print(f"export: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return write_output("export", args.output, data)
    if args.format == "python":
        from statemachine.engine.registry import compiled_for

        return write_output("export", args.output, compiled_for(spec).source.encode("utf-8"))
    try:
        text = export_promela(spec)
    except PromelaError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # A spec file name with undecodable bytes reaches the model's comments as lone surrogates:
    # written escaped rather than failing the whole export.
    return write_output("export", args.output, text.encode("utf-8", "backslashreplace"))


def add_parser(sub: Any) -> None:
    export = sub.add_parser(
        "export", help="write the spec in another language (promela: a model for spin; python: the compiled engine; "
                       "typescript, xstate, xstate-setup)",
        description="Write the spec in another language: `promela`, a model for the spin model checker; "
                    "`python`, the step functions the compiled engine runs (the same source tracebacks show); "
                    f"{export_ts.HELP}.",
    )
    export.add_argument("format", choices=["promela", "python", *export_ts.FORMATS], help="the output language")
    add_spec(export)
    export.add_argument("-o", "--output", help="write to this file instead of standard output")
    export.set_defaults(handler=run)
