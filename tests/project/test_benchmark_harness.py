"""The benchmark's inputs and peers: a deterministic stream that exercises every kind of event,
and a hand-written reducer (and naive `transitions` contender) that project exactly what the
package projects. Behaviour only; nothing here is timed."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import handwritten  # noqa: E402
import run as bench  # noqa: E402
from handwritten import from_wire  # noqa: E402
from naive_transitions import NaiveProjector  # noqa: E402
from stream import IGNORED_TYPES, LIFECYCLE_TYPES, generate_stream, session_subset  # noqa: E402

from statemachine import OutcomeKind, SessionProjector  # noqa: E402


@pytest.fixture(scope="module")
def small() -> list[dict[str, Any]]:
    return generate_stream(6_000, 40, seed=11)


def test_stream_is_deterministic_for_a_seed(small: list[dict[str, Any]]) -> None:
    assert generate_stream(6_000, 40, seed=11) == small
    assert generate_stream(6_000, 40, seed=12) != small
    assert len(small) == 6_000
    assert len({e["threadId"] for e in small}) == 40


def test_stream_covers_every_event_kind(small: list[dict[str, Any]]) -> None:
    types = Counter(e["type"] for e in small)
    assert set(LIFECYCLE_TYPES) | set(IGNORED_TYPES) <= set(types)
    states = {e["payload"].get("state") for e in small if e["type"] == "session.state.changed"}
    assert states == {"starting", "ready", "running", "waiting", "stopped", "error"}
    completed = {e["payload"].get("state") for e in small if e["type"] == "turn.completed"}
    assert completed == {"completed", "failed", "interrupted", "cancelled", None}  # None: no state given


def test_stream_has_duplicates_rejections_and_late_events(small: list[dict[str, Any]]) -> None:
    outcomes = SessionProjector().apply_all(small)
    kinds = Counter(o.kind for o in outcomes)
    # The provider stream sends no commands, and deferring needs an observer.
    assert set(kinds) == set(OutcomeKind) - {OutcomeKind.FORGOTTEN, OutcomeKind.DEFERRED}
    assert 0.03 < kinds[OutcomeKind.DUPLICATE] / len(small) < 0.08
    reasons = {o.reason for o in outcomes if o.kind is OutcomeKind.REJECTED}
    assert {"turn_finished", "other_turn_active", "untargeted", "turn_active", "no_active_turn",
            "invalid_in_stopped"} <= reasons
    last: dict[str, str] = {}
    backwards = 0
    for e in small:
        if e["createdAt"] < last.get(e["threadId"], ""):
            backwards += 1
        last[e["threadId"]] = max(e["createdAt"], last.get(e["threadId"], ""))
    assert backwards > 0


def test_handwritten_reducer_agrees_with_the_package(small: list[dict[str, Any]]) -> None:
    parser = SessionProjector()
    events = [parser.parse(w) for w in small]
    tuples = [from_wire(w) for w in small]
    ok, detail = bench.agree_a_b(events, tuples)
    assert ok, detail
    # Small caps: FIFO eviction of eventIds and finished turns must match too.
    ok, detail = bench.agree_a_b(events, tuples, max_event_ids=16, max_finished_turns=3)
    assert ok, detail


def test_agreement_check_catches_a_wrong_reducer(
    small: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = SessionProjector()
    events = [parser.parse(w) for w in small]
    tuples = [from_wire(w) for w in small]
    # A reducer that forgets to keep the turn when a session restarts while working.
    monkeypatch.setitem(handwritten._TABLE, ("session.started", "running"), handwritten._resume)
    ok, detail = bench.agree_a_b(events, tuples)
    assert not ok
    assert "differ" in detail


def test_naive_transitions_contender_agrees_with_the_package(small: list[dict[str, Any]]) -> None:
    subset = session_subset(small, 4)
    parser = SessionProjector()
    events = [parser.parse(w) for w in subset]
    naive = NaiveProjector()
    codes = [naive.apply(from_wire(w)) for w in subset]
    ok, detail = bench.agree_with_a(events, codes, {k: r.wire() for k, r in naive.records.items()})
    assert ok, detail


def test_session_subset_keeps_whole_sessions_in_order(small: list[dict[str, Any]]) -> None:
    subset = session_subset(small, 4)
    threads = {e["threadId"] for e in subset}
    assert len(threads) == 10
    assert subset == [e for e in small if e["threadId"] in threads]


def test_the_plain_replay_yardstick_prints_what_replay_prints(tmp_path: Path) -> None:
    import json
    import subprocess

    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in generate_stream(3_000, 30, seed=5)), encoding="utf-8")
    ours = subprocess.run([sys.executable, "-m", "statemachine", "replay", "--json", str(log)],
                          capture_output=True, text=True, check=True)
    plain = subprocess.run([sys.executable, str(BENCHMARKS / "plain_replay.py"), str(log)],
                           capture_output=True, text=True, check=True)
    assert json.loads(ours.stdout)["outcomes"]["rejected"] > 0  # the stream exercises rejections
    assert plain.stdout == ours.stdout


@pytest.mark.parametrize("shared", [True, False])
def test_the_transitions_contender_agrees_with_the_package_shared_or_not(
    small: list[dict[str, Any]], shared: bool
) -> None:
    naive = NaiveProjector(shared=shared)
    projector = SessionProjector()
    for wire in small[:1500]:
        kind = projector.apply(wire).kind
        code = naive.apply(from_wire(wire))
        assert (code if code in ("applied", "ignored", "duplicate") else "rejected") == kind.value
    assert {k: r.wire() for k, r in naive.records.items()} == {k: s.to_wire() for k, s in projector.sessions().items()}


def test_a_redelivery_drawn_at_distance_zero_repeats_the_oldest_event() -> None:
    # This seed draws a redelivery distance of 0 from `randrange`, which used to index past the end.
    stream = generate_stream(1200, 8, seed=16)
    assert len(stream) == 1200
    assert len({e["eventId"] for e in stream}) < len(stream)  # redeliveries repeat eventIds
