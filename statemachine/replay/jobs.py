"""`replay --jobs N`: threads partitioned across N processes, output identical to one process.

Why it can be split: a projector keeps nothing across threads (sessions, de-duplication and
finished-turn memories are all per thread), so each thread's events, applied in log order by one
process, give the same outcomes whichever other threads that process also holds.

How a line reaches its worker. Every worker reads the whole file (so line numbers are the file's)
and replays only the lines whose thread it owns (`crc32(threadId) % N`, the same in every
process); skipping a line costs a substring search. The threadId used for routing is a fast
guess: the first `"threadId": "..."` in the line (no escapes), else the stdlib `json.loads` of the
line, else worker 0. The guess is never trusted: the worker reads the threadId of every event it
applies from the event the projector's own parser built (the batch path tells it each thread it
creates), and if that thread is not its own (a crafted line can put another `"threadId"` first),
the whole parallel run is dropped and the log is replayed in one process. A worker's own lines go
through the batch path (`SessionProjector.apply_numbered`), as `--jobs 1` does, keeping the file's line
numbers. A line that does not parse is an error in every worker alike (parsing
does not depend on the sessions), so whichever worker gets it reports it; a line over the length
limit is reported by worker 0.

How results merge. Counts add up; the rejections and errors listed (the first `MAX_LISTED` of
each) are merged by line number; sessions are ordered by the line that created their thread (the
order one projector would hold them in, a thread forgotten and seen again counting from its new
start).
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from statemachine.core.event import EventError
from statemachine.replay.lines import MAX_LINE_BYTES, MAX_LISTED, ReplayReport, replay_lines
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.load import builtin_spec, load_spec
from statemachine.spec.model import Spec

__all__ = ["MAX_JOBS", "NotRegularFile", "cmd_replay_jobs", "owner", "replay_file_in_parallel"]

# Every worker reads the whole file: more processes than cores only adds reading.
MAX_JOBS = 64

# Where a line's threadId most likely starts: a guess, checked after parsing.
_KEY_SPACED, _KEY_COMPACT = b'"threadId": "', b'"threadId":"'


# The spec each run was given, set before forking: forked workers find it (and its engine) built.
_SPECS: dict[str | None, Spec] = {}


class NotRegularFile(ValueError):
    """--jobs reads the log once in every worker: it must be a regular file."""


def owner(thread_id: str, jobs: int) -> int:
    """The worker that owns `thread_id`: the same in every process (unlike `hash`)."""
    return zlib.crc32(thread_id.encode("utf-8", "surrogatepass")) % jobs


def _guess_owner(line: bytes, jobs: int) -> int:
    """Which worker `line` goes to: a guess from the first `"threadId": "..."` (as `json.dumps`
    writes it, or without the space), else from the stdlib parse, else 0. Checked after parsing."""
    at = line.find(_KEY_SPACED)
    start = at + len(_KEY_SPACED) if at >= 0 else -1
    if start < 0:
        at = line.find(_KEY_COMPACT)
        start = at + len(_KEY_COMPACT) if at >= 0 else -1
    if start >= 0:
        end = line.find(b'"', start)
        if end >= 0:
            value = line[start:end]
            if b"\\" not in value:
                return zlib.crc32(value) % jobs
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return 0  # not JSON: an error wherever it goes
    thread_id = data.get("threadId") if isinstance(data, dict) else None
    return owner(thread_id, jobs) if isinstance(thread_id, str) else 0


@dataclass
class _Part:
    """What one worker sends back: its counts, the first rejections and errors, its sessions."""

    outcomes: dict[str, int]
    rejected: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    rejected_count: int
    error_count: int
    sessions: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)  # (created at line, id, wire)
    misrouted: bool = False


_NEWLINE = b"\n"
_SKIP_CHUNK = 1 << 16


def _skip_rest(readline: Callable[[int], bytes], limit: int) -> None:
    # The rest of a line past the limit, dropped in bounded chunks (as `replay.bounded_lines`).
    while True:
        rest = readline(min(_SKIP_CHUNK, limit + 1))
        if not rest or rest[-1:] == _NEWLINE:
            return


class _Misrouted(Exception):
    """A line's threadId was not the one the routing guess read: this run's answer is void."""


def _work(path: str, index: int, jobs: int, spec_path: str | None, skew: timedelta | None, limit: int) -> _Part:
    """Replay the lines of the threads worker `index` owns through the batch path, with the file's
    line numbers and the same report as `replay.replay_lines`; the other lines cost only a guess."""
    spec = _SPECS.get(spec_path) or (load_spec(spec_path) if spec_path else builtin_spec())
    projector = SessionProjector(spec, max_clock_skew=skew)
    report = ReplayReport()
    rejected, errors = report.rejected, report.errors
    created: dict[str, int] = {}  # thread -> the line that created its current record
    too_long = f"line: longer than {limit} bytes, the line length limit (max_line_bytes)"

    def on_rejected(number: int, event_id: str, reason: str) -> None:
        if len(rejected) < MAX_LISTED:
            rejected.append({"line": number, "eventId": event_id, "reason": reason})

    def on_malformed(number: int, error: EventError | None) -> None:
        if len(errors) < MAX_LISTED:
            errors.append({"line": number, "error": too_long if error is None else str(error)})

    def on_created(number: int, thread: str) -> None:
        # The thread the parser read, checked against the guess that sent the line here.
        if owner(thread, jobs) != index:
            raise _Misrouted(thread)
        created[thread] = number

    def on_forgotten(number: int, thread: str) -> None:
        created.pop(thread, None)

    with open(path, "rb") as stream:
        try:
            result = projector.apply_numbered(_own_lines(stream, index, jobs, limit), on_rejected=on_rejected,
                                              on_malformed=on_malformed, on_created=on_created,
                                              on_forgotten=on_forgotten)
        except _Misrouted:
            return _Part({}, [], [], 0, 0, misrouted=True)
    counts = result.counts
    for kind in report.outcomes:
        report.outcomes[kind] += counts[kind]
    return _Part(
        outcomes=report.outcomes,
        rejected=rejected,
        errors=errors,
        rejected_count=counts["rejected"],
        error_count=counts["malformed"],
        sessions=[(created[tid], tid, projector[tid].to_wire()) for tid in projector],
    )


def _own_lines(stream: Any, index: int, jobs: int, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) for each line worker `index` owns by the routing guess; a line over the
    length limit is (number, None) in worker 0 (reported there) and skipped elsewhere."""
    readline = stream.readline
    guess, crc32, key, other, skip = _guess_owner, zlib.crc32, _KEY_SPACED, _KEY_COMPACT, len(_KEY_SPACED)
    number = 0
    while line := readline(limit + 1):
        number += 1
        if len(line) > limit and line[-1:] != _NEWLINE:
            _skip_rest(readline, limit)
            if index == 0:
                yield number, None
            continue
        # The guess's common case inline (this runs for every line in every worker), in the key's
        # spelling seen last (spaced as json.dumps writes it, or compact).
        at = line.find(key)
        if at < 0 and (at := line.find(other)) >= 0:
            key, other = other, key
            skip = len(key)
        end = line.find(b'"', at + skip) if at >= 0 else -1
        if end >= 0 and b"\\" not in (value := line[at + skip:end]):
            if crc32(value) % jobs != index:
                continue
        elif guess(line, jobs) != index:
            continue
        yield number, line


def _leave_interrupts_to_the_parent() -> None:
    # Ctrl-C reaches every process of the group: the parent stops the pool (and exits 130), the
    # workers say nothing (no traceback from each).
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _context() -> Any:
    # fork: workers start at once, with the spec and the compiled engine already built.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _check_regular(path: str) -> None:
    # stat, not open: opening a named pipe would wait for a writer.
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise NotRegularFile(path)
    with open(path, "rb"):  # readable, or OSError now rather than in every worker
        pass


def _merge(parts: list[_Part], projector: SessionProjector) -> dict[str, Any]:
    report = ReplayReport()
    for part in parts:
        for kind, n in part.outcomes.items():
            report.outcomes[kind] += n
        report.rejected_count += part.rejected_count
        report.error_count += part.error_count
    report.rejected = sorted((r for p in parts for r in p.rejected), key=lambda r: int(r["line"]))[:MAX_LISTED]
    report.errors = sorted((e for p in parts for e in p.errors), key=lambda e: int(e["line"]))[:MAX_LISTED]
    data = report.to_json(projector)  # `projector` is empty: the sessions come from the parts
    data["sessions"] = {tid: wire for _, tid, wire in sorted((s for p in parts for s in p.sessions),
                                                             key=lambda s: s[0])}
    return data


def replay_file_in_parallel(
    path: str,
    jobs: int,
    *,
    spec_path: str | None = None,
    max_clock_skew: timedelta | None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> dict[str, Any]:
    """`replay --json`'s data for the log at `path`, replayed by `jobs` processes.

    Raises `OSError` when the file cannot be read, `NotRegularFile` for a pipe or a device.
    """
    if not 1 <= jobs <= MAX_JOBS:
        raise ValueError(f"jobs must be between 1 and {MAX_JOBS}")
    _check_regular(path)
    spec = load_spec(spec_path) if spec_path else builtin_spec()
    projector = SessionProjector(spec, max_clock_skew=max_clock_skew)  # built before forking: shared
    _SPECS[spec_path] = spec
    args = [(path, i, jobs, spec_path, max_clock_skew, max_line_bytes) for i in range(jobs)]
    # Forked workers inherit the parent's heap: frozen, their collector never walks it (nor writes
    # to its pages, which would copy them).
    gc.freeze()
    try:
        with _context().Pool(jobs, initializer=_leave_interrupts_to_the_parent) as pool:
            parts: list[_Part] = pool.starmap(_work, args, chunksize=1)
    finally:
        gc.unfreeze()
    if any(p.misrouted for p in parts):
        # A line fooled the routing guess: one process gives the right answer, at one process's speed.
        with open(path, "rb") as stream:
            report = replay_lines(projector, stream, max_line_bytes=max_line_bytes)
        return report.to_json(projector)
    return _merge(parts, projector)


# Flags that need one process to see every line in order, or that read or write a single state.
_SINGLE_PROCESS = (
    ("trace", "--trace"), ("trace_out", "--trace-out"), ("snapshot_in", "--snapshot-in"),
    ("snapshot_out", "--snapshot-out"), ("store", "--store"), ("from_format", "--from"),
)


def cmd_replay_jobs(args: argparse.Namespace, printer: Callable[[dict[str, Any]], None]) -> int:
    """`replay --jobs N` (N > 1): the summary or `--json`, as `--jobs 1` prints them."""
    refused = [flag for attr, flag in _SINGLE_PROCESS if getattr(args, attr, None)]
    if refused:
        print(f"replay: --jobs {args.jobs} cannot be combined with {', '.join(refused)} "
              "(those need one process; use --jobs 1)", file=sys.stderr)
        return 2
    if args.file == "-":
        print("replay: --jobs reads the log once in every process: give a file, not standard input "
              "(or use --jobs 1)", file=sys.stderr)
        return 2
    try:
        data = replay_file_in_parallel(args.file, args.jobs, spec_path=args.spec, max_clock_skew=args.max_clock_skew)
    except NotRegularFile:
        print(f"replay: --jobs reads the log once in every process: {args.file} is not a regular file "
              "(use --jobs 1)", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"replay: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(data, sys.stdout)
        sys.stdout.write("\n")
    else:
        printer(data)
    return 1 if data["outcomes"]["malformed"] else 0
