"""Replay a JSONL log through a projector, streaming: memory grows with sessions, not lines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .events import EventError
from .outcome import OutcomeKind
from .projector import SessionProjector

__all__ = ["ReplayReport", "replay_lines"]

# Kept in full only up to this many; counts are always exact.
MAX_LISTED = 1000


@dataclass
class ReplayReport:
    outcomes: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in OutcomeKind})
    rejected: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    rejected_count: int = 0
    lines: int = 0

    def to_json(self, projector: SessionProjector) -> dict[str, Any]:
        return {
            "sessions": {tid: projector[tid].to_wire() for tid in projector},
            "outcomes": dict(self.outcomes),
            "rejected": list(self.rejected),
            "errors": list(self.errors),
        }


def replay_lines(projector: SessionProjector, lines: Iterable[bytes | str]) -> ReplayReport:
    """Apply each non-blank line; a malformed line is recorded in `errors` and skipped."""
    report = ReplayReport()
    for number, line in enumerate(lines, 1):
        report.lines = number
        if not line.strip():
            continue
        try:
            outcome = projector.apply(line)
        except EventError as exc:
            report.error_count += 1
            if len(report.errors) < MAX_LISTED:
                report.errors.append({"line": number, "error": str(exc)})
            continue
        report.outcomes[outcome.kind.value] += 1
        if outcome.kind is OutcomeKind.REJECTED:
            report.rejected_count += 1
            if len(report.rejected) < MAX_LISTED:
                report.rejected.append({"line": number, "eventId": outcome.event.event_id, "reason": outcome.reason})
    return report
