"""Measure the lifecycle: seed a session, apply one event through the `transitions` machine, and
report the outcome. The generated docs print these measurements; nothing here renders text.

Only public APIs: `SessionProjector(engine="transitions")`, `seed` and `apply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from statemachine.core.outcome import Outcome
from statemachine.core.session import Session
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.model import EventType, Spec, Trigger

__all__ = [
    "ACTIVE",
    "COLUMNS",
    "EARLIER",
    "EVENT_AT",
    "FINISHED",
    "NEW",
    "OTHER_TYPES",
    "PREVIOUS_ERROR",
    "SEEDED_AT",
    "Column",
    "Condition",
    "ProbeTrigger",
    "conditions",
    "marker",
    "probe",
    "sample_payload",
    "triggers",
]

# The probe: every seeded session carries PREVIOUS_ERROR and remembers FINISHED as a finished
# turn; a session that may hold a turn is also probed holding ACTIVE. Events name no turn,
# ACTIVE, NEW (a turn never seen) or FINISHED.
ACTIVE, NEW, FINISHED = "T1", "T2", "T0"
PREVIOUS_ERROR = "prev"
THREAD, PROVIDER = "thread-1", "codex"
SEEDED_AT, EVENT_AT, EARLIER = "2026-01-01T00:00:10Z", "2026-01-01T00:00:20Z", "2026-01-01T00:00:05Z"
# Types the spec does not list, probed to show they are ignored.
OTHER_TYPES = ("runtime.warning", "item.started", "content.delta")





@dataclass(frozen=True, slots=True)
class Condition:
    """A seeded session: a status, with or without the active turn ACTIVE."""

    status: str
    turn: str | None

    @property
    def label(self) -> str:
        return f"{self.status}, turn {self.turn}" if self.turn else self.status


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    turn_id: str | None
    needs_active: bool = False  # only meaningful when the session holds ACTIVE


COLUMNS = (
    Column("no turnId", None),
    Column(f"turnId {ACTIVE} (the active turn)", ACTIVE, needs_active=True),
    Column(f"turnId {NEW} (a new turn)", NEW),
    Column(f"turnId {FINISHED} (a finished turn)", FINISHED),
)


def conditions(spec: Spec) -> list[Condition]:
    out: list[Condition] = []
    for status in spec.statuses:
        out.append(Condition(status.name, None))
        if status.holds_turn:
            out.append(Condition(status.name, ACTIVE))
    return out


def marker(field: str) -> str:
    return f"payload.{field}"


def sample_payload(event_type: EventType, variant: str | None, omit: str | None = None) -> dict[str, Any]:
    """A payload with every free-text field set to a marker naming it (`payload.reason`)."""
    payload: dict[str, Any] = {}
    for field in event_type.payload:
        if field.name == omit:
            continue
        if field.name == event_type.variant_by:
            payload[field.name] = variant
        elif field.type == "string" and field.enum is None:
            payload[field.name] = marker(field.name)
        elif field.required:
            payload[field.name] = field.enum[0] if field.enum else (False if field.type == "boolean" else "x")
    return payload


@dataclass(frozen=True, slots=True)
class ProbeTrigger:
    """A trigger with the event type it belongs to, as the probe sends it."""

    trigger: Trigger
    event_type: EventType

    @property
    def name(self) -> str:
        return self.trigger.name

    @property
    def variant(self) -> str | None:
        return self.trigger.variant


def triggers(spec: Spec) -> list[ProbeTrigger]:
    return [ProbeTrigger(t, et) for et in spec.events for t in et.trigger_values]


def probe(
    spec: Spec,
    condition: Condition,
    event_type: str,
    turn_id: str | None,
    payload: Mapping[str, Any],
    *,
    last_error: str | None = PREVIOUS_ERROR,
    created_at: str = EVENT_AT,
    repeat: bool = False,
) -> Outcome:
    """Seed one session, apply one event (twice with `repeat`), return the last outcome."""
    projector = SessionProjector(spec, engine="transitions")
    projector.seed(
        Session(THREAD, condition.status, PROVIDER, condition.turn, last_error, SEEDED_AT),
        finished_turns=(FINISHED,),
    )
    event: dict[str, Any] = {
        "eventId": "e1",
        "type": event_type,
        "provider": PROVIDER,
        "threadId": THREAD,
        "createdAt": created_at,
        "payload": dict(payload),
    }
    if turn_id is not None:
        event["turnId"] = turn_id
    outcome = projector.apply(event)
    return projector.apply(event) if repeat else outcome
