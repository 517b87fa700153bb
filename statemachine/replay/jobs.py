"""`replay --jobs N`: threads partitioned across N processes, output identical to one process.

Why it can be split: a projector keeps nothing across threads (sessions, de-duplication and
finished-turn memories are all per thread), so each thread's events, applied in log order by one
process, give the same outcomes whichever other threads that process also holds.

How a line reaches its worker, in two rounds over one pool of N processes, so that every line is
read and routed once and parsed by one worker only:

1. Routing. The parent cuts the file into N byte ranges at line starts. Worker i reads range i
   (bounded reads: a huge line is skipped in chunks, as in one process) and writes each line to
   the spool of the worker that owns its thread (`crc32(threadId) % N`, the same in every
   process), with its number within the range; a line over the length limit goes to worker 0 as
   a number alone. The threadId used for routing is a fast guess: the first `"threadId": "..."`
   in the line (no escapes), else the stdlib `json.loads` of the line, else worker 0.
2. Replaying. Worker j reads the spools addressed to it, range by range, so in file order, with
   each line's number in the file (its range's offset, the lines of the ranges before it, is
   known once routing is done), and replays them through the batch path
   (`SessionProjector.apply_numbered`), as `--jobs 1` does.

The guess is never trusted: the worker reads the threadId of every thread it creates from the
event the projector's own parser built, and if that thread is not its own (a crafted line can put
another `"threadId"` first), the whole parallel run is dropped and the log is replayed in one
process. A line that does not parse is an error in every worker alike (parsing does not depend on
the sessions), so whichever worker gets it reports it; a line over the length limit is reported
by worker 0.

How results merge. Counts add up; the rejections and errors listed (the first `MAX_LISTED` of
each) are merged by line number; sessions are ordered by the line that created their thread (the
order one projector would hold them in, a thread forgotten and seen again counting from its new
start).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import mmap
import multiprocessing
import os
import shutil
import stat
import sys
import tempfile
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from statemachine.core.event import EventError
from statemachine.replay.lines import MAX_LINE_BYTES, MAX_LISTED, ReplayReport, replay_lines
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.load import builtin_spec, load_spec
from statemachine.spec.model import Spec

__all__ = ["MAX_JOBS", "NotRegularFile", "cmd_replay_jobs", "owner", "replay_file_in_parallel"]

# More processes than cores only adds start-up and spool files (N x N of them).
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
# Spool entries buffered per destination before they are written: 3 numbers of 8 bytes per line.
_FLUSH_ENTRIES = 3 << 13


class _Misrouted(Exception):
    """A line's threadId was not the one the routing guess read: this run's answer is void."""


def _line_start(view: Any, at: int) -> int:
    """The first line start at or after byte `at` (a range boundary)."""
    if at <= 0:
        return 0
    newline = view.find(_NEWLINE, at - 1)
    return len(view) if newline < 0 else int(newline) + 1


def _mapped(stream: Any) -> Any:
    """The file's bytes, mapped read-only (an empty file cannot be mapped: empty bytes stand in)."""
    if os.fstat(stream.fileno()).st_size == 0:
        return b""
    return mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)


def _ranges(path: str, jobs: int) -> list[tuple[int, int]]:
    """`jobs` byte ranges of the file, about equal, each starting at a line start (some may be empty)."""
    with open(path, "rb") as stream:
        view = _mapped(stream)
        size = len(view)
        starts = [0]
        for i in range(1, jobs):
            starts.append(max(starts[-1], _line_start(view, size * i // jobs)))
    return list(zip(starts, [*starts[1:], size], strict=True))


def _spool_path(spool: str, source: int, dest: int) -> str:
    return os.path.join(spool, f"{source}-{dest}")


def _route(path: str, start: int, end: int, index: int, jobs: int, limit: int, spool: str) -> int:
    """Round 1 of worker `index`: each line of bytes [start, end) to the spool of the worker that
    owns it (by the routing guess), as (its number within the range, where it starts, where it
    ends); a line over the length limit to worker 0, with no bytes. Nothing is copied but the
    threadIds: the file is mapped, and a spool says where the lines are. Returns how many lines
    the range holds."""
    spooled = [array("q") for _ in range(jobs)]
    guess, crc32, key, other, skip = _guess_owner, zlib.crc32, _KEY_SPACED, _KEY_COMPACT, len(_KEY_SPACED)
    number = 0
    with open(path, "rb") as stream:
        view = _mapped(stream)
        find = view.find
        at = start
        while at < end:
            number += 1
            newline = find(_NEWLINE, at, end)
            stop = end if newline < 0 else newline + 1  # the line with its "\n", as readline reads it
            if stop - at > limit and (newline < 0 or newline - at > limit):
                spooled[0].extend((number, at, -1))  # over the limit: reported by worker 0
                at = stop
                continue
            # The guess's common case inline (this runs for every line once), in the key's
            # spelling seen last (spaced as json.dumps writes it, or compact).
            found = find(key, at, stop)
            if found < 0 and (found := find(other, at, stop)) >= 0:
                key, other = other, key
                skip = len(key)
            close = find(b'"', found + skip, stop) if found >= 0 else -1
            if close >= 0 and b"\\" not in (value := view[found + skip:close]):
                dest = crc32(value) % jobs
            else:
                dest = guess(view[at:stop], jobs)
            kept = spooled[dest]
            kept.extend((number, at, stop))
            if len(kept) >= _FLUSH_ENTRIES:
                _flush(spool, index, dest, kept)
            at = stop
    for dest, kept in enumerate(spooled):
        _flush(spool, index, dest, kept)
    return number


def _flush(spool: str, source: int, dest: int, entries: array[int]) -> None:
    # A spool is written in blocks, so a worker holds at most a block per destination.
    with open(_spool_path(spool, source, dest), "ab") as out:
        entries.tofile(out)
    del entries[:]


def _spooled(path: str, spool: str, dest: int, offsets: list[int]) -> Iterator[tuple[int, bytes | None]]:
    """(line number in the file, line) for each line spooled to worker `dest`, in file order; None
    for a line over the length limit."""
    with open(path, "rb") as stream:
        view = _mapped(stream)
        for source, offset in enumerate(offsets):
            name = _spool_path(spool, source, dest)
            if not os.path.exists(name):
                continue
            with open(name, "rb") as spooled:
                while block := spooled.read(_FLUSH_ENTRIES * 8):
                    entries = array("q")
                    entries.frombytes(block)
                    for i in range(0, len(entries), 3):
                        number, at, stop = entries[i:i + 3]
                        yield offset + number, (view[at:stop] if stop >= 0 else None)


def _work(path: str, spool: str, index: int, jobs: int, offsets: list[int], spec_path: str | None,
          skew: timedelta | None, limit: int) -> _Part:
    """Round 2 of worker `index`: replay the lines spooled to it through the batch path, with the
    file's line numbers and the same report as `replay.replay_lines`."""
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

    try:
        result = projector.apply_numbered(_spooled(path, spool, index, offsets), on_rejected=on_rejected,
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


class SpoolError(Exception):
    """The workers' spool directory could not be made (the log itself may be fine)."""


def _parts(path: str, jobs: int, spec_path: str | None, skew: timedelta | None, limit: int,
           starmap: Callable[[Callable[..., Any], list[tuple[Any, ...]]], Iterable[Any]] = itertools.starmap,
           ) -> list[_Part]:
    """Both rounds, each job of a round through `starmap` (a pool's, or in this process), over a
    spool directory removed afterwards."""
    try:
        spool = tempfile.mkdtemp(prefix="statemachine-replay-")
    except OSError as exc:
        raise SpoolError(f"cannot make the spool directory in {tempfile.gettempdir()}: "
                         f"{exc.strerror or exc} (set TMPDIR, or use --jobs 1)") from None
    try:
        ranges = _ranges(path, jobs)
        counts = list(starmap(_route, [(path, start, end, i, jobs, limit, spool)
                                       for i, (start, end) in enumerate(ranges)]))
        offsets = [sum(counts[:i]) for i in range(jobs)]
        return list(starmap(_work, [(path, spool, i, jobs, offsets, spec_path, skew, limit) for i in range(jobs)]))
    finally:
        shutil.rmtree(spool, ignore_errors=True)


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
    # Forked workers inherit the parent's heap: frozen, their collector never walks it (nor writes
    # to its pages, which would copy them).
    gc.freeze()
    try:
        with _context().Pool(jobs, initializer=_leave_interrupts_to_the_parent) as pool:
            parts = _parts(path, jobs, spec_path, max_clock_skew, max_line_bytes,
                           lambda fn, args: pool.starmap(fn, args, chunksize=1))
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
    except SpoolError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
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
