"""Reaper, stale-turn bound and restart reconciliation: policy decided here, lifecycle by the machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from statemachine import (
    ActivityClock,
    Session,
    SessionProjector,
    expire_stale_turns,
    idle_since,
    reapable,
    reapable_sessions,
    reconcile,
    stale_turns,
)
from statemachine.runtime.operations import (
    RESTART_EVENT_PREFIX,
    RESTART_REASON,
    STALE_TURN_EVENT_PREFIX,
    STALE_TURN_REASON,
)
from statemachine.spec.invariants import state_violations, step_violations

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(minutes: float) -> str:
    return at(minutes).isoformat().replace("+00:00", "Z")


_count = 0


def wire(type_: str, thread: str = "t1", turn: str | None = None, minute: float = 0, **payload: Any) -> dict[str, Any]:
    global _count
    _count += 1
    event: dict[str, Any] = {"eventId": f"op-{_count}", "type": type_, "provider": "codex", "threadId": thread,
                             "createdAt": iso(minute), "payload": payload}
    if turn is not None:
        event["turnId"] = turn
    return event


def session(status: str, minute: float | None = 0, turn: str | None = None) -> Session:
    return Session("t1", status, "codex", turn, None, iso(minute) if minute is not None else None)


def assert_proven(projector: SessionProjector) -> None:
    for tid, s in projector.sessions().items():
        assert state_violations(projector.spec, s, projector.finished_turns(tid)) == []


# -- reaper --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["idle", "ready", "interrupted", "error"])
def test_reaps_an_idle_session_once_the_threshold_has_passed(status: str) -> None:
    s = session(status, minute=0)
    assert not reapable(s, at(29.9))
    assert reapable(s, at(30))
    assert reapable(s, at(45), threshold=timedelta(minutes=15))


@pytest.mark.parametrize("status", ["starting", "running", "stopped"])
def test_never_reaps_starting_running_or_stopped(status: str) -> None:
    assert not reapable(session(status, minute=0), at(600))


def test_never_reaps_a_session_holding_a_turn() -> None:
    # a turn can only be held in a turn-holding status; the check stands on its own regardless
    # Even where a policy allows the status, an active turn holds the session.
    assert not reapable(session("running", minute=0, turn="T1"), at(600), statuses={"running"})
    assert reapable(session("running", minute=0), at(600), statuses={"running"})


def test_idle_clock_is_the_later_of_last_seen_and_updated_at() -> None:
    s = session("ready", minute=0)
    assert idle_since(s) == at(0)
    assert idle_since(s, at(20)) == at(20)
    assert idle_since(s, at(-20)) == at(0)
    assert not reapable(s, at(40), last_seen=at(20))
    assert reapable(s, at(50), last_seen=at(20))
    assert reapable(s, at(30), last_seen=at(-100))  # an older last-seen never shortens the wait


def test_background_work_holds_the_reaper() -> None:
    assert not reapable(session("ready", minute=0), at(600), busy=True)


def test_a_session_without_any_clock_is_not_reapable() -> None:
    s = session("ready", minute=None)
    assert idle_since(s) is None
    assert not reapable(s, at(10_000))
    assert reapable(s, at(40), last_seen=at(0))


def test_naive_datetimes_are_utc_and_bad_arguments_are_refused() -> None:
    s = session("ready", minute=0)
    assert reapable(s, datetime(2026, 11, 20, 10, 30))
    assert not reapable(s, datetime(2026, 11, 20, 10, 29))
    with pytest.raises(TypeError):
        reapable(s, "2026-11-20T10:30:00Z")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold"):
        reapable(s, at(0), threshold=timedelta(seconds=-1))


def test_reapable_sessions_decides_without_changing_anything() -> None:
    p = SessionProjector()
    p.apply_all([
        wire("session.started", "idle-ready", minute=0),
        wire("session.started", "recent", minute=0),
        wire("session.started", "busy", minute=0),
        wire("turn.started", "working", "T1", minute=0),
        wire("session.exited", "gone", minute=0),
    ])
    before = p.snapshot()
    chosen = reapable_sessions(p, at(31), last_seen={"recent": at(10)}, busy={"busy"})
    assert [s.thread_id for s in chosen] == ["idle-ready"]
    assert p.snapshot() == before


# -- stale turns ---------------------------------------------------------------------------------


def running_projector() -> SessionProjector:
    p = SessionProjector()
    p.apply_all([
        wire("session.started", "a", minute=0),
        wire("turn.started", "a", "A1", minute=1),
        wire("turn.started", "b", "B1", minute=1),
        wire("session.state.changed", "b", minute=8, state="waiting"),  # an applied event since
        wire("session.started", "c", minute=0),  # ready, no turn
        wire("session.state.changed", "d", minute=0, state="running"),  # running, but no turn
    ])
    return p


def test_stale_turns_lists_active_turns_with_no_event_since_the_bound() -> None:
    p = running_projector()
    assert stale_turns(p, at(10), timedelta(minutes=10)) == []
    assert [s.thread_id for s in stale_turns(p, at(11), timedelta(minutes=10))] == ["a"]
    assert [s.thread_id for s in stale_turns(p, at(18), timedelta(minutes=10))] == ["a", "b"]
    with pytest.raises(ValueError, match="max_age"):
        stale_turns(p, at(18), timedelta(0))


def test_ignored_events_seen_by_an_activity_clock_keep_a_turn_fresh() -> None:
    p = running_projector()
    clock = ActivityClock()
    p.subscribe(clock)
    delta = p.apply(wire("content.delta", "a", "A1", minute=9, delta="..."))
    assert delta.kind == "ignored" and p["a"].updated_at == iso(1)  # updatedAt did not move
    assert clock.last_seen["a"] == at(9)
    assert [s.thread_id for s in stale_turns(p, at(15), timedelta(minutes=10), last_seen=clock.last_seen)] == []
    assert [s.thread_id for s in stale_turns(p, at(15), timedelta(minutes=10))] == ["a"]


def test_expire_stale_turns_settles_them_through_the_machine() -> None:
    p = running_projector()
    seen: list[str] = []
    p.subscribe(lambda o: seen.append(o.event.event_id))
    outcomes = expire_stale_turns(p, at(18), timedelta(minutes=10))
    assert [(o.kind, o.event.event_id) for o in outcomes] == [
        ("applied", f"{STALE_TURN_EVENT_PREFIX}a:A1"), ("applied", f"{STALE_TURN_EVENT_PREFIX}b:B1"),
    ]
    # observers see it like any event
    assert seen == [f"{STALE_TURN_EVENT_PREFIX}a:A1", f"{STALE_TURN_EVENT_PREFIX}b:B1"]
    first = outcomes[0]
    assert first.event.type == "turn.completed" and first.event.turn_id == "A1"
    assert dict(first.event.payload) == {"state": "interrupted", "reason": STALE_TURN_REASON}
    assert first.event.provider == "codex" and first.event.created_at == iso(18)
    assert p["a"] == Session("a", "interrupted", "codex", None, None, iso(18))
    assert p.finished_turns("a") == ("A1",)
    assert all(step_violations(p.spec, o) == [] for o in outcomes)
    assert_proven(p)
    # settled: nothing stale any more, and a late completion of the expired turn is rejected
    assert expire_stale_turns(p, at(60), timedelta(minutes=10)) == []
    late = p.apply(wire("turn.completed", "a", "A1", minute=61))
    assert (late.kind, late.reason) == ("rejected", "turn_finished")


def test_a_stale_turn_finished_meanwhile_is_rejected_not_forced() -> None:
    # The listing and the apply are separate steps; whatever lands in between, the machine decides.
    p = running_projector()
    [stale] = stale_turns(p, at(11), timedelta(minutes=10))
    p.apply(wire("turn.completed", "a", "A1", minute=11, state="failed", errorMessage="real end"))
    outcome = p.apply({
        "eventId": f"expiry-a-{stale.active_turn_id}", "type": "turn.completed", "provider": "codex",
        "threadId": "a", "createdAt": iso(11), "turnId": stale.active_turn_id,
        "payload": {"state": "interrupted", "reason": STALE_TURN_REASON},
    })
    assert (outcome.kind, outcome.reason) == ("rejected", "turn_finished")
    assert (p["a"].status, p["a"].last_error) == ("error", "real end")


def test_synthetic_event_ids_stay_within_the_id_limit() -> None:
    p = SessionProjector()
    limit: int = getattr(p.parser, "max_id_length", 256)
    thread, turn = "t" * limit, "u" * limit
    p.apply(wire("turn.started", thread, turn, minute=0))
    [outcome] = expire_stale_turns(p, at(30), timedelta(minutes=10))
    assert outcome.kind == "applied"
    assert outcome.event.event_id.startswith(STALE_TURN_EVENT_PREFIX) and len(outcome.event.event_id) <= limit


# -- restart reconciliation ----------------------------------------------------------------------


def restored_after_restart() -> SessionProjector:
    p = SessionProjector()
    p.apply_all([
        wire("turn.started", "working", "W1", minute=1),
        wire("session.state.changed", "starting", minute=1, state="starting"),
        wire("session.state.changed", "running-no-turn", minute=1, state="running"),
        wire("turn.started", "live", "L1", minute=1),
        wire("session.started", "ready", minute=1),
        wire("session.exited", "stopped", minute=1),
        wire("runtime.error", "failed", minute=1, message="old failure"),
    ])
    return SessionProjector.restore(p.snapshot())


def test_reconcile_moves_sessions_without_a_live_provider_to_error() -> None:
    p = restored_after_restart()
    untouched = {tid: p[tid] for tid in ("live", "ready", "stopped", "failed")}
    statuses: list[tuple[str, str, str]] = []
    p.subscribe(lambda o: statuses.append((o.event.thread_id, o.before.status, o.after.status)), what="status")
    outcomes = reconcile(p, {"live"}, now=at(30))
    assert [o.event.thread_id for o in outcomes] == ["working", "starting", "running-no-turn"]
    assert all(o.kind == "applied" for o in outcomes)
    for o in outcomes:
        assert o.event.type == "session.state.changed"
        assert dict(o.event.payload) == {"state": "error", "reason": RESTART_REASON}
        assert o.event.event_id == f"{RESTART_EVENT_PREFIX}{o.event.thread_id}:{iso(30)}"
        assert o.after.status == "error" and o.after.last_error == RESTART_REASON
        assert o.after.active_turn_id is None and o.after.updated_at == iso(30)
        assert step_violations(p.spec, o) == []
    assert statuses == [("working", "running", "error"), ("starting", "starting", "error"),
                        ("running-no-turn", "running", "error")]
    # the turn the session held was cleared by entering `error`, and is remembered as finished
    assert p.finished_turns("working") == ("W1",)
    assert {tid: p[tid] for tid in untouched} == untouched
    assert_proven(p)
    # idempotent: nothing left to reconcile
    assert reconcile(p, {"live"}, now=at(31)) == []


def test_reconcile_defaults_now_to_the_current_time() -> None:
    p = restored_after_restart()
    before = datetime.now(UTC)
    outcomes = reconcile(p, {"live"})
    stamp = datetime.fromisoformat(outcomes[0].event.created_at.replace("Z", "+00:00"))
    assert before <= stamp <= datetime.now(UTC)


def test_reconcile_with_a_custom_reason() -> None:
    p = restored_after_restart()
    [o, *_] = reconcile(p, set(), now=at(30), reason="Host rebooted")
    assert o.after.last_error == "Host rebooted"
