"""The wire envelope (T3's field names) -> a typed, validated `Event`.

Envelope: `{eventId, type, provider, threadId, createdAt, turnId?, payload}`. Lifecycle event
types (those the spec lists) also have their payload checked against the spec; any other type is
accepted as is and will be ignored by the projector. Anything malformed raises `EventError`
naming the field, before any state is touched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .spec import Spec

__all__ = ["MAX_ID_LENGTH", "SYNTHETIC_EVENT_PREFIX", "Event", "EventError", "EventParser", "parse_timestamp"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})

# Longest accepted eventId, threadId, turnId, type, provider and createdAt, in characters.
# Identifiers are kept in per-thread memory (sessions, de-duplication, finished turns), so their
# length bounds that memory; real ones are UUIDs or short names, far below this.
MAX_ID_LENGTH = 256

# eventIds starting with this belong to the events the library makes itself (stale-turn expiry,
# restart reconciliation). The parser refuses them on the wire, so a provider can never send an id
# that makes a later synthetic event a duplicate.
SYNTHETIC_EVENT_PREFIX = "~lifecycle:"


class EventError(ValueError):
    """A malformed event. `field` names the offending field (`payload.state`, `createdAt`, ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@lru_cache(maxsize=4096)  # pure; the same updatedAt is read back on every event of its session
def parse_timestamp(value: str) -> datetime:
    """ISO 8601 -> aware datetime; a timestamp without an offset is taken as UTC."""
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    type: str
    provider: str
    thread_id: str
    created_at: str
    turn_id: str | None = None
    payload: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    # The machine trigger (`type` or `type[variant]`), or None when not a lifecycle event.
    trigger: str | None = None
    created_dt: datetime = field(default=datetime.min.replace(tzinfo=UTC), compare=False, repr=False)
    # The parser that returned this very object; None for any Event built otherwise (by hand, or
    # by `dataclasses.replace`, which does not copy a field outside `__init__`). Only the parser
    # sets it, so a projector can trust exactly the objects its own parser made.
    checked_by: object = field(default=None, init=False, compare=False, repr=False)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "eventId": self.event_id,
            "type": self.type,
            "provider": self.provider,
            "threadId": self.thread_id,
            "createdAt": self.created_at,
        }
        if self.turn_id is not None:
            wire["turnId"] = self.turn_id
        wire["payload"] = dict(self.payload)
        return wire


def _text(data: Mapping[str, Any], name: str, limit: int) -> str:
    if name not in data:
        raise EventError(name, "is required")
    value = data[name]
    if not isinstance(value, str):
        raise EventError(name, f"must be a string, got {type(value).__name__}")
    if not value:
        raise EventError(name, "must not be empty")
    if len(value) > limit:
        raise EventError(name, f"is {len(value)} characters long; the limit is {limit}")
    return value


_TYPE_CHECKS = {"string": str, "boolean": bool}


class EventParser:
    """Validates envelopes against one spec. Cheap to build; reuse it.

    `max_id_length` caps eventId, threadId, turnId, type, provider and createdAt (characters).
    """

    def __init__(self, spec: Spec, *, max_id_length: int = MAX_ID_LENGTH) -> None:
        if max_id_length < 1:
            raise ValueError("max_id_length must be at least 1")
        self._spec = spec
        self.max_id_length = max_id_length

    @property
    def spec(self) -> Spec:
        """The spec whose event types and payloads this parser checks."""
        return self._spec

    def parse(self, data: object) -> Event:
        return self._parse(data, synthetic=False)

    def _parse_synthetic(self, data: object) -> Event:
        """The library's own events (`statemachine.operations`): their eventId must be in the
        reserved namespace that `parse` refuses; everything else is checked as usual."""
        return self._parse(data, synthetic=True)

    def _parse(self, data: object, *, synthetic: bool) -> Event:
        if not isinstance(data, Mapping):
            raise EventError("event", f"must be a JSON object, got {type(data).__name__}")
        limit = self.max_id_length
        event_id = _text(data, "eventId", limit)
        if event_id.startswith(SYNTHETIC_EVENT_PREFIX) is not synthetic:
            if synthetic:
                raise EventError("eventId", f"a synthetic event's id must start with {SYNTHETIC_EVENT_PREFIX!r}")
            raise EventError("eventId", f"ids starting with {SYNTHETIC_EVENT_PREFIX!r} are reserved for the "
                                        "library's own events")
        type_ = _text(data, "type", limit)
        provider = _text(data, "provider", limit)
        thread_id = _text(data, "threadId", limit)
        created_at = _text(data, "createdAt", limit)
        try:
            created_dt = parse_timestamp(created_at)
        except ValueError:
            raise EventError("createdAt", f"not an ISO 8601 timestamp: {created_at[:64]!r}") from None
        turn_id = data.get("turnId")
        if turn_id is not None:
            if not isinstance(turn_id, str) or not turn_id:
                raise EventError("turnId", "must be a non-empty string or null")
            if len(turn_id) > limit:
                raise EventError("turnId", f"is {len(turn_id)} characters long; the limit is {limit}")
        raw_payload = data.get("payload")
        if raw_payload is None:
            payload: Mapping[str, Any] = _EMPTY
        elif isinstance(raw_payload, Mapping):
            payload = MappingProxyType(dict(raw_payload))
        else:
            raise EventError("payload", f"must be a JSON object, got {type(raw_payload).__name__}")

        trigger = None
        event_type = self._spec.event_type(type_)
        if event_type is not None:
            trigger = type_
            for f in event_type.payload:
                value = payload.get(f.name)
                where = f"payload.{f.name}"
                if value is None:
                    if f.required:
                        raise EventError(where, "is required")
                    value = f.default
                    if value is None:
                        continue
                wanted = _TYPE_CHECKS.get(f.type)
                if wanted is not None and not isinstance(value, wanted):
                    raise EventError(where, f"must be a {f.type}, got {type(value).__name__}")
                if f.enum is not None and value not in f.enum:
                    raise EventError(where, f"must be one of {list(f.enum)}, got {str(value)[:64]!r}")
                if f.name == event_type.variant_by:
                    trigger = f"{type_}[{value}]"
        event = Event(event_id, type_, provider, thread_id, created_at, turn_id, payload, trigger, created_dt)
        object.__setattr__(event, "checked_by", self)
        return event

    def parse_line(self, line: str | bytes) -> Event:
        """One JSONL line -> Event."""
        try:
            data = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise EventError("line", f"not valid JSON: {exc}") from None
        return self.parse(data)

    def coerce(self, event: Event | Mapping[str, Any] | str | bytes) -> Event:
        if isinstance(event, Event):
            # Trust only the very objects this parser returned. Any other Event (built by hand,
            # replaced, a subclass, parsed by another parser) is checked again in full from its
            # fields, read as they are: its trigger and parsed time are recomputed, never believed.
            if type(event) is Event and event.checked_by is self:
                return event
            return self.parse(_fields_of(event))
        if isinstance(event, (str, bytes)):
            return self.parse_line(event)
        return self.parse(event)


def _fields_of(event: Event) -> dict[str, object]:
    """An Event's fields as a wire dict, without assuming their types (`to_wire` would)."""
    wire: dict[str, object] = {
        "eventId": event.event_id,
        "type": event.type,
        "provider": event.provider,
        "threadId": event.thread_id,
        "createdAt": event.created_at,
        "payload": event.payload,
    }
    if event.turn_id is not None:
        wire["turnId"] = event.turn_id
    return wire
