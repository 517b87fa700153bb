"""Adapt a raw provider log and replay it through a projector in one stream.

The same bounded, streaming reading as `statemachine.replay.lines` and the same report: a raw line
the adapter cannot read, or one longer than the limit, counts as malformed (in `errors`, with
its line number); the events of every other line are applied in order. At the end the adapter's
`finish()` settles the turns left open, reported on the line after the last.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from statemachine.adapters.base import Adapter, Envelope
from statemachine.core.event import EventError
from statemachine.core.outcome import OutcomeKind
from statemachine.replay.lines import MAX_LINE_BYTES, MAX_LISTED, ReplayReport, bounded_lines
from statemachine.runtime.projector import SessionProjector

__all__ = ["adapt_lines", "replay_raw"]


def _error(report: ReplayReport, line: int, error: str) -> None:
    report.error_count += 1
    if len(report.errors) < MAX_LISTED:
        report.errors.append({"line": line, "error": error})


def _apply(projector: SessionProjector, report: ReplayReport, line: int, events: list[Envelope]) -> None:
    for event in events:
        try:
            outcome = projector.apply(event)
        except EventError as exc:  # an adapter bug, or an id the envelope cannot hold
            _error(report, line, str(exc))
            continue
        report.outcomes[outcome.kind.value] += 1
        if outcome.kind is OutcomeKind.REJECTED:
            report.rejected_count += 1
            if len(report.rejected) < MAX_LISTED:
                report.rejected.append({"line": line, "eventId": outcome.event.event_id, "reason": outcome.reason})


def replay_raw(
    projector: SessionProjector,
    adapter: Adapter,
    lines: Iterable[bytes | str],
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ReplayReport:
    """Feed every raw line to `adapter`, apply its events, then apply `adapter.finish()`."""
    if max_line_bytes < 1:
        raise ValueError("max_line_bytes must be at least 1")
    report = ReplayReport()
    too_long = f"line: longer than {max_line_bytes} bytes, the line length limit (max_line_bytes)"
    for number, raw in enumerate(bounded_lines(lines, max_line_bytes), 1):
        report.lines = number
        if raw is None:
            adapter.feed("")  # keeps the adapter's line numbers in step with the file's
            _error(report, number, too_long)
            continue
        events = adapter.feed(raw)
        if adapter.last_error is not None:
            _error(report, number, str(adapter.last_error))
            continue
        _apply(projector, report, number, events)
    _apply(projector, report, report.lines + 1, adapter.finish())
    return report


def adapt_lines(
    adapter: Adapter,
    lines: Iterable[bytes | str],
    errors: list[dict[str, Any]],
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[Envelope]:
    """Every event of the raw log, streaming, settlements last; the first MAX_LISTED malformed
    lines are reported in `errors` (any malformed line leaves it non-empty)."""
    for number, raw in enumerate(bounded_lines(lines, max_line_bytes), 1):
        error = None
        if raw is None:
            adapter.feed("")
            error = f"line: longer than {max_line_bytes} bytes, the line length limit"
        else:
            yield from adapter.feed(raw)
            if adapter.last_error is not None:
                error = str(adapter.last_error)
        if error is not None and len(errors) < MAX_LISTED:
            errors.append({"line": number, "error": error})
    yield from adapter.finish()
