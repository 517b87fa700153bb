"""What happened to one event: every event gets exactly one outcome."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple

from statemachine.core.event import Event
from statemachine.core.session import Session

__all__ = ["Outcome", "OutcomeKind"]


class OutcomeKind(StrEnum):
    APPLIED = "applied"  # a transition was taken
    IGNORED = "ignored"  # not a lifecycle event type
    DUPLICATE = "duplicate"  # this thread already processed this eventId
    REJECTED = "rejected"  # a lifecycle event no transition accepts, or dated too far ahead; see `reason`
    DEFERRED = "deferred"  # applied by an observer: queued, applied once the observers of the current event ran
    FORGOTTEN = "forgotten"  # applied, and the thread was dropped with its memories (a forget command)


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

    def to_wire(self) -> dict[str, Any]:
        """The outcome as JSON: kind, reason, the event's ids and type, and the session after it."""
        return {
            "kind": self.kind.value,
            "reason": self.reason,
            "eventId": self.event.event_id,
            "threadId": self.event.thread_id,
            "type": self.event.type,
            "session": self.after.to_wire(),
        }
