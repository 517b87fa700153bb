"""The wire envelope (T3's field names) -> a typed, validated `Event`.

Envelope: `{eventId, type, provider, threadId, createdAt, turnId?, payload}`. Lifecycle event
types (those the spec lists) also have their payload checked against the spec; any other type is
accepted as is and will be ignored by the projector. Anything malformed raises `EventError`
naming the field, before any state is touched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .spec import Spec

__all__ = ["MAX_ID_LENGTH", "SYNTHETIC_EVENT_PREFIX", "Event", "EventError", "EventParser", "parse_timestamp"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
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


def _timestamp(value: str) -> datetime:
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@lru_cache(maxsize=4096)  # pure; the same updatedAt is read back on every event of its session
def parse_timestamp(value: str) -> datetime:
    """ISO 8601 -> aware datetime; a timestamp without an offset is taken as UTC."""
    return _timestamp(value)


try:  # the C descriptor namedtuple uses for its fields: a read costs no Python call
    from collections import _tuplegetter  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other interpreters
    from operator import itemgetter

    def _tuplegetter(index: int, doc: str) -> Any:
        return property(itemgetter(index), doc=doc)


_FIELDS = ("event_id", "type", "provider", "thread_id", "created_at", "turn_id", "payload", "trigger")
_CREATED_DT, _CHECKED_BY = 8, 9  # positions of the values outside equality
_new_tuple = tuple.__new__


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
        payload: Mapping[str, Any] = _EMPTY,
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
_UNKNOWN = object()


class EventParser:
    """Validates envelopes against one spec. Cheap to build; reuse it.

    `max_id_length` caps eventId, threadId, turnId, type, provider and createdAt (characters).
    """

    def __init__(self, spec: Spec, *, max_id_length: int = MAX_ID_LENGTH) -> None:
        if max_id_length < 1:
            raise ValueError("max_id_length must be at least 1")
        self._spec = spec
        self.max_id_length = max_id_length
        self._plans: dict[str, tuple[tuple[Any, ...], ...]] = {}  # lifecycle type -> its payload checks
        self._empty: dict[str, str | None] = {}  # type -> its trigger when the payload is empty

    @property
    def spec(self) -> Spec:
        """The spec whose event types and payloads this parser checks."""
        return self._spec

    def parse(self, data: object) -> Event:
        return self._parse(data, synthetic=False, owned=False)

    def _parse_synthetic(self, data: object) -> Event:
        """The library's own events (`statemachine.operations`): their eventId must be in the
        reserved namespace that `parse` refuses; everything else is checked as usual."""
        return self._parse(data, synthetic=True, owned=False)

    def _parse(self, data: object, *, synthetic: bool, owned: bool) -> Event:
        """`owned`: `data` was decoded here from a line, so its payload dict is kept as it is."""
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
            # Not through the cache: a createdAt is mostly seen once, and would only fill it.
            created_dt = _timestamp(created_at)
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
        elif type(raw_payload) is dict and owned:
            payload = raw_payload  # decoded here from a line: nobody else holds it (read-only by contract)
        elif isinstance(raw_payload, Mapping):
            # The caller's mapping: copied once (shallow), so changing it later changes no event.
            payload = dict(raw_payload)
        else:
            raise EventError("payload", f"must be a JSON object, got {type(raw_payload).__name__}")

        trigger = self._trigger(type_, payload)
        return _new_tuple(Event, (event_id, type_, provider, thread_id, created_at, turn_id, payload, trigger,
                                  created_dt, self))

    def _trigger(self, type_: str, payload: Mapping[str, Any]) -> str | None:
        """The machine trigger of a valid envelope, its payload checked against the spec when the
        type is a lifecycle one; None for any other type."""
        if not payload:
            # The common empty payload: the answer per type is computed once.
            trigger = self._empty.get(type_, _UNKNOWN)
            if trigger is not _UNKNOWN:
                return trigger  # type: ignore[return-value]
        plan = self._plans.get(type_)
        if plan is None:
            if self._spec.event_type(type_) is None:
                return None
            plan = self._plans[type_] = self._plan(type_)
        if not payload and type_ not in self._empty:
            # An empty payload refused for this type is not remembered: checked every time, as here.
            with contextlib.suppress(EventError):
                self._empty[type_] = self._trigger_by_plan(type_, plan, payload)
        return self._trigger_by_plan(type_, plan, payload)

    @staticmethod
    def _trigger_by_plan(type_: str, plan: tuple[tuple[Any, ...], ...], payload: Mapping[str, Any]) -> str:
        trigger = type_
        for name, where, required, default, wanted, type_name, enum, selects in plan:
            value = payload.get(name)
            if value is None:
                if required:
                    raise EventError(where, "is required")
                value = default
                if value is None:
                    continue
            if wanted is not None and not isinstance(value, wanted):
                raise EventError(where, f"must be a {type_name}, got {type(value).__name__}")
            if enum is not None and value not in enum:
                raise EventError(where, f"must be one of {list(enum)}, got {str(value)[:64]!r}")
            if selects:
                trigger = f"{type_}[{value}]"
        return trigger

    def _plan(self, type_: str) -> tuple[tuple[Any, ...], ...]:
        """A lifecycle type's payload checks, prepared once: (field, error path, required, default,
        Python type, the spec's name for it, enum, selects the variant)."""
        event_type = self._spec.event_type(type_)
        assert event_type is not None
        return tuple(
            (f.name, f"payload.{f.name}", f.required, f.default, _TYPE_CHECKS.get(f.type), f.type, f.enum,
             f.name == event_type.variant_by)
            for f in event_type.payload
        )

    def parse_line(self, line: str | bytes) -> Event:
        """One JSONL line -> Event."""
        # The decoder in use (statemachine.wire): the stdlib's or msgspec, with the same results.
        return self._parse(_wire.line_loader()(line), synthetic=False, owned=True)

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


# At the end, as a module: `wire` reads `EventError` from this one, whichever is imported first.
from . import wire as _wire  # noqa: E402
