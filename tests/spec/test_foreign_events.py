"""Events that did not come from this projector's parser are checked in full; provider ids cannot
reach the namespace of the library's own events."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from statemachine import Event, EventError, Session, SessionProjector, expire_stale_turns, reconcile
from statemachine.core.event import MAX_ID_LENGTH
from statemachine.spec.load import BUILTIN_SPEC, load_spec
from statemachine.spec.parser import EventParser

# The reserved prefix of synthetic eventIds (`statemachine.core.event.SYNTHETIC_EVENT_PREFIX`).
RESERVED = "~lifecycle:"


def wire(event_id: str, type_: str, turn: str | None = None, **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"eventId": event_id, "type": type_, "provider": "codex", "threadId": "t1",
                             "createdAt": "2026-11-20T10:00:00Z", "payload": payload}
    if turn is not None:
        event["turnId"] = turn
    return event


def state(projector: SessionProjector) -> str:
    return json.dumps(projector.snapshot(), sort_keys=True)


def running() -> SessionProjector:
    p = SessionProjector()
    p.apply(wire("start", "turn.started", "T1"))
    return p


# -- trust: replaced and hand-built Events -------------------------------------------------------

REPLACEMENTS = [
    ({"created_at": "not a time"}, "createdAt"),
    ({"turn_id": "x" * 100_000}, "turnId"),
    ({"turn_id": ""}, "turnId"),
    ({"event_id": "e" * (MAX_ID_LENGTH + 1)}, "eventId"),
    ({"thread_id": ""}, "threadId"),
    ({"payload": ["not", "a", "mapping"]}, "payload"),
    ({"payload": {"state": "exploded"}}, "payload.state"),
    ({"event_id": 5}, "eventId"),
    ({"event_id": RESERVED + "forged"}, "eventId"),
]


@pytest.mark.parametrize(("change", "field"), REPLACEMENTS)
def test_a_replaced_event_is_checked_again_and_refused_without_a_trace(change: dict[str, Any], field: str) -> None:
    p = running()
    good = p.parse(wire("e2", "turn.completed", "T1", state="failed", errorMessage="boom"))
    bad = good.evolve(**change)
    before = state(p)
    with pytest.raises(EventError) as info:
        p.apply(bad)
    assert info.value.field == field
    assert state(p) == before
    # the eventId was not remembered: the real event still applies
    assert p.apply(good).kind == "applied"


def test_a_type_that_disagrees_with_the_trigger_is_recomputed_from_the_fields() -> None:
    p = running()
    good = p.parse(wire("e2", "turn.completed", "T1", state="failed", errorMessage="boom"))
    lying = good.evolve(type="runtime.warning")  # the trigger still says turn.completed[failed]
    outcome = p.apply(lying)
    assert outcome.kind == "ignored" and outcome.event.trigger is None
    assert p["t1"].status == "running"


def test_an_unknown_trigger_is_refused_before_the_event_id_is_remembered() -> None:
    p = running()
    good = p.parse(wire("e2", "turn.completed", "T1"))
    forged = good.evolve(trigger="turn.completed[vanished]")
    outcome = p.apply(forged)  # checked again: the trigger comes from the type and payload
    assert outcome.kind == "applied" and outcome.event.trigger == "turn.completed[completed]"


def test_hand_built_events_are_checked_like_wire_events() -> None:
    p = running()
    before = state(p)
    with pytest.raises(EventError) as info:
        p.apply(Event("e2", "turn.completed", "codex", "t1", "2026-11-20T10:00:00Z", "T1",
                      "garbage", trigger="turn.completed[completed]"))  # type: ignore[arg-type]
    assert info.value.field == "payload"
    assert state(p) == before
    with pytest.raises(EventError) as info:
        p.apply(Event("e3", "turn.completed", "codex", "t1", "2026-11-20T10:00:00Z", "T1",
                      {"state": 7}, trigger="turn.completed[completed]"))
    assert info.value.field == "payload.state"
    assert state(p) == before
    assert not p.has_seen("t1", "e2") and not p.has_seen("t1", "e3")


def test_only_the_very_object_the_parser_returned_is_trusted() -> None:
    p = running()
    parsed = p.parse(wire("e2", "turn.completed", "T1"))
    assert parsed.checked_by is p.parser
    assert parsed.evolve().checked_by is None  # a copy drops the mark
    assert copy.copy(parsed).checked_by is None and pickle.loads(pickle.dumps(parsed)).checked_by is None
    with pytest.raises(AttributeError):
        parsed.checked_by = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        Event("e", "t", "p", "th", "2026-11-20T10:00:00Z", checked_by=p.parser)  # type: ignore[call-arg]
    # a parser with a tighter id limit does not trust what a looser one made
    strict = SessionProjector()
    strict.parser = EventParser(strict.spec, max_id_length=8)
    loose = p.parse(wire("a-long-event-id", "session.started"))
    with pytest.raises(EventError) as info:
        strict.apply(loose)
    assert info.value.field == "eventId"

    class Sneaky(Event):
        __slots__ = ()

    # a subclass is never trusted, even one carrying the parser's mark
    forged = tuple.__new__(Sneaky, ("e9", "turn.started", "codex", "t1", "not a time", "T2", {}, "turn.started",
                                    datetime.min.replace(tzinfo=UTC), p.parser))
    assert forged.checked_by is p.parser
    with pytest.raises(EventError) as info:
        p.apply(forged)
    assert info.value.field == "createdAt"


# -- synthetic events: a namespace of their own --------------------------------------------------


def test_the_parser_refuses_the_reserved_id_prefix() -> None:
    p = SessionProjector()
    with pytest.raises(EventError) as info:
        p.apply(wire(RESERVED + "stale-turn:t1:T1", "session.started"))
    assert info.value.field == "eventId"
    assert len(p) == 0
    with pytest.raises(EventError):
        p.apply(json.dumps(wire(RESERVED + "restart:t1:x", "session.started")))


def test_a_provider_id_shaped_like_a_synthetic_one_does_not_block_expiry_or_reconcile() -> None:
    p = running()
    now = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    # ids a provider could send that look like the old synthetic ones
    p.apply(wire("stale-turn:t1:T1", "runtime.warning", message="w"))
    p.apply(wire(f"restart:t1:{now.isoformat().replace('+00:00', 'Z')}", "runtime.warning", message="w"))
    [expired] = expire_stale_turns(p, now, timedelta(minutes=10))
    assert expired.kind == "applied" and expired.event.event_id.startswith(RESERVED)
    assert p["t1"].status == "interrupted"
    p.apply(wire("again", "turn.started", "T2"))
    [reconciled] = reconcile(p, set(), now=now)
    assert reconciled.kind == "applied" and reconciled.event.event_id.startswith(RESERVED)
    assert p["t1"].status == "error"


def test_a_sweep_that_cannot_build_an_event_applies_none_of_it() -> None:
    # seed() takes any state (proofs use it), so a turn id past the parser's limit can be held;
    # its synthetic event cannot be built, and the sweep must fail before changing anything.
    p = SessionProjector()
    p.seed(Session("a", "running", "codex", "A1", None, "2026-11-20T10:00:00Z"))
    p.seed(Session("b", "running", "codex", "x" * (MAX_ID_LENGTH + 1), None, "2026-11-20T10:00:00Z"))
    before = state(p)
    with pytest.raises(EventError):
        expire_stale_turns(p, datetime(2026, 11, 20, 11, 0, tzinfo=UTC), timedelta(minutes=10))
    assert state(p) == before


def test_projectors_sharing_a_parser_trust_its_events_and_no_other_parsers() -> None:
    shared = SessionProjector()
    event = shared.parse({"eventId": "e1", "type": "turn.started", "provider": "codex", "threadId": "t",
                          "createdAt": "2026-01-01T00:00:00Z", "turnId": "T1"})
    other = SessionProjector(parser=shared.parser)
    calls: list[object] = []
    real = other.parser.coerce
    other.parser.coerce = lambda e: calls.append(e) or real(e)  # type: ignore[method-assign]
    assert other.apply(event).after.active_turn_id == "T1"
    assert calls == []  # trusted as is: no second validation
    stranger = SessionProjector()
    seen: list[object] = []
    real_stranger = stranger.parser.coerce
    stranger.parser.coerce = lambda e: seen.append(e) or real_stranger(e)  # type: ignore[method-assign]
    stranger.apply(event)
    assert seen == [event]  # another parser's Event is validated again
    with pytest.raises(ValueError, match="parser"):
        SessionProjector(load_spec(BUILTIN_SPEC), parser=shared.parser)  # another spec object
