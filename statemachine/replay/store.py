"""A resumable replay of a JSONL log into a store: killed at any point, run again, it ends exactly
where an uninterrupted replay ends, counts and listed rejections included.

Each batch commits, in the same transaction as its events, the log position just past its last
line, the SHA-256 of the bytes before that position and the report so far. A rerun reads the
recorded prefix again only to hash it: same digest, it skips those lines and carries on from the
recorded counts; another digest means another log under that key, and the replay starts over
(a seekable file) or stops with `LogMismatch` (a pipe, which cannot be read twice).
Without the position, a rerun would still end in the same sessions (the re-read prefix comes back
as duplicates, within the de-dup memory cap), but its counts would say "duplicate" for events the
first run applied, and a prefix older than the cap would be re-applied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from statemachine.core.event import Event, EventError
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.replay.lines import MAX_LINE_BYTES, MAX_LISTED
from statemachine.store.base import REPLAY_KINDS, ReplayNote, ReplayProgress, SessionStore

__all__ = ["DEFAULT_BATCH", "LogMismatch", "StoreReplay", "replay_into_store"]

# Events per transaction: large enough that commits do not dominate, small enough that a crash
# loses little work (the lost batch is simply applied again on the rerun).
DEFAULT_BATCH = 256

_CHUNK = 1 << 16


class LogMismatch(Exception):
    """The store holds progress for this log key from different bytes, and the input cannot be rewound."""


@dataclass
class StoreReplay:
    """Where a replay ended: its committed progress and the listed rejections and errors."""

    progress: ReplayProgress
    notes: list[ReplayNote] = field(default_factory=list)
    resumed_from_line: int = 0

    def to_json(self, store: SessionStore) -> dict[str, Any]:
        """The same shape as `ReplayReport.to_json` (sessions: every thread in the store)."""
        notes = sorted(self.notes, key=lambda n: n.line)
        return {
            "sessions": {t.session.thread_id: t.session.to_wire() for t in store.threads()},
            "outcomes": {**self.progress.outcomes, "malformed": self.progress.malformed},
            "rejected": [{"line": n.line, "eventId": n.event_id, "reason": n.message}
                         for n in notes if n.kind == "rejected"],
            "errors": [{"line": n.line, "error": n.message} for n in notes if n.kind == "error"],
        }


def _lines(stream: IO[bytes], limit: int, hasher: Any) -> Iterator[tuple[bytes | None, int]]:
    """(line or None when longer than `limit`, bytes consumed), hashing every byte read."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        hasher.update(line)
        size = len(line)
        if len(line) <= limit or line.endswith(b"\n"):
            yield line, size
            continue
        while True:  # past the limit: drop the rest of the line in bounded chunks
            rest = stream.readline(min(_CHUNK, limit + 1))
            hasher.update(rest)
            size += len(rest)
            if not rest or rest.endswith(b"\n"):
                break
        yield None, size


def _skip_prefix(stream: IO[bytes], position: int, hasher: Any) -> bool:
    """Hash the first `position` bytes; False if the stream is shorter."""
    left = position
    while left:
        chunk = stream.read(min(_CHUNK, left))
        if not chunk:
            return False
        hasher.update(chunk)
        left -= len(chunk)
    return True


def _resume(store: SessionStore, stream: IO[bytes], log_key: str) -> tuple[StoreReplay, Any]:
    fresh = StoreReplay(ReplayProgress(log_key, 0, 0, hashlib.sha256().hexdigest(),
                                       {k.value: 0 for k in REPLAY_KINDS}, 0))
    recorded = store.progress(log_key)
    if recorded is None:
        return fresh, hashlib.sha256()
    progress, notes = recorded
    hasher = hashlib.sha256()
    if _skip_prefix(stream, progress.position, hasher) and hasher.hexdigest() == progress.digest:
        return StoreReplay(progress, notes, progress.lines), hasher
    if not stream.seekable():
        raise LogMismatch(f"the store holds progress for log key {log_key!r} from another log; this input "
                          "cannot be rewound: give a file, or another --log-key")
    stream.seek(0)
    store.reset_progress(log_key)
    return fresh, hashlib.sha256()


def replay_into_store(
    store: SessionStore,
    stream: IO[bytes],
    log_key: str,
    *,
    batch: int = DEFAULT_BATCH,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> StoreReplay:
    """Apply each non-blank line of a binary stream, `batch` events per transaction, resuming from the
    progress recorded under `log_key`. Malformed lines are counted and listed, as in `replay_lines`.

    Raises `StoreError` when the database fails (what was committed stays; run again to resume)
    and `LogMismatch` as described in the module docstring.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    state, hasher = _resume(store, stream, log_key)
    too_long = f"line: longer than {max_line_bytes} bytes, the line length limit (max_line_bytes)"
    listed = {"rejected": sum(n.kind == "rejected" for n in state.notes),
              "error": sum(n.kind == "error" for n in state.notes)}
    position, number = state.progress.position, state.progress.lines
    events: list[Event] = []
    event_lines: list[int] = []
    errors: list[ReplayNote] = []

    def commit() -> None:
        nonlocal events, event_lines, errors
        base = state.progress
        digest = hasher.hexdigest()
        pending_errors = errors

        def checkpoint(outcomes: Sequence[Outcome]) -> ReplayProgress:
            counts = dict(base.outcomes)
            notes: list[ReplayNote] = []
            rejected_listed, errors_listed = listed["rejected"], listed["error"]
            for line, outcome in zip(event_lines, outcomes, strict=True):
                counts[outcome.kind.value] += 1
                if outcome.kind is OutcomeKind.REJECTED and rejected_listed < MAX_LISTED:
                    rejected_listed += 1
                    notes.append(ReplayNote(line, "rejected", outcome.event.event_id, outcome.reason or ""))
            for note in pending_errors:
                if errors_listed < MAX_LISTED:
                    errors_listed += 1
                    notes.append(note)
            made.append(ReplayProgress(log_key, position, number, digest, counts,
                                       base.malformed + len(pending_errors), tuple(notes)))
            return made[-1]

        made: list[ReplayProgress] = []
        store.apply_all(events, checkpoint=checkpoint)
        # Only now, after the commit, does the in-memory state move on.
        state.progress = made[-1]
        for note in state.progress.new_notes:
            listed[note.kind] += 1
            state.notes.append(note)
        events, event_lines, errors = [], [], []

    dirty = False
    for line, size in _lines(stream, max_line_bytes, hasher):
        number += 1
        position += size
        dirty = True
        if line is None:
            errors.append(ReplayNote(number, "error", None, too_long))
        elif line.strip():
            try:
                events.append(store.parser.coerce(line))
                event_lines.append(number)
            except EventError as exc:
                errors.append(ReplayNote(number, "error", None, str(exc)))
        if len(events) >= batch:
            commit()
            dirty = False
    if dirty:
        commit()
    return state
