"""Observers: told after each event; a failing one never corrupts the projector or silences others."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from statemachine import EventError, Outcome, Session, SessionProjector
from statemachine.core.record import event_digest_hex


def wire(event_id: str, type_: str, turn: str | None = None, thread: str = "t1", **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"eventId": event_id, "type": type_, "provider": "codex", "threadId": thread,
                             "createdAt": "2026-11-20T10:00:00Z", "payload": payload}
    if turn is not None:
        event["turnId"] = turn
    return event


HISTORY = [
    wire("e1", "session.started"),  # applied, idle -> ready
    wire("e2", "item.started"),  # ignored
    wire("e2", "item.started"),  # duplicate
    wire("e3", "turn.completed", "X"),  # applied, ready -> ready: nothing changes but the turn memory
    wire("e4", "turn.started", "T1"),  # applied, ready -> running
    wire("e5", "turn.started", "T2"),  # rejected
    wire("e6", "session.started"),  # applied, running with a turn: stays running, no change
    wire("e7", "runtime.error", message="boom"),  # applied, running -> error
]


def test_what_selects_outcomes_changes_or_status_changes() -> None:
    p = SessionProjector()
    got: dict[str, list[str]] = {"outcome": [], "change": [], "status": []}
    for what in ("outcome", "change", "status"):
        p.subscribe(lambda o, what=what: got[what].append(o.event.event_id), what=what)  # type: ignore[misc]
    outcomes = p.apply_all(HISTORY)
    assert [o.kind for o in outcomes] == ["applied", "ignored", "duplicate", "applied", "applied", "rejected",
                                          "applied", "applied"]
    assert got["outcome"] == ["e1", "e2", "e2", "e3", "e4", "e5", "e6", "e7"]
    assert got["change"] == [o.event.event_id for o in outcomes if o.changed] == ["e1", "e4", "e7"]
    assert got["status"] == ["e1", "e4", "e7"]


def test_observers_run_in_order_after_the_session_is_updated() -> None:
    p = SessionProjector()
    calls: list[tuple[str, str | None, Session | None]] = []
    p.subscribe(lambda o: calls.append(("first", o.event.event_id, p.get("t1"))))
    p.subscribe(lambda o: calls.append(("second", o.event.event_id, p.get("t1"))))
    outcome = p.apply(wire("e1", "turn.started", "T1"))
    assert calls == [("first", "e1", outcome.after), ("second", "e1", outcome.after)]


def test_unsubscribe_including_from_inside_a_notification() -> None:
    p = SessionProjector()
    calls: list[str] = []

    def once(o: Outcome) -> None:
        calls.append("a")
        stop_a()

    stop_a = p.subscribe(once)
    p.subscribe(lambda o: calls.append("b"))
    p.apply(wire("e1", "session.started"))
    p.apply(wire("e2", "session.started"))
    assert calls == ["a", "b", "b"]
    stop_a()  # unsubscribing twice is harmless


def test_malformed_input_and_seeding_notify_nobody() -> None:
    p = SessionProjector()
    calls: list[Outcome] = []
    p.subscribe(calls.append)
    with pytest.raises(EventError):
        p.apply(wire("e1", "turn.completed", "T1", state="exploded"))
    p.seed(Session("t2", "ready"))
    assert calls == []


def test_a_raising_observer_is_reported_and_changes_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    p = SessionProjector()
    before: list[str] = []
    after: list[str] = []
    p.subscribe(lambda o: before.append(o.event.event_id))

    def broken(o: Outcome) -> None:
        raise RuntimeError("UI socket closed")

    p.subscribe(broken)
    p.subscribe(lambda o: after.append(o.event.event_id))
    with caplog.at_level(logging.ERROR, logger="statemachine.observers"):
        outcome = p.apply(wire("e1", "turn.started", "T1"))
        second = p.apply(wire("e2", "turn.completed", "T1"))
    # the event was applied and returned as usual, the other observers ran, both times
    assert outcome.kind == "applied" and p["t1"].status == "ready"
    assert second.kind == "applied"
    assert before == after == ["e1", "e2"]
    # the broken observer stayed subscribed: it failed (and was logged) on both events
    failures = [r for r in caplog.records if r.name == "statemachine.observers"]
    assert len(failures) == 2
    assert "e1" in failures[0].getMessage() and failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], RuntimeError)
    # memories are intact: de-duplication and finished turns still work
    assert p.apply(wire("e2", "turn.completed", "T1")).kind == "duplicate"
    assert p.finished_turns("t1") == ("T1",)


def test_on_error_receives_the_exception_and_the_outcome(caplog: pytest.LogCaptureFixture) -> None:
    p = SessionProjector()
    errors: list[tuple[Exception, str]] = []

    def broken(o: Outcome) -> None:
        raise ValueError("cannot persist")

    p.subscribe(broken, on_error=lambda exc, o: errors.append((exc, o.event.event_id)))
    with caplog.at_level(logging.ERROR, logger="statemachine.observers"):
        p.apply(wire("e1", "session.started"))
    assert [(type(e), eid) for e, eid in errors] == [(ValueError, "e1")]
    assert not caplog.records  # handled: nothing logged


def test_a_failing_error_handler_is_logged_too(caplog: pytest.LogCaptureFixture) -> None:
    p = SessionProjector()
    later: list[str] = []

    def broken(o: Outcome) -> None:
        raise ValueError("observer")

    def broken_handler(exc: Exception, o: Outcome) -> None:
        raise KeyError("handler")

    p.subscribe(broken, on_error=broken_handler)
    p.subscribe(lambda o: later.append(o.event.event_id))
    with caplog.at_level(logging.ERROR, logger="statemachine.observers"):
        assert p.apply(wire("e1", "session.started")).kind == "applied"
    assert later == ["e1"]
    assert len(caplog.records) == 2  # the handler's failure, then the observer's


def test_a_base_exception_propagates_after_the_event_is_applied() -> None:
    p = SessionProjector()
    later: list[str] = []

    def interrupt(o: Outcome) -> None:
        raise KeyboardInterrupt

    p.subscribe(interrupt)
    p.subscribe(lambda o: later.append(o.event.event_id))
    with pytest.raises(KeyboardInterrupt):
        p.apply(wire("e1", "turn.started", "T1"))
    assert p["t1"].status == "running" and p.seen_event_digests("t1") == (event_digest_hex("e1"),)
    assert later == []  # observers after it missed that one outcome


def test_what_is_checked() -> None:
    with pytest.raises(ValueError, match="what"):
        SessionProjector().subscribe(print, what="everything")  # type: ignore[arg-type]


# -- observers run to completion: an apply from inside one is queued ------------------------------


def test_an_apply_from_an_observer_is_deferred_until_every_observer_ran() -> None:
    p = SessionProjector()
    log: list[tuple[str, str, str]] = []
    returned: list[Outcome] = []

    def first(o: Outcome) -> None:
        log.append(("first", o.event.event_id, o.kind.value))
        if o.event.event_id == "e1":
            returned.append(p.apply(wire("e2", "turn.completed", "T1")))
            returned.append(p.apply(wire("e3", "runtime.warning", message="w")))

    def second(o: Outcome) -> None:
        log.append(("second", o.event.event_id, o.kind.value))
        # what the outcome says is what the projector holds while observers of it run
        assert p["t1"] == o.after

    p.subscribe(first)
    p.subscribe(second)
    outer = p.apply(wire("e1", "turn.started", "T1"))
    assert [(o.kind.value, o.event.event_id) for o in returned] == [("deferred", "e2"), ("deferred", "e3")]
    # a deferred outcome changed nothing when it was returned
    assert all(o.before == o.after == outer.after for o in returned)
    assert log == [
        ("first", "e1", "applied"), ("second", "e1", "applied"),
        ("first", "e2", "applied"), ("second", "e2", "applied"),
        ("first", "e3", "ignored"), ("second", "e3", "ignored"),
    ]
    assert outer.kind == "applied" and outer.after.status == "running"
    assert p["t1"].status == "ready"  # the queued events were applied before apply() returned


def test_a_malformed_event_from_an_observer_raises_at_once_and_queues_nothing() -> None:
    p = SessionProjector()
    errors: list[str] = []

    def observer(o: Outcome) -> None:
        if o.event.event_id == "e1":
            try:
                p.apply(wire("e2", "turn.completed", "T1", state="exploded"))
            except EventError as exc:
                errors.append(exc.field)

    p.subscribe(observer)
    p.apply(wire("e1", "turn.started", "T1"))
    assert errors == ["payload.state"]
    assert p.seen_event_digests("t1") == (event_digest_hex("e1"),) and p["t1"].status == "running"


def test_events_queued_by_queued_events_come_after_them_in_order() -> None:
    p = SessionProjector()
    seen: list[str] = []
    chain = {"a": ["b", "c"], "b": ["d"], "c": [], "d": []}

    def observer(o: Outcome) -> None:
        seen.append(o.event.event_id)
        for nxt in chain[o.event.event_id]:
            assert p.apply(wire(nxt, "runtime.warning", message=nxt)).kind == "deferred"

    p.subscribe(observer)
    p.apply(wire("a", "runtime.warning", message="a"))
    assert seen == ["a", "b", "c", "d"]
    assert p.apply(wire("e", "runtime.warning", message="e")).kind == "ignored"  # not deferred any more


def test_a_deferred_event_for_a_new_thread_creates_nothing_until_applied() -> None:
    p = SessionProjector()
    sizes: list[int] = []

    def observer(o: Outcome) -> None:
        if o.event.event_id == "e1":
            deferred = p.apply(wire("n1", "session.started", thread="new"))
            assert deferred.kind == "deferred" and deferred.before.status == "idle"
            sizes.append(len(p))

    p.subscribe(observer)
    p.apply(wire("e1", "session.started"))
    assert sizes == [1] and p["new"].status == "ready"


def test_a_base_exception_drops_the_queue_and_leaves_the_projector_usable() -> None:
    p = SessionProjector()

    def observer(o: Outcome) -> None:
        if o.event.event_id == "e1":
            p.apply(wire("e2", "session.started", thread="other"))
            raise KeyboardInterrupt

    p.subscribe(observer)
    with pytest.raises(KeyboardInterrupt):
        p.apply(wire("e1", "session.started"))
    assert "other" not in p
    assert p.apply(wire("e3", "session.started", thread="other")).kind == "applied"
