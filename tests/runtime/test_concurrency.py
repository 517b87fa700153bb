"""One projector shared by OS threads (`LockedProjector`) and by asyncio tasks (`consume`)."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from statemachine import (
    EventError,
    LockedProjector,
    Outcome,
    OutcomeKind,
    SessionProjector,
    builtin_spec,
    consume,
    expire_stale_turns,
    reapable_sessions,
    reconcile,
    stale_turns,
)
from statemachine.core.record import event_digest_hex
from statemachine.runtime.concurrency import EventInput
from statemachine.spec.invariants import state_violations, step_violations

KINDS: list[tuple[str, dict[str, Any]]] = [
    ("session.started", {}), ("thread.started", {}), ("session.exited", {}),
    *[("session.state.changed", {"state": s}) for s in ("starting", "ready", "running", "waiting", "stopped", "error")],
    ("turn.started", {}), ("turn.started", {}), ("turn.started", {}),
    *[("turn.completed", {"state": s}) for s in ("completed", "failed", "interrupted", "cancelled")],
    ("turn.aborted", {"reason": "user"}), ("runtime.error", {"message": "m"}), ("item.updated", {}),
]


def random_events(rng: random.Random, producer: int, threads: list[str], count: int) -> list[dict[str, Any]]:
    """A producer's stream: lifecycle and other events over `threads`, with redeliveries, turn ids
    that repeat, and timestamps that sometimes go backwards."""
    out: list[dict[str, Any]] = []
    base = datetime(2026, 11, 20, tzinfo=UTC)
    for n in range(count):
        if out and rng.random() < 0.05:
            out.append(rng.choice(out))  # a redelivery
            continue
        type_, payload = rng.choice(KINDS)
        event: dict[str, Any] = {
            "eventId": f"p{producer}-{n}", "type": type_, "provider": "codex", "threadId": rng.choice(threads),
            "createdAt": (base + timedelta(seconds=n - rng.randint(0, 5))).isoformat(), "payload": payload,
        }
        if rng.random() < 0.8:
            event["turnId"] = f"T{rng.randint(0, count // 8)}"
        out.append(event)
    return out


PRODUCERS = 8
EVENTS_PER_PRODUCER = 6000


def test_eight_threads_share_one_projector() -> None:
    shared = LockedProjector(SessionProjector(max_event_ids=64, max_finished_turns=16))
    spec = builtin_spec()
    observed: Counter[OutcomeKind] = Counter()
    violations: list[str] = []

    def check(o: Outcome) -> None:
        # runs under the lock: the thread's memory is the one this outcome left behind
        observed[o.kind] += 1
        with shared.locked() as p:
            broken = state_violations(spec, o.after, p.finished_turns(o.event.thread_id))
        broken += step_violations(spec, o)
        if broken:
            violations.append(f"{o.event.event_id}: {broken}")

    shared.subscribe(check)
    streams = []
    for i in range(PRODUCERS):
        rng = random.Random(i)
        # each producer owns two threads (their order is its order); all of them share two more
        own = random_events(rng, i, [f"own-{i}-a", f"own-{i}-b"], EVENTS_PER_PRODUCER // 2)
        mixed = random_events(rng, 100 + i, ["shared-x", "shared-y"], EVENTS_PER_PRODUCER // 2)
        streams.append([e for pair in zip(own, mixed, strict=True) for e in pair])
    returned: list[Counter[OutcomeKind]] = [Counter() for _ in range(PRODUCERS)]
    start = threading.Barrier(PRODUCERS)

    def produce(i: int) -> None:
        start.wait()
        for event in streams[i]:
            returned[i][shared.apply(event).kind] += 1

    # Switch OS threads far more often than the default 5 ms, so that applies really interleave.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        began = time.perf_counter()
        workers = [threading.Thread(target=produce, args=(i,)) for i in range(PRODUCERS)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        elapsed = time.perf_counter() - began
    finally:
        sys.setswitchinterval(interval)
    assert not any(w.is_alive() for w in workers)

    sent = sum(len(s) for s in streams)
    total_returned = sum(returned, Counter())
    assert sent == PRODUCERS * EVENTS_PER_PRODUCER
    assert sum(total_returned.values()) == sent
    assert observed == total_returned
    assert violations == []
    # The mix exercised every outcome but forgetting, which would break the sequential comparison,
    # and deferred, which needs an observer that applies.
    assert all(total_returned[k] > 0 for k in OutcomeKind if k not in (OutcomeKind.FORGOTTEN, OutcomeKind.DEFERRED))
    # Each owned thread's events came from one producer, so its result is that of a sequential run.
    sequential = SessionProjector(max_event_ids=64, max_finished_turns=16)
    for stream in streams:
        sequential.apply_all(e for e in stream if e["threadId"].startswith("own-"))
    with shared.locked() as p:
        for tid in sequential:
            assert p[tid] == sequential[tid]
            assert p.finished_turns(tid) == sequential.finished_turns(tid)
            assert p.seen_event_digests(tid) == sequential.seen_event_digests(tid)
        assert len(p) == 2 * PRODUCERS + 2
    print(f"\n{sent} events from {PRODUCERS} threads in {elapsed:.2f}s ({sent / elapsed:,.0f}/s): "
          f"{dict(sorted((k.value, n) for k, n in total_returned.items()))}")


def test_locked_projector_hands_out_the_projector_for_operations_under_the_lock() -> None:
    shared = LockedProjector()
    t0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
    shared.apply_all([
        {"eventId": "1", "type": "turn.started", "provider": "codex", "threadId": "a", "turnId": "A",
         "createdAt": t0.isoformat()},
        {"eventId": "2", "type": "session.started", "provider": "codex", "threadId": "b",
         "createdAt": t0.isoformat()},
    ])
    later = t0 + timedelta(hours=1)
    with shared.locked() as p:
        assert len(p) == 2 and p.get("a") is not None
        assert [s.thread_id for s in stale_turns(p, later, timedelta(minutes=5))] == ["a"]
        assert [s.thread_id for s in reapable_sessions(p, later)] == ["b"]
        [expired] = expire_stale_turns(p, later, timedelta(minutes=5))
        assert expired.after.status == "interrupted" and p.finished_turns("a") == ("A",)
        assert reconcile(p, set()) == []  # nothing left running
        restored = SessionProjector.restore(p.snapshot())
        assert restored.sessions() == p.sessions()
    # Nothing is re-declared: whatever the projector offers is there, under the lock.
    with shared.locked() as p:
        assert p.seen_event_digests("a")[0] == event_digest_hex("1") and p["b"].status == "ready"
    calls: list[str] = []
    stop = shared.subscribe(lambda o: calls.append(o.event.event_id))
    shared.apply({"eventId": "3", "type": "item.started", "provider": "codex", "threadId": "a",
                  "createdAt": t0.isoformat()})
    stop()
    shared.apply({"eventId": "4", "type": "item.started", "provider": "codex", "threadId": "a",
                  "createdAt": t0.isoformat()})
    assert calls == ["3"]


# -- asyncio -------------------------------------------------------------------------------------


def ev(n: int, type_: str = "item.started", turn: str | None = None, **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"eventId": f"e{n}", "type": type_, "provider": "codex", "threadId": "t1",
                             "createdAt": f"2026-11-20T10:00:{n % 60:02d}Z", "payload": payload}
    if turn is not None:
        event["turnId"] = turn
    return event


async def stream(items: list[EventInput]) -> AsyncIterator[EventInput]:
    for item in items:
        await asyncio.sleep(0)
        yield item


def test_consume_an_async_iterable_in_order() -> None:
    p = SessionProjector()
    items: list[EventInput] = [ev(1, "turn.started", "T1"), ev(2), ev(2), "{not json", ev(3, "turn.completed", "T1"),
                               ev(4, "turn.started", "T1")]
    seen: list[str] = []
    stats = asyncio.run(consume(p, stream(items), on_outcome=lambda o: seen.append(o.kind.value),
                                on_malformed=lambda e, raw: seen.append("malformed")))
    assert seen == ["applied", "ignored", "duplicate", "malformed", "applied", "rejected"]
    assert stats.total == len(items) and stats.malformed == 1
    assert stats.outcomes == {OutcomeKind.APPLIED: 2, OutcomeKind.IGNORED: 1, OutcomeKind.DUPLICATE: 1,
                              OutcomeKind.REJECTED: 1, OutcomeKind.FORGOTTEN: 0}
    assert p["t1"].status == "ready"


def test_consume_a_queue_until_none_and_join_works() -> None:
    async def main() -> tuple[int, str]:
        p = SessionProjector()
        queue: asyncio.Queue[EventInput | None] = asyncio.Queue()
        task = asyncio.create_task(consume(p, queue))
        await queue.put(ev(1, "turn.started", "T1"))
        await queue.put(ev(2, "runtime.error", message="boom"))
        await queue.join()  # every item was marked done
        status = p["t1"].status
        await queue.put(None)
        stats = await task
        return stats.total, status

    assert asyncio.run(main()) == (2, "error")


def test_malformed_events_are_logged_and_skipped_by_default(caplog: pytest.LogCaptureFixture) -> None:
    p = SessionProjector()
    stats = asyncio.run(consume(p, stream([ev(1, "turn.completed", "T1", state="exploded"), ev(2)])))
    assert stats.malformed == 1 and stats.outcomes[OutcomeKind.IGNORED] == 1
    assert any("payload.state" in r.getMessage() for r in caplog.records)


def test_malformed_events_can_end_the_consumer() -> None:
    with pytest.raises(EventError, match=r"payload\.state"):
        asyncio.run(consume(SessionProjector(), stream([ev(1, "turn.completed", "T1", state="x")]),
                            on_malformed="raise"))


def test_an_always_ready_source_does_not_starve_other_tasks() -> None:
    async def main() -> int:
        p = SessionProjector()
        queue: asyncio.Queue[EventInput | None] = asyncio.Queue()
        for n in range(2000):
            queue.put_nowait({**ev(n), "eventId": f"x{n}"})
        queue.put_nowait(None)
        applied_when_other_ran: list[int] = []

        async def other() -> None:
            applied_when_other_ran.append(p.seen_count("t1"))

        task = asyncio.create_task(consume(p, queue, yield_every=100))
        other_task = asyncio.create_task(other())
        await task
        await other_task
        return applied_when_other_ran[0]

    assert asyncio.run(main()) < 2000


def test_consume_into_a_locked_projector_alongside_an_os_thread() -> None:
    shared = LockedProjector()

    def producer() -> None:
        for n in range(500):
            shared.apply({**ev(n), "threadId": "from-thread", "eventId": f"th{n}"})

    async def main() -> int:
        worker = threading.Thread(target=producer)
        worker.start()
        items: list[EventInput] = [{**ev(n), "threadId": "from-loop", "eventId": f"lp{n}"} for n in range(500)]
        stats = await consume(shared, stream(items))
        worker.join()
        return stats.total

    assert asyncio.run(main()) == 500
    with shared.locked() as p:
        assert p.seen_count("from-thread") == p.seen_count("from-loop") == 500
