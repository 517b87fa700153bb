"""`Event` (the wire envelope as a typed value) and `EventError`; the parser is `statemachine.spec.parser`.

The wire envelope (T3's field names) -> a typed, validated `Event`.

Envelope: `{eventId, type, provider, threadId, createdAt, turnId?, payload}`. Lifecycle event
types (those the spec lists) also have their payload checked against the spec; any other type is
accepted as is and will be ignored by the projector. Anything malformed raises `EventError`
naming the field, before any state is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

__all__ = [
    "EMPTY_PAYLOAD",
    "MAX_ID_LENGTH",
    "SYNTHETIC_EVENT_PREFIX",
    "Event",
    "EventError",
    "build_event",
    "parse_timestamp",
    "parse_timestamp_uncached",
]

# The payload of an event that has none: one shared read-only mapping.
EMPTY_PAYLOAD: Mapping[str, Any] = MappingProxyType({})
_NO_TIME = datetime.min.replace(tzinfo=UTC)  # created_dt of an Event built by hand

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


def parse_timestamp_uncached(value: str) -> datetime:
    """As `parse_timestamp`, without its cache: for a value mostly seen once (an event's createdAt)."""
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@lru_cache(maxsize=4096)  # pure; the same updatedAt is read back on every event of its session
def parse_timestamp(value: str) -> datetime:
    """ISO 8601 -> aware datetime; a timestamp without an offset is taken as UTC."""
    return parse_timestamp_uncached(value)


try:  # the C descriptor namedtuple uses for its fields: a read costs no Python call
    from collections import _tuplegetter  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other interpreters
    from operator import itemgetter

    def _tuplegetter(index: int, doc: str) -> Any:
        return property(itemgetter(index), doc=doc)


_FIELDS = ("event_id", "type", "provider", "thread_id", "created_at", "turn_id", "payload", "trigger")
_CREATED_DT, _CHECKED_BY = 8, 9  # positions of the values outside equality
_new_tuple = tuple.__new__
# `build_event(Event, (event_id, type, provider, thread_id, created_at, turn_id, payload, trigger,
# created_dt, checked_by))`: an Event in one step, nothing checked. Only the parser calls it, for
# the events it has checked and vouches for (`checked_by`); a function around it would cost a call
# per event.
build_event = _new_tuple


class Event(tuple):  # type: ignore[type-arg]
    """One validated envelope. Immutable: an Event is a tuple underneath (built in one step, the
    cheapest immutable value), read by field name only; its tuple behaviour (indexing, iteration,
    length) is not part of the API.

    `payload` is the mapping the event arrived with, read-only by contract: the projector never
    changes it, and nobody else should (a copy per event would cost more than the rest of the
    parse). Equality compares the eight wire-derived fields, as `to_wire` shows them plus the
    trigger; `created_dt` (the parsed `createdAt`) and `checked_by` take no part.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        event_id: str
        type: str
        provider: str
        thread_id: str
        created_at: str
        turn_id: str | None
        payload: Mapping[str, Any]
        # The machine trigger (`type` or `type[variant]`), or None when not a lifecycle event.
        trigger: str | None
        created_dt: datetime
        # The parser that returned this very object; None for any Event built otherwise (by hand,
        # or by `evolve`). Only the parser sets it, so a projector can trust exactly the objects
        # its own parser made.
        checked_by: object
    else:
        event_id = _tuplegetter(0, "eventId")
        type = _tuplegetter(1, "type")
        provider = _tuplegetter(2, "provider")
        thread_id = _tuplegetter(3, "threadId")
        created_at = _tuplegetter(4, "createdAt")
        turn_id = _tuplegetter(5, "turnId, or None")
        payload = _tuplegetter(6, "payload (read-only by contract)")
        trigger = _tuplegetter(7, "the machine trigger (type or type[variant]), or None when not a lifecycle event")
        created_dt = _tuplegetter(_CREATED_DT, "createdAt parsed")
        checked_by = _tuplegetter(_CHECKED_BY, "the parser that returned this object, else None")

    def __new__(
        cls,
        event_id: str,
        type: str,
        provider: str,
        thread_id: str,
        created_at: str,
        turn_id: str | None = None,
        payload: Mapping[str, Any] = EMPTY_PAYLOAD,
        trigger: str | None = None,
        created_dt: datetime = _NO_TIME,
    ) -> Event:
        # No way to pass `checked_by`: an Event built here is never trusted by a projector.
        return _new_tuple(cls, (event_id, type, provider, thread_id, created_at, turn_id, payload, trigger,
                                created_dt, None))

    def evolve(self, **changes: Any) -> Event:
        """A copy with some fields changed (the fields of `__new__`). Like any Event built outside
        the parser it is not trusted: a projector checks it again in full."""
        fields = dict(zip((*_FIELDS, "created_dt"), self[:_CHECKED_BY], strict=True))
        unknown = set(changes) - fields.keys()
        if unknown:
            raise TypeError(f"Event has no field(s) {sorted(unknown)}")
        fields.update(changes)
        return Event(**fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Event):
            return self[:_CREATED_DT] == other[:_CREATED_DT]
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, Event):
            return self[:_CREATED_DT] != other[:_CREATED_DT]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self[:_CREATED_DT])

    def __repr__(self) -> str:
        return "Event(" + ", ".join(f"{n}={v!r}" for n, v in zip(_FIELDS, self, strict=False)) + ")"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled and copied as its fields: the copy is not trusted (it is another object).
        return (Event, tuple(self[:_CHECKED_BY]))

    def __copy__(self) -> Event:
        return Event(*self[:_CHECKED_BY])

    def __deepcopy__(self, memo: Any) -> Event:
        import copy

        return Event(*copy.deepcopy(tuple(self[:_CHECKED_BY]), memo))

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
