"""`EventParser`: the wire envelope -> a checked `Event`, against one spec, or `EventError` naming
the field. Only the parser's own Events are trusted as they are."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from statemachine.core import wire as _wire
from statemachine.core.event import (
    EMPTY_PAYLOAD,
    MAX_ID_LENGTH,
    SYNTHETIC_EVENT_PREFIX,
    Event,
    EventError,
    build_event,
    parse_timestamp_uncached,
)
from statemachine.core.session import request_id_problem, unstorable

if TYPE_CHECKING:
    from statemachine.spec.model import Spec

__all__ = ["EventParser"]


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
    _storable(value, name)
    return value


def _clean(value: str) -> bool:
    """Can every store keep this text as it is (no NUL, no lone surrogate)?"""
    return unstorable(value) is None


def _storable(value: str, name: str) -> None:
    """Refuse text no store can keep as it is (`unstorable`). Refused here, at the one door every
    event comes through, so no backend meets it and no batch can fail at the same line forever."""
    problem = unstorable(value)
    if problem is not None:
        raise EventError(name, problem)


_TYPE_CHECKS: dict[str, type | tuple[type, ...]] = {"string": str, "boolean": bool, "id": (str, int)}


def _check_id(value: Any, where: str) -> None:
    """An `id` payload field (a request's id) as JSON-RPC gives it (`request_id_problem`)."""
    problem = request_id_problem(value, MAX_ID_LENGTH)
    if problem is not None:
        raise EventError(where, problem)


class _Unusual(Exception):
    """A line the fast reading does not settle: the full reading reads it."""

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

    def parse_synthetic(self, data: object) -> Event:
        """The library's own events (`statemachine.runtime.operations`): their eventId must be in the
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
            created_dt = parse_timestamp_uncached(created_at)
        except ValueError:
            raise EventError("createdAt", f"not an ISO 8601 timestamp: {created_at[:64]!r}") from None
        turn_id = data.get("turnId")
        if turn_id is not None:
            if not isinstance(turn_id, str) or not turn_id:
                raise EventError("turnId", "must be a non-empty string or null")
            if len(turn_id) > limit:
                raise EventError("turnId", f"is {len(turn_id)} characters long; the limit is {limit}")
            _storable(turn_id, "turnId")
        raw_payload = data.get("payload")
        if raw_payload is None:
            payload: Mapping[str, Any] = EMPTY_PAYLOAD
        elif type(raw_payload) is dict and owned:
            payload = raw_payload  # decoded here from a line: nobody else holds it (read-only by contract)
        elif isinstance(raw_payload, Mapping):
            # The caller's mapping: copied once (shallow), so changing it later changes no event.
            payload = dict(raw_payload)
        else:
            raise EventError("payload", f"must be a JSON object, got {type(raw_payload).__name__}")

        trigger = self._trigger(type_, payload)
        return build_event(Event, (event_id, type_, provider, thread_id, created_at, turn_id, payload, trigger,
                                  created_dt, self))

    def _trigger(self, type_: str, payload: Mapping[str, Any], clean: bool = False) -> str | None:
        """The machine trigger of a valid envelope, its payload checked against the spec when the
        type is a lifecycle one; None for any other type. `clean`: the payload was decoded from a
        line that can hold no NUL and no lone surrogate (`line_reader`), so its texts are storable."""
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
        return self._trigger_by_plan(type_, plan, payload, clean)

    @staticmethod
    def _trigger_by_plan(type_: str, plan: tuple[tuple[Any, ...], ...], payload: Mapping[str, Any],
                         clean: bool = False) -> str:
        trigger = type_
        for name, where, required, default, wanted, type_name, enum, selects in plan:
            value = payload.get(name)
            if value is None:
                if required:
                    raise EventError(where, "is required")
                value = default
                if value is None:
                    continue
            elif not clean and type(value) is str:
                _storable(value, where)  # the wire's text may become session state
            if wanted is not None and not isinstance(value, wanted):
                raise EventError(where, f"must be a {'string or an integer' if type_name == 'id' else type_name}, "
                                        f"got {type(value).__name__}")
            if type_name == "id":
                _check_id(value, where)
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
        """One JSONL line -> Event, read in full (`line_reader` reads the common shape faster,
        with the same answers)."""
        # The decoder in use (statemachine.core.wire): the stdlib's or msgspec, with the same results.
        return self._parse(_wire.line_loader()(line), synthetic=False, owned=True)

    def line_reader(self) -> Callable[[str | bytes], Event]:
        """A function: one JSONL line -> this parser's `Event`, or `EventError`, with the decoder in
        use now (`statemachine.core.wire`). Every line is read the way `parse_line` reads it; the
        common shape (an envelope with every field of the right type, no escapes that could spell a
        NUL or a lone surrogate) is checked in a row, and anything else goes to `parse_line`, whose
        answer is the one given. `apply`, `apply_batch`, the stores and replay all read lines here."""
        limit = self.max_id_length
        prefix = SYNTHETIC_EVENT_PREFIX
        trigger_of = self._trigger
        too_deep = _wire.too_deep
        deep = 2 * _wire.MAX_NESTING  # no shorter line can nest that deep: `too_deep` is not called
        scan = _wire.scan_once
        decoder = _wire.envelope_decoder()
        full = self.parse_line
        parser = self
        empty = EMPTY_PAYLOAD
        utc = UTC
        fromisoformat = datetime.fromisoformat
        new = build_event
        line_ends = ("\n", "\r\n")
        clean = _clean
        unusual: tuple[type[BaseException], ...]
        if decoder is not None:
            struct, unusual = decoder[0], (_Unusual, *decoder[1])
        else:
            struct, unusual = None, (_Unusual, ValueError, RecursionError, StopIteration)

        def read(line: str | bytes) -> Event:
            eid: Any
            type_: Any
            prov: Any
            tid: Any
            cat: Any
            turn: Any
            payload: Any
            try:
                # A `\u` escape may spell a NUL or a lone surrogate, and text may hold either as
                # is: in such lines the envelope's texts are checked below (one search otherwise).
                if type(line) is bytes:
                    escaped = b"\\u" in line
                elif type(line) is str:
                    escaped = "\\u" in line or not line.isascii()
                else:
                    raise _Unusual
                if struct is None:
                    # `json.loads` without its Python layers: the C scanner on the UTF-8 text. A line
                    # it does not settle (leading or odd trailing whitespace, another encoding) is
                    # `_Unusual`.
                    text: Any = line.decode() if type(line) is bytes else line
                    data, end = scan(text, 0)
                    if end != len(text) and text[end:] not in line_ends:
                        raise _Unusual
                    if type(data) is not dict or (len(line) > deep and too_deep(line)):
                        raise _Unusual
                    get = data.get
                    eid = get("eventId")
                    type_ = get("type")
                    prov = get("provider")
                    tid = get("threadId")
                    cat = get("createdAt")
                    turn = get("turnId")
                    payload = get("payload")
                    # The checks of `_parse`, for the common case only; the rest is `_Unusual`.
                    if not (
                        type(eid) is str and 0 < len(eid) <= limit and not eid.startswith(prefix)
                        and type(type_) is str and 0 < len(type_) <= limit
                        and type(prov) is str and 0 < len(prov) <= limit
                        and type(tid) is str and 0 < len(tid) <= limit
                        and type(cat) is str and 0 < len(cat) <= limit
                        and (turn is None or (type(turn) is str and 0 < len(turn) <= limit))
                        and (payload is None or type(payload) is dict)
                    ):
                        raise _Unusual
                else:
                    if len(line) > deep and too_deep(line):
                        raise _Unusual
                    env = struct(line)
                    eid, type_, prov, tid = env.eventId, env.type, env.provider, env.threadId
                    cat, turn, payload = env.createdAt, env.turnId, env.payload
                    # msgspec checked the types; the parser's other checks, for the common case.
                    if not (
                        0 < len(eid) <= limit and not eid.startswith(prefix) and 0 < len(type_) <= limit
                        and 0 < len(prov) <= limit and 0 < len(tid) <= limit and 0 < len(cat) <= limit
                        and (turn is None or 0 < len(turn) <= limit)
                    ):
                        raise _Unusual
                if escaped and not (clean(eid) and clean(type_) and clean(prov) and clean(tid) and clean(cat)
                                    and (turn is None or clean(turn))):
                    raise _Unusual
                dt = fromisoformat(cat)
                if dt.tzinfo is None:
                    dt = dt.replace(tzinfo=utc)
            except unusual:
                return full(line)  # the full reading's answer: its EventError, or the event
            if payload is None:
                payload = empty
            # The same line fact as for the envelope: without a `\u` escape (and, in text, only
            # ASCII), no payload text can hold a NUL or a lone surrogate.
            trigger = trigger_of(type_, payload, not escaped)
            return new(Event, (eid, type_, prov, tid, cat, turn, payload, trigger, dt, parser))

        return read

    def coerce(self, event: Event | Mapping[str, Any] | str | bytes) -> Event:
        if isinstance(event, Event):
            # Trust only the very objects this parser returned. Any other Event (built by hand,
            # replaced, a subclass, parsed by another parser) is checked again in full from its
            # fields, read as they are: its trigger and parsed time are recomputed, never believed.
            if type(event) is Event and event.checked_by is self:
                return event
            return self.parse(_fields_of(event))
        if isinstance(event, (str, bytes)):
            return self.line_reader()(event)
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

