"""The finite universe of events the exhaustive checks draw from, derived from the spec.

Why this universe is enough: every guard compares the event's turn only with the active turn and
with the thread's finished turns, so what matters about an event's turn is its class: none, the
active one, a finished one, or another. Three turn ids realise every class from every reachable
state that uses at most two of them. Effects read only the payload fields their declarations name
(`Effect.payload_params`), so per trigger exactly those fields appear present and absent (the cost
grows with the fields one trigger reads, and a trigger that reads too many is refused); the
variant field takes every value of its enum (and is also omitted when it has a default). Two timestamps, in both orders,
exercise `updatedAt`. One non-lifecycle type checks that others are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any

from ..machine import vocabulary_of
from ..spec_model import EventType, Spec, SpecError, Trigger

__all__ = ["IGNORED_TYPE", "MAX_PAYLOAD_COMBINATIONS", "PROVIDER", "TIMES", "TURNS", "EventTemplate",
           "event_universe", "fields_read"]

TURNS = ("turn-1", "turn-2", "turn-3")
TIMES = ("2026-01-01T00:00:01.000Z", "2026-01-01T00:00:02.000Z")
PROVIDER = "codex"
IGNORED_TYPE = "item.started"


@dataclass(frozen=True)
class EventTemplate:
    """An event without its eventId and threadId, which each use fills in."""

    type: str
    turn_id: str | None
    created_at: str
    payload: tuple[tuple[str, Any], ...]

    def wire(self, event_id: str, thread_id: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "eventId": event_id,
            "type": self.type,
            "provider": PROVIDER,
            "threadId": thread_id,
            "createdAt": self.created_at,
        }
        if self.turn_id is not None:
            event["turnId"] = self.turn_id
        event["payload"] = dict(self.payload)
        return event

    def label(self) -> str:
        payload = ",".join(f"{k}={v}" for k, v in self.payload)
        return f"{self.type}({payload}) turn={self.turn_id or '-'} at={self.created_at[17:19]}"


# The payload combinations one trigger may need (2 per field read). Beyond this the spec is
# refused: the exhaustive checks would take minutes, and a lifecycle needs no such payloads.
MAX_PAYLOAD_COMBINATIONS = 64


def fields_read(spec: Spec, trigger: str) -> tuple[str, ...]:
    """The payload fields that can change what `trigger` does: those the effects it may run
    declare they read (its transitions' effects, the on-enter hooks of their destinations, and
    on_applied), and those its guards declare they read."""
    vocabulary = vocabulary_of(spec)
    refs = [e for t in spec.transitions_for(trigger) for e in t.effects]
    refs += [e for t in spec.transitions_for(trigger) if t.dest is not None for e in spec.status(t.dest).on_enter]
    refs += list(spec.on_applied)
    fields = [f for e in refs for f in vocabulary.effects[e.name].payload_fields(e.param_map)]
    # Guards that read the payload (a stop request's onlyIfSettled) declare those fields too.
    fields += [f for t in spec.transitions_for(trigger) for g in t.guards for f in vocabulary.guards[g].payload_fields]
    return tuple(dict.fromkeys(fields))


def _present(event_type: EventType, name: str) -> Any:
    declared = event_type.field(name)
    return True if declared is not None and declared.type == "boolean" else f"{name} text"


def _payloads(spec: Spec, event_type: EventType, trigger: Trigger) -> list[tuple[tuple[str, Any], ...]]:
    fixed: list[tuple[str, Any]] = []
    # The variant written out; for the default variant also omitted (the parser's defaulting is
    # part of what is checked).
    variant_forms: list[tuple[tuple[str, Any], ...]] = [()]
    for f in event_type.payload:
        if f.name == event_type.variant_by:
            variant_forms = [((f.name, trigger.variant),)]
            if f.default is not None and f.default == trigger.variant:
                variant_forms.append(())
        elif f.required:
            fixed.append((f.name, _present(event_type, f.name)))
    varied = [f for f in fields_read(spec, trigger.name) if f not in dict(fixed) and f != event_type.variant_by]
    if 2 ** len(varied) > MAX_PAYLOAD_COMBINATIONS:
        raise SpecError(spec.source, f"events.{event_type.type}",
                        f"trigger {trigger.name} reads {len(varied)} payload fields ({', '.join(varied)}); the "
                        f"exhaustive checks vary each present and absent and allow at most "
                        f"{MAX_PAYLOAD_COMBINATIONS} combinations per trigger")
    combos = list(product(*([None, (name, _present(event_type, name))] for name in varied)))
    return [(*form, *fixed, *(c for c in combo if c is not None)) for form in variant_forms for combo in combos]


def event_universe(spec: Spec) -> list[EventTemplate]:
    """Every lifecycle event shape x turn class x timestamp, plus one ignored type."""
    turns: tuple[str | None, ...] = (None, *TURNS)
    shapes = [(e.type, p) for e in spec.events for trigger in e.trigger_values for p in _payloads(spec, e, trigger)]
    universe = [EventTemplate(type_, turn, at, payload) for type_, payload in shapes for turn in turns for at in TIMES]
    universe.append(EventTemplate(IGNORED_TYPE, None, TIMES[0], ()))
    return universe
