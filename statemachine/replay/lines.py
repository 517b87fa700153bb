"""Replay a JSONL log through a projector, streaming: memory grows with sessions, not lines.

A line longer than `max_line_bytes` is never held whole: it is read in bounded chunks, dropped,
and reported in `errors`; the lines after it still apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from statemachine.core.event import EventError
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.runtime.projector import SessionProjector

__all__ = ["MAX_LINE_BYTES", "LineObserver", "ReplayReport", "bounded_lines", "replay_lines"]

# Kept in full only up to this many; counts are always exact.
MAX_LISTED = 1000

# Longest accepted line, without its line break: bytes for a binary stream, characters for text.
# An event is a small envelope; this leaves ample room for large payloads.
MAX_LINE_BYTES = 1 << 20

# Chunk size used to skip the rest of a line past the limit.
_SKIP_CHUNK = 1 << 16


@dataclass
class ReplayReport:
    # Replay subscribes no observer, so no event is ever deferred: that kind is not counted.
    outcomes: dict[str, int] = field(
        default_factory=lambda: {k.value: 0 for k in OutcomeKind if k is not OutcomeKind.DEFERRED}
    )
    rejected: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    rejected_count: int = 0
    lines: int = 0

    def to_json(self, projector: SessionProjector) -> dict[str, Any]:
        return {
            "sessions": {tid: projector[tid].to_wire() for tid in projector},
            # Malformed lines have no outcome, but a count beside the others saves summing `errors`,
            # which lists only the first MAX_LISTED.
            "outcomes": {**self.outcomes, "malformed": self.error_count},
            "rejected": list(self.rejected),
            "errors": list(self.errors),
        }


# Told about every non-blank line, in order: (line number, the raw line or None when too long,
# the outcome or None, the error message or None). Exactly one of outcome and error is set.
LineObserver = Callable[[int, "bytes | str | None", "Outcome | None", "str | None"], None]

_NEWLINES = (b"\n", "\n")


def _too_long(line: bytes | str, limit: int) -> bool:
    # The limit counts the line without its final "\n".
    return len(line) - (line[-1:] in _NEWLINES) > limit


def _bounded_lines(source: Iterable[bytes | str], limit: int) -> Iterator[bytes | str | None]:
    """Each line of `source`, or None for a line longer than `limit`.

    A stream with `readline` (a file, stdin) is read at most `limit + 1` at a time, so a huge
    line never sits in memory; any other iterable already holds its lines and is only measured.
    """
    readline = getattr(source, "readline", None)
    if readline is None:
        for line in source:
            yield None if _too_long(line, limit) else line
        return
    while True:
        line = readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line[-1:] in _NEWLINES:
            yield line  # at most `limit` plus its "\n"
            continue
        # Longer than the limit: drop the rest of this line in bounded chunks.
        while True:
            rest = readline(min(_SKIP_CHUNK, limit + 1))
            if not rest or rest[-1:] in _NEWLINES:
                break
        yield None


# Public for other line readers (the provider adapters' replay): same bounded reading.
bounded_lines = _bounded_lines


def replay_lines(
    projector: SessionProjector,
    lines: Iterable[bytes | str],
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    on_line: LineObserver | None = None,
) -> ReplayReport:
    """Apply each non-blank line; a malformed or too long line is recorded in `errors` and skipped.

    `lines` is any iterable of lines; a binary or text stream is best, as it is read bounded.
    `on_line`, when given, is told what happened to each non-blank line as it is processed.
    """
    if max_line_bytes < 1:
        raise ValueError("max_line_bytes must be at least 1")
    report = ReplayReport()
    too_long = f"line: longer than {max_line_bytes} bytes, the line length limit (max_line_bytes)"
    if on_line is None:
        return _replay_in_batch(projector, _bounded_lines(lines, max_line_bytes), report, too_long)
    for number, line in enumerate(_bounded_lines(lines, max_line_bytes), 1):
        report.lines = number
        if line is None:
            report.error_count += 1
            if len(report.errors) < MAX_LISTED:
                report.errors.append({"line": number, "error": too_long})
            if on_line is not None:
                on_line(number, None, None, too_long)
            continue
        if not line.strip():
            continue
        try:
            outcome = projector.apply(line)
        except EventError as exc:
            report.error_count += 1
            if len(report.errors) < MAX_LISTED:
                report.errors.append({"line": number, "error": str(exc)})
            if on_line is not None:
                on_line(number, line, None, str(exc))
            continue
        report.outcomes[outcome.kind.value] += 1
        if outcome.kind is OutcomeKind.REJECTED:
            report.rejected_count += 1
            if len(report.rejected) < MAX_LISTED:
                report.rejected.append({"line": number, "eventId": outcome.event.event_id, "reason": outcome.reason})
        if on_line is not None:
            on_line(number, line, outcome, None)
    return report


def _replay_in_batch(
    projector: SessionProjector, lines: Iterable[bytes | str | None], report: ReplayReport, too_long: str
) -> ReplayReport:
    """No per-line observer: the batch path (`SessionProjector.apply_batch`), with the same report."""
    rejected, errors = report.rejected, report.errors

    def on_rejected(number: int, event_id: str, reason: str) -> None:
        if len(rejected) < MAX_LISTED:
            rejected.append({"line": number, "eventId": event_id, "reason": reason})

    def on_malformed(number: int, error: EventError | None) -> None:
        if len(errors) < MAX_LISTED:
            errors.append({"line": number, "error": too_long if error is None else str(error)})

    result = projector.apply_batch(lines, on_rejected=on_rejected, on_malformed=on_malformed)
    counts = result.counts
    for kind in report.outcomes:
        report.outcomes[kind] += counts[kind]
    report.error_count = counts["malformed"]
    report.rejected_count = counts["rejected"]
    report.lines = result.lines
    return report
