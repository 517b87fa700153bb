"""Tampered snapshots: the restoring projector's limits win, and the spec's content is checked."""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import older_snapshot

from statemachine import Session, SessionProjector, SnapshotError, builtin_spec, expire_stale_turns, reconcile
from statemachine.cli.main import main
from statemachine.core.event import MAX_ID_LENGTH
from statemachine.runtime.snapshot import SNAPSHOT_VERSION
from statemachine.spec.load import parse_spec

SPEC_FILE = Path(__file__).resolve().parents[2] / "specs" / "session_lifecycle.yaml"


def wire(event_id: str, type_: str, thread: str = "t1", turn: str | None = None, **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"eventId": event_id, "type": type_, "provider": "codex", "threadId": thread,
                             "createdAt": "2026-11-20T10:00:00Z", "payload": payload}
    if turn is not None:
        event["turnId"] = turn
    return event


def saved() -> dict[str, Any]:
    p = SessionProjector()
    p.apply_all([
        wire("a1", "turn.started", "a", "T1"),
        wire("a2", "turn.completed", "a", "T1"),
        wire("a3", "turn.started", "a", "T2"),
        wire("a4", "turn.completed", "a", "T2"),
        wire("b1", "turn.started", "b", "U1"),
    ])
    return copy.deepcopy(p.snapshot())


def test_caps_in_the_file_do_not_lift_the_restorers_caps() -> None:
    data = saved()
    data["maxEventIds"] = 10**18
    data["maxFinishedTurns"] = 10**18
    q = SessionProjector.restore(data)
    assert (q.max_event_ids, q.max_finished_turns) == (1024, 256)
    q2 = SessionProjector.restore(data, max_event_ids=4, max_finished_turns=2)
    assert (q2.max_event_ids, q2.max_finished_turns) == (4, 2)
    for _ in range(10):  # the restored memory keeps to the restorer's cap
        q2.apply(wire(f"x{_}", "runtime.warning", "a", message="w"))
    assert q2.seen_count("a") == 4


def test_a_tiny_cap_in_the_file_cannot_revive_finished_turns() -> None:
    data = saved()
    data["maxFinishedTurns"] = 1  # as if only the last turn were remembered
    q = SessionProjector.restore(data)
    assert q.finished_turns("a") == ("T1", "T2")
    late = q.apply(wire("late", "turn.started", "a", "T1"))
    assert (late.kind, late.reason) == ("rejected", "turn_finished")


def test_more_ids_than_the_restorer_allows_are_refused_naming_the_field() -> None:
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(saved(), max_finished_turns=1)
    assert info.value.path == "threads[0].finishedTurns"
    assert "max_finished_turns=1" in str(info.value)
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(saved(), max_event_ids=2)
    assert info.value.path == "threads[0].seenEventDigests"


@pytest.mark.parametrize(
    ("where", "path"),
    [
        (("threads", 0, "finishedTurns", 0), "threads[0].finishedTurns[0]"),
        (("threads", 1, "session", "activeTurnId"), "threads[1].session.activeTurnId"),
        (("threads", 1, "session", "threadId"), "threads[1].session.threadId"),
        (("threads", 1, "session", "providerName"), "threads[1].session.providerName"),
    ],
)
def test_ids_past_the_parsers_limit_are_refused(where: tuple[Any, ...], path: str) -> None:
    data = saved()
    target: Any = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = "x" * (MAX_ID_LENGTH + 1)
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(data)
    assert info.value.path == path


@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b"], ids=["NUL", "lone surrogate"])
@pytest.mark.parametrize(
    ("where", "path"),
    [
        (("threads", 0, "finishedTurns", 0), "threads[0].finishedTurns[0]"),
        (("threads", 1, "session", "activeTurnId"), "threads[1].session.activeTurnId"),
        (("threads", 1, "session", "providerName"), "threads[1].session.providerName"),
        (("threads", 1, "session", "runtimeMode"), "threads[1].session.runtimeMode"),
        (("threads", 1, "session", "pendingTurn"), "threads[1].session.pendingTurn.turnId"),
    ],
)
def test_text_the_parser_refuses_is_refused_in_a_snapshot(where: tuple[Any, ...], path: str, text: str) -> None:
    # Such a session could not come from events, and PostgreSQL cannot keep a NUL: a store import
    # failed in the database's words, and SQLite kept it.
    data = saved()
    target: Any = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = {"turnId": text} if where[-1] == "pendingTurn" else text
    with pytest.raises(SnapshotError, match=r"NUL|lone surrogate") as info:
        SessionProjector.restore(json.dumps(data))
    assert info.value.path == path


def test_a_version_3_snapshots_event_ids_past_the_parsers_limit_are_refused() -> None:
    data = older_snapshot(saved(), 3, SAVED_IDS)
    data["threads"][0]["seenEventIds"][0] = "x" * (MAX_ID_LENGTH + 1)
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(data)
    assert info.value.path == "threads[0].seenEventIds[0]"


def test_sweeps_after_a_restore_never_meet_an_id_they_cannot_use() -> None:
    # Before, over-long ids restored and made these raise halfway; now every restored id fits.
    data = saved()
    data["threads"][1]["session"]["activeTurnId"] = "u" * MAX_ID_LENGTH
    data["threads"][1]["session"]["threadId"] = "b" * MAX_ID_LENGTH
    q = SessionProjector.restore(data)
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert [o.kind for o in expire_stale_turns(q, now, timedelta(minutes=10))] == ["applied"]
    q.apply(wire("c1", "turn.started", "c", "C1"))
    assert [o.kind for o in reconcile(q, set(), now=now)] == ["applied"]


def test_snapshot_text_over_the_size_limit_is_refused_unread() -> None:
    text = json.dumps(saved())
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(text, max_bytes=len(text) - 1)
    assert info.value.path == "snapshot" and "max_bytes" in str(info.value)
    with pytest.raises(SnapshotError):
        SessionProjector.restore(text.encode(), max_bytes=10)
    assert SessionProjector.restore(text, max_bytes=len(text)).sessions()


def test_replay_snapshot_in_dev_zero_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    log = tmp_path / "log.jsonl"
    log.write_text("")
    assert main(["replay", "--snapshot-in", "/dev/zero", str(log)]) == 2
    err = capsys.readouterr().err
    assert "bad snapshot /dev/zero" in err and "max_bytes" in err
    assert "Traceback" not in err


def test_the_snapshot_carries_the_spec_digest_and_a_mismatch_is_refused() -> None:
    data = saved()
    assert data["version"] == SNAPSHOT_VERSION and data["specDigest"] == builtin_spec().digest
    changed = parse_spec(SPEC_FILE.read_text().replace("default: Turn failed", "default: Turn went wrong"))
    assert changed.name == builtin_spec().name and changed.digest != builtin_spec().digest
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(data, changed)
    assert info.value.path == "specDigest" and "allow_spec_change" in str(info.value)
    q = SessionProjector.restore(data, changed, allow_spec_change=True)
    assert q.sessions() == SessionProjector.restore(data).sessions()
    # the same content, loaded again, is the same spec
    assert SessionProjector.restore(data, parse_spec(SPEC_FILE.read_text())).sessions()


SAVED_IDS = {"a": ["a1", "a2", "a3", "a4"], "b": ["b1"]}


def test_a_version_1_snapshot_without_a_digest_still_restores() -> None:
    data = older_snapshot(saved(), 1, SAVED_IDS)
    assert "specDigest" not in data and "pendingTurn" not in data["threads"][0]["session"]
    q = SessionProjector.restore(data)
    assert q.sessions() == SessionProjector.restore(saved()).sessions()
    assert q.snapshot() == SessionProjector.restore(saved()).snapshot()  # the ids digested as kept
    assert q.snapshot()["version"] == SNAPSHOT_VERSION  # written back in the current version


def test_an_updated_at_far_ahead_of_the_clock_is_refused() -> None:
    data = saved()
    data["threads"][0]["session"]["updatedAt"] = "9999-01-01T00:00:00Z"
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(data)
    assert info.value.path == "threads[0].session.updatedAt"
    assert SessionProjector.restore(data, max_clock_skew=None)["a"].updated_at == "9999-01-01T00:00:00Z"


def test_a_refused_snapshot_names_a_broken_invariant() -> None:
    data = saved()
    data["threads"][0]["session"]["activeTurnId"] = "T9"  # `a` is ready: it may hold no turn
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(data)
    assert info.value.path == "threads[0].session"
    assert "inactive_status_holds_no_turn" in str(info.value)


def test_a_restored_session_is_checked_against_the_requirements_not_only_the_specs_invariants() -> None:
    from statemachine.spec.load import BUILTIN_SPEC, parse_spec

    text = BUILTIN_SPEC.read_text(encoding="utf-8")
    dropped = text.replace(
        "  - name: inactive_status_holds_no_turn\n    kind: no_turn_unless_holds_turn\n"
        "    description: A session whose status may not hold a turn has activeTurnId null.\n", "")
    assert dropped != text
    weak = parse_spec(dropped)  # a spec that no longer lists the core invariant
    source = SessionProjector(weak)
    source.seed(Session("t", "ready", "codex", "T1"))
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(source.snapshot(), weak)
    assert "no_turn_in_inactive_status" in str(info.value)
    assert "inactive_status_holds_no_turn" not in str(info.value)



# -- open requests: each refusal names its field ------------------------------------------------


def asking() -> dict[str, Any]:
    """Thread `r` (threads[0]) running with requests 7, "ask-1" and one without id; `q` (threads[1]) ready."""
    p = SessionProjector()
    p.apply_all([
        wire("r1", "turn.started", "r", "R1"),
        {**wire("r2", "request.opened", "r", "R1", requestId=7), "createdAt": "2026-11-20T10:00:01Z"},
        {**wire("r3", "user-input.requested", "r", "R1", requestId="ask-1"), "createdAt": "2026-11-20T10:00:02Z"},
        {**wire("r4", "request.opened", "r", "R1"), "createdAt": "2026-11-20T10:00:03Z"},
        wire("q1", "session.started", "q"),
    ])
    return json.loads(json.dumps(p.snapshot()))


def _request(rid: Any, kind: Any = "approval") -> dict[str, Any]:
    return {"requestId": rid, "kind": kind}


_R = "threads[0].session"
_Q = "threads[1].session"


@pytest.mark.parametrize(("thread", "change", "path", "text"), [
    (0, {"openRequests": None}, f"{_R}.openRequests", "must be a JSON array, got null"),
    (0, {"openRequests": {"7": "approval"}}, f"{_R}.openRequests", "must be a JSON array"),
    (0, {"openRequests": [[7, "approval"]]}, f"{_R}.openRequests[0]", "must be a JSON object"),
    (0, {"openRequests": [{"kind": "approval"}]}, f"{_R}.openRequests[0].requestId", "is required"),
    (0, {"openRequests": [{"requestId": 7}]}, f"{_R}.openRequests[0].kind", "is required"),
    (0, {"openRequests": [{**_request(7), "turnId": "R1"}]}, f"{_R}.openRequests[0].turnId", "unknown field"),
    (0, {"openRequests": [_request(True)]}, f"{_R}.openRequests[0].requestId", "got bool"),
    (0, {"openRequests": [_request(False)]}, f"{_R}.openRequests[0].requestId", "got bool"),
    (0, {"openRequests": [_request(1.0)]}, f"{_R}.openRequests[0].requestId", "got float"),
    (0, {"openRequests": [_request([7])]}, f"{_R}.openRequests[0].requestId", "got list"),
    (0, {"openRequests": [_request(2**53)]}, f"{_R}.openRequests[0].requestId", "beyond +/-9007199254740991"),
    (0, {"openRequests": [_request(-(2**53))]}, f"{_R}.openRequests[0].requestId", "beyond"),
    (0, {"openRequests": [_request("")]}, f"{_R}.openRequests[0].requestId", "must not be empty"),
    (0, {"openRequests": [_request("x" * (MAX_ID_LENGTH + 1))]}, f"{_R}.openRequests[0].requestId",
     f"limit is {MAX_ID_LENGTH}"),
    (0, {"openRequests": [_request("a\x00b")]}, f"{_R}.openRequests[0].requestId", "NUL"),
    (0, {"openRequests": [_request("a\ud800b")]}, f"{_R}.openRequests[0].requestId", "lone surrogate"),
    (0, {"openRequests": [_request(7), _request(7)]}, f"{_R}.openRequests[1].requestId", "repeats 7"),
    (0, {"openRequests": [_request("7"), _request(8), _request("7")]}, f"{_R}.openRequests[2].requestId",
     'repeats "7"'),
    (0, {"openRequests": [_request(None), _request(None)]}, f"{_R}.openRequests[1].requestId", "repeats null"),
    (0, {"openRequests": [_request(i) for i in range(33)]}, f"{_R}.openRequests", "MAX_OPEN_REQUESTS=32"),
    (0, {"openRequests": [_request(7, "")]}, f"{_R}.openRequests[0].kind", "must not be empty"),
    (0, {"openRequests": [_request(7, None)]}, f"{_R}.openRequests[0].kind", "must be a string"),
    (0, {"openRequests": [_request(7, 1)]}, f"{_R}.openRequests[0].kind", "must be a string"),
    (0, {"openRequests": [_request(7, "x" * (MAX_ID_LENGTH + 1))]}, f"{_R}.openRequests[0].kind", "characters"),
    (0, {"openRequests": [_request(7, "a\x00b")]}, f"{_R}.openRequests[0].kind", "NUL"),
    # awaiting is what the newest open request asks, and null only when none is open
    (0, {"awaiting": "user-input"}, f"{_R}.awaiting", "newest open request"),
    (0, {"awaiting": None}, f"{_R}.awaiting", "newest open request"),
    (0, {"openRequests": []}, f"{_R}.awaiting", "must be null"),
    (0, {"openRequests": [_request(7), _request("ask-1", "user-input")]}, f"{_R}.awaiting", 'must be "user-input"'),
    # a status that may not hold a turn holds no request
    (1, {"openRequests": [_request(7)]}, f"{_Q}.openRequests", "a ready session may hold no open request"),
    (1, {"openRequests": [_request(7)], "awaiting": "approval"}, _Q, "may not hold a pending turn or await"),
])
def test_bad_open_requests_are_refused_naming_the_field(thread: int, change: dict[str, Any], path: str,
                                                          text: str) -> None:
    data = asking()
    assert [t["session"]["threadId"] for t in data["threads"]] == ["r", "q"]  # the paths rely on the order
    data["threads"][thread]["session"].update(change)
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(json.dumps(data))
    assert info.value.path == path
    assert text in info.value.message


def test_a_current_snapshot_without_open_requests_is_refused() -> None:
    # Version 6 always writes the list: one missing would drop open requests silently.
    data = asking()
    del data["threads"][1]["session"]["openRequests"]
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(data)
    assert info.value.path == f"{_Q}.openRequests" and info.value.message == "is required"


def test_open_requests_at_the_limits_restore() -> None:
    data = asking()
    edge = [_request(2**53 - 1), _request(-(2**53 - 1)), _request("x" * MAX_ID_LENGTH), _request(1), _request("1"),
            *(_request(f"r{i}") for i in range(26)), _request(None, "user-input")]
    assert len(edge) == 32
    data["threads"][0]["session"].update(openRequests=edge, awaiting="user-input")
    session = SessionProjector.restore(data)["r"]
    assert len(session.open_requests) == 32 and session.open_requests[3:5] == ((1, "approval"), ("1", "approval"))
