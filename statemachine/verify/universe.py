"""The finite universe of events the exhaustive checks draw from, derived from the spec and the
requirements.

Why this universe is enough: every guard compares the event's turn only with the active turn,
the pending turn and the thread's finished turns, so what matters about an event's turn is its
class: none, the active one, the pending one, a finished one, or another. Three turn ids realise
every class from every reachable state that uses at most two of them. Code reads the event's turn
only through slot `t` (the semantics refuse `ev.turn_id`), so a trigger none of whose guards and
effects reads `t`, and to which no contract reading `event.turnId` applies, does the same for
every turn id: it appears without one. Effects read only the payload fields their declarations
name (`Effect.payload_params`, `Guard.payload_fields`), and contracts the fields they name; per
trigger exactly those fields appear present and absent (the cost grows with the fields one
trigger reads, and a trigger that reads too many is refused); the variant field takes every value
of its enum (and is also omitted when it has a default). Two timestamps, in both orders, exercise
`updatedAt`. One non-lifecycle type checks that others are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING, Any

from statemachine.engine.machine import vocabulary_of
from statemachine.spec.model import EventType, Spec, SpecError, Trigger

if TYPE_CHECKING:
    from statemachine.spec.requirements import Requirements

__all__ = ["IGNORED_TYPE", "MAX_PAYLOAD_COMBINATIONS", "PAYLOAD_TEXT", "PROVIDER", "TIMES", "TURNS", "EventTemplate",
           "event_universe", "fields_read", "reads_event_turn"]

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
        return f"{self.type}({payload}) turn={self.turn_id or '-'} createdAt={self.created_at}"


# The payload combinations one trigger may need (2 per field read). Beyond this the spec is
# refused: the exhaustive checks would take minutes, and a lifecycle needs no such payloads.
MAX_PAYLOAD_COMBINATIONS = 64


def _effect_refs(spec: Spec, trigger: str) -> list[Any]:
    """The effect uses a `trigger` may run: its transitions' effects, the on-enter hooks of their
    destinations, and on_applied."""
    refs = [e for t in spec.transitions_for(trigger) for e in t.effects]
    refs += [e for t in spec.transitions_for(trigger) if t.dest is not None for e in spec.status(t.dest).on_enter]
    return refs + list(spec.on_applied)


def _contract_fields(spec: Spec, requirements: Requirements | None, trigger: str) -> frozenset[str]:
    """The event fields the contracts that apply to `trigger` read, once what the trigger fixes
    (type, trigger, a variant field without a default) is known."""
    if requirements is None:
        return frozenset()
    parsed = Trigger.parse(trigger)
    known: dict[str, Any] = {"event.type": parsed.type, "event.trigger": trigger}
    event_type = spec.event_type(parsed.type)
    if event_type is not None and event_type.variant_by is not None:
        declared = event_type.field(event_type.variant_by)
        if declared is not None and declared.default is None:  # always present: its value is known
            known[f"event.payload.{event_type.variant_by}"] = parsed.variant
    return frozenset().union(*(r.event_fields_given(known) for r in requirements.of_form("contract")
                               if r.applies_to_trigger(parsed.type, trigger)))


def fields_read(spec: Spec, trigger: str, requirements: Requirements | None = None) -> tuple[str, ...]:
    """The payload fields that can change what `trigger` does, or what a contract on it says: those
    the effects it may run declare they read, those its guards declare they read (a stop
    request's onlyIfSettled), and those the contracts that apply to it name."""
    vocabulary = vocabulary_of(spec)
    fields = [f for e in _effect_refs(spec, trigger) for f in vocabulary.effects[e.name].payload_fields(e.param_map)]
    fields += [f for t in spec.transitions_for(trigger) for g in t.guards for f in vocabulary.guards[g].payload_fields]
    fields += sorted(f.removeprefix("payload.") for f in _contract_fields(spec, requirements, trigger)
                     if f.startswith("payload."))
    return tuple(dict.fromkeys(fields))


def reads_event_turn(spec: Spec, trigger: str, requirements: Requirements | None = None) -> bool:
    """Whether anything about `trigger` depends on the event's turn: a guard or effect reading slot
    `t`, or a contract that applies to it reading `event.turnId`."""
    vocabulary = vocabulary_of(spec)
    if any("t" in vocabulary.guards[g].reads for t in spec.transitions_for(trigger) for g in t.guards):
        return True
    if any("t" in vocabulary.effects[e.name].reads for e in _effect_refs(spec, trigger)):
        return True
    return "turnId" in _contract_fields(spec, requirements, trigger)


# Every present text field carries the same text. What matters about it is whether lastError
# takes it, and which field it came from shows in the present/absent combinations; a text per
# field only multiplied the error values a state can hold (1,067 reachable states against 747,
# with every mutant caught by the same requirements either way).
PAYLOAD_TEXT = "payload text"


def _present(event_type: EventType, name: str) -> Any:
    declared = event_type.field(name)
    return True if declared is not None and declared.type == "boolean" else PAYLOAD_TEXT


def _payloads(spec: Spec, event_type: EventType, trigger: Trigger,
              requirements: Requirements | None) -> list[tuple[tuple[str, Any], ...]]:
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
    varied = [f for f in fields_read(spec, trigger.name, requirements)
              if f not in dict(fixed) and f != event_type.variant_by]
    if 2 ** len(varied) > MAX_PAYLOAD_COMBINATIONS:
        raise SpecError(spec.source, f"events.{event_type.type}",
                        f"trigger {trigger.name} reads {len(varied)} payload fields ({', '.join(varied)}); the "
                        f"exhaustive checks vary each present and absent and allow at most "
                        f"{MAX_PAYLOAD_COMBINATIONS} combinations per trigger")
    combos = list(product(*([None, (name, _present(event_type, name))] for name in varied)))
    return [(*form, *fixed, *(c for c in combo if c is not None)) for form in variant_forms for combo in combos]


def event_universe(spec: Spec, requirements: Requirements | None = None) -> list[EventTemplate]:
    """Every lifecycle event shape x turn class x timestamp, plus one ignored type. `requirements`:
    the payload fields and event turns their contracts read are varied too."""
    turned: tuple[str | None, ...] = (None, *TURNS)
    universe = [
        EventTemplate(e.type, turn, at, payload)
        for e in spec.events for trigger in e.trigger_values
        for payload in _payloads(spec, e, trigger, requirements)
        for turn in (turned if reads_event_turn(spec, trigger.name, requirements) else (None,))
        for at in TIMES
    ]
    universe.append(EventTemplate(IGNORED_TYPE, None, TIMES[0], ()))
    return universe
