"""createdAt may run ahead of the ingest clock only so far: one event dated in the year 9999 can no
longer pin `updatedAt` or the activity clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from statemachine import ActivityClock, SessionProjector, reapable_sessions, stale_turns
from statemachine.cli.main import main

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def wire(event_id: str, type_: str, created_at: str, turn: str | None = None, **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"eventId": event_id, "type": type_, "provider": "codex", "threadId": "t1",
                             "createdAt": created_at, "payload": payload}
    if turn is not None:
        event["turnId"] = turn
    return event


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return self.now


def test_an_event_from_the_far_future_is_rejected_and_cannot_pin_updated_at() -> None:
    p = SessionProjector(clock=FakeClock(NOW))
    p.apply(wire("e1", "session.started", iso(NOW)))
    before = p["t1"]
    outcome = p.apply(wire("e2", "session.state.changed", "9999-12-31T23:59:59Z", state="ready"))
    assert (outcome.kind, outcome.reason) == ("rejected", "created_in_future")
    assert p["t1"] == before and outcome.after == before
    assert p.has_seen("t1", "e2")  # remembered like any rejection
    assert p.apply(wire("e2", "session.state.changed", iso(NOW), state="ready")).kind == "duplicate"
    # the thread stays reapable: its clock was never pinned
    assert [s.thread_id for s in reapable_sessions(p, NOW + timedelta(hours=1))] == ["t1"]


def test_the_default_bound_is_one_day_ahead_of_the_clock() -> None:
    p = SessionProjector(clock=FakeClock(NOW))
    assert p.max_clock_skew == timedelta(days=1)
    assert p.apply(wire("e1", "session.started", iso(NOW + timedelta(days=1)))).kind == "applied"
    late = p.apply(wire("e2", "runtime.warning", iso(NOW + timedelta(days=1, seconds=1)), message="w"))
    assert (late.kind, late.reason) == ("rejected", "created_in_future")


def test_the_bound_is_configurable_and_can_be_lifted() -> None:
    tight = SessionProjector(max_clock_skew=timedelta(seconds=5), clock=FakeClock(NOW))
    assert tight.apply(wire("e1", "session.started", iso(NOW + timedelta(seconds=6)))).reason == "created_in_future"
    assert tight.apply(wire("e2", "session.started", iso(NOW + timedelta(seconds=5)))).kind == "applied"
    free = SessionProjector(max_clock_skew=None)
    assert free.apply(wire("e1", "session.started", "9999-12-31T23:59:59-14:00")).kind == "applied"
    with pytest.raises(ValueError):
        SessionProjector(max_clock_skew=timedelta(seconds=-1))


def test_the_clock_is_read_only_past_the_last_horizon_and_follows_it() -> None:
    clock = FakeClock(NOW)
    p = SessionProjector(max_clock_skew=timedelta(minutes=1), clock=clock)
    for i in range(100):
        p.apply(wire(f"e{i}", "runtime.warning", iso(NOW - timedelta(seconds=i)), message="w"))
    assert clock.reads == 1  # one comparison per event on the hot path
    ahead = iso(NOW + timedelta(minutes=30))
    assert p.apply(wire("x1", "session.started", ahead)).reason == "created_in_future"
    clock.now = NOW + timedelta(minutes=29, seconds=30)  # time passes: the same date is now close enough
    assert p.apply(wire("x2", "session.started", ahead)).kind == "applied"


def test_the_activity_clock_follows_the_same_rule() -> None:
    p = SessionProjector(max_clock_skew=None)  # the projector lets everything in ...
    activity = ActivityClock(clock=FakeClock(NOW))  # ... the activity clock still bounds it
    p.subscribe(activity)
    p.apply(wire("e1", "turn.started", iso(NOW - timedelta(hours=1)), "T1"))
    p.apply(wire("e2", "content.delta", "9999-01-01T00:00:00Z", delta="..."))
    assert activity.last_seen["t1"] == NOW - timedelta(hours=1)
    later = NOW + timedelta(minutes=10)
    assert [s.thread_id for s in stale_turns(p, later, timedelta(minutes=30), last_seen=activity.last_seen)] == ["t1"]
    unbounded = ActivityClock(max_clock_skew=None)
    unbounded(p.apply(wire("e3", "content.delta", "9999-01-01T00:00:00Z", delta="...")))
    assert unbounded.last_seen["t1"].year == 9999


def test_replay_takes_a_max_clock_skew(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "future.jsonl"
    log.write_text(json.dumps(wire("e1", "session.started", "9999-01-01T00:00:00Z")) + "\n")
    assert main(["replay", "--json", str(log)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["outcomes"]["rejected"] == 1 and data["rejected"][0]["reason"] == "created_in_future"
    assert main(["replay", "--json", "--max-clock-skew", "none", str(log)]) == 0
    assert json.loads(capsys.readouterr().out)["outcomes"]["applied"] == 1
    for bad in ("3000000d", "soon", "-1h", "nan"):
        with pytest.raises(SystemExit) as exit_info:
            main(["replay", "--json", "--max-clock-skew", bad, str(log)])
        assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "not a duration" in err and "Traceback" not in err
    assert main(["replay", "--json", "--max-clock-skew", "12h", str(log)]) == 0
    assert json.loads(capsys.readouterr().out)["outcomes"]["rejected"] == 1
