"""Bounded memory: a thread's memories stop at their caps; hostile logs cannot grow them further.

`scripts/memory.py` runs the same at 1M events; these are the CI-sized versions.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from statemachine import SessionProjector
from statemachine.core.record import event_digest_hex
from statemachine.runtime.projector import DEFAULT_MAX_EVENT_IDS, DEFAULT_MAX_FINISHED_TURNS


def turns(start: int, stop: int, thread: str = "t1") -> Iterator[dict[str, Any]]:
    """turn.started, content.delta, turn.completed per turn; every eventId and turn id new."""
    for i in range(start, stop):
        turn = f"turn-{i // 3:08d}"
        yield {
            "eventId": f"evt-{i:012d}",
            "type": ("turn.started", "content.delta", "turn.completed")[i % 3],
            "provider": "codex",
            "threadId": thread,
            "createdAt": "2026-01-01T00:00:00Z",
            "turnId": turn,
        }


def test_memories_stop_at_their_caps_forgetting_the_oldest_first() -> None:
    projector = SessionProjector(max_event_ids=10, max_finished_turns=3)
    for event in turns(0, 30):
        projector.apply(event)
    assert projector.seen_event_digests("t1") == tuple(event_digest_hex(f"evt-{i:012d}") for i in range(20, 30))
    assert projector.finished_turns("t1") == ("turn-00000007", "turn-00000008", "turn-00000009")


def test_a_forgotten_event_id_is_processed_again() -> None:
    # The documented cost of the cap: past it, a redelivery is no longer known as a duplicate.
    projector = SessionProjector(max_event_ids=3)
    first = {"eventId": "old", "type": "content.delta", "provider": "codex", "threadId": "t1",
             "createdAt": "2026-01-01T00:00:00Z"}
    assert projector.apply(first).kind.value == "ignored"
    assert projector.apply(first).kind.value == "duplicate"
    for event in turns(0, 3):
        projector.apply(event)
    assert not projector.has_seen("t1", "old")
    assert projector.apply(first).kind.value == "ignored"


def test_a_late_start_of_a_remembered_turn_is_rejected_until_forgotten() -> None:
    projector = SessionProjector(max_finished_turns=2)
    for event in turns(0, 3):  # turn-00000000 starts and completes
        projector.apply(event)
    late = {**next(turns(0, 1)), "eventId": "late-1"}
    assert projector.apply(late).reason == "turn_finished"
    for event in turns(3, 9):  # two more turns push it out of the memory
        projector.apply(event)
    assert "turn-00000000" not in projector.finished_turns("t1")
    assert projector.apply({**late, "eventId": "late-2"}).kind.value == "applied"


def test_default_caps() -> None:
    projector = SessionProjector()
    assert (projector.max_event_ids, projector.max_finished_turns) == (1024, 256)
    assert (DEFAULT_MAX_EVENT_IDS, DEFAULT_MAX_FINISHED_TURNS) == (1024, 256)
    with pytest.raises(ValueError):
        SessionProjector(max_event_ids=0)
    with pytest.raises(ValueError):
        SessionProjector(max_finished_turns=0)


def _traced(projector: SessionProjector, events: Iterator[dict[str, Any]]) -> int:
    for event in events:
        projector.apply(event)
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_one_thread_of_unique_event_ids_plateaus_at_the_caps() -> None:
    projector = SessionProjector()
    projector.apply(next(turns(0, 1, "warm-up")))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        after_half = _traced(projector, turns(0, 25_000)) - base
        after_full = _traced(projector, turns(25_000, 50_000)) - base
    finally:
        tracemalloc.stop()
    assert projector.seen_count("t1") == DEFAULT_MAX_EVENT_IDS
    assert len(projector.finished_turns("t1")) == DEFAULT_MAX_FINISHED_TURNS
    # Twice the events, the same memory (a little slack for dict resizing).
    assert after_half > 0
    assert after_full <= after_half + 16 * 1024, (after_half, after_full)
    # And far below what remembering all 50k ids would take (about 3.5 MB here).
    assert after_full < 512 * 1024


def test_many_threads_cost_a_fixed_amount_each() -> None:
    def threads(start: int, stop: int) -> Iterator[dict[str, Any]]:
        for i in range(start, stop):
            yield {"eventId": f"evt-{i:012d}", "type": "session.started", "provider": "codex",
                   "threadId": f"thread-{i:012d}", "createdAt": "2026-01-01T00:00:00Z"}

    projector = SessionProjector()
    projector.apply(next(turns(0, 1, "warm-up")))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        first = _traced(projector, threads(0, 10_000)) - base
        second = _traced(projector, threads(10_000, 20_000)) - base - first
    finally:
        tracemalloc.stop()
    per_thread = second / 10_000
    # Linear: the second 10k threads cost what the first did; about 370 bytes each (see
    # docs/reliability.md), well under the 1 KiB bound asserted here.
    assert abs(second - first) < 0.15 * first, (first, second)
    assert per_thread < 1024, per_thread
