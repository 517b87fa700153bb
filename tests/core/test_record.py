"""The per-thread record: packed memories behave exactly as the FIFO memories they replace.

A thread's eventIds are kept as keyed 64-bit digests, packed in one bytes string up to
`PACKED_EVENT_IDS` and in a `BoundedSet` past it; its finished turns in a tuple up to
`PACKED_FINISHED_TURNS`, then a `BoundedSet`. Whatever the form, both memories must answer, add
and forget in the order a plain insertion-ordered FIFO of the ids would.
"""

from __future__ import annotations

import sys
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine import Session, SessionProjector
from statemachine.core.event import parse_timestamp
from statemachine.core.record import (
    DIGEST_SIZE,
    PACKED_EVENT_IDS,
    PACKED_FINISHED_TURNS,
    PROCESS_KEY,
    BoundedSet,
    ThreadRecord,
    event_digest,
    event_digest_hex,
    legacy_digest,
)


class Fifo:
    """The reference: what the memories did before they were packed (a FIFO of the ids)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.items: list[str] = []

    def add(self, key: str) -> bool:
        if key in self.items:
            return False
        self.items.append(key)
        del self.items[:-self.cap]
        return True


def record(max_event_ids: int = 1024, max_finished_turns: int = 256) -> ThreadRecord:
    return ThreadRecord(Session("t", "idle"), max_event_ids, max_finished_turns)


# Caps on both sides of the packed sizes, and ids drawn from a small pool so that repeats happen.
caps = st.sampled_from([1, 2, 3, 7, PACKED_FINISHED_TURNS, PACKED_FINISHED_TURNS + 1, 31, PACKED_EVENT_IDS,
                        PACKED_EVENT_IDS + 1, 40, 100])
ids = st.lists(st.integers(0, 150).map(lambda i: f"id-{i}"), max_size=400)


@settings(max_examples=200, deadline=None)
@given(cap=caps, keys=ids)
def test_the_event_id_memory_is_the_fifo_of_the_digests(cap: int, keys: list[str]) -> None:
    rec, fifo = record(max_event_ids=cap), Fifo(cap)
    for key in keys:
        assert rec.see(key) is fifo.add(key), key
        assert rec.seen_digests() == tuple(map(event_digest, fifo.items))
        assert rec.seen_count() == len(fifo.items) <= cap
    for i in range(151):
        assert rec.has_seen(f"id-{i}") is (f"id-{i}" in fifo.items)


@settings(max_examples=200, deadline=None)
@given(cap=caps, keys=ids)
def test_the_finished_turn_memory_is_the_fifo_of_the_turns(cap: int, keys: list[str]) -> None:
    rec, fifo = record(max_finished_turns=cap), Fifo(cap)
    for key in keys:
        rec.remember_turn(key)
        fifo.add(key)
        assert tuple(rec.finished) == tuple(fifo.items)
        assert len(rec.finished) == len(fifo.items)
    for i in range(151):
        assert (f"id-{i}" in rec.finished) is (f"id-{i}" in fifo.items)


def test_a_match_across_two_packed_digests_is_not_a_member() -> None:
    rec = record()
    a, b = event_digest("a"), event_digest("b")
    rec.see("a")
    rec.see("b")
    straddling = a[DIGEST_SIZE // 2:] + b[:DIGEST_SIZE // 2]  # present in the bytes, at no digest's start
    assert straddling in a + b
    assert not rec.has_seen_digest(straddling)
    assert rec.see_digest(straddling) is True
    assert rec.seen_digests() == (a, b, straddling)


def test_ids_that_encode_alike_under_lax_rules_stay_distinct() -> None:
    # A lone surrogate is a valid JSON string; it must not fail, nor meet another id's digest.
    odd = ["\ud800", "\udfff", "\ud83d\ude00", "\U0001f600", "", "\x00", "a\x00"]
    assert len({event_digest(i) for i in odd}) == len(odd)
    rec = record()
    assert all(rec.see(i) for i in odd)
    assert not any(rec.see(i) for i in odd)


def test_the_digest_is_blake2b_64_salted_with_the_key() -> None:
    import hashlib

    key = bytes(range(16))
    assert event_digest("evt-1", key) == hashlib.blake2b(b"evt-1", digest_size=8, salt=key,
                                                          person=b"sm.eventId.v1").digest()
    assert event_digest_hex("evt-1", key) == event_digest("evt-1", key).hex()
    assert len(event_digest_hex("evt-1", key)) == 16
    # Another key, other digests: without the key nobody can compute one.
    assert event_digest("evt-1", bytes(16)) != event_digest("evt-1", key)
    # The default key is the process's, random, and shared by every record made without one.
    assert event_digest("evt-1") == event_digest("evt-1", PROCESS_KEY)
    assert ThreadRecord(Session("t", "idle"), 4, 4).key is PROCESS_KEY
    # Older snapshots and stores kept the unkeyed 128-bit digest.
    assert legacy_digest("evt-1") == hashlib.blake2b(b"evt-1", digest_size=16).digest()
    with pytest.raises(ValueError, match="16 bytes"):
        event_digest("evt-1", b"short")
    with pytest.raises(ValueError, match=r"event_id_key .* must be 16 bytes, got str"):
        SessionProjector(event_id_key="k" * 16)  # type: ignore[arg-type]


def test_a_record_with_older_digests_tests_new_ids_against_both_and_keeps_its_order() -> None:
    key = bytes(range(16))
    rec = ThreadRecord(Session("t", "idle"), 4, 4, key)
    rec.see_digest(event_digest("k0", key))
    rec.see_digest(legacy_digest("old1"))  # an older store's row: the memory keeps both kinds
    rec.see_digest(legacy_digest("old2"))
    assert rec.has_seen("old1") and rec.has_seen("k0") and not rec.has_seen("new")
    assert not rec.see("old2") and not rec.see("k0")  # duplicates, whichever digest matched
    assert rec.see("new") and rec.seen_digests() == (
        event_digest("k0", key), legacy_digest("old1"), legacy_digest("old2"), event_digest("new", key))
    assert rec.see("newer")  # the cap (4): the oldest goes first, whatever its kind
    assert rec.seen_digests()[0] == legacy_digest("old1") and not rec.has_seen("k0") and rec.seen_count() == 4


def test_memories_change_form_past_the_packed_sizes_and_keep_their_order() -> None:
    rec = record()
    for i in range(PACKED_EVENT_IDS):
        rec.see(f"e{i}")
        rec.remember_turn(f"T{i}")
    assert isinstance(rec._ids, bytes) and len(rec._ids) == PACKED_EVENT_IDS * DIGEST_SIZE
    assert isinstance(rec.finished, BoundedSet)  # past PACKED_FINISHED_TURNS
    rec.see(f"e{PACKED_EVENT_IDS}")
    assert isinstance(rec._ids, BoundedSet)
    assert rec.seen_digests() == tuple(event_digest(f"e{i}") for i in range(PACKED_EVENT_IDS + 1))
    assert tuple(rec.finished) == tuple(f"T{i}" for i in range(PACKED_EVENT_IDS))


def test_a_thread_that_finished_no_turn_has_no_finished_turn_memory() -> None:
    p = SessionProjector()
    p.apply({"eventId": "e1", "type": "session.started", "provider": "codex", "threadId": "t",
             "createdAt": "2026-11-20T10:00:00Z"})
    rec = p._threads["t"]
    empty: tuple[str, ...] = ()
    assert rec.finished is empty  # the interpreter's one empty tuple: nothing allocated for this thread
    # The record itself is a handful of pointers; its eventId memory one digest in one bytes string.
    assert sys.getsizeof(rec) <= 64
    assert sys.getsizeof(rec._ids) == sys.getsizeof(b"") + DIGEST_SIZE


def test_updated_dt_is_the_sessions_updated_at_parsed() -> None:
    p = SessionProjector()
    p.apply({"eventId": "e1", "type": "session.started", "provider": "codex", "threadId": "t",
             "createdAt": "2026-11-20T10:00:00+02:00"})
    rec = p._threads["t"]
    assert rec.updated_dt is not None and rec.updated_dt.isoformat() == "2026-11-20T10:00:00+02:00"
    assert record().updated_dt is None


def test_sessions_share_one_provider_name_string() -> None:
    p = SessionProjector()
    for i in range(50):
        for j in range(3):
            p.apply({"eventId": f"e{i}-{j}", "type": ("session.started", "turn.started", "turn.completed")[j],
                     "provider": "".join(["co", "dex"]), "threadId": f"t{i}", "turnId": "T",
                     "createdAt": f"2026-11-20T10:00:0{j}Z"})
    assert len({id(s.provider_name) for s in p.sessions().values()}) == 1


def test_a_typical_session_costs_well_under_800_bytes() -> None:
    """Ten events per thread, UUID-sized ids, as in the benchmark stream: the live Python bytes
    per session (tracemalloc; the benchmark's RSS figure is in docs/performance.md)."""
    types = ("session.started", "turn.started", "content.delta", "content.delta", "item.started",
             "item.completed", "content.delta", "content.delta", "turn.completed", "content.delta")

    def session(p: SessionProjector, i: int) -> None:
        for j, type_ in enumerate(types):
            p.apply({"eventId": f"{i:08d}-0000-4000-8000-{j:012d}", "type": type_, "provider": "codex",
                     "threadId": f"thread-{i:08d}-0000-4000-8000-000000000000",
                     "turnId": f"turn-{i:08d}-0000-4000-8000-000000000000",
                     "createdAt": f"2026-11-20T10:00:{j:02d}.{i % 1000:03d}Z"})

    warm = SessionProjector()  # every step used below runs once before the measure
    session(warm, -1)
    p = SessionProjector()
    session(p, 0)
    tracemalloc.start()
    try:
        parse_timestamp.cache_clear()  # a bounded cache, not per session
        base = tracemalloc.get_traced_memory()[0]
        for i in range(1, 5001):
            session(p, i)
        parse_timestamp.cache_clear()
        per_session = (tracemalloc.get_traced_memory()[0] - base) / 5000
    finally:
        tracemalloc.stop()
    assert per_session < 800, per_session
