"""Reference part B, rule by rule: the target semantics of this project.

Every test states the outcome kind, the rejection reason where there is one, and the session
fields after the event. Expected reasons are the spec's names: a guard's `rejects_as`, or
`invalid_in_<status>` when no transition leaves the status. Both engines run every rule.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from helpers import Events, memory, seeded, stamp, triple

from statemachine import Event, EventError, Outcome, OutcomeKind, Session, SessionProjector, builtin_spec
from statemachine.core.record import event_digest_hex

APPLIED, IGNORED = OutcomeKind.APPLIED, OutcomeKind.IGNORED
DUPLICATE, REJECTED = OutcomeKind.DUPLICATE, OutcomeKind.REJECTED
NO_TURN_STATUSES = ("idle", "ready", "interrupted", "stopped", "error")
RUNTIME_STATES = ("starting", "ready", "running", "waiting", "stopped", "error")


def rejects_as(guard: str) -> str:
    """The reason the spec gives when `guard` is the one that failed."""
    return builtin_spec().guards[guard].rejects_as


@pytest.fixture(params=["compiled", "transitions"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def holds_invariant(projector: SessionProjector) -> bool:
    return all(s.active_turn_id is None for s in projector.sessions().values() if s.status in NO_TURN_STATUSES)


def running(engine: str, turn: str = "T1", last_error: str | None = None) -> SessionProjector:
    return seeded("running", engine=engine, active_turn_id=turn, last_error=last_error)


def assert_rejected_unchanged(projector: SessionProjector, event: dict[str, Any], reason: str) -> Outcome:
    """The event is rejected for `reason`; only its eventId is added to the thread's memory."""
    tid = event["threadId"]
    before = memory(projector)
    outcome = projector.apply(event)
    assert outcome.kind is REJECTED
    assert outcome.reason == reason
    assert outcome.after == outcome.before
    after = memory(projector)
    session, seen, finished = before[tid]
    assert after[tid] == (session, (*seen, event_digest_hex(event["eventId"])), finished)
    assert {k: v for k, v in after.items() if k != tid} == {k: v for k, v in before.items() if k != tid}
    return outcome


# -- the invariant ---------------------------------------------------------------------------------


def test_invariant_holds_through_every_event_valid_or_not(engine: str) -> None:
    # A long pseudo-random walk over every lifecycle type, unknown types, redeliveries, unknown
    # and finished turn ids, backward timestamps and malformed input, on two threads.
    rng = random.Random(20261120)
    p = SessionProjector(engine=engine)  # type: ignore[arg-type]
    threads = {"a": Events("a"), "b": Events("b")}
    sent: list[dict[str, Any]] = []
    payloads: dict[str, list[dict[str, Any]]] = {
        "session.started": [{}],
        "thread.started": [{}],
        "session.state.changed": [{"state": s} for s in RUNTIME_STATES] + [{"state": "error", "reason": "r"}],
        "session.exited": [{}, {"exitKind": "error"}],
        "turn.started": [{}],
        "turn.completed": [{}, *({"state": s} for s in ("completed", "failed", "interrupted", "cancelled"))],
        "turn.aborted": [{"reason": "user"}],
        "runtime.error": [{"message": "boom"}],
        "runtime.warning": [{"message": "slow"}],
        "item.started": [{}],
    }
    for _ in range(3000):
        roll = rng.random()
        if roll < 0.1 and sent:
            event = rng.choice(sent)
        elif roll < 0.15:
            event = {"eventId": "bad", "type": "session.state.changed", "provider": "codex",
                     "threadId": rng.choice("ab"), "createdAt": stamp(0), "payload": {"state": "paused"}}
        else:
            type_ = rng.choice(sorted(payloads))
            turn = rng.choice([None, "T1", "T2", "T3", "T4"])
            created = stamp(rng.randrange(0, 5000))
            event = threads[rng.choice("ab")](type_, turn, created_at=created, **rng.choice(payloads[type_]))
            sent.append(event)
        try:
            outcome = p.apply(event)
        except EventError:
            continue
        assert holds_invariant(p), (event, outcome)
        if outcome.after.active_turn_id is not None:
            assert outcome.after.active_turn_id not in p.finished_turns(event["threadId"])


# -- per event: part A's table as part B amends it --------------------------------------------------

# (seed status, seed turn, seed lastError, event type, turn, payload, expected outcome triple)
TABLE: list[tuple[str, str | None, str | None, str, str | None, dict[str, Any], tuple[str, str | None, str | None]]] = [
    ("running", "T", "e", "session.started", None, {}, ("running", "T", "e")),
    ("ready", None, "e", "session.started", None, {}, ("ready", None, None)),
    ("error", None, "e", "session.started", None, {}, ("ready", None, None)),
    ("running", "T", "e", "thread.started", None, {}, ("running", "T", "e")),
    ("error", None, "e", "thread.started", None, {}, ("ready", None, None)),
    ("ready", None, "e", "session.state.changed", None, {"state": "starting"}, ("starting", None, "e")),
    ("running", "T", "e", "session.state.changed", None, {"state": "starting"}, ("starting", "T", "e")),
    ("starting", "T", "e", "session.state.changed", None, {"state": "running"}, ("running", "T", "e")),
    ("running", "T", "e", "session.state.changed", None, {"state": "waiting"}, ("running", "T", "e")),
    ("running", "T", "e", "session.state.changed", None, {"state": "ready"}, ("ready", None, None)),
    ("running", "T", "e", "session.state.changed", None, {"state": "stopped"}, ("stopped", None, "e")),
    ("running", "T", "old", "session.state.changed", None, {"state": "error", "reason": "why"}, ("error", None, "why")),
    ("running", "T", "old", "session.state.changed", None, {"state": "error"}, ("error", None, "old")),
    ("running", "T", None, "session.state.changed", None, {"state": "error"},
     ("error", None, "Provider session error")),
    ("running", "T", "e", "session.exited", None, {"exitKind": "graceful"}, ("stopped", None, "e")),
    ("ready", None, "e", "turn.started", "T", {}, ("running", "T", "e")),
    ("running", "T", "old", "turn.completed", "T", {"state": "failed", "errorMessage": "m"}, ("error", None, "m")),
    ("running", "T", "old", "turn.completed", "T", {"state": "failed"}, ("error", None, "old")),
    ("running", "T", None, "turn.completed", "T", {"state": "failed"}, ("error", None, "Turn failed")),
    ("running", "T", "e", "turn.completed", "T", {"state": "completed"}, ("ready", None, None)),
    ("running", "T", "old", "runtime.error", "T", {"message": "m"}, ("error", None, "m")),
    ("ready", None, None, "runtime.error", None, {"message": "m"}, ("error", None, "m")),
]


@pytest.mark.parametrize(("status", "turn", "error", "type_", "event_turn", "payload", "expected"), TABLE)
def test_per_event_table(
    engine: str,
    status: str,
    turn: str | None,
    error: str | None,
    type_: str,
    event_turn: str | None,
    payload: dict[str, Any],
    expected: tuple[str, str | None, str | None],
) -> None:
    p = seeded(status, engine=engine, active_turn_id=turn, last_error=error)
    outcome = p.apply(Events()(type_, event_turn, **payload))
    assert outcome.kind is APPLIED, outcome.reason
    assert triple(outcome.after) == triple(p.get("thread-1")) == expected
    assert outcome.after.provider_name == "codex"


@pytest.mark.parametrize("type_", ["runtime.warning", "item.started", "content.delta", "session.configured",
                                   "thread.state.changed", "request.denied", "task.started"])
def test_other_event_types_are_ignored_and_change_nothing(engine: str, type_: str) -> None:
    p = running(engine, last_error="e")
    before = p.get("thread-1")
    outcome = p.apply(Events()(type_, "T1", message="m", state="stopped"))
    assert outcome.kind is IGNORED
    assert outcome.reason is None
    assert p.get("thread-1") == before == outcome.after


# -- runtime.error ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["T1", None])
def test_runtime_error_clears_the_active_turn(engine: str, target: str | None) -> None:
    p = running(engine)
    ev = Events()
    outcome = p.apply(ev("runtime.error", target, message="boom"))
    assert outcome.kind is APPLIED
    assert triple(p.get("thread-1")) == ("error", None, "boom")
    # The cleared turn is finished: it cannot come back.
    assert "T1" in p.finished_turns("thread-1")
    assert_rejected_unchanged(p, ev("turn.started", "T1"), rejects_as("turn_not_finished"))


def test_runtime_error_for_another_turn_is_rejected(engine: str) -> None:
    assert_rejected_unchanged(running(engine), Events()("runtime.error", "T2", message="boom"),
                              rejects_as("turn_matches"))


def test_an_event_built_by_hand_is_checked_like_a_wire_event(engine: str) -> None:
    p = SessionProjector(engine=engine)
    forged = Event("e1", "turn.started", "codex", "thread-1", "not a time", "T1", trigger="turn.started")
    with pytest.raises(EventError) as err:
        p.apply(forged)
    assert err.value.field == "createdAt"
    assert len(p) == 0
    # A trigger set by hand is recomputed from the payload, never trusted.
    lying = Event("e2", "turn.completed", "codex", "thread-1", "2026-11-20T10:00:00Z", "T1",
                  payload={"state": "completed"}, trigger="turn.completed[failed]")
    outcome = p.apply(lying)
    assert outcome.event.trigger == "turn.completed[completed]"
    assert triple(p.get("thread-1")) == ("ready", None, None)


def test_late_runtime_error_for_a_finished_turn_is_rejected(engine: str) -> None:
    # A settled session must not become `error` through late news about a turn already over.
    p = running(engine)
    ev = Events()
    p.apply(ev("turn.completed", "T1", state="completed"))
    assert triple(p.get("thread-1")) == ("ready", None, None)
    assert_rejected_unchanged(p, ev("runtime.error", "T1", message="late"), rejects_as("turn_not_finished"))


def test_error_is_not_terminal_a_new_turn_may_start(engine: str) -> None:
    p = running(engine)
    ev = Events()
    p.apply(ev("runtime.error", "T1", message="boom"))
    outcome = p.apply(ev("turn.started", "T2"))
    assert outcome.kind is APPLIED
    assert triple(p.get("thread-1")) == ("running", "T2", "boom")


# -- de-duplication --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (("turn.started", "T2", {}), APPLIED),
        (("item.started", "T2", {}), IGNORED),
        (("turn.completed", None, {}), REJECTED),
    ],
    ids=["applied", "ignored", "rejected"],
)
def test_a_second_delivery_is_a_duplicate_whatever_the_first_outcome(
    engine: str, first: tuple[str, str | None, dict[str, Any]], kind: OutcomeKind
) -> None:
    p = seeded(engine=engine)
    ev = Events()
    type_, turn, payload = first
    event = ev(type_, turn, **payload)
    assert p.apply(event).kind is kind
    before = memory(p)
    again = p.apply(event)
    assert again.kind is DUPLICATE
    assert again.reason is None
    assert again.after == again.before == before["thread-1"][0]
    assert memory(p) == before


def test_duplicate_is_by_event_id_not_by_content(engine: str) -> None:
    # A redelivery may be re-serialized differently (later timestamp, other payload): the id decides.
    p = seeded(engine=engine)
    ev = Events()
    p.apply(ev("turn.started", "T1", event_id="e1"))
    before = memory(p)
    outcome = p.apply(ev("turn.completed", "T1", event_id="e1", created_at=stamp(999), state="failed"))
    assert outcome.kind is DUPLICATE
    assert memory(p) == before
    assert p.get("thread-1").updated_at == stamp(1)  # type: ignore[union-attr]


def test_de_duplication_is_per_thread(engine: str) -> None:
    p = SessionProjector(engine=engine)  # type: ignore[arg-type]
    a, b = Events("a"), Events("b")
    assert p.apply(a("turn.started", "T1", event_id="same")).kind is APPLIED
    outcome = p.apply(b("turn.started", "T1", event_id="same"))
    assert outcome.kind is APPLIED
    assert triple(p.get("b")) == ("running", "T1", None)
    assert p.apply(b("turn.started", "T1", event_id="same")).kind is DUPLICATE


def test_de_duplication_memory_is_bounded(engine: str) -> None:
    p = SessionProjector(engine=engine, max_event_ids=8, max_finished_turns=4)  # type: ignore[arg-type]
    ev = Events()
    for i in range(50):
        p.apply(ev("turn.started", f"T{i}"))
        completed = ev("turn.completed", f"T{i}")
        p.apply(completed)
    assert p.seen_count("thread-1") <= 8
    assert len(p.finished_turns("thread-1")) <= 4
    # The most recent ids are still recognized.
    last = ev("turn.completed", "T49", event_id=completed["eventId"])
    assert p.apply(last).kind is DUPLICATE


def _mixed_log(rng: random.Random, n: int) -> list[dict[str, Any]]:
    threads = [Events("a", "codex"), Events("b", "claudeAgent")]
    shapes: list[tuple[str, dict[str, Any]]] = [
        ("session.started", {}), ("thread.started", {}), ("session.state.changed", {"state": "ready"}),
        ("session.state.changed", {"state": "waiting"}), ("session.state.changed", {"state": "stopped"}),
        ("session.state.changed", {"state": "error", "reason": "crash"}), ("session.exited", {}),
        ("turn.started", {}), ("turn.started", {}), ("turn.completed", {}), ("turn.completed", {"state": "failed"}),
        ("turn.completed", {"state": "interrupted"}), ("turn.aborted", {"reason": "user"}),
        ("runtime.error", {"message": "boom"}), ("item.started", {}),
    ]
    log = []
    for _ in range(n):
        type_, payload = rng.choice(shapes)
        turn = rng.choice([None, "T1", "T2", "T3"])
        log.append(rng.choice(threads)(type_, turn, created_at=stamp(rng.randrange(1000)), **payload))
    return log


def test_replaying_with_redeliveries_equals_replaying_without(engine: str) -> None:
    rng = random.Random(7)
    log = _mixed_log(rng, 400)
    with_redeliveries = list(log)
    for _ in range(200):
        # Redeliver an event at some later point: byte-identical, as a retrying transport would.
        k = rng.randrange(len(log))
        original = log[k]
        position = with_redeliveries.index(original) + 1 + rng.randrange(len(with_redeliveries) // 4 + 1)
        with_redeliveries.insert(min(position, len(with_redeliveries)), dict(original))
    clean = SessionProjector(engine=engine)  # type: ignore[arg-type]
    noisy = SessionProjector(engine=engine)  # type: ignore[arg-type]
    clean_outcomes = [(o.kind, o.reason, o.after) for o in map(clean.apply, log)]
    noisy_outcomes = [(o.kind, o.reason, o.after) for o in map(noisy.apply, with_redeliveries)]
    assert sum(k is DUPLICATE for k, _, _ in noisy_outcomes) == 200
    assert [o for o in noisy_outcomes if o[0] is not DUPLICATE] == clean_outcomes
    assert memory(noisy) == memory(clean)
    assert {k for k, _, _ in clean_outcomes} >= {APPLIED, IGNORED, REJECTED}


# -- turn.started ----------------------------------------------------------------------------------


def test_untargeted_turn_started_without_an_active_turn_runs_with_no_turn(engine: str) -> None:
    p = seeded(engine=engine)
    outcome = p.apply(Events()("turn.started"))
    assert outcome.kind is APPLIED
    assert triple(p.get("thread-1")) == ("running", None, None)


def test_untargeted_turn_started_while_a_turn_is_active_is_rejected(engine: str) -> None:
    assert_rejected_unchanged(running(engine), Events()("turn.started"), rejects_as("no_active_turn"))


def test_turn_started_for_another_turn_while_one_is_active_is_rejected(engine: str) -> None:
    assert_rejected_unchanged(running(engine), Events()("turn.started", "T2"), rejects_as("turn_matches"))


def test_targeted_turn_started_after_an_untargeted_one_takes_the_turn(engine: str) -> None:
    p = seeded(engine=engine)
    ev = Events()
    p.apply(ev("turn.started"))
    assert p.apply(ev("turn.started", "T1")).kind is APPLIED
    assert triple(p.get("thread-1")) == ("running", "T1", None)


# -- turn.aborted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["T1", None], ids=["names-active", "names-none"])
def test_turn_aborted_for_the_active_turn_settles_as_interrupted(engine: str, target: str | None) -> None:
    p = running(engine, last_error="old")
    outcome = p.apply(Events()("turn.aborted", target, reason="user interrupted"))
    assert outcome.kind is APPLIED
    assert triple(p.get("thread-1")) == ("interrupted", None, None)
    assert "T1" in p.finished_turns("thread-1")


def test_turn_aborted_for_another_turn_is_rejected(engine: str) -> None:
    assert_rejected_unchanged(running(engine), Events()("turn.aborted", "T2", reason="x"), rejects_as("turn_matches"))


@pytest.mark.parametrize("target", ["T1", None])
def test_turn_aborted_while_running_without_a_turn_is_rejected(engine: str, target: str | None) -> None:
    p = seeded("running", engine=engine)
    assert_rejected_unchanged(p, Events()("turn.aborted", target, reason="x"), rejects_as("has_active_turn"))


@pytest.mark.parametrize("status", ["idle", "ready", "interrupted", "error"])
@pytest.mark.parametrize("target", ["T1", None])
def test_turn_aborted_with_no_turn_active_is_rejected(engine: str, status: str, target: str | None) -> None:
    p = seeded(status, engine=engine)
    assert_rejected_unchanged(p, Events()("turn.aborted", target, reason="x"), f"invalid_in_{status}")


# -- remembered turns ------------------------------------------------------------------------------


def _finish(p: SessionProjector, ev: Events, how: str) -> None:
    """Finish T1 (active on a running session) in one of the ways part B names."""
    events = {
        "completed": [ev("turn.completed", "T1")],
        "failed": [ev("turn.completed", "T1", state="failed")],
        "interrupted": [ev("turn.completed", "T1", state="interrupted")],
        "aborted": [ev("turn.aborted", "T1", reason="user")],
        "cleared-by-ready": [ev("session.state.changed", state="ready")],
        "cleared-by-runtime-error": [ev("runtime.error", message="boom")],
        "cleared-by-exit": [ev("session.exited"), ev("session.started")],
    }[how]
    for event in events:
        assert p.apply(event).kind is APPLIED
    assert p.get("thread-1").active_turn_id is None  # type: ignore[union-attr]


HOW = ["completed", "failed", "interrupted", "aborted", "cleared-by-ready", "cleared-by-runtime-error",
       "cleared-by-exit"]


@pytest.mark.parametrize("how", HOW)
def test_late_turn_started_for_a_finished_turn_is_rejected(engine: str, how: str) -> None:
    p, ev = running(engine), Events()
    _finish(p, ev, how)
    assert "T1" in p.finished_turns("thread-1")
    assert_rejected_unchanged(p, ev("turn.started", "T1"), rejects_as("turn_not_finished"))


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("state", ["completed", "failed", "interrupted", "cancelled"])
def test_late_turn_completed_for_a_finished_turn_is_rejected(engine: str, how: str, state: str) -> None:
    p, ev = running(engine), Events()
    _finish(p, ev, how)
    assert_rejected_unchanged(p, ev("turn.completed", "T1", state=state), rejects_as("turn_not_finished"))


def test_late_completion_cannot_wipe_a_newer_error(engine: str) -> None:
    p, ev = running(engine), Events()
    completion = ev("turn.completed", "T1")
    p.apply(completion)
    p.apply(ev("session.state.changed", state="error", reason="provider crashed"))
    assert_rejected_unchanged(p, ev("turn.completed", "T1"), rejects_as("turn_not_finished"))
    assert p.apply(completion).kind is DUPLICATE
    assert triple(p.get("thread-1")) == ("error", None, "provider crashed")


def test_completion_before_start_does_not_leave_the_thread_running(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    assert p.apply(ev("turn.completed", "T1")).kind is APPLIED
    assert_rejected_unchanged(p, ev("turn.started", "T1"), rejects_as("turn_not_finished"))
    assert triple(p.get("thread-1")) == ("ready", None, None)


# -- interrupted -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "target", "payload"),
    [
        ("turn.completed", "T1", {"state": "interrupted"}),
        ("turn.completed", "T1", {"state": "cancelled"}),
        ("turn.aborted", "T1", {"reason": "user"}),
        ("turn.aborted", None, {"reason": "user"}),
    ],
)
def test_interrupted_cancelled_and_aborted_settle_as_interrupted(
    engine: str, type_: str, target: str | None, payload: dict[str, Any]
) -> None:
    p = running(engine, last_error="stale")
    outcome = p.apply(Events()(type_, target, **payload))
    assert outcome.kind is APPLIED
    assert triple(p.get("thread-1")) == ("interrupted", None, None)


# -- stopped ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "payload", "status"),
    [("session.started", {}, "ready"), ("thread.started", {}, "ready")]
    + [("session.state.changed", {"state": s}, "running" if s == "waiting" else s) for s in RUNTIME_STATES],
)
def test_stopped_is_left_by_session_level_events(engine: str, type_: str, payload: dict[str, Any],
                                                  status: str) -> None:
    p = seeded("stopped", engine=engine)
    outcome = p.apply(Events()(type_, **payload))
    assert outcome.kind is APPLIED
    assert p.get("thread-1").status == status  # type: ignore[union-attr]
    assert p.get("thread-1").active_turn_id is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("type_", "target", "payload"),
    [
        ("turn.started", "T1", {}),
        ("turn.started", None, {}),
        *(("turn.completed", "T1", {"state": s}) for s in ("completed", "failed", "interrupted", "cancelled")),
        ("turn.completed", None, {}),
        ("turn.aborted", "T1", {"reason": "x"}),
        ("turn.aborted", None, {"reason": "x"}),
        ("runtime.error", "T1", {"message": "m"}),
        ("runtime.error", None, {"message": "m"}),
    ],
)
def test_turn_events_and_runtime_errors_are_rejected_on_stopped(
    engine: str, type_: str, target: str | None, payload: dict[str, Any]
) -> None:
    p = seeded("stopped", engine=engine, last_error="gone")
    assert_rejected_unchanged(p, Events()(type_, target, **payload), "invalid_in_stopped")


def test_session_exited_keeps_a_stopped_session_stopped(engine: str) -> None:
    p = seeded("stopped", engine=engine, last_error="gone")
    p.apply(Events()("session.exited"))
    assert triple(p.get("thread-1")) == ("stopped", None, "gone")


def test_late_completion_does_not_revive_a_stopped_session(engine: str) -> None:
    p, ev = running(engine), Events()
    p.apply(ev("session.exited"))
    assert_rejected_unchanged(p, ev("turn.completed", "T1"), "invalid_in_stopped")
    assert p.get("thread-1").status == "stopped"  # type: ignore[union-attr]


# -- updatedAt -------------------------------------------------------------------------------------


def test_updated_at_is_the_latest_created_at_of_applied_events(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    p.apply(ev("turn.started", "T1", created_at=stamp(10)))
    assert p.get("thread-1").updated_at == stamp(10)  # type: ignore[union-attr]
    # An older event still applies, but the clock does not go back.
    outcome = p.apply(ev("session.state.changed", created_at=stamp(5), state="ready"))
    assert outcome.kind is APPLIED
    assert triple(outcome.after) == ("ready", None, None)
    assert outcome.after.updated_at == stamp(10)
    p.apply(ev("turn.started", "T2", created_at=stamp(20)))
    assert p.get("thread-1").updated_at == stamp(20)  # type: ignore[union-attr]


def test_updated_at_compares_instants_not_strings(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    p.apply(ev("session.started", created_at="2026-11-20T10:00:00Z"))
    # 11:30+02:00 is 09:30Z: earlier, although its text sorts later.
    p.apply(ev("thread.started", created_at="2026-11-20T11:30:00+02:00"))
    assert p.get("thread-1").updated_at == "2026-11-20T10:00:00Z"  # type: ignore[union-attr]
    # 12:30+02:00 is 10:30Z: later.
    p.apply(ev("thread.started", created_at="2026-11-20T12:30:00+02:00"))
    assert p.get("thread-1").updated_at == "2026-11-20T12:30:00+02:00"  # type: ignore[union-attr]


def test_updated_at_moves_only_on_applied_events(engine: str) -> None:
    p = running(engine)
    p.apply(Events()("turn.started", "T1", created_at=stamp(1)))
    ev = Events()
    for event in [ev("item.started", created_at=stamp(100)), ev("turn.started", "T2", created_at=stamp(100))]:
        p.apply(event)
        p.apply(event)
    assert p.get("thread-1").updated_at == stamp(1)  # type: ignore[union-attr]


# -- a new thread ----------------------------------------------------------------------------------


def test_a_new_thread_starts_idle_with_no_turn(engine: str) -> None:
    p = SessionProjector(engine=engine)  # type: ignore[arg-type]
    outcome = p.apply(Events("fresh")("turn.started", "T1"))
    assert triple(outcome.before) == ("idle", None, None)
    assert outcome.before.updated_at is None
    assert triple(outcome.after) == ("running", "T1", None)


@pytest.mark.parametrize(("type_", "kind"), [("item.started", IGNORED), ("turn.completed", REJECTED)])
def test_a_new_thread_is_created_on_its_first_event_whatever_its_outcome(
    engine: str, type_: str, kind: OutcomeKind
) -> None:
    p = SessionProjector(engine=engine)  # type: ignore[arg-type]
    outcome = p.apply(Events("fresh")(type_))
    assert outcome.kind is kind
    assert "fresh" in p
    assert triple(p.get("fresh")) == ("idle", None, None)
    assert p.get("fresh").updated_at is None  # type: ignore[union-attr]


# -- payload defaults and enums --------------------------------------------------------------------


@pytest.mark.parametrize("payload", [{}, {"state": None}, None], ids=["no-state", "null-state", "no-payload"])
def test_turn_completed_without_a_state_counts_as_completed(engine: str, payload: dict[str, Any] | None) -> None:
    p = running(engine, last_error="old")
    event = Events()("turn.completed", "T1")
    if payload is None:
        del event["payload"]
    else:
        event["payload"] = payload
    outcome = p.apply(event)
    assert outcome.kind is APPLIED
    assert triple(p.get("thread-1")) == ("ready", None, None)


@pytest.mark.parametrize(("state", "status"), [(s, "running" if s == "waiting" else s) for s in RUNTIME_STATES])
def test_session_state_changed_takes_the_six_runtime_states(engine: str, state: str, status: str) -> None:
    p = seeded(engine=engine)
    assert p.apply(Events()("session.state.changed", state=state)).kind is APPLIED
    assert p.get("thread-1").status == status  # type: ignore[union-attr]


@pytest.mark.parametrize("state", ["paused", "idle", "interrupted", "READY", "", 3, None])
def test_session_state_changed_with_any_other_state_is_malformed(engine: str, state: Any) -> None:
    p = seeded(engine=engine)
    before = memory(p)
    with pytest.raises(EventError) as caught:
        p.apply(Events()("session.state.changed", state=state))
    assert caught.value.field == "payload.state"
    assert memory(p) == before


# -- every event gets an outcome -------------------------------------------------------------------


def test_every_event_gets_exactly_one_outcome(engine: str) -> None:
    p = SessionProjector(engine=engine)  # type: ignore[arg-type]
    log = _mixed_log(random.Random(3), 300)
    log += log[:50]
    log.append(Events("a", "codex")("thread.delete"))  # the one outcome that drops its thread
    reasons = {g.rejects_as for g in builtin_spec().guards.values()}
    reasons |= {f"invalid_in_{s}" for s in builtin_spec().status_names}
    kinds = set()
    for event in log:
        outcome = p.apply(event)
        assert isinstance(outcome, Outcome)
        assert outcome.event.event_id == event["eventId"]
        kinds.add(outcome.kind)
        if outcome.kind is REJECTED:
            assert outcome.reason in reasons
        else:
            assert outcome.reason is None
        if outcome.kind not in (APPLIED, OutcomeKind.FORGOTTEN):
            assert outcome.after == outcome.before
    assert kinds == set(OutcomeKind) - {OutcomeKind.DEFERRED}  # deferred needs an observer


# -- malformed input -------------------------------------------------------------------------------

DROP = object()

# (the field EventError must name, event type, turnId, changes: envelope key or "payload.<key>")
MALFORMED: list[tuple[str, str, str | None, dict[str, Any]]] = [
    ("eventId", "turn.started", "T2", {"eventId": DROP}),
    ("eventId", "turn.started", "T2", {"eventId": 7}),
    ("eventId", "turn.started", "T2", {"eventId": ""}),
    ("eventId", "turn.started", "T2", {"eventId": None}),
    ("type", "turn.started", "T2", {"type": DROP}),
    ("type", "turn.started", "T2", {"type": ""}),
    ("type", "turn.started", "T2", {"type": ["turn.started"]}),
    ("provider", "turn.started", "T2", {"provider": DROP}),
    ("provider", "turn.started", "T2", {"provider": 1}),
    ("threadId", "turn.started", "T2", {"threadId": DROP}),
    ("threadId", "turn.started", "T2", {"threadId": ""}),
    ("threadId", "turn.started", "T2", {"threadId": {"id": 1}}),
    ("createdAt", "turn.started", "T2", {"createdAt": DROP}),
    ("createdAt", "turn.started", "T2", {"createdAt": "yesterday"}),
    ("createdAt", "turn.started", "T2", {"createdAt": 1764000000}),
    ("createdAt", "turn.started", "T2", {"createdAt": "2026-13-01T00:00:00Z"}),
    ("turnId", "turn.completed", "T1", {"turnId": 5}),
    ("turnId", "turn.completed", "T1", {"turnId": ""}),
    ("turnId", "turn.completed", "T1", {"turnId": True}),
    ("payload", "turn.completed", "T1", {"payload": "completed"}),
    ("payload", "turn.completed", "T1", {"payload": [1]}),
    ("payload", "item.started", None, {"payload": 3}),
    ("payload.state", "session.state.changed", None, {"payload.state": DROP}),
    ("payload.state", "session.state.changed", None, {"payload.state": "paused"}),
    ("payload.state", "turn.completed", "T1", {"payload.state": "done"}),
    ("payload.state", "turn.completed", "T1", {"payload.state": 1}),
    ("payload.reason", "turn.aborted", "T1", {"payload.reason": DROP}),
    ("payload.reason", "turn.aborted", "T1", {"payload.reason": 5}),
    ("payload.message", "runtime.error", "T1", {"payload.message": DROP}),
    ("payload.message", "runtime.error", "T1", {"payload.message": None}),
    ("payload.message", "runtime.error", "T1", {"payload.message": {"text": "x"}}),
    ("payload.errorMessage", "turn.completed", "T1", {"payload.state": "failed", "payload.errorMessage": 5}),
    ("payload.recoverable", "session.exited", None, {"payload.recoverable": "no"}),
    ("payload.exitKind", "session.exited", None, {"payload.exitKind": "crash"}),
    ("payload.message", "session.started", None, {"payload.message": 1}),
    ("payload.providerThreadId", "thread.started", None, {"payload.providerThreadId": 1}),
    ("payload.model", "turn.started", "T2", {"payload.model": 1}),
]

BASE_PAYLOADS: dict[str, dict[str, Any]] = {
    "session.state.changed": {"state": "ready"},
    "turn.aborted": {"reason": "user"},
    "runtime.error": {"message": "boom"},
}


def _broken(ev: Events, type_: str, turn: str | None, changes: dict[str, Any], thread_id: str) -> dict[str, Any]:
    event = ev(type_, turn, thread_id=thread_id, **BASE_PAYLOADS.get(type_, {}))
    for key, value in changes.items():
        target, name = (event["payload"], key[len("payload."):]) if key.startswith("payload.") else (event, key)
        if value is DROP:
            target.pop(name, None)
        else:
            target[name] = value
    return event


def _busy_projector(engine: str) -> SessionProjector:
    # Something to lose: an active turn, a finished one, remembered ids, a second thread.
    p = SessionProjector(engine=engine)  # type: ignore[arg-type]
    ev = Events()
    for event in [ev("session.started"), ev("turn.started", "T0"), ev("turn.completed", "T0"),
                  ev("turn.started", "T1"), Events("other")("runtime.error", message="x")]:
        p.apply(event)
    return p


@pytest.mark.parametrize(("field", "type_", "turn", "changes"), MALFORMED,
                         ids=[f"{f}-{i}" for i, (f, *_) in enumerate(MALFORMED)])
@pytest.mark.parametrize("thread_id", ["thread-1", "unseen"])
def test_malformed_event_names_the_field_and_changes_nothing(
    engine: str, field: str, type_: str, turn: str | None, changes: dict[str, Any], thread_id: str
) -> None:
    p = _busy_projector(engine)
    before, threads = memory(p), len(p)
    event = _broken(Events(), type_, turn, changes, thread_id)
    with pytest.raises(EventError) as caught:
        p.apply(event)
    assert caught.value.field == field
    assert field in str(caught.value)
    assert memory(p) == before
    assert len(p) == threads
    # Also as a JSON line, the form a log delivers.
    with pytest.raises(EventError) as caught:
        p.apply(json.dumps(event))
    assert caught.value.field == field
    assert memory(p) == before


def test_a_malformed_event_does_not_use_up_its_event_id(engine: str) -> None:
    p = _busy_projector(engine)
    ev = Events()
    with pytest.raises(EventError):
        p.apply(ev("turn.completed", "T1", event_id="fixed", state="done"))
    assert p.apply(ev("turn.completed", "T1", event_id="fixed")).kind is APPLIED


@pytest.mark.parametrize(("raw", "field"), [("{not json", "line"), (b"\xff\xfe\x00", "line"), ("[1, 2]", "event"),
                                            ("null", "event"), ("42", "event")])
def test_input_that_is_not_an_event_object_is_malformed(engine: str, raw: str | bytes, field: str) -> None:
    p = _busy_projector(engine)
    before = memory(p)
    with pytest.raises(EventError) as caught:
        p.apply(raw)
    assert caught.value.field == field
    assert memory(p) == before


# -- rejected events -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "target", "payload", "reason"),
    [
        ("turn.started", "T2", {}, rejects_as("turn_matches")),
        ("turn.started", None, {}, rejects_as("no_active_turn")),
        ("turn.started", "T0", {}, rejects_as("turn_not_finished")),
        ("turn.completed", None, {}, rejects_as("targeted")),
        ("turn.completed", "T2", {"state": "failed", "errorMessage": "m"}, rejects_as("turn_matches")),
        ("turn.completed", "T0", {}, rejects_as("turn_not_finished")),
        ("turn.aborted", "T2", {"reason": "x"}, rejects_as("turn_matches")),
        ("runtime.error", "T2", {"message": "m"}, rejects_as("turn_matches")),
    ],
)
def test_a_rejected_event_changes_nothing_but_its_remembered_id(
    engine: str, type_: str, target: str | None, payload: dict[str, Any], reason: str
) -> None:
    p = _busy_projector(engine)
    event = Events()(type_, target, created_at=stamp(10_000), **payload)
    assert_rejected_unchanged(p, event, reason)
    assert p.apply(event).kind is DUPLICATE


# -- sessions are immutable snapshots --------------------------------------------------------------


@pytest.mark.parametrize("field", ["status", "active_turn_id", "last_error", "updated_at", "provider_name"])
def test_sessions_are_frozen(engine: str, field: str) -> None:
    p = running(engine)
    outcome = p.apply(Events()("turn.completed", "T1"))
    for session in (p.get("thread-1"), p["thread-1"], p.sessions()["thread-1"], outcome.after, outcome.before):
        with pytest.raises(AttributeError):
            setattr(session, field, "x")
        assert getattr(session, field) != "x"
    with pytest.raises(AttributeError):
        outcome.kind = APPLIED  # type: ignore[misc]
    assert outcome.kind is APPLIED


def test_a_held_session_is_a_snapshot(engine: str) -> None:
    p = running(engine)
    held = p.get("thread-1")
    listing = p.sessions()
    listing["thread-1"] = Session("thread-1", "stopped")
    listing["ghost"] = Session("ghost", "ready")
    p.apply(Events()("turn.completed", "T1"))
    assert triple(held) == ("running", "T1", None)
    assert triple(p.get("thread-1")) == ("ready", None, None)
    assert "ghost" not in p


def test_the_caller_cannot_reach_into_an_applied_event(engine: str) -> None:
    p = seeded(engine=engine)
    event = Events()("session.state.changed", state="error", reason="first")
    outcome = p.apply(event)
    event["payload"]["reason"] = "changed afterwards"
    # A mapping handed in is copied once; the event's payload is read-only by contract, not by a proxy.
    assert outcome.event.payload["reason"] == "first"
    assert p.get("thread-1").last_error == "first"  # type: ignore[union-attr]
