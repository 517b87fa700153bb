"""Idleness measured on a clock that stands still while the host sleeps, and sessions that need
attention (a requested turn that never started, a session stuck starting)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from statemachine import ActivityClock, SessionProjector, reapable_sessions
from statemachine.runtime.operations import ATTENTION_RECOVERY, needs_attention

T0 = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)


class Host:
    """A host that can be suspended: wall time jumps, the monotonic clock stands still."""

    def __init__(self) -> None:
        self.wall = T0
        self.mono = 1000.0

    def run(self, minutes: float) -> None:
        self.wall += timedelta(minutes=minutes)
        self.mono += minutes * 60

    def sleep(self, hours: float) -> None:
        self.wall += timedelta(hours=hours)

    def monotonic(self) -> float:
        return self.mono


def wire(n: int, type_: str, thread: str, at: datetime, turn: str | None = None, **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"eventId": f"i-{n}", "type": type_, "provider": "codex", "threadId": thread,
                             "createdAt": at.isoformat().replace("+00:00", "Z"), "payload": payload}
    if turn is not None:
        event["turnId"] = turn
    return event


def settled_sessions(host: Host) -> tuple[SessionProjector, ActivityClock]:
    p = SessionProjector(clock=lambda: host.wall)
    activity = ActivityClock(monotonic=host.monotonic, clock=lambda: host.wall)
    p.subscribe(activity)
    for i, thread in enumerate(("a", "b")):
        p.apply(wire(2 * i, "session.started", thread, host.wall))
        p.apply(wire(2 * i + 1, "session.state.changed", thread, host.wall, state="ready"))
    return p, activity


def test_a_suspended_host_does_not_make_every_session_idle() -> None:
    host = Host()
    p, activity = settled_sessions(host)
    host.run(5)
    host.sleep(9)  # the laptop lid closed for the night
    threshold = timedelta(minutes=30)
    # On the wall clock alone, every session looks nine hours idle: all reaped on waking.
    assert len(reapable_sessions(p, host.wall, threshold=threshold)) == 2
    # On the activity clock, the orchestrator ran five minutes since it last heard of them.
    assert reapable_sessions(p, host.wall, threshold=threshold, activity=activity) == []
    host.run(40)  # awake, and really idle now
    assert [s.thread_id for s in reapable_sessions(p, host.wall, threshold=threshold, activity=activity)] == ["a", "b"]


def test_after_a_restart_the_wall_clock_is_the_fallback() -> None:
    host = Host()
    p, _ = settled_sessions(host)
    host.run(45)
    fresh = ActivityClock(monotonic=host.monotonic)  # a new process: no ticks yet
    reaped = reapable_sessions(p, host.wall, threshold=timedelta(minutes=30), activity=fresh)
    assert [s.thread_id for s in reaped] == ["a", "b"]


def test_a_requested_turn_that_never_starts_and_a_stuck_start_need_attention() -> None:
    host = Host()
    p = SessionProjector(clock=lambda: host.wall)
    activity = ActivityClock(monotonic=host.monotonic, clock=lambda: host.wall)
    p.subscribe(activity)
    p.apply(wire(1, "session.started", "queued", host.wall))
    p.apply(wire(2, "session.state.changed", "queued", host.wall, state="ready"))
    p.apply(wire(3, "thread.turn.start", "queued", host.wall, "T1"))
    p.apply(wire(4, "session.state.changed", "stuck", host.wall, state="starting"))
    p.apply(wire(5, "session.started", "fine", host.wall))
    p.apply(wire(6, "turn.started", "fine", host.wall, "T2"))
    bound = timedelta(minutes=5)
    assert needs_attention(p, host.wall, bound, activity=activity) == []
    host.sleep(3)  # sleeping does not count
    assert needs_attention(p, host.wall, bound, activity=activity) == []
    host.run(6)
    found = needs_attention(p, host.wall, bound, activity=activity)
    assert [(a.session.thread_id, a.reason) for a in found] == [
        ("queued", "pending_turn_not_started"), ("stuck", "stuck_starting")]
    assert found[0].waiting == timedelta(minutes=6)
    assert found[0].to_json()["recovery"] == ATTENTION_RECOVERY["pending_turn_not_started"]
    with pytest.raises(ValueError, match="bound must be positive"):
        needs_attention(p, host.wall, timedelta(0))


def test_the_attention_watch_tells_each_new_case_once() -> None:
    from statemachine.runtime.operations import AttentionWatch

    host = Host()
    p = SessionProjector(clock=lambda: host.wall)
    activity = ActivityClock(monotonic=host.monotonic, clock=lambda: host.wall)
    p.subscribe(activity)
    p.apply(wire(1, "session.state.changed", "s", host.wall, state="starting"))
    watch = AttentionWatch(p, timedelta(minutes=5), activity=activity)
    told: list[str] = []
    watch.subscribe(lambda a: told.append(f"{a.session.thread_id}:{a.reason}"))
    host.run(6)
    assert len(watch.sweep(host.wall)) == 1 and told == ["s:stuck_starting"]
    host.run(1)
    assert len(watch.sweep(host.wall)) == 1 and told == ["s:stuck_starting"]  # still stuck: not told again
    p.apply(wire(2, "session.state.changed", "s", host.wall, state="ready"))
    assert watch.sweep(host.wall) == []
    p.apply(wire(3, "session.state.changed", "s", host.wall, state="starting"))
    host.run(6)
    watch.sweep(host.wall)
    assert told == ["s:stuck_starting", "s:stuck_starting"]  # recovered, then stuck again
