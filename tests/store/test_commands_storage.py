"""The orchestrator's side survives storage: snapshots (version 3 on; versions 1 and 2 still restore),
and the SQLite store (a migration adds the columns; a forgotten thread loses its rows)."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path

import pytest
from helpers import Events, older_snapshot

from statemachine import OutcomeKind, SessionProjector, builtin_spec
from statemachine.core.record import event_digest_hex, legacy_digest_hex
from statemachine.runtime.snapshot import SnapshotError
from statemachine.store import open_store
from statemachine.store.schema import MIGRATIONS


def _busy() -> SessionProjector:
    p, ev = SessionProjector(), Events("t")
    for event in (ev("turn.started", "A"), ev("user-input.requested", "A"), ev("thread.turn.start", "B")):
        p.apply(event)
        _BUSY_IDS.append(event["eventId"])
    return p


_BUSY_IDS: list[str] = []  # the eventIds of the latest _busy()


def test_a_snapshot_carries_the_pending_turn_and_the_request() -> None:
    p = _busy()
    data = p.snapshot()
    assert data["version"] >= 3
    assert data["threads"][0]["session"]["pendingTurn"] == {"turnId": "B"}
    assert data["threads"][0]["session"]["awaiting"] == "user-input"
    restored = SessionProjector.restore(data)
    assert restored["t"] == p["t"]
    # And it goes on from there: the requested turn supersedes the running one.
    assert restored.apply(Events("t")("turn.started", "B")).after.active_turn_id == "B"


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_snapshot_still_restores(version: int) -> None:
    _BUSY_IDS.clear()
    data = older_snapshot(_busy().snapshot(), version, {"t": _BUSY_IDS})
    for thread in data["threads"]:  # these versions had no such fields
        del thread["session"]["pendingTurn"], thread["session"]["awaiting"]
    session = SessionProjector.restore(data)["t"]
    assert (session.status, session.active_turn_id, session.pending_turn, session.awaiting) == (
        "running", "A", None, None)


@pytest.mark.parametrize(("field", "value", "path"), [
    ("pendingTurn", {"turnId": ""}, "threads[0].session.pendingTurn.turnId"),
    ("pendingTurn", {"turn": "B"}, "threads[0].session.pendingTurn.turn"),
    ("pendingTurn", "B", "threads[0].session.pendingTurn"),
    ("awaiting", 3, "threads[0].session.awaiting"),
])
def test_a_bad_orchestrator_field_is_refused_naming_it(field: str, value: object, path: str) -> None:
    data = copy.deepcopy(_busy().snapshot())
    data["threads"][0]["session"][field] = value
    with pytest.raises(SnapshotError) as info:
        SessionProjector.restore(data)
    assert info.value.path == path


def test_a_settled_session_with_a_pending_turn_is_refused() -> None:
    data = copy.deepcopy(_busy().snapshot())
    session = data["threads"][0]["session"]
    session.update(status="ready", activeTurnId=None, awaiting=None)
    with pytest.raises(SnapshotError, match="may not hold a pending turn"):
        SessionProjector.restore(data)


def test_the_store_keeps_the_fields_and_forgets_a_thread(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    ev = Events("t")
    with open_store(path) as store:
        store.apply(ev("turn.started", "A"))
        store.apply(ev("request.opened", "A"))
        store.apply(ev("thread.turn.start", "B"))
        session = store.get("t")
        assert session is not None and (session.pending_turn, session.awaiting) == ("B", "approval")
        assert store.apply(ev("thread.delete")).kind is OutcomeKind.FORGOTTEN
        assert store.get("t") is None and store.threads() == []
        # Forgotten and started again in one batch: the new session, no finished turns, and the
        # ids seen before the deletes still remembered (the tombstone's memory carries over).
        again = ev("session.started")
        store.apply_all([ev("turn.started", "C"), ev("thread.delete"), again])
        thread = store.thread("t")
        assert thread is not None
        assert (thread.session.status, thread.seen_event_digests[-1], thread.finished_turns) == (
            "ready", event_digest_hex(again["eventId"], store.event_id_key), ())
        assert len(thread.seen_event_digests) == 7 and store.tombstones() == []


def test_a_version_1_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for statement in MIGRATIONS["sqlite"][0]:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version (version) VALUES (1)")
    # The settings as version 1 wrote them, in the transaction that made the store.
    conn.executemany("INSERT INTO store_meta (key, value) VALUES (?, ?)",
                     [("spec", builtin_spec().name), ("maxEventIds", "1024"), ("maxFinishedTurns", "256")])
    conn.execute("INSERT INTO sessions (thread_id, status, provider_name) VALUES ('t', 'ready', 'codex')")
    # eventIds as version 1 kept them; migration 3 digests them in order
    conn.executemany("INSERT INTO seen_events (thread_id, seq, event_id) VALUES ('t', ?, ?)", [(1, "e-1"), (2, "e-2")])
    conn.commit()
    conn.close()
    with open_store(str(path)) as store:
        session = store.get("t")
        assert session is not None and (session.status, session.pending_turn, session.awaiting) == (
            "ready", None, None)
        thread = store.thread("t")
        assert thread is not None and thread.seen_event_digests == (legacy_digest_hex("e-1"), legacy_digest_hex("e-2"))
        assert store.apply(Events("t")("session.started", event_id="e-2")).kind is OutcomeKind.DUPLICATE
        # The 128-bit digests of before stay until forgotten; a new eventId is kept under the store's key.
        assert store.apply(Events("t")("session.started", event_id="e-3")).kind is OutcomeKind.APPLIED
        kept = store.thread("t")
        assert kept is not None and kept.seen_event_digests == (
            legacy_digest_hex("e-1"), legacy_digest_hex("e-2"), event_digest_hex("e-3", store.event_id_key))
        assert store.apply(Events("t")("thread.turn.start")).after.pending_turn == ""
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS["sqlite"]),)]
    assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'seen_events'").fetchall()
