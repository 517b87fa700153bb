"""Command line: `python -m statemachine SUBCOMMAND` (also installed as `session-lifecycle`).

Exit codes: 0 success; 1 the input or the checked property was bad (a malformed line, a
violated invariant); 2 the command could not run (unreadable file, bad arguments, bad spec);
141 the reader of standard output went away (`... | head`), as for a program killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta
from typing import IO, Any, NoReturn, TypeVar

from statemachine.core.clock import DEFAULT_MAX_CLOCK_SKEW
from statemachine.core.version import __version__
from statemachine.replay.lines import MAX_LISTED, ReplayReport, replay_lines
from statemachine.runtime.projector import SessionProjector
from statemachine.runtime.snapshot import MAX_SNAPSHOT_BYTES, SnapshotError
from statemachine.spec.load import builtin_spec, load_spec
from statemachine.spec.model import Spec, SpecError

__all__ = ["main"]

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a program ended by SIGPIPE

# The program name in usage lines: the console script's, unless started as `python -m statemachine`.
CONSOLE_PROG = "session-lifecycle"
MODULE_PROG = "python -m statemachine"

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


def _spec(args: argparse.Namespace) -> Spec:
    path = getattr(args, "spec", None)
    return load_spec(path) if path else builtin_spec()


def _open_input(name: str) -> IO[bytes]:
    return sys.stdin.buffer if name == "-" else open(name, "rb")


T = TypeVar("T")


def _read_with(command: str, name: str, use: Callable[[IO[bytes]], T]) -> T | None:
    """Open `name` (- for standard input), run `use` on it, close it. None when it cannot be read
    (said on standard error, for exit 2); a closed standard output propagates (main ends quietly)."""
    try:
        stream = _open_input(name)
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
    if args.jobs > 1:
        from statemachine.replay.jobs import cmd_replay_jobs

        return cmd_replay_jobs(args, _print_replay)
    spec = _spec(args)
    if args.store:
        from statemachine.cli.store import cmd_replay_store

        if args.from_format:
            print("replay: --store reads envelope logs; adapt the raw log first "
                  "(python -m statemachine adapt --from FORMAT RAW -o LOG.jsonl)", file=sys.stderr)
            return EXIT_USAGE

        return cmd_replay_store(args, spec, _print_replay)
    if args.from_format and (args.trace or args.trace_out):
        print("replay: --trace reads envelope logs; adapt the raw log first "
              "(python -m statemachine adapt --from FORMAT RAW -o LOG.jsonl)", file=sys.stderr)
        return EXIT_USAGE
    skew = args.max_clock_skew
    if args.snapshot_in:
        projector = _read_snapshot(args.snapshot_in, spec, skew)
    else:
        projector = SessionProjector(spec, max_clock_skew=skew)
    if projector is None:
        return EXIT_USAGE
    report = _read_with("replay", args.file, lambda stream: _replay_or_trace(args, projector, stream))
    if report is None:
        return EXIT_USAGE
    if args.snapshot_out and not _write_snapshot(args.snapshot_out, projector):
        return EXIT_USAGE
    if args.trace and not args.trace_out:
        pass  # standard output holds the trace; the exit code still says whether a line was malformed
    elif args.json:
        # dumps, not dump: dump writes through the pure-Python encoder, dumps uses the C one.
        sys.stdout.write(json.dumps(report.to_json(projector)) + "\n")
    else:
        _print_replay(report.to_json(projector))
    return EXIT_BAD_INPUT if report.error_count else EXIT_OK


def _replay_or_trace(args: argparse.Namespace, projector: SessionProjector, stream: IO[bytes]) -> ReplayReport | None:
    """Replay, writing the per-line trace to standard output (--trace) or a file (--trace-out).
    None when the trace file cannot be written (already said why)."""
    if args.from_format:
        from statemachine.adapters import make_adapter
        from statemachine.replay.raw import replay_raw

        return replay_raw(projector, make_adapter(args.from_format, on_eof=args.on_eof, stream=args.stream), stream)
    if not (args.trace or args.trace_out):
        return replay_lines(projector, stream)
    from statemachine.observing.trace import TraceRecord, trace_lines

    with contextlib.ExitStack() as stack:
        try:
            out = stack.enter_context(open(args.trace_out, "w", encoding="utf-8")) if args.trace_out else sys.stdout
        except OSError as exc:
            print(f"replay: cannot write {args.trace_out}: {exc.strerror or exc}", file=sys.stderr)
            return None

        def write(text: str | None) -> None:
            try:
                if text is None:
                    out.flush()
                else:
                    out.write(text)
            except BrokenPipeError:
                raise
            except OSError as exc:  # the trace file, not the log: say which
                raise _TraceWriteError(exc) from exc

        def emit(record: TraceRecord) -> None:
            write(json.dumps(record) + "\n")  # ASCII: event strings may hold lone surrogates

        try:
            report = trace_lines(projector, stream, emit)
            write(None)
            return report
        except _TraceWriteError as exc:
            print(f"replay: cannot write {args.trace_out}: {exc.cause.strerror or exc.cause}", file=sys.stderr)
            return None


class _TraceWriteError(Exception):
    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _print_replay(data: dict[str, Any]) -> None:
    out = sys.stdout
    # Event strings may hold code points stdout cannot encode (lone surrogates are valid JSON).
    encoding = getattr(out, "encoding", None) or "utf-8"

    def write(text: str) -> None:
        out.write(text.encode(encoding, "backslashreplace").decode(encoding))

    counts = data["outcomes"]
    write(", ".join(f"{n} {k}" for k, n in counts.items()) + "\n")
    for tid, s in data["sessions"].items():
        turn = s["activeTurnId"] or "-"
        err = f"  lastError={s['lastError']!r}" if s["lastError"] is not None else ""
        write(f"{tid}: {s['status']}  turn={turn}  provider={s['providerName']}  updatedAt={s['updatedAt']}{err}\n")
    for r in data["rejected"]:
        write(f"line {r['line']}: rejected {r['eventId']}: {r['reason']}\n")
    for e in data["errors"]:
        write(f"line {e['line']}: malformed: {e['error']}\n")


def cmd_adapt(args: argparse.Namespace) -> int:
    from statemachine.adapters import make_adapter
    from statemachine.replay.raw import adapt_lines

    writes_file = args.output not in (None, "-") and args.file != "-"
    if writes_file and os.path.abspath(args.output) == os.path.abspath(args.file):
        print(f"adapt: {args.output} is the input file; writing it would erase what is being read", file=sys.stderr)
        return EXIT_USAGE
    try:
        stream = _open_input(args.file)
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


def _add_from(parser: argparse.ArgumentParser, *, required: bool) -> None:
    from statemachine.adapters.base import EOF_SETTLEMENTS

    FORMATS = _AdapterNames("FORMATS")  # read when --from is given or help is printed
    parser.add_argument("--from", dest="from_format", choices=FORMATS, required=required, metavar="FORMAT",
                        help="the file is raw provider output in this format, adapted to events on the way "
                             "(see docs/adapters.md)")
    parser.add_argument("--on-eof", choices=EOF_SETTLEMENTS, default="interrupted",
                        help="with --from: how a turn still open at the end of the file is settled "
                             "(turn.completed interrupted or failed, or left open for the stale-turn bound)")
    parser.add_argument("--stream", default="", metavar="NAME", type=_stream_name,
                        help="with --from: a name for this stream, when a thread continues from an earlier one "
                             "(a resumed session, the next part of a log): keeps its synthesized ids apart")


def cmd_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from statemachine.spec.requirements import RequirementsError, load_requirements
    from statemachine.verify.run import CHECKS, render_text, report_json, run_checks, write_counterexamples

    unknown = sorted(set(args.skip) - set(CHECKS))
    if unknown:
        print(f"verify: unknown check(s) {unknown}; known: {sorted(CHECKS)}", file=sys.stderr)
        return EXIT_USAGE
    spec = _spec(args)
    try:
        requirements = load_requirements(spec, args.requirements)  # the built-in file when None
    except RequirementsError as exc:
        print(f"requirements error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.mutate or args.mutate_sample is not None:
        from statemachine.verify.mutation import mutate_command

        return mutate_command(spec, requirements, sample=args.mutate_sample, seed=args.mutate_seed,
                              spin=args.mutate_spin, as_json=args.json, out=sys.stdout, err=sys.stderr)
    results = run_checks(spec, requirements, skip=args.skip)
    if args.counterexample_out:
        try:
            write_counterexamples(Path(args.counterexample_out), requirements, results, spec)
        except OSError as exc:
            print(f"verify: cannot write counterexamples to {args.counterexample_out}: {exc.strerror or exc}",
                  file=sys.stderr)
            return EXIT_USAGE
    if args.json:
        json.dump(report_json(spec, requirements, results), sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(spec, requirements, results))
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
    from statemachine.verify.promela import PromelaError, export_promela

    spec = _spec(args)
    if args.format == "python":
        from statemachine.engine.registry import compiled_for

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
    try:
        data = render(_spec(args), fmt)
    except DiagramUnavailable as exc:
        print(f"diagram: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _write_output("diagram", args.output, data)


def cmd_docs(args: argparse.Namespace) -> int:
    from statemachine.rendering.diagrams import DiagramUnavailable
    from statemachine.rendering.docgen import stale, write_docs

    try:
        if args.check:
            differing = stale(args.out, _spec(args), cli_reference())
            for name in differing:
                print(f"docs: {args.out}/{name} is out of date; run: python -m statemachine docs", file=sys.stderr)
            return EXIT_BAD_INPUT if differing else EXIT_OK
        for path in write_docs(args.out, _spec(args), cli_reference()):
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


def _jobs(text: str) -> int:
    limit = 64  # replay_jobs.MAX_JOBS, not imported: a replay with --jobs 1 never needs that module
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= limit:
        raise argparse.ArgumentTypeError(f"must be between 1 and {limit}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def cmd_timeline(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from statemachine.observing.timeline import page_html, timeline_data

    spec = _spec(args)
    source = "standard input" if args.file == "-" else os.path.basename(args.file)
    raw_errors: list[dict[str, Any]] = []

    def draw(stream: IO[bytes]) -> dict[str, Any]:
        lines: Iterable[bytes | str] = stream
        if args.from_format:  # a raw provider log: its adapter turns it into envelope lines
            from statemachine.adapters import make_adapter
            from statemachine.replay.raw import adapt_lines

            adapter = make_adapter(args.from_format, on_eof=args.on_eof, stream=args.stream)
            lines = (json.dumps(e) for e in adapt_lines(adapter, stream, raw_errors))
        return timeline_data(lines, spec=spec, stale_after=timedelta(seconds=args.stale_after), source=source)

    data = _read_with("timeline", args.file, draw)
    if data is None:
        return EXIT_USAGE
    for e in raw_errors:
        print(f"timeline: line {e['line']}: malformed: {e['error']}", file=sys.stderr)
    code = _write_output("timeline", args.output, page_html(data, args.title).encode("ascii"))
    if code != EXIT_OK:
        return code
    return EXIT_BAD_INPUT if data["outcomes"]["malformed"] or raw_errors else EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from statemachine.observing.audit import AuditError, load_sessions

    spec = _spec(args)
    try:
        with open(args.sessions, "rb") as f:
            theirs = load_sessions(f.read())
    except OSError as exc:
        print(f"audit: cannot read {args.sessions}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except AuditError as exc:
        print(f"audit: {args.sessions}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from statemachine.observing.audit import audit_log

    report = _read_with("audit", args.log, lambda stream: audit_log(stream, theirs, spec=spec))
    if report is None:
        return EXIT_USAGE
    if args.json:
        json.dump(report.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        from statemachine.observing.audit import render_text

        text = render_text(report)
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        sys.stdout.write(text.encode(encoding, "backslashreplace").decode(encoding))
    return EXIT_BAD_INPUT if report.differs else EXIT_OK


SUBCOMMANDS = ("replay", "adapt", "verify", "export", "diagram", "timeline", "audit", "docs", "store")


class _OnlySubcommand:
    """Stands in for the subparsers action when one subcommand is named: the others' parsers are
    built but not attached (so their imports and defaults need not be loaded)."""

    def __init__(self, sub: Any, only: str) -> None:
        self.sub, self.only = sub, only

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        return self.sub.add_parser(name, **kwargs) if name == self.only else _Discard()


class _Discard:
    """A parser, group or argument nobody will read: every call is accepted and does nothing."""

    def __getattr__(self, name: str) -> Any:
        return self._accept

    def _accept(self, *args: Any, **kwargs: Any) -> _Discard:
        return self


def build_parser(prog: str = MODULE_PROG, *, only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only` (one of SUBCOMMANDS), just that subcommand, which
    parses and helps exactly as in the whole one and costs less to build."""
    parser = _Parser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub: Any = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    if only is not None:
        sub = _OnlySubcommand(sub, only)
    from statemachine.cli.store import add_replay_arguments

    if only in (None, "verify"):
        from statemachine.verify.run import CHECKS  # the names only; the checks run in cmd_verify
    else:
        CHECKS = {}
    if only in (None, "timeline"):
        from statemachine.observing.timeline import DEFAULT_STALE_AFTER

        stale_default = DEFAULT_STALE_AFTER.total_seconds()
    else:
        stale_default = 0.0

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
    shape = replay.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print one JSON object")
    shape.add_argument("--trace", action="store_true",
                       help="print one JSON line per input line (outcome, reason, session after, or the error) "
                            "instead of the summary")
    replay.add_argument("--trace-out", metavar="FILE",
                        help="write that per-line trace to FILE; standard output keeps the summary")
    replay.add_argument("--spec", help="a spec file instead of the built-in one")
    replay.add_argument("--snapshot-in", metavar="FILE",
                        help="start from this snapshot (written by --snapshot-out) instead of no sessions")
    replay.add_argument("--snapshot-out", metavar="FILE",
                        help="after the log, write every session and its memory here (JSON)")
    _add_from(replay, required=False)
    add_replay_arguments(replay)
    replay.add_argument("--max-clock-skew", metavar="DURATION", type=_clock_skew, default=DEFAULT_MAX_CLOCK_SKEW,
                        help="reject events whose createdAt is further ahead of this machine's clock "
                             "(e.g. 90s, 30m, 12h, 1d; default 1d), or none to accept any date")
    replay.add_argument("--jobs", metavar="N", type=_jobs, default=1,
                        help="replay in N processes, threads partitioned among them; the same output as "
                             "--jobs 1 (summary or --json; a file, not standard input; not with --trace, "
                             "--snapshot-in/out, --store or --from)")
    replay.set_defaults(handler=cmd_replay)

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
    _add_from(adapt, required=True)
    adapt.set_defaults(handler=cmd_adapt)

    verify = sub.add_parser(
        "verify", help="prove the spec against the requirements (exit 0 only when every check holds)",
        description=(
            "Prove the spec against the requirements (specs/requirements.yaml, or --requirements FILE) and "
            "its own invariants: static rules, exhaustive exploration, induction, agreement of the compiled "
            "engine with the transitions machine, and the spin model checker. Prints one line per "
            "requirement and what each check covered and how long it took. Exit 0 when every check holds, "
            "1 when one fails (with a counterexample as JSONL that replay accepts), 2 when the command "
            "could not run."
        ),
    )
    verify.add_argument("--spec", help="a spec file instead of the built-in one")
    verify.add_argument("--json", action="store_true", help="print one JSON report")
    verify.add_argument(
        "--skip", action="append", default=[], metavar="CHECK",
        help=f"leave a check out ({', '.join(CHECKS)}); repeatable",
    )
    verify.add_argument("--requirements", metavar="FILE",
                        help="a requirements file instead of the built-in one (specs/requirements.yaml)")
    verify.add_argument("--counterexample-out", metavar="DIR",
                        help="write each violated requirement's counterexample to DIR/NAME.jsonl, and its "
                             "timeline to DIR/NAME.html")
    verify.add_argument("--mutate", action="store_true",
                        help="instead of the checks: judge every single-edit mutant of the spec (declarations, "
                             "explore, induction), print the mutation score and each surviving mutant with the "
                             "shortest trace on which it differs (exit 1 when one survives)")
    verify.add_argument("--mutate-sample", metavar="N", type=_positive_int, default=None,
                        help="with or without --mutate: judge a sample of N mutants, drawn with --mutate-seed")
    verify.add_argument("--mutate-seed", metavar="S", type=int, default=0, help="the sample's seed (default 0)")
    verify.add_argument("--mutate-spin", action="store_true",
                        help="with --mutate: run spin too on the mutants the other checks let through (slow)")
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
    diagram.add_argument("--spec", help="a spec file instead of the built-in one")
    diagram.set_defaults(handler=cmd_diagram)
    timeline = sub.add_parser(
        "timeline", help="draw a log as an HTML timeline: a lane per thread, statuses, turns, rejections",
        description=(
            "Replay a JSONL event log and write one self-contained HTML page (no network): a lane per "
            "thread with its status over time, active turns as bars, rejected, duplicate and malformed "
            "events as marks with their reasons on hover, stale turns flagged, filters by thread and "
            "outcome, and paging for logs of many threads. Exit 0 when written, 1 when written but a "
            "line was malformed, 2 when the command could not run."
        ),
    )
    timeline.add_argument("file", help="JSONL file of events, or - for standard input")
    timeline.add_argument("-o", "--output", metavar="FILE", help="write the page here instead of standard output")
    timeline.add_argument("--stale-after", type=_positive_seconds, default=stale_default, metavar="SECONDS",
                          help=f"flag a turn held this long with no event of its thread (default: {stale_default:g})")
    timeline.add_argument("--title", help="the page's title (default: from the file name)")
    timeline.add_argument("--spec", help="a spec file instead of the built-in one")
    _add_from(timeline, required=False)
    timeline.set_defaults(handler=cmd_timeline)
    audit = sub.add_parser(
        "audit", help="compare another orchestrator's sessions with this package's replay of the same log",
        description=(
            "Replay a JSONL event log and compare the result with another orchestrator's sessions "
            "(a JSON object threadId -> {status, activeTurnId, lastError, ...}, the shape of replay "
            "--json's sessions). Lists every thread that differs, field by field, every impossible "
            "state, and the first line after which ours could no longer have become theirs. Exit 0 "
            "when all agree, 1 when any thread differs, 2 when the command could not run."
        ),
    )
    audit.add_argument("--log", required=True, metavar="LOG", help="JSONL file of events, or - for standard input")
    audit.add_argument("--sessions", required=True, metavar="THEIRS",
                       help="their sessions as JSON (threadId -> session)")
    audit.add_argument("--json", action="store_true", help="print one JSON report")
    audit.add_argument("--spec", help="a spec file instead of the built-in one")
    audit.set_defaults(handler=cmd_audit)
    docs = sub.add_parser(
        "docs", help="write every generated doc (lifecycle page and SVG, CLI reference)",
        description=(
            "Write every generated page under docs/ (the lifecycle page and its SVG, the CLI reference), "
            "or with --check write nothing and exit 1 when one is out of date."
        ),
    )
    docs.add_argument("--out", default="docs", metavar="DIR", help="the directory to write into")
    docs.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated doc is out of date")
    docs.add_argument("--spec", help="a spec file instead of the built-in one")
    docs.set_defaults(handler=cmd_docs)
    if only in (None, "store"):
        from statemachine.cli.store import add_store_parser

        add_store_parser(sub, _spec)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = CONSOLE_PROG) -> int:
    try:
        arguments = sys.argv[1:] if argv is None else list(argv)
        only = arguments[0] if arguments and arguments[0] in SUBCOMMANDS else None
        args = build_parser(prog, only=only).parse_args(arguments)
        handler: Handler = args.handler
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at exit
        return code
    except SpecError as exc:
        print(f"spec error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """Standard output's reader closed it (`... | head`): stop quietly. Python would otherwise
    flush stdout again at exit and print a second BrokenPipeError, so point it at /dev/null."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_BROKEN_PIPE
