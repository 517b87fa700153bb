"""`replay`: a JSONL event log (or raw provider output) through a projector, and the sessions it gives."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import timedelta
from typing import IO, Any

from statemachine.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_USAGE,
    add_spec,
    read_with,
    say,
    spec_of,
    visible,
    whole_number,
)
from statemachine.cli.formats import (
    Sample,
    add_from,
    from_options_without_from,
    make_from_adapter,
    nothing_understood,
    only_with,
    raw_format_hint,
)
from statemachine.cli.outputs import AtomicFile, OutputRefused, is_stdout, refusal, write_file
from statemachine.core.clock import DEFAULT_MAX_CLOCK_SKEW
from statemachine.replay.lines import MAX_LISTED, ReplayReport, replay_lines
from statemachine.runtime.projector import SessionProjector
from statemachine.runtime.snapshot import MAX_SNAPSHOT_BYTES, SnapshotError
from statemachine.spec.model import Spec

__all__ = ["add_parser", "print_replay", "run"]

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


# replay_jobs.MAX_JOBS, not imported: a replay with --jobs 1 never needs that module
_jobs = whole_number(64)


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
    # Through a temporary file and a rename (AtomicFile): an interrupted write never leaves half a
    # snapshot, and --snapshot-in and --snapshot-out may name the same file.
    data = (json.dumps(projector.snapshot()) + "\n").encode("utf-8")
    if is_stdout(path):
        sys.stdout.buffer.write(data)
        return True
    try:
        write_file(path, data)
    except OutputRefused as exc:
        say("replay", f"cannot write snapshot {exc.path}: {exc.why}")
        return False
    return True


def _refused_outputs(args: argparse.Namespace) -> bool:
    """Say so and return True when an output named is not a file that may be written: before the
    log is read, not after."""
    for what, path in (("snapshot ", args.snapshot_out), ("", args.trace_out)):
        why = None if is_stdout(path) else refusal(path)
        if why is not None:
            say("replay", f"cannot write {what}{path}: {why}")
            return True
    return False


# --max-clock-skew's default (settled in `check`); the store path honours the bound as memory does.
_DEFAULT_SKEW: Any = object()

# Flags that only apply with --store, and the ones --store would ignore.
_STORE_ONLY = (("batch", "--batch"), ("log_key", "--log-key"))
_IGNORED_BY_STORE = (("trace", "--trace"), ("trace_out", "--trace-out"))
_ADAPT_FIRST = "adapt the raw log first (python -m statemachine adapt --from FORMAT RAW -o LOG.jsonl)"


def check(args: argparse.Namespace) -> str | None:
    """A combination of flags where one would be silently ignored, for an argparse error; None
    when there is none. (Combinations refused by the commands themselves, such as --jobs with
    --trace, keep their own messages.) Also settles --max-clock-skew's default."""
    if args.max_clock_skew is _DEFAULT_SKEW:
        args.max_clock_skew = DEFAULT_MAX_CLOCK_SKEW
    problem = from_options_without_from(args)
    if problem is not None:
        return problem
    if args.store:
        ignored = [flag for attr, flag in _IGNORED_BY_STORE if getattr(args, attr)]
        if ignored and not args.from_format and not (args.snapshot_in or args.snapshot_out):
            return f"--store cannot be combined with {', '.join(ignored)}"
    else:
        alone = [flag for attr, flag in _STORE_ONLY if getattr(args, attr) is not None]
        if alone:
            return f"{only_with(alone)} --store URL"
    if args.trace and args.trace_out and not args.from_format:
        return "--trace writes the trace to standard output and --trace-out to a file: give one"
    return None


def run(args: argparse.Namespace) -> int:
    if args.jobs > 1:
        from statemachine.replay.jobs import cmd_replay_jobs

        return cmd_replay_jobs(args, print_replay)
    spec = spec_of(args)
    if args.store:
        from statemachine.cli.store import cmd_replay_store

        if args.from_format:
            say("replay", f"--store reads envelope logs; {_ADAPT_FIRST}")
            return EXIT_USAGE
        return cmd_replay_store(args, spec, print_replay)
    if args.from_format and (args.trace or args.trace_out):
        say("replay", f"--trace reads envelope logs; {_ADAPT_FIRST}")
        return EXIT_USAGE
    if _refused_outputs(args):
        return EXIT_USAGE
    skew = args.max_clock_skew
    if args.snapshot_in:
        projector = _read_snapshot(args.snapshot_in, spec, skew)
    else:
        projector = SessionProjector(spec, max_clock_skew=skew)
    if projector is None:
        return EXIT_USAGE
    sample: list[Sample] = []
    # With --from: the adapter, whose counts tell afterwards whether it understood anything.
    adapter = make_from_adapter(args) if args.from_format else None

    def replay(stream: IO[bytes]) -> ReplayReport | None:
        sample.append(Sample(args.file, stream))
        return _replay_or_trace(args, projector, sample[0].source, adapter)

    report = read_with("replay", args.file, replay)
    if report is None:
        return EXIT_USAGE
    if adapter is not None and nothing_understood("replay", args.from_format, adapter, sample[0]):
        return EXIT_BAD_INPUT
    raw = (not args.from_format and report.error_count > 0 and not sum(report.outcomes.values())
           and raw_format_hint("replay", sample[0]))
    if args.snapshot_out and not _write_snapshot(args.snapshot_out, projector):
        return EXIT_USAGE
    if args.trace:
        pass  # standard output holds the trace; the exit code still says whether a line was malformed
    elif args.json:
        # dumps, not dump: dump writes through the pure-Python encoder, dumps uses the C one.
        sys.stdout.write(json.dumps(report.to_json(projector)) + "\n")
    else:
        # A raw log given without --from: the hint said it; not one "eventId is required" per line.
        print_replay(report.to_json(projector), errors=not raw)
    return EXIT_BAD_INPUT if report.error_count else EXIT_OK


def _replay_or_trace(
    args: argparse.Namespace, projector: SessionProjector, stream: Any, adapter: Any
) -> ReplayReport | None:
    """Replay (through `adapter` with --from), writing the per-line trace to standard output
    (--trace) or a file (--trace-out). None when the trace file cannot be written (already said why)."""
    if adapter is not None:
        from statemachine.replay.raw import replay_raw

        return replay_raw(projector, adapter, stream)
    if not (args.trace or args.trace_out):
        return replay_lines(projector, stream)
    from statemachine.observing.trace import TraceRecord, trace_lines

    with contextlib.ExitStack() as stack:
        file: AtomicFile | None = None
        if not is_stdout(args.trace_out):
            try:
                file = stack.enter_context(AtomicFile(args.trace_out))
            except OutputRefused as exc:
                say("replay", str(exc))
                return None

        def emit(record: TraceRecord) -> None:
            text = json.dumps(record) + "\n"  # ASCII: event strings may hold lone surrogates
            if file is not None:
                file.write(text.encode("ascii"))
            else:
                sys.stdout.write(text)

        try:
            report = trace_lines(projector, stream, emit)
            if file is not None:
                file.commit()
            else:
                sys.stdout.flush()
            return report
        except OutputRefused as exc:  # the trace file, not the log: say which
            say("replay", str(exc))
            return None


def print_replay(data: dict[str, Any], *, errors: bool = True) -> None:
    """The summary for people. Every string from the log is shown with its control characters
    escaped (a threadId cannot clear the screen or forge a line). `errors=False` leaves out the
    malformed lines (their count stays)."""
    out = sys.stdout
    # Event strings may hold code points stdout cannot encode (lone surrogates are valid JSON).
    encoding = getattr(out, "encoding", None) or "utf-8"

    def write(text: str) -> None:
        out.write(text.encode(encoding, "backslashreplace").decode(encoding))

    def v(value: Any) -> str:
        return visible(str(value))

    counts = data["outcomes"]
    write(", ".join(f"{n} {k}" for k, n in counts.items()) + "\n")
    for tid, s in data["sessions"].items():
        turn = s["activeTurnId"] or "-"
        err = f"  lastError={s['lastError']!r}" if s["lastError"] is not None else ""
        write(f"{v(tid)}: {v(s['status'])}  turn={v(turn)}  provider={v(s['providerName'])}  "
              f"updatedAt={v(s['updatedAt'])}{v(err)}\n")
    for r in data["rejected"]:
        write(f"line {r['line']}: rejected {v(r['eventId'])}: {v(r['reason'])}\n")
    for e in data["errors"] if errors else ():
        write(f"line {e['line']}: malformed: {v(e['error'])}\n")


def add_parser(sub: Any) -> None:
    from statemachine.cli.store import add_replay_arguments

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
    add_spec(replay)
    replay.add_argument("--snapshot-in", metavar="FILE",
                        help="start from this snapshot (written by --snapshot-out) instead of no sessions")
    replay.add_argument("--snapshot-out", metavar="FILE",
                        help="after the log, write every session and its memory here (JSON)")
    add_from(replay, required=False)
    add_replay_arguments(replay)
    replay.add_argument("--max-clock-skew", metavar="DURATION", type=_clock_skew, default=_DEFAULT_SKEW,
                        help="reject events whose createdAt is further ahead of this machine's clock "
                             "(e.g. 90s, 30m, 12h, 1d; default 1d), or none to accept any date")
    replay.add_argument("--jobs", metavar="N", type=_jobs, default=1,
                        help="replay in N processes, threads partitioned among them; the same output as "
                             "--jobs 1 (summary or --json; a file, not standard input; not with --trace, "
                             "--snapshot-in/out, --store or --from)")
    replay.set_defaults(handler=run, combination_check=check)
