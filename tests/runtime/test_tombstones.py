"""A deleted thread stays deleted: a redelivery of one of its events is a duplicate, in memory,
in every store, across a snapshot and with `--jobs`; a new event starts it anew."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg import PgCluster, fresh_database, pg_cluster

from statemachine import SessionProjector
from statemachine.store import open_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with pg_cluster() as c:
        yield c


def ev(event_id: str, type_: str, turn: str | None = None, thread: str = "A", **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"eventId": event_id, "type": type_, "provider": "codex", "threadId": thread,
                             "createdAt": "2026-11-20T10:00:00Z", "payload": payload}
    if turn is not None:
        event["turnId"] = turn
    return event


LIFE = [ev("1", "session.started"), ev("2", "turn.started", "T1"), ev("3", "turn.completed", "T1", state="completed"),
        ev("4", "thread.delete")]


def test_a_redelivered_event_of_a_deleted_thread_is_a_duplicate() -> None:
    p = SessionProjector()
    assert [o.kind.value for o in p.apply_all(LIFE)] == ["applied", "applied", "applied", "forgotten"]
    again = p.apply(ev("2", "turn.started", "T1"))
    assert again.kind.value == "duplicate" and "A" not in p
    assert again.after.status == "idle" and again.after.active_turn_id is None
    assert p.apply(ev("4", "thread.delete")).kind.value == "duplicate"  # a redelivered delete
    assert "A" not in p


def test_a_new_event_starts_the_thread_anew_and_it_remembers_the_old_ids() -> None:
    p = SessionProjector()
    p.apply_all(LIFE)
    assert p.apply(ev("5", "session.started")).kind.value == "applied"
    assert p["A"].status == "ready" and p["A"].active_turn_id is None
    assert p.apply(ev("2", "turn.started", "T1")).kind.value == "duplicate"


def test_tombstones_are_bounded_oldest_first() -> None:
    p = SessionProjector(max_tombstones=2)
    for thread in ("A", "B", "C"):
        p.apply_all([ev(f"{thread}1", "session.started", thread=thread), ev(f"{thread}2", "thread.delete",
                                                                           thread=thread)])
    assert p.apply(ev("A1", "session.started", thread="A")).kind.value == "applied"  # forgotten: new again
    assert p.apply(ev("C1", "session.started", thread="C")).kind.value == "duplicate"


def test_tombstones_survive_a_snapshot() -> None:
    p = SessionProjector()
    p.apply_all(LIFE)
    snap = json.loads(json.dumps(p.snapshot()))
    assert snap["version"] >= 5 and [t["threadId"] for t in snap["tombstones"]] == ["A"]
    q = SessionProjector.restore(snap)
    assert q.apply(ev("2", "turn.started", "T1")).kind.value == "duplicate" and "A" not in q


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_every_store_keeps_tombstones_across_transactions(tmp_path: Path, cluster: PgCluster, backend: str) -> None:
    url = str(tmp_path / "s.db") if backend == "sqlite" else fresh_database(cluster)
    with open_store(url) as store:
        store.apply_all(LIFE)
    with open_store(url) as store:
        assert store.apply(ev("2", "turn.started", "T1")).kind.value == "duplicate"
        assert store.get("A") is None and store.threads() == []
        assert [t.thread_id for t in store.tombstones()] == ["A"]
        exported = store.snapshot()
        assert exported["tombstones"] == SessionProjector.restore(exported).snapshot()["tombstones"]
        assert store.apply(ev("5", "session.started")).kind.value == "applied"
        assert store.tombstones() == [] and store.get("A").status == "ready"  # type: ignore[union-attr]
        assert store.apply(ev("2", "turn.started", "T1")).kind.value == "duplicate"


def test_replay_of_a_redelivery_after_a_delete_agrees_on_every_path(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in [*LIFE, LIFE[1], LIFE[3]]))
    env = {**os.environ, "SESSION_LIFECYCLE_CACHE": "off"}
    outs = [subprocess.run([sys.executable, "-m", "statemachine", "replay", "--json", *extra, str(log)],
                           capture_output=True, timeout=120, cwd=ROOT, env=env).stdout
            for extra in ((), ("--jobs", "2"), ("--store", str(tmp_path / "s.db")))]
    data = json.loads(outs[0])
    assert data["sessions"] == {} and data["outcomes"]["duplicate"] == 2
    assert outs[1] == outs[0] == outs[2]
