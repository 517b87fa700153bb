"""The orchestrator's side of the lifecycle: turn requests, stop and start requests, forgetting a
thread, and the provider's requests for approval or user input. Every test runs on both engines.

The rules stated here (settled sessions hold no pending turn and await nothing, a request dies
with its turn, stop settles, onlyIfSettled never stops a running turn, a superseded turn stays
finished) are also checked over every state reachable within a small event universe
(`test_rules_hold_on_every_reachable_state`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from helpers import Events, seeded

from statemachine import OutcomeKind, Session, SessionProjector
from statemachine.spec.load import builtin_spec

APPLIED, REJECTED, FORGOTTEN = OutcomeKind.APPLIED, OutcomeKind.REJECTED, OutcomeKind.FORGOTTEN
DUPLICATE = OutcomeKind.DUPLICATE
SETTLED = ("idle", "ready", "interrupted", "stopped", "error")


@pytest.fixture(params=["compiled", "transitions"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def fields(session: Session | None) -> tuple[Any, ...]:
    assert session is not None
    return session.status, session.active_turn_id, session.pending_turn, session.awaiting


def test_spec_marks_commands() -> None:
    spec = builtin_spec()
    commands = {e.type for e in spec.events if e.is_command}
    assert commands == {"thread.turn.start", "thread.session.stop", "thread.session.start", "thread.delete"}
    assert [e.type for e in spec.events if e.forgets_thread] == ["thread.delete"]


def test_turn_request_is_pending_until_its_turn_starts(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    out = p.apply(ev("thread.turn.start"))
    assert out.kind is APPLIED
    assert fields(out.after) == ("starting", None, "", None)
    assert out.after.to_wire()["pendingTurn"] == {"turnId": None}
    out = p.apply(ev("turn.started", "T1"))
    assert fields(out.after) == ("running", "T1", None, None)
    assert out.after.to_wire()["pendingTurn"] is None


def test_turn_request_with_its_turn_id_waits_for_that_turn(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    assert p.apply(ev("thread.turn.start", "T2")).after.to_wire()["pendingTurn"] == {"turnId": "T2"}
    # Another turn may run meanwhile (no turn was active); the request still waits for T2.
    assert fields(p.apply(ev("turn.started", "T1")).after) == ("running", "T1", "T2", None)
    assert fields(p.apply(ev("turn.started", "T2")).after) == ("running", "T2", None, None)
    assert "T1" in p.finished_turns("thread-1")


def test_turn_request_for_a_finished_turn_is_rejected(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    p.apply(ev("turn.started", "T1"))
    p.apply(ev("turn.completed", "T1", state="completed"))
    out = p.apply(ev("thread.turn.start", "T1"))
    assert (out.kind, out.reason) == (REJECTED, "turn_finished")
    assert out.after == out.before


def test_provider_requests_set_and_clear_awaiting(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    p.apply(ev("turn.started", "T1"))
    out = p.apply(ev("request.opened", "T1", requestId=7, requestType="item/commandExecution/requestApproval"))
    assert fields(out.after) == ("running", "T1", None, "approval")
    assert out.after.to_wire()["awaiting"] == "approval"
    assert fields(p.apply(ev("request.resolved", "T1", requestId=7)).after) == ("running", "T1", None, None)
    out = p.apply(ev("user-input.requested", "T1", requestId=8))
    assert fields(out.after) == ("running", "T1", None, "user-input")
    # Settling the turn ends the request with it.
    out = p.apply(ev("turn.completed", "T1", state="completed"))
    assert fields(out.after) == ("ready", None, None, None)


def test_a_request_belongs_to_the_running_work(engine: str) -> None:
    p, ev = seeded("interrupted", engine=engine), Events()
    out = p.apply(ev("request.opened", "T1"))
    assert (out.kind, out.reason) == (REJECTED, "invalid_in_interrupted")  # a cancelled turn's late request
    p.apply(ev("turn.started", "T1"))
    out = p.apply(ev("request.opened", "T9"))
    assert (out.kind, out.reason) == (REJECTED, "other_turn_active")
    assert out.after.awaiting is None
    # A resolution naming another turn leaves the open request alone.
    p.apply(ev("request.opened", "T1"))
    assert p.apply(ev("request.resolved", "T9")).kind is REJECTED
    assert p["thread-1"].awaiting == "approval"


@pytest.mark.parametrize("status", SETTLED)
def test_stop_request_on_a_settled_session_stops_it(engine: str, status: str) -> None:
    for only_if_settled in (False, True):
        p, ev = seeded(status, engine=engine, last_error="boom" if status == "error" else None), Events()
        out = p.apply(ev("thread.session.stop", onlyIfSettled=only_if_settled))
        assert out.kind is APPLIED
        assert fields(out.after) == ("stopped", None, None, None)


@pytest.mark.parametrize("status", ["starting", "running"])
def test_only_if_settled_never_stops_a_running_turn(engine: str, status: str) -> None:
    p, ev = seeded(status, engine=engine, active_turn_id="T1", awaiting="approval"), Events()
    out = p.apply(ev("thread.session.stop", onlyIfSettled=True))
    assert (out.kind, out.reason) == (REJECTED, "not_settled")
    assert out.after == out.before
    out = p.apply(ev("thread.session.stop"))
    assert fields(out.after) == ("stopped", None, None, None)
    assert "T1" in p.finished_turns("thread-1")


def test_retry_clears_the_error_on_entering_starting(engine: str) -> None:
    p, ev = seeded("error", engine=engine, last_error="Provider crashed"), Events()
    out = p.apply(ev("thread.session.start"))
    assert (out.after.status, out.after.last_error) == ("starting", None)
    assert p.apply(ev("session.started")).after.status == "ready"
    assert p.apply(ev("thread.session.start")).after.status == "starting"
    assert p.apply(ev("thread.session.start")).reason == "invalid_in_starting"


def test_superseded_turn_is_finished_and_its_late_events_are_rejected(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    p.apply(ev("turn.started", "A"))
    p.apply(ev("request.opened", "A"))
    assert fields(p.apply(ev("thread.turn.start", "B")).after) == ("running", "A", "B", "approval")
    out = p.apply(ev("turn.started", "B"))
    assert out.kind is APPLIED
    assert fields(out.after) == ("running", "B", None, None)  # A's request died with A
    assert "A" in p.finished_turns("thread-1")
    late = p.apply(ev("turn.completed", "A", state="completed"))
    assert (late.kind, late.reason) == (REJECTED, "turn_finished")
    assert p.apply(ev("turn.started", "A")).reason == "turn_finished"


def test_without_a_request_another_turn_still_cannot_start(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    p.apply(ev("turn.started", "A"))
    out = p.apply(ev("turn.started", "B"))
    assert (out.kind, out.reason) == (REJECTED, "other_turn_active")
    # A request of unknown turn id does not let an arbitrary turn take over either.
    p.apply(ev("thread.turn.start"))
    assert p.apply(ev("turn.started", "B")).reason == "other_turn_active"


def test_a_turn_completing_while_another_is_requested_keeps_the_session_starting(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    p.apply(ev("turn.started", "A"))
    p.apply(ev("thread.turn.start", "B"))
    out = p.apply(ev("turn.completed", "A", state="interrupted"))
    assert fields(out.after) == ("starting", None, "B", None)
    assert fields(p.apply(ev("turn.started", "B")).after) == ("running", "B", None, None)


def test_forgetting_a_thread_drops_it_and_its_memories(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    started = ev("turn.started", "A")
    p.apply(started)
    out = p.apply(ev("thread.delete"))
    assert out.kind is FORGOTTEN
    assert out.to_wire()["kind"] == "forgotten"
    assert "thread-1" not in p and p.get("thread-1") is None
    assert p.finished_turns("thread-1") == () and p.seen_event_digests("thread-1") == ()
    # Its de-duplication memory stays as a tombstone: a redelivery is a duplicate, and the
    # thread stays deleted (docs/reliability.md).
    again = p.apply(started)
    assert (again.kind, again.after.status) == (DUPLICATE, "idle") and "thread-1" not in p


def test_forgetting_a_thread_leaves_the_others(engine: str) -> None:
    p = SessionProjector(engine=engine)  # type: ignore[arg-type]
    one, two = Events("t1"), Events("t2")
    p.apply(one("session.started"))
    p.apply(two("session.started"))
    p.apply(one("thread.delete"))
    assert list(p) == ["t2"]


def test_commands_with_a_bad_payload_change_nothing(engine: str) -> None:
    p, ev = seeded("running", engine=engine, active_turn_id="A"), Events()
    before = p["thread-1"]
    with pytest.raises(Exception) as raised:
        p.apply(ev("thread.session.stop", onlyIfSettled="yes"))
    assert getattr(raised.value, "field", None) == "payload.onlyIfSettled"
    assert p["thread-1"] == before


# -- the rules, over every state reachable within a small universe -------------------------------

def _universe() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for turn in (None, "A", "B"):
        for type_, payloads in (
            ("turn.started", [{}]),
            ("turn.completed", [{"state": "completed"}, {"state": "failed"}]),
            ("session.state.changed", [{"state": "ready"}, {"state": "starting"}]),
            ("session.started", [{}]),
            ("request.opened", [{}]),
            ("user-input.requested", [{}]),
            ("request.resolved", [{}]),
            ("thread.turn.start", [{}]),
            ("thread.session.stop", [{}, {"onlyIfSettled": True}]),
            ("thread.session.start", [{}]),
        ):
            for payload in payloads:
                wire = {"eventId": "e", "type": type_, "provider": "codex", "threadId": "x",
                        "createdAt": "2026-01-01T00:00:00Z", "payload": payload}
                if turn is not None:
                    wire["turnId"] = turn
                events.append(wire)
    return events


def _rule_violations(before: Session, event: dict[str, Any], outcome: Any, finished: tuple[str, ...]) -> list[str]:
    after = outcome.after
    broken = []
    if after.status in SETTLED and (after.pending_turn is not None or after.awaiting is not None):
        broken.append("settled session holds a pending turn or awaits something")
    if before.active_turn_id is not None and after.active_turn_id != before.active_turn_id and after.open_requests:
        broken.append("a request outlived its turn")
    if (after.awaiting is None) != (not after.open_requests):
        broken.append("awaiting disagrees with the open requests")
    if after.awaiting is not None and after.status not in ("starting", "running"):
        broken.append("a session awaits something while settled")
    if event["type"] == "thread.session.stop":
        if before.status in SETTLED and (outcome.kind, after.status) != (APPLIED, "stopped"):
            broken.append("stop on a settled session did not stop it")
        if event["payload"].get("onlyIfSettled") and before.status not in SETTLED and after != before:
            broken.append("onlyIfSettled stopped a running session")
    if before.active_turn_id is not None and after.active_turn_id not in (None, before.active_turn_id) \
            and before.active_turn_id not in finished:
        broken.append("a superseded turn is not remembered as finished")
    if after.active_turn_id is not None and after.active_turn_id in finished:
        broken.append("the active turn is a finished one")
    return broken


def test_rules_hold_on_every_reachable_state(engine: str) -> None:
    universe = _universe()
    start = (Session("x", "idle", "codex"), ())
    seen = {start}
    frontier = deque([start])
    projector = SessionProjector(engine=engine)  # type: ignore[arg-type]
    events = [projector.parse(e) for e in universe]
    while frontier:
        session, finished = frontier.popleft()
        for wire, event in zip(universe, events, strict=True):
            projector.seed(session, finished_turns=finished)
            outcome = projector.apply(event)
            after_finished = projector.finished_turns("x")
            broken = _rule_violations(session, wire, outcome, after_finished)
            assert not broken, (session, wire, outcome.after, broken)
            state = (outcome.after.evolve(updated_at=None), tuple(sorted(after_finished)))
            if state not in seen:
                seen.add(state)
                frontier.append(state)
    assert len(seen) > 50  # the walk reached pending turns, requests and supersessions
    assert any(s.pending_turn == "B" and s.active_turn_id == "A" for s, _ in seen)
    assert any(s.awaiting == "user-input" for s, _ in seen)


# -- operations: pending turns and open requests are work in flight ------------------------------

def test_the_reaper_leaves_pending_turns_and_open_requests_alone() -> None:
    from datetime import UTC, datetime, timedelta

    from statemachine.runtime.operations import reapable

    later = datetime(2027, 1, 1, tzinfo=UTC)
    idle = Session("x", "ready", "codex", updated_at="2026-01-01T00:00:00Z")
    assert reapable(idle, later, threshold=timedelta(minutes=1))
    assert not reapable(idle.evolve(pending_turn=""), later, threshold=timedelta(minutes=1))
    assert not reapable(idle.evolve(awaiting="approval"), later, threshold=timedelta(minutes=1))


def test_stale_expiry_and_reconcile_clear_pending_turns_and_requests(engine: str) -> None:
    from datetime import UTC, datetime, timedelta

    from statemachine.runtime.operations import STALE_PENDING_REASON, expire_stale_turns, reconcile

    p, ev = seeded(engine=engine), Events()
    p.apply(ev("thread.turn.start"))  # starting, no turn yet, pending
    # The sweep's events are dated `later`: it must not be ahead of the wall clock (ingest clock).
    later = datetime.now(UTC)
    (out,) = expire_stale_turns(p, later, timedelta(minutes=5))
    assert fields(out.after) == ("error", None, None, None)
    assert out.after.last_error == STALE_PENDING_REASON
    # A turn with an open request and a newer request, all lost in a restart.
    p.apply(ev("turn.started", "A"))
    p.apply(ev("request.opened", "A"))
    p.apply(ev("thread.turn.start", "B"))
    (out,) = reconcile(p, live_thread_ids=(), now=later)
    assert fields(out.after) == ("error", None, None, None)
    assert "A" in p.finished_turns("thread-1")


def test_a_completion_with_no_active_turn_may_be_the_requested_turn(engine: str) -> None:
    # The requested turn's start was lost: its completion settles the session and the request.
    p, ev = seeded(engine=engine), Events()
    p.apply(ev("thread.turn.start"))
    out = p.apply(ev("turn.completed", "T1", state="completed"))
    assert fields(out.after) == ("ready", None, None, None)
