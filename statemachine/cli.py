"""Command line: `python -m statemachine SUBCOMMAND` (also installed as `session-lifecycle`).

Exit codes: 0 success; 1 the input or the checked property was bad (a malformed line, a
violated invariant); 2 the command could not run (unreadable file, bad arguments, bad spec).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import IO, Any, NoReturn

from .ingest_clock import DEFAULT_MAX_CLOCK_SKEW
from .projector import SessionProjector
from .replay import MAX_LISTED, replay_lines
from .snapshot import MAX_SNAPSHOT_BYTES, SnapshotError
from .spec import Spec, SpecError, builtin_spec, load_spec

__all__ = ["main"]

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    subcommands: argparse.Action | None = None  # the subparsers action; `.choices` maps names to parsers

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


def _spec(args: argparse.Namespace) -> Spec:
    path = getattr(args, "spec", None)
    return load_spec(path) if path else builtin_spec()


def _open_input(name: str) -> IO[bytes]:
    return sys.stdin.buffer if name == "-" else open(name, "rb")


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _clock_skew(text: str) -> timedelta | None:
    """`none`, or a non-negative number of seconds with an optional unit: 90, 90s, 30m, 12h, 1d."""
    if text.strip().lower() == "none":
        return None
    number, unit = (text[:-1], text[-1]) if text[-1:] in _DURATION_UNITS else (text, "s")
    try:
        seconds = float(number) * _DURATION_UNITS[unit]
        if not 0 <= seconds <= 10 * 365 * 86400:  # also refuses nan and inf
            raise ValueError
        return timedelta(seconds=seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (90s, 30m, 12h, 1d, up to 10 years) or none"
        ) from None


def _read_snapshot(path: str, spec: Spec, max_clock_skew: timedelta | None) -> SessionProjector | None:
    try:
        with open(path, "rb") as f:
            # One byte past the limit is enough for restore() to refuse it: an endless file such
            # as /dev/zero is never read whole.
            data = f.read(MAX_SNAPSHOT_BYTES + 1)
    except OSError as exc:
        print(f"replay: cannot read snapshot {path}: {exc.strerror or exc}", file=sys.stderr)
        return None
    try:
        return SessionProjector.restore(data, spec, max_clock_skew=max_clock_skew)
    except SnapshotError as exc:
        print(f"replay: bad snapshot {path}: {exc}", file=sys.stderr)
        return None


def _write_snapshot(path: str, projector: SessionProjector) -> bool:
    # Through a temporary file and a rename: an interrupted write never leaves half a snapshot,
    # and --snapshot-in and --snapshot-out may name the same file.
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(projector.snapshot(), f)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        print(f"replay: cannot write snapshot {path}: {exc.strerror or exc}", file=sys.stderr)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    return True


def cmd_replay(args: argparse.Namespace) -> int:
    spec = _spec(args)
    skew = args.max_clock_skew
    if args.snapshot_in:
        projector = _read_snapshot(args.snapshot_in, spec, skew)
    else:
        projector = SessionProjector(spec, max_clock_skew=skew)
    if projector is None:
        return EXIT_USAGE
    try:
        stream = _open_input(args.file)
    except OSError as exc:
        print(f"replay: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = replay_lines(projector, stream)
    except OSError as exc:
        print(f"replay: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if args.snapshot_out and not _write_snapshot(args.snapshot_out, projector):
        return EXIT_USAGE
    if args.json:
        json.dump(report.to_json(projector), sys.stdout, sort_keys=False)
        sys.stdout.write("\n")
    else:
        _print_replay(report.to_json(projector), report.error_count)
    return EXIT_BAD_INPUT if report.error_count else EXIT_OK


def _print_replay(data: dict[str, Any], error_count: int) -> None:
    out = sys.stdout
    # Event strings may hold code points stdout cannot encode (lone surrogates are valid JSON).
    encoding = getattr(out, "encoding", None) or "utf-8"

    def write(text: str) -> None:
        out.write(text.encode(encoding, "backslashreplace").decode(encoding))

    counts = data["outcomes"]
    write(", ".join(f"{n} {k}" for k, n in counts.items()) + f", {error_count} malformed\n")
    for tid, s in data["sessions"].items():
        turn = s["activeTurnId"] or "-"
        err = f"  lastError={s['lastError']!r}" if s["lastError"] is not None else ""
        write(f"{tid}: {s['status']}  turn={turn}  provider={s['providerName']}  updatedAt={s['updatedAt']}{err}\n")
    for r in data["rejected"]:
        write(f"line {r['line']}: rejected {r['eventId']}: {r['reason']}\n")
    for e in data["errors"]:
        write(f"line {e['line']}: malformed: {e['error']}\n")


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify.run import CHECKS, render_text, report_json, run_checks

    unknown = sorted(set(args.skip) - set(CHECKS))
    if unknown:
        print(f"verify: unknown check(s) {unknown}; known: {sorted(CHECKS)}", file=sys.stderr)
        return EXIT_USAGE
    spec = _spec(args)
    results = run_checks(spec, skip=args.skip)
    if args.json:
        json.dump(report_json(spec, results), sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(spec, results))
    return EXIT_OK if all(r.ok for r in results) else EXIT_BAD_INPUT


def _write_output(command: str, output: str | None, data: bytes) -> int:
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


def cmd_export(args: argparse.Namespace) -> int:
    from .verify.promela import PromelaError, export_promela

    spec = _spec(args)
    if args.format == "python":
        from .compiled import compiled_for

        return _write_output("export", args.output, compiled_for(spec).source.encode("utf-8"))
    try:
        text = export_promela(spec)
    except PromelaError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # A spec file name with undecodable bytes reaches the model's comments as lone surrogates:
    # written escaped rather than failing the whole export.
    return _write_output("export", args.output, text.encode("utf-8", "backslashreplace"))


def cmd_diagram(args: argparse.Namespace) -> int:
    from .diagrams import FORMATS, DiagramUnavailable, format_for_path, render

    implied = format_for_path(args.output) if args.output not in (None, "-") else None
    fmt = args.format or implied or "mermaid"
    if implied is not None and implied != fmt:
        print(f"diagram: {args.output} is a {implied} file name but --format is {fmt}; "
              f"give --format {implied} or another file name (formats: {', '.join(FORMATS)})", file=sys.stderr)
        return EXIT_USAGE
    try:
        data = render(_spec(args), fmt)
    except DiagramUnavailable as exc:
        print(f"diagram: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _write_output("diagram", args.output, data)


def cmd_docs(args: argparse.Namespace) -> int:
    from .diagrams import DiagramUnavailable
    from .docgen import stale, write_docs

    try:
        if args.check:
            differing = stale(args.out, _spec(args))
            for name in differing:
                print(f"docs: {args.out}/{name} is out of date; run: python -m statemachine docs", file=sys.stderr)
            return EXIT_BAD_INPUT if differing else EXIT_OK
        for path in write_docs(args.out, _spec(args)):
            print(f"wrote {path}")
    except DiagramUnavailable as exc:
        print(f"docs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"docs: cannot write to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from .verify.run import CHECKS  # the names only; the checks run in cmd_verify
    parser = _Parser(prog="python -m statemachine", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    replay = sub.add_parser(
        "replay",
        help="replay a JSONL event log and print the sessions",
        description=(
            "Replay a JSONL event log, one event per line, streaming: memory grows with sessions, "
            f"not lines. Counts are exact; `rejected` and `errors` list the first {MAX_LISTED} of each. "
            "Exit 0 when every line parsed, 1 when any line was malformed, 2 when the command "
            "could not run."
        ),
    )
    replay.add_argument("file", help="JSONL file of events, or - for standard input")
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    replay.add_argument("--spec", help="a spec file instead of the built-in one")
    replay.add_argument("--snapshot-in", metavar="FILE",
                        help="start from this snapshot (written by --snapshot-out) instead of no sessions")
    replay.add_argument("--snapshot-out", metavar="FILE",
                        help="after the log, write every session and its memory here (JSON)")
    replay.add_argument("--max-clock-skew", metavar="DURATION", type=_clock_skew, default=DEFAULT_MAX_CLOCK_SKEW,
                        help="reject events whose createdAt is further ahead of this machine's clock "
                             "(e.g. 90s, 30m, 12h, 1d; default 1d), or none to accept any date")
    replay.set_defaults(handler=cmd_replay)

    verify = sub.add_parser("verify", help="prove the spec's invariants (exit 0 only when every check holds)")
    verify.add_argument("--spec", help="a spec file instead of the built-in one")
    verify.add_argument("--json", action="store_true", help="print one JSON report")
    verify.add_argument(
        "--skip", action="append", default=[], metavar="CHECK",
        help=f"leave a check out ({', '.join(CHECKS)}); repeatable",
    )
    verify.set_defaults(handler=cmd_verify)
    export = sub.add_parser(
        "export", help="write the spec in another language (promela: a model for spin; python: the compiled engine)",
        description="Write the spec in another language: `promela`, a model for the spin model checker; "
                    "`python`, the step functions the compiled engine runs (the same source tracebacks show).",
    )
    export.add_argument("format", choices=["promela", "python"], help="the output language")
    export.add_argument("--spec", help="a spec file instead of the built-in one")
    export.add_argument("-o", "--output", help="write to this file instead of standard output")
    export.set_defaults(handler=cmd_export)
    diagram = sub.add_parser("diagram", help="draw the lifecycle (Mermaid text, or DOT/SVG/PNG through Graphviz)")
    diagram.add_argument("--format", choices=["mermaid", "dot", "svg", "png"],
                         help="output format (default: implied by -o's extension, else mermaid)")
    diagram.add_argument("-o", "--output", metavar="FILE", help="write to this file instead of standard output")
    diagram.add_argument("--spec", help="a spec file instead of the built-in one")
    diagram.set_defaults(handler=cmd_diagram)
    docs = sub.add_parser("docs", help="write every generated doc (lifecycle page and SVG, CLI reference)")
    docs.add_argument("--out", default="docs", metavar="DIR", help="the directory to write into")
    docs.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated doc is out of date")
    docs.add_argument("--spec", help="a spec file instead of the built-in one")
    docs.set_defaults(handler=cmd_docs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except SpecError as exc:
        print(f"spec error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
