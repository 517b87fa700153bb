"""Per-line traces of a replay: what each input line did, as one JSON object per line.

A record for an event that parsed:
    {"line": 4, "eventId": "e4", "threadId": "t1", "type": "turn.started", "createdAt": "...",
     "turnId": "turn-1", "outcome": "applied", "reason": null, "session": {...the session after...}}
and for a malformed line (ids only when the line is a JSON object that has them as strings):
    {"line": 8, "eventId": "e8", "threadId": "t1", "outcome": "malformed", "error": "payload.state: ..."}

Blank lines produce no record. `line` is the 1-based line number in the input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from statemachine.core.outcome import Outcome
from statemachine.replay.lines import MAX_LINE_BYTES, ReplayReport, replay_lines
from statemachine.runtime.projector import SessionProjector

__all__ = ["MALFORMED", "TraceRecord", "readable_ids", "trace_lines", "trace_record"]

TraceRecord = dict[str, Any]

# The `outcome` of a line that is not a valid event (it has no Outcome: nothing was applied).
MALFORMED = "malformed"

_KNOWN_IDS = ("eventId", "threadId", "type", "createdAt", "turnId")


def readable_ids(line: bytes | str | None) -> dict[str, str]:
    """The envelope's ids that can still be read from a malformed line, so the trace can say whose
    line it was. Nothing is guessed: only string fields of a JSON object are taken."""
    if line is None:
        return {}
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: data[k] for k in _KNOWN_IDS if isinstance(data.get(k), str) and data[k]}


def trace_record(number: int, line: bytes | str | None, outcome: Outcome | None, error: str | None) -> TraceRecord:
    """One line's record (see the module docstring), from what `replay_lines` reports for it."""
    if outcome is None:
        return {"line": number, **readable_ids(line), "outcome": MALFORMED, "error": error}
    ev = outcome.event
    return {
        "line": number,
        "eventId": ev.event_id,
        "threadId": ev.thread_id,
        "type": ev.type,
        "createdAt": ev.created_at,
        "turnId": ev.turn_id,
        "outcome": outcome.kind.value,
        "reason": outcome.reason,
        "session": outcome.after.to_wire(),
    }


def trace_lines(
    projector: SessionProjector,
    lines: Iterable[bytes | str],
    emit: Callable[[TraceRecord], object],
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ReplayReport:
    """Replay `lines` like `replay_lines`, calling `emit(record)` for each non-blank line as it goes
    (streaming: nothing is kept per line). Returns the replay's report."""

    def on_line(number: int, line: bytes | str | None, outcome: Outcome | None, error: str | None) -> None:
        emit(trace_record(number, line, outcome, error))

    return replay_lines(projector, lines, max_line_bytes=max_line_bytes, on_line=on_line)
