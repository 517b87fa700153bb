"""Reference part C: T3 Code's own cases, in this project's semantics.

Each thread is seeded `ready`, provider `codex`, no turn, no error (case 6: `starting`). Every
step states the outcome kind and (status, activeTurnId, lastError) after it. Both engines run
every case: the compiled table and the `transitions` machine must agree with the reference.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Events, seeded, triple

from statemachine import OutcomeKind, SessionProjector

APPLIED, IGNORED, REJECTED = OutcomeKind.APPLIED, OutcomeKind.IGNORED, OutcomeKind.REJECTED


@pytest.fixture(params=["compiled", "transitions"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def step(
    projector: SessionProjector,
    event: dict[str, Any],
    kind: OutcomeKind,
    expected: tuple[str, str | None, str | None],
) -> None:
    outcome = projector.apply(event)
    assert outcome.kind is kind, outcome.reason
    assert triple(projector.get(event["threadId"])) == expected
    assert triple(outcome.after) == expected


def test_case_1_failed_turn_sets_error_and_clears_turn(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    step(p, ev("turn.started", "T1"), APPLIED, ("running", "T1", None))
    step(p, ev("turn.completed", "T1", state="failed", errorMessage="turn failed"), APPLIED,
         ("error", None, "turn failed"))


def test_case_2_session_states_map_and_keep_error_until_ready(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    step(p, ev("session.state.changed", state="waiting"), APPLIED, ("running", None, None))
    step(p, ev("session.state.changed", state="error", reason="provider crashed"), APPLIED,
         ("error", None, "provider crashed"))
    step(p, ev("session.state.changed", state="stopped"), APPLIED, ("stopped", None, "provider crashed"))
    step(p, ev("session.state.changed", state="ready"), APPLIED, ("ready", None, None))


def test_case_3_ready_clears_the_active_turn(engine: str) -> None:
    # The seed bug: session/ready used to keep the old activeTurnId.
    p, ev = seeded(engine=engine), Events()
    step(p, ev("turn.started", "T"), APPLIED, ("running", "T", None))
    step(p, ev("session.state.changed", state="ready"), APPLIED, ("ready", None, None))


def test_case_4_session_level_starts_keep_a_running_turn(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    step(p, ev("turn.started", "T"), APPLIED, ("running", "T", None))
    step(p, ev("thread.started"), APPLIED, ("running", "T", None))
    step(p, ev("session.started"), APPLIED, ("running", "T", None))
    step(p, ev("turn.completed", "T", state="completed"), APPLIED, ("ready", None, None))


def test_case_5_completion_of_another_turn_is_rejected(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    step(p, ev("turn.started", "P"), APPLIED, ("running", "P", None))
    step(p, ev("turn.completed", "AUX", state="completed"), REJECTED, ("running", "P", None))
    step(p, ev("turn.completed", "P"), APPLIED, ("ready", None, None))


def test_case_6_from_starting_only_a_targeted_completion_applies(engine: str) -> None:
    p, ev = seeded("starting", engine=engine), Events()
    step(p, ev("turn.completed", state="completed"), REJECTED, ("starting", None, None))
    step(p, ev("turn.completed", "X", state="completed"), APPLIED, ("ready", None, None))


def test_case_7_runtime_error_never_leaves_a_turn_behind(engine: str) -> None:
    # T3 keeps T3 as the active turn here; this project refuses that impossible pair.
    p, ev = seeded(engine=engine), Events()
    step(p, ev("runtime.error", "T3", message="runtime exploded"), APPLIED, ("error", None, "runtime exploded"))


def test_case_8_runtime_warning_changes_nothing(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    step(p, ev("turn.started", "W"), APPLIED, ("running", "W", None))
    step(p, ev("runtime.warning", "W", message="slow"), IGNORED, ("running", "W", None))


def test_case_9_items_never_start_turns(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    step(p, ev("session.started"), APPLIED, ("ready", None, None))
    step(p, ev("thread.started"), APPLIED, ("ready", None, None))
    step(p, ev("item.started", itemType="command_execution"), IGNORED, ("ready", None, None))


# -- T3's ingestion cases that need the orchestrator's side (its command reactor) ----------------
# T3 writes the pending turn start from its `thread.turn.start` command; here that command is an
# input of its own. Each case is also an example log (examples/t3_*.jsonl) replayed by the CLI.


def test_case_10_reconnect_keeps_a_pending_turn_starting(engine: str) -> None:
    # T3: "keeps a reconnecting pending turn starting while ready clears stale active state".
    p, ev = seeded(engine=engine), Events()
    step(p, ev("turn.started", "turn-stale-before-reconnect"), APPLIED,
         ("running", "turn-stale-before-reconnect", None))
    step(p, ev("thread.turn.start", message={"role": "user", "text": "resume after reconnect"}), APPLIED,
         ("running", "turn-stale-before-reconnect", None))
    step(p, ev("session.state.changed", state="starting"), APPLIED, ("starting", "turn-stale-before-reconnect", None))
    # The provider reconnects: ready must not settle a session whose requested turn has not started.
    step(p, ev("session.state.changed", state="ready"), APPLIED, ("starting", None, None))
    assert p["thread-1"].pending_turn is not None
    step(p, ev("session.started"), APPLIED, ("starting", None, None))
    step(p, ev("turn.started", "turn-after-reconnect"), APPLIED, ("running", "turn-after-reconnect", None))
    assert p["thread-1"].pending_turn is None
    step(p, ev("session.started"), APPLIED, ("running", "turn-after-reconnect", None))
    assert "turn-stale-before-reconnect" in p.finished_turns("thread-1")


def test_case_11_steer_supersedes_the_running_turn(engine: str) -> None:
    # T3: "accepts a conflicting turn.started for a pending turn start when the provider expects
    # that turn". The expected id travels in the command's turnId.
    p, ev = seeded(engine=engine), Events()
    step(p, ev("turn.started", "turn-steered-over"), APPLIED, ("running", "turn-steered-over", None))
    step(p, ev("thread.turn.start", "turn-from-steer"), APPLIED, ("running", "turn-steered-over", None))
    step(p, ev("turn.started", "turn-from-steer"), APPLIED, ("running", "turn-from-steer", None))
    # The superseded turn is over: its late completion cannot settle the new one.
    step(p, ev("turn.completed", "turn-steered-over", state="completed"), REJECTED,
         ("running", "turn-from-steer", None))


def test_case_11_without_the_request_the_conflicting_start_is_rejected(engine: str) -> None:
    p, ev = seeded(engine=engine), Events()
    step(p, ev("turn.started", "turn-steered-over"), APPLIED, ("running", "turn-steered-over", None))
    step(p, ev("turn.started", "turn-from-steer"), REJECTED, ("running", "turn-steered-over", None))
