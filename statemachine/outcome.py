"""What happened to one event: every event gets exactly one outcome."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from .events import Event
from .session import Session

__all__ = ["Outcome", "OutcomeKind"]


class OutcomeKind(StrEnum):
    APPLIED = "applied"  # a transition was taken
    IGNORED = "ignored"  # not a lifecycle event type
    DUPLICATE = "duplicate"  # this thread already processed this eventId
    REJECTED = "rejected"  # a lifecycle event no transition accepts, or dated too far ahead; see `reason`
    DEFERRED = "deferred"  # applied by an observer: queued, applied once the observers of the current event ran


class Outcome(NamedTuple):  # built once per event: a tuple is the cheapest immutable value
    kind: OutcomeKind
    event: Event
    before: Session
    after: Session
    reason: str | None = None
    transition: int | None = None  # index of the spec transition taken (applied only)

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def status_changed(self) -> bool:
        return self.before.status != self.after.status
