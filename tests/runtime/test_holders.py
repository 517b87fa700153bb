"""One interface for holding sessions: the projector and the SQLite and PostgreSQL stores.

The same API, the same operations (reaper, stale turns, reconcile) on each, and every loaded row
checked as `restore()` checks a snapshot."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pg import PgCluster, fresh_database, pg_cluster

from statemachine import EventError, SessionProjector, expire_stale_turns, reapable_sessions, reconcile
from statemachine.runtime.holder import SessionHolder
from statemachine.store import StoredRowError, open_store

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with pg_cluster() as c:
        yield c


def iso(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def wire(n: int, type_: str, thread: str, turn: str | None = None, minute: float = 0, **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"eventId": f"h-{n}", "type": type_, "provider": "codex", "threadId": thread,
                             "createdAt": iso(minute), "payload": payload}
    if turn is not None:
        event["turnId"] = turn
    return event


def story() -> list[dict[str, Any]]:
    """Three threads: one idle and ready, one running a turn that goes stale, one running a recent
    turn (not stale, but reconciled when its provider is gone)."""
    return [
        wire(1, "session.started", "idle"), wire(2, "session.state.changed", "idle", state="ready"),
        wire(3, "session.started", "stale"), wire(4, "turn.started", "stale", "T1", minute=1),
        wire(5, "session.started", "live"), wire(6, "turn.started", "live", "T2", minute=25),
        wire(7, "item.delta", "live", "T2", minute=26),
    ]


Holder = Callable[[Path, PgCluster], AbstractContextManager[SessionHolder]]


def memory(_tmp: Path, _cluster: PgCluster) -> AbstractContextManager[SessionHolder]:
    return nullcontext(SessionProjector())


def sqlite_store(tmp: Path, _cluster: PgCluster) -> AbstractContextManager[SessionHolder]:
    return open_store(str(tmp / "s.db"))  # type: ignore[return-value]


def postgres_store(_tmp: Path, cluster: PgCluster) -> AbstractContextManager[SessionHolder]:
    return open_store(fresh_database(cluster))  # type: ignore[return-value]


HOLDERS = {"memory": memory, "sqlite": sqlite_store, "postgres": postgres_store}


def run_operations(holder: SessionHolder) -> dict[str, Any]:
    holder.apply_all(story())
    reaped = reapable_sessions(holder, T0 + timedelta(minutes=30), threshold=timedelta(minutes=20))
    expired = expire_stale_turns(holder, T0 + timedelta(minutes=30), timedelta(minutes=20))
    restarted = reconcile(holder, {"idle"}, now=T0 + timedelta(minutes=31))
    return {
        "reaped": reaped,
        "expired": [(o.kind.value, o.after.to_wire()) for o in expired],
        "reconciled": [(o.kind.value, o.after.to_wire()) for o in restarted],
        "sessions": {t: s.to_wire() for t, s in holder.sessions().items()},
        "order": list(holder),
        "len": len(holder),
        "snapshot": holder.snapshot()["threads"],
    }


@pytest.mark.parametrize("name", ["sqlite", "postgres"])
def test_operations_run_on_every_store_as_on_the_projector(tmp_path: Path, cluster: PgCluster, name: str) -> None:
    with HOLDERS[name](tmp_path, cluster) as holder:
        # The projector digests eventIds with the store's key, so that the memories compare.
        expected = run_operations(SessionProjector(event_id_key=holder.event_id_key))  # type: ignore[attr-defined]
        assert expected["reaped"] and expected["expired"] and expected["reconciled"]
        assert run_operations(holder) == expected


@pytest.mark.parametrize("name", list(HOLDERS))
def test_the_same_api_on_every_holder(tmp_path: Path, cluster: PgCluster, name: str) -> None:
    with HOLDERS[name](tmp_path, cluster) as holder:
        result = holder.apply_batch([*map(_line, story()), b"{broken", b""])
        assert (result.counts["applied"], result.counts["ignored"], result.counts["malformed"]) == (6, 1, 1)
        assert result.lines == 9
        with pytest.raises(EventError):
            holder.apply_all([wire(20, "turn.completed", "live", "T2", state="completed"), {"eventId": ""}])
        assert holder.get("live").status == "running"  # type: ignore[union-attr]  # nothing of it applied
        seen: list[str] = []
        holder.subscribe(lambda o: seen.append(o.kind.value))
        holder.apply(wire(21, "turn.completed", "live", "T2", minute=2, state="completed"))
        assert seen == ["applied"]
        assert holder.forget("idle") and not holder.forget("idle")
        assert list(holder) == ["stale", "live"]


def _line(event: dict[str, Any]) -> bytes:
    import json

    return json.dumps(event).encode()


TAMPERING = {
    "idle with an active turn": ("UPDATE sessions SET status = 'idle', active_turn_id = 'T9'", "session"),
    "unknown status": ("UPDATE sessions SET status = 'sleeping'", "session.status"),
    "a blob in a text column": ("UPDATE sessions SET last_error = X'00ff'", "session.lastError"),
    "a blob for the provider": ("UPDATE sessions SET provider_name = X'41'", "session.providerName"),
    "a bad digest": ("UPDATE seen_event_digests SET digest = 'zz' WHERE seq = 1", "seenEventDigests[0]"),
    "orphan memory rows": ("INSERT INTO finished_turns (thread_id, seq, turn_id) VALUES ('ghost', 1, 'T')",
                           "finished_turns"),
    "an id past the limit": (f"UPDATE sessions SET active_turn_id = '{'x' * 300}'", "session.activeTurnId"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_a_tampered_row_is_refused_naming_the_thread_and_field(tmp_path: Path, case: str) -> None:
    path = tmp_path / "s.db"
    with open_store(str(path)) as store:
        store.apply_all([wire(1, "session.started", "t1"), wire(2, "turn.started", "t1", "T1")])
    sql, field = TAMPERING[case]
    with sqlite3.connect(path) as conn:
        conn.execute(sql)
    with open_store(str(path)) as store:
        reads: list[Callable[[], object]] = [store.threads, store.snapshot]
        if "orphan" not in case:  # a thread's own reads (an orphan's thread has no session to read)
            reads += [lambda: store.get("t1"), lambda: store.apply(wire(3, "item.delta", "t1"))]
        for read in reads:
            with pytest.raises(StoredRowError) as caught:
                read()
            assert caught.value.field.startswith(field), caught.value
            assert caught.value.thread_id == ("ghost" if "orphan" in case else "t1")
    proc = subprocess.run([sys.executable, "-m", "statemachine", "store", "export", str(path)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env={**os.environ, "SESSION_LIFECYCLE_CACHE": "off"})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "is invalid" in proc.stderr


def test_an_untampered_store_passes_the_row_checks(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "s.db")) as store:
        store.apply_all(story())
        assert [t.session.thread_id for t in store.threads()] == ["idle", "stale", "live"]


META_TAMPERING = {
    "a cap that is not a number": "UPDATE store_meta SET value = 'abc' WHERE key = 'maxEventIds'",
    "a zero cap": "UPDATE store_meta SET value = '0' WHERE key = 'maxEventIds'",
    "a negative cap": "UPDATE store_meta SET value = '-5' WHERE key = 'maxFinishedTurns'",
    "a missing cap": "DELETE FROM store_meta WHERE key = 'maxFinishedTurns'",
    "a schema version that is text": "UPDATE schema_version SET version = 'x'",
    "a negative schema version": "UPDATE schema_version SET version = -1",
}


@pytest.mark.parametrize("case", list(META_TAMPERING))
def test_tampered_store_settings_are_a_store_error_not_a_traceback(tmp_path: Path, case: str) -> None:
    from statemachine.store import StoreError

    path = tmp_path / "s.db"
    open_store(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute(META_TAMPERING[case])
    with pytest.raises(StoreError, match="damaged"):
        open_store(str(path))
    proc = subprocess.run([sys.executable, "-m", "statemachine", "store", "export", str(path)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env={**os.environ, "SESSION_LIFECYCLE_CACHE": "off"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "damaged" in proc.stderr, proc.stderr
