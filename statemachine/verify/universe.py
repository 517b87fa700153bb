"""The finite universe of events the exhaustive checks draw from, derived from the spec.

Why this universe is enough: every guard compares the event's turn only with the active turn and
with the thread's finished turns, so what matters about an event's turn is its class: none, the
active one, a finished one, or another. Three turn ids realise every class from every reachable
state that uses at most two of them. Effects read a payload field only when it is named by an
effect's `field` parameter, so those fields appear present and absent; the variant field takes
every value of its enum (and is omitted when it has a default). Two timestamps, in both orders,
exercise `updatedAt`. One non-lifecycle type checks that others are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any

from ..spec import Spec

__all__ = ["IGNORED_TYPE", "PROVIDER", "TIMES", "TURNS", "EventTemplate", "event_universe"]

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


def _fields_read_by_effects(spec: Spec, triggers: tuple[str, ...]) -> set[str]:
    read: set[str] = set()
    for t in spec.transitions:
        if t.trigger in triggers:
            for e in t.effects:
                field = e.param_map.get("field")
                if isinstance(field, str):
                    read.add(field)
    return read


def _payloads(spec: Spec, type_: str) -> list[tuple[tuple[str, Any], ...]]:
    event_type = spec.event_type(type_)
    assert event_type is not None
    choices: list[list[tuple[str, Any] | None]] = []
    read = _fields_read_by_effects(spec, event_type.triggers)
    for f in event_type.payload:
        if f.name == event_type.variant_by and f.enum is not None:
            options: list[tuple[str, Any] | None] = [(f.name, v) for v in f.enum]
            if f.default is not None:
                options.append(None)  # omitted: the default applies
            choices.append(options)
        elif f.required:
            choices.append([(f.name, f"{f.name} text")])
        elif f.name in read:
            choices.append([None, (f.name, f"{f.name} text")])
    return [tuple(c for c in combo if c is not None) for combo in product(*choices)]


def event_universe(spec: Spec) -> list[EventTemplate]:
    """Every lifecycle event shape x turn class x timestamp, plus one ignored type."""
    turns: tuple[str | None, ...] = (None, *TURNS)
    universe = [
        EventTemplate(e.type, turn, at, payload)
        for e in spec.events
        for payload in _payloads(spec, e.type)
        for turn in turns
        for at in TIMES
    ]
    universe.append(EventTemplate(IGNORED_TYPE, None, TIMES[0], ()))
    return universe
