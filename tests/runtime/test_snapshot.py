"""Snapshots: an exact, versioned round trip, and typed errors for anything else."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from helpers import older_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine import Session, SessionProjector, SnapshotError, builtin_spec
from statemachine.core.record import event_digest_hex, legacy_digest_hex
from statemachine.runtime.snapshot import SNAPSHOT_VERSION


def wire(event_id: str, type_: str, thread: str = "t1", turn: str | None = None, at: int = 0,
         **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventId": event_id, "type": type_, "provider": "codex", "threadId": thread,
        "createdAt": f"2026-11-20T10:{at // 60:02d}:{at % 60:02d}Z", "payload": payload,
    }
    if turn is not None:
        event["turnId"] = turn
    return event


def busy_projector() -> SessionProjector:
    p = SessionProjector(max_event_ids=8, max_finished_turns=2)
    p.apply_all([
        wire("a1", "session.started", "a", at=1),
        wire("a2", "turn.started", "a", "T1", at=2),
        wire("a3", "turn.completed", "a", "T1", at=3, state="failed", errorMessage="boom"),
        wire("a4", "turn.started", "a", "T2", at=4),
        wire("b1", "turn.started", "b", "U1", at=5),
        wire("b2", "turn.aborted", "b", "U1", at=6, reason="user"),
        wire("b3", "turn.started", "b", "U2", at=7),
        wire("b4", "session.exited", "b", at=8),
    ])
    p.seed(Session("c", "ready", "claude", None, None, "2026-11-20T09:00:00Z", "inst-7", "full-access"),
           finished_turns=["V1"], seen_event_ids=["c0"])
    return p


# The caps busy_projector() runs with; a restoring projector must be given them (its caps win).
CAPS = {"max_event_ids": 8, "max_finished_turns": 2}


def test_snapshot_is_json_and_carries_version_spec_and_caps() -> None:
    data = busy_projector().snapshot()
    assert json.loads(json.dumps(data)) == data
    assert data["version"] == SNAPSHOT_VERSION
    assert data["spec"] == "session-lifecycle"
    assert (data["maxEventIds"], data["maxFinishedTurns"]) == (8, 2)
    b = next(t for t in data["threads"] if t["session"]["threadId"] == "b")
    assert b["session"]["status"] == "stopped"
    assert b["finishedTurns"] == ["U1", "U2"]
    assert b["seenEventDigests"] == [event_digest_hex(e) for e in ("b1", "b2", "b3", "b4")]


def test_restore_gives_back_an_identical_projector() -> None:
    p = busy_projector()
    q = SessionProjector.restore(json.dumps(p.snapshot()), **CAPS)
    assert q.sessions() == p.sessions()
    assert q.snapshot() == p.snapshot()
    for tid in p:
        assert q.finished_turns(tid) == p.finished_turns(tid)
        assert q.seen_event_digests(tid) == p.seen_event_digests(tid)
    assert q["c"].provider_instance_id == "inst-7" and q["c"].runtime_mode == "full-access"
    assert (q.max_event_ids, q.max_finished_turns) == (8, 2)


def test_restored_memories_still_work() -> None:
    q = SessionProjector.restore(busy_projector().snapshot(), **CAPS)
    # de-duplication memory survived
    assert q.apply(wire("a4", "turn.started", "a", "T2", at=9)).kind == "duplicate"
    # remembered turns survived: a late start of a finished turn is rejected
    late = q.apply(wire("a5", "turn.started", "a", "T1", at=10))
    assert (late.kind, late.reason) == ("rejected", "turn_finished")
    # the FIFO caps survived: a third finished turn pushes out the oldest (T1)
    q.apply(wire("a6", "turn.completed", "a", "T2", at=11))
    assert q.finished_turns("a") == ("T1", "T2")
    q.apply(wire("a7", "turn.started", "a", "T3", at=12))
    q.apply(wire("a8", "turn.completed", "a", "T3", at=13))
    assert q.finished_turns("a") == ("T2", "T3")


def test_restore_with_the_transitions_engine() -> None:
    p = busy_projector()
    q = SessionProjector.restore(p.snapshot(), engine="transitions", **CAPS)
    assert q.engine == "transitions"
    assert q.snapshot() == p.snapshot()


def test_observers_are_not_state() -> None:
    p = busy_projector()
    p.subscribe(lambda o: None)
    q = SessionProjector.restore(p.snapshot())
    assert not q._observers


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return edit


BAD = [
    (_set(["version"], SNAPSHOT_VERSION + 1), "version", f"unsupported snapshot version {SNAPSHOT_VERSION + 1}"),
    (_set(["version"], 3), "eventIdDigest", "unknown field"),  # version 3 kept the ids themselves
    (_set(["eventIdDigest"], "md5"), "eventIdDigest", "blake2b-64-keyed"),
    (_set(["eventIdDigest"], "blake2b-128"), "eventIdDigest", "blake2b-64-keyed"),  # version 6's, not 7's
    (_set(["version"], 6), "eventIdKey", "unknown field"),  # version 6 had no key
    (_delete(["eventIdKey"]), "eventIdKey", "is required"),
    (_set(["eventIdKey"], "00" * 15), "eventIdKey", "32 lowercase hex digits"),
    (_set(["eventIdKey"], "AB" * 16), "eventIdKey", "32 lowercase hex digits"),
    (_set(["eventIdKey"], 7), "eventIdKey", "got int"),
    (_delete(["eventIdDigest"]), "eventIdDigest", "is required"),
    (_set(["version"], 1), "specDigest", "unknown field"),  # version 1 had no digest
    (_set(["version"], "1"), "version", "must be an integer"),
    (_delete(["version"]), "version", "is required"),
    (_set(["format"], "something-else"), "format", "not a session-lifecycle snapshot"),
    (_set(["spec"], "another-lifecycle"), "spec", "another-lifecycle"),
    (_set(["maxEventIds"], True), "maxEventIds", "must be an integer"),
    (_set(["maxFinishedTurns"], 0), "maxFinishedTurns", "at least 1"),
    (_set(["threads"], {}), "threads", "must be a JSON array"),
    (_set(["extra"], 1), "extra", "unknown field"),
    (_set(["threads", 0, "session", "status"], "sleeping"), "threads[0].session.status", "unknown status"),
    (_set(["threads", 0, "session", "status"], None), "threads[0].session.status", "must be a string"),
    (_delete(["threads", 0, "session", "lastError"]), "threads[0].session.lastError", "is required"),
    (_set(["threads", 0, "session", "updatedAt"], "yesterday"), "threads[0].session.updatedAt", "ISO 8601"),
    (_set(["threads", 0, "session", "activeTurnId"], 7), "threads[0].session.activeTurnId", "must be a string"),
    (_set(["threads", 0, "session", "runtimeMode"], None), "threads[0].session.runtimeMode", "must be a string"),
    (_set(["threads", 0, "session", "mood"], "ok"), "threads[0].session.mood", "unknown field"),
    (_set(["threads", 0, "seenEventDigests"], ["0" * 32, "0" * 32]), "threads[0].seenEventDigests[1]", "repeats"),
    (_set(["threads", 0, "seenEventDigests"], [f"{i:032x}" for i in range(9)]), "threads[0].seenEventDigests",
     "max_event_ids=8"),
    (_set(["threads", 0, "seenEventDigests"], ["b1"]), "threads[0].seenEventDigests[0]", "32 lowercase hex digits"),
    (_set(["threads", 0, "seenEventDigests"], ["A" * 32]), "threads[0].seenEventDigests[0]", "lowercase hex"),
    (_set(["threads", 0, "seenEventDigests"], ["0" * 31 + "\n"]), "threads[0].seenEventDigests[0]", "hex digits"),
    (_set(["threads", 0, "seenEventDigests"], [None]), "threads[0].seenEventDigests[0]", "got null"),
    (_set(["threads", 0, "seenEventIds"], ["b1"]), "threads[0].seenEventIds", "unknown field"),
    (_set(["threads", 0, "finishedTurns"], ["A", "B", "C"]), "threads[0].finishedTurns",
     "max_finished_turns=2"),
    (_set(["threads", 0, "finishedTurns"], [""]), "threads[0].finishedTurns[0]", "non-empty string"),
    (_set(["threads", 0], []), "threads[0]", "must be a JSON object"),
    (_delete(["threads", 0, "seenEventDigests"]), "threads[0].seenEventDigests", "is required"),
    (_set(["threads", 1, "session", "threadId"], "a"), "threads[1].session.threadId", "repeats"),
    # states no event can reach are refused: a restored projector must be one the proofs cover
    (_set(["threads", 1, "session", "activeTurnId"], "U9"), "threads[1].session",
     "inactive_status_holds_no_turn"),
    (_set(["threads", 0, "finishedTurns"], ["T2"]), "threads[0].session", "active_turn_not_finished"),
]


@pytest.mark.parametrize(("edit", "path", "text"), BAD)
def test_a_bad_snapshot_is_a_typed_error_naming_the_path(
    edit: Callable[[dict[str, Any]], None], path: str, text: str
) -> None:
    data = copy.deepcopy(busy_projector().snapshot())
    assert data["threads"][0]["session"]["threadId"] == "a"  # the edits above rely on the order
    edit(data)
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(data, **CAPS)
    assert info.value.path == path
    assert text in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("data", "text"), [("{not json", "not valid JSON"), ([], "must be a JSON object"),
                                            (b"null", "must be a JSON object")])
def test_a_snapshot_that_is_not_an_object(data: Any, text: str) -> None:
    with pytest.raises(SnapshotError, match=text) as info:
        SessionProjector.restore(data)
    assert info.value.path == "snapshot"


def test_restore_checks_the_spec_name() -> None:
    other = replace(builtin_spec(), name="my-lifecycle")
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(busy_projector().snapshot(), other)
    assert info.value.path == "spec"
    mine = SessionProjector(other)
    mine.apply(wire("x1", "session.started", "x"))
    assert SessionProjector.restore(mine.snapshot(), other).snapshot() == mine.snapshot()


# -- property: snapshot, restore, continue == continue -------------------------------------------

THREADS = ("t1", "t2")
TURNS = (None, "T1", "T2", "T3")
KINDS: list[tuple[str, dict[str, Any]]] = [
    ("session.started", {}), ("thread.started", {}), ("session.exited", {}),
    *[("session.state.changed", {"state": s, "reason": "r"})
      for s in ("starting", "ready", "running", "waiting", "stopped", "error")],
    ("turn.started", {}),
    *[("turn.completed", {"state": s}) for s in ("completed", "failed", "interrupted", "cancelled")],
    ("turn.completed", {}),
    ("turn.aborted", {"reason": "stop"}), ("runtime.error", {"message": "m"}), ("runtime.warning", {"message": "w"}),
    ("item.started", {}),
]

events = st.builds(
    lambda n, kind, thread, turn, at: wire(f"e{n}", kind[0], thread, turn, at, **kind[1]),
    st.integers(0, 12), st.sampled_from(KINDS), st.sampled_from(THREADS), st.sampled_from(TURNS),
    st.integers(0, 300),
)


@settings(max_examples=150, deadline=None)
@given(history=st.lists(events, max_size=40), data=st.data(),
       max_event_ids=st.integers(1, 5), max_finished_turns=st.integers(1, 3))
def test_snapshot_restore_continue_equals_continue(
    history: list[dict[str, Any]], data: st.DataObject, max_event_ids: int, max_finished_turns: int
) -> None:
    cut = data.draw(st.integers(0, len(history)), label="cut")
    straight = SessionProjector(max_event_ids=max_event_ids, max_finished_turns=max_finished_turns)
    expected = straight.apply_all(history)

    first = SessionProjector(max_event_ids=max_event_ids, max_finished_turns=max_finished_turns)
    before_cut = first.apply_all(history[:cut])
    saved = first.snapshot()
    resumed = SessionProjector.restore(json.loads(json.dumps(saved)), max_event_ids=max_event_ids,
                                       max_finished_turns=max_finished_turns)
    assert resumed.snapshot() == saved  # exact round trip
    after_cut = resumed.apply_all(history[cut:])

    got = before_cut + after_cut
    assert [(o.kind, o.reason, o.before, o.after, o.transition) for o in got] == [
        (o.kind, o.reason, o.before, o.after, o.transition) for o in expected
    ]
    assert resumed.snapshot() == straight.snapshot()


# -- the eventIds as digests (keyed in version 7, unkeyed in 4 to 6) ------------------------------

BUSY_IDS = {"a": ["a1", "a2", "a3", "a4"], "b": ["b1", "b2", "b3", "b4"], "c": ["c0"]}


def test_a_snapshot_keeps_event_id_digests_not_ids() -> None:
    p = busy_projector()
    data = p.snapshot()
    assert data["eventIdDigest"] == "blake2b-64-keyed" and data["eventIdKey"] == p.event_id_key.hex()
    text = json.dumps(data)
    assert '"a1"' not in text and event_digest_hex("a1", p.event_id_key) in text
    assert all(len(d) == 16 for t in data["threads"] for d in t["seenEventDigests"])


def test_a_projector_restored_digests_with_the_snapshots_key() -> None:
    key = bytes(range(16))
    p = SessionProjector(event_id_key=key, **CAPS)
    p.apply_all([wire("k1", "session.started", "k"), wire("k2", "turn.started", "k", "K1")])
    data = json.loads(json.dumps(p.snapshot()))
    assert data["eventIdKey"] == key.hex() and SessionProjector().event_id_key != key
    q = SessionProjector.restore(data, **CAPS)
    assert q.event_id_key == key
    assert q.seen_event_digests("k") == (event_digest_hex("k1", key), event_digest_hex("k2", key))
    assert q.apply(wire("k2", "turn.started", "k", "K1")).kind == "duplicate"
    # Under another key the same digests name nothing: the key is part of the memory.
    data["eventIdKey"] = bytes(range(1, 17)).hex()
    assert SessionProjector.restore(data, **CAPS).apply(wire("k2", "turn.started", "k", "K1")).kind != "duplicate"


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_older_snapshot_with_event_ids_restores_them_as_digests(version: int) -> None:
    p = busy_projector()
    old = older_snapshot(p.snapshot(), version, BUSY_IDS)
    assert old["threads"][0]["seenEventIds"] == BUSY_IDS["a"]
    q = SessionProjector.restore(json.dumps(old), **CAPS)
    assert q.snapshot() == p.snapshot()  # written back as version 7, digests in the same order
    assert q.apply(wire("b2", "turn.started", "b", "U9")).kind == "duplicate"
    assert q.apply(wire("b9", "session.started", "b")).kind == "applied"


def test_an_older_snapshot_checks_its_event_ids_as_before() -> None:
    old = older_snapshot(busy_projector().snapshot(), 3, BUSY_IDS)
    old["threads"][0]["seenEventIds"] = ["a1", "a1"]
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(old, **CAPS)
    assert info.value.path == "threads[0].seenEventIds[1]"


# -- open requests (version 6) ------------------------------------------------------------------


def asking_projector() -> SessionProjector:
    """Thread `r` running turn R1 with three open requests: an integer id, a text id and none;
    thread `q` settled (ready) with none."""
    p = SessionProjector()
    p.apply_all([
        wire("r1", "turn.started", "r", "R1", at=1),
        wire("r2", "request.opened", "r", "R1", at=2, requestId=7),
        wire("r3", "user-input.requested", "r", "R1", at=3, requestId="ask-1"),
        wire("r4", "request.opened", "r", "R1", at=4),
        wire("q1", "session.started", "q", at=5),
    ])
    return p


ASKED = ((7, "approval"), ("ask-1", "user-input"), (None, "approval"))


def test_open_requests_of_every_id_type_round_trip() -> None:
    p = asking_projector()
    assert (p["r"].open_requests, p["r"].awaiting) == (ASKED, "approval")
    data = json.loads(json.dumps(p.snapshot()))
    assert data["threads"][0]["session"]["openRequests"] == [
        {"requestId": 7, "kind": "approval"}, {"requestId": "ask-1", "kind": "user-input"},
        {"requestId": None, "kind": "approval"}]
    assert data["threads"][1]["session"]["openRequests"] == []
    q = SessionProjector.restore(json.dumps(data))
    assert q.sessions() == p.sessions() and q.snapshot() == p.snapshot()
    # The ids keep their type: "7" is another request than 7, which the restored one still holds.
    assert q.apply(wire("r5", "request.resolved", "r", "R1", at=6, requestId="7")).after.open_requests == ASKED
    assert q.apply(wire("r6", "request.resolved", "r", "R1", at=7, requestId=7)).after.open_requests == ASKED[1:]


def test_an_integer_and_a_text_id_of_the_same_digits_stay_two_requests() -> None:
    p = SessionProjector()
    p.apply_all([wire("x1", "turn.started", "x", "X1", at=1),
                 wire("x2", "request.opened", "x", "X1", at=2, requestId=1),
                 wire("x3", "user-input.requested", "x", "X1", at=3, requestId="1")])
    q = SessionProjector.restore(json.dumps(p.snapshot()))
    assert q["x"].open_requests == ((1, "approval"), ("1", "user-input")) and q["x"].awaiting == "user-input"


def _as_version(data: dict[str, Any], version: int, seen: dict[str, list[str]]) -> dict[str, Any]:
    """`data` as version 4, 5 or 6 wrote it: each eventId (`seen`, per thread, the ones `data`
    holds) as its unkeyed 128-bit digest and no key; before 6 without the sessions' openRequests
    (and, in 4, the tombstones)."""
    old = copy.deepcopy(data)
    old["version"] = version
    key = bytes.fromhex(old.pop("eventIdKey"))
    old["eventIdDigest"] = "blake2b-128"
    if version < 5:
        assert old.pop("tombstones") == []
    for thread in old["threads"]:
        ids = seen[thread["session"]["threadId"]]
        assert [event_digest_hex(i, key) for i in ids] == thread["seenEventDigests"], "not the ids of this snapshot"
        thread["seenEventDigests"] = [legacy_digest_hex(i) for i in ids]
        if version < 6:
            del thread["session"]["openRequests"]
    return old


@pytest.mark.parametrize("version", [4, 5, 6])
def test_a_snapshot_with_unkeyed_digests_still_deduplicates(version: int) -> None:
    p = busy_projector()
    old = _as_version(p.snapshot(), version, BUSY_IDS)
    assert all(len(d) == 32 for t in old["threads"] for d in t["seenEventDigests"])
    q = SessionProjector.restore(json.dumps(old), **CAPS)
    assert q.seen_event_digests("b") == tuple(legacy_digest_hex(i) for i in BUSY_IDS["b"])
    assert q.has_seen("b", "b2") and not q.has_seen("b", "b9")
    assert q.apply(wire("b2", "turn.started", "b", "U9")).kind == "duplicate"
    assert q.apply(wire("b9", "session.started", "b")).kind == "applied"
    # The new id is kept keyed, after the older digests, and the mix writes back as version 7.
    kept = q.seen_event_digests("b")
    assert kept == (*(legacy_digest_hex(i) for i in BUSY_IDS["b"]), event_digest_hex("b9", q.event_id_key))
    again = SessionProjector.restore(json.dumps(q.snapshot()), **CAPS)
    assert again.seen_event_digests("b") == kept
    assert again.apply(wire("b1", "session.started", "b")).kind == "duplicate"
    assert again.apply(wire("b9", "session.started", "b")).kind == "duplicate"


def test_a_version_6_snapshot_may_not_hold_keyed_digests() -> None:
    old = _as_version(busy_projector().snapshot(), 6, BUSY_IDS)
    old["threads"][0]["seenEventDigests"][0] = "0" * 16
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(old, **CAPS)
    assert info.value.path == "threads[0].seenEventDigests[0]" and "32 lowercase hex digits" in str(info.value)


@pytest.mark.parametrize("version", [4, 5])
def test_a_version_4_or_5_snapshot_restores_awaiting_as_one_request_without_id(version: int) -> None:
    p = SessionProjector()
    p.apply_all([wire("w1", "turn.started", "w", "W1", at=1), wire("w2", "user-input.requested", "w", "W1", at=2),
                 wire("v1", "session.started", "v", at=3)])
    q = SessionProjector.restore(_as_version(p.snapshot(), version, {"w": ["w1", "w2"], "v": ["v1"]}))
    # The one slot of version 5 was one request whose id was not kept: awaiting stays its kind.
    assert (q["w"].awaiting, q["w"].open_requests) == ("user-input", ((None, "user-input"),))
    assert (q["v"].awaiting, q["v"].open_requests) == (None, ())
    assert q.snapshot()["version"] == SNAPSHOT_VERSION
    # A resolution naming no request ends it, as it ended the slot.
    after = q.apply(wire("w3", "request.resolved", "w", "W1", at=4)).after
    assert (after.awaiting, after.open_requests) == (None, ())


def test_a_version_5_snapshot_whose_ids_were_kept_is_refused() -> None:
    # openRequests did not exist in version 5: a file that has them is not what it says it is.
    data = asking_projector().snapshot()
    data = {**_as_version(data, 5, {"r": ["r1", "r2", "r3", "r4"], "q": ["q1"]}), "threads": data["threads"]}
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(data)
    assert info.value.path == "threads[0].session.openRequests" and "unknown field" in str(info.value)


def test_a_version_3_snapshot_restores_awaiting_as_one_request_without_id() -> None:
    p = SessionProjector()
    p.apply_all([wire("o1", "turn.started", "o", "O1", at=1), wire("o2", "request.opened", "o", "O1", at=2)])
    q = SessionProjector.restore(older_snapshot(p.snapshot(), 3, {"o": ["o1", "o2"]}))
    assert q["o"].open_requests == ((None, "approval"),) and q["o"] == p["o"]
