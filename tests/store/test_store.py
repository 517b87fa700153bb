"""The SQLite session store: same results as the in-memory projector, atomic batches, versioned
schema, typed errors, observers after commit, the CLI, and a replay killed at 50 points."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from store_support import (
    EXAMPLES,
    apply_in_batches,
    assert_equals_projector,
    generate_stream,
    kill_targets,
    killed_replays,
    log_lines,
    run_cli,
    write_log,
)

from statemachine import EventError, Outcome, OutcomeKind, SessionProjector
from statemachine.store import ReplayProgress, SQLiteStore, StoreError, open_store


def _dump(path: Path) -> dict[str, list[Any]]:
    """Every row of every table, in a fixed order."""
    conn = sqlite3.connect(path)
    try:
        order = {"sessions": "ord", "seen_event_digests": "thread_id, seq", "finished_turns": "thread_id, seq",
                 "outcomes": "id", "replay_progress": "log_key", "replay_notes": "log_key, kind, line",
                 "store_meta": "key", "schema_version": "version", "tombstones": "ord"}
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall() for t, o in order.items()}
    finally:
        conn.close()


# -- equal to the in-memory projector --------------------------------------------------------


@pytest.mark.parametrize("log", EXAMPLES, ids=lambda p: p.name)
def test_example_logs_give_the_projectors_sessions(tmp_path: Path, log: Path) -> None:
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    with open_store(str(tmp_path / "s.db")) as store:
        outcomes = apply_in_batches(store, events, seed=1)
    projector = SessionProjector(event_id_key=store.event_id_key)  # digests compare under one key
    expected = projector.apply_all(events)
    assert [(o.kind, o.after, o.reason) for o in outcomes] == [(o.kind, o.after, o.reason) for o in expected]
    with open_store(str(tmp_path / "s.db")) as reopened:  # read back from the file, not from memory
        assert_equals_projector(reopened, projector)


def test_generated_stream_with_small_caps_equals_the_projector(tmp_path: Path) -> None:
    # Caps small enough that both memories forget on most threads, in batches that span evictions.
    events = generate_stream(6000, 12, seed=5)
    with open_store(str(tmp_path / "s.db"), max_event_ids=30, max_finished_turns=4) as store:
        outcomes = apply_in_batches(store, events, seed=2)
        projector = SessionProjector(max_event_ids=30, max_finished_turns=4, event_id_key=store.event_id_key)
        expected = projector.apply_all(events)
        assert [(o.kind, o.after, o.reason) for o in outcomes] == [(o.kind, o.after, o.reason) for o in expected]
        assert_equals_projector(store, projector)
        journal = store.journal()
        assert [(j.event_id, j.kind, j.reason) for j in journal] == [
            (o.event.event_id, o.kind, o.reason) for o in expected]
        one = next(iter(projector))
        stored = store.thread(one)
        assert stored is not None
        assert stored.session == projector[one]
        assert stored.seen_event_digests == projector.seen_event_digests(one)
        assert stored.finished_turns == projector.finished_turns(one)
        assert store.thread("no-such-thread") is None
        assert store.get("no-such-thread") is None


# -- atomicity and errors --------------------------------------------------------------------


def test_a_malformed_event_in_a_batch_changes_nothing(tmp_path: Path) -> None:
    events = generate_stream(200, 4, seed=3)
    with open_store(str(tmp_path / "s.db")) as store:
        store.apply_all(events[:100])
        before = _dump(tmp_path / "s.db")
        broken = dict(events[150])
        del broken["createdAt"]
        with pytest.raises(EventError) as err:
            store.apply_all([*events[100:150], broken])
        assert err.value.field == "createdAt"
        assert _dump(tmp_path / "s.db") == before


def test_a_failure_inside_the_transaction_rolls_everything_back(tmp_path: Path) -> None:
    events = generate_stream(300, 5, seed=4)
    with open_store(str(tmp_path / "s.db")) as store:
        store.apply_all(events[:100])
        before = _dump(tmp_path / "s.db")
        told: list[Outcome] = []
        store.subscribe(told.append)

        def checkpoint(_: object) -> ReplayProgress:
            raise sqlite3.OperationalError("disk I/O error")  # as the database would, before COMMIT

        with pytest.raises(StoreError) as err:
            store.apply_all(events[100:200], checkpoint=checkpoint)
        assert isinstance(err.value.cause, sqlite3.OperationalError)
        assert "applying 100 event(s)" in str(err.value)
        assert _dump(tmp_path / "s.db") == before
        assert told == []  # observers hear only of committed outcomes
        store.apply_all(events[100:])
        projector = SessionProjector(event_id_key=store.event_id_key)
        projector.apply_all(events)
        assert_equals_projector(store, projector)
        assert len(told) == 200


def test_observers_run_after_the_commit(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    events = generate_stream(50, 2, seed=8)
    with open_store(str(path)) as store:
        visible: list[int] = []

        def observer(outcome: Outcome) -> None:
            # Another connection already sees the outcome's row: it was committed before the call.
            conn = sqlite3.connect(path)
            visible.append(conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0])
            conn.close()

        store.subscribe(observer, what="outcome")
        changes: list[Outcome] = []
        unsubscribe = store.subscribe(changes.append, what="change")
        store.apply_all(events[:10])
        assert visible == [10] * 10
        assert all(o.changed for o in changes) and changes
        unsubscribe()
        count = len(changes)
        store.apply_all(events[10:])
        assert len(changes) == count


def test_a_locked_database_is_a_store_error_and_work_resumes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    events = generate_stream(40, 2, seed=9)
    store = SQLiteStore(str(path), busy_timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        with pytest.raises(StoreError) as err:
            store.apply(events[0])
        assert "locked" in str(err.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.get(events[0]["threadId"]) is None
    store.apply_all(events)
    projector = SessionProjector(event_id_key=store.event_id_key)
    projector.apply_all(events)
    assert_equals_projector(store, projector)
    store.close()


def test_writers_in_threads_are_serialised(tmp_path: Path) -> None:
    # Four writers, each its own store on the same file, one thread each of a shared stream.
    events = generate_stream(2000, 8, seed=10)
    by_thread: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_thread.setdefault(e["threadId"], []).append(e)
    open_store(str(tmp_path / "s.db")).close()
    errors: list[BaseException] = []

    def work(threads: list[str]) -> None:
        try:
            with open_store(str(tmp_path / "s.db")) as store:
                for t in threads:
                    for i in range(0, len(by_thread[t]), 7):
                        store.apply_all(by_thread[t][i:i + 7])
        except BaseException as exc:
            errors.append(exc)

    names = sorted(by_thread)
    workers = [threading.Thread(target=work, args=(names[i::4],)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    with open_store(str(tmp_path / "s.db")) as store:
        projector = SessionProjector(event_id_key=store.event_id_key)
        projector.apply_all(events)
        assert {t.session.thread_id: t for t in store.threads()} == {
            t.session.thread_id: t for t in open_store_threads_of(projector)}


def open_store_threads_of(projector: SessionProjector) -> list[Any]:
    from statemachine.runtime.snapshot import ThreadState

    return [ThreadState(projector[t], projector.seen_event_digests(t), projector.finished_turns(t)) for t in projector]


def test_schema_is_versioned_and_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_store(str(path)).close()
    open_store(str(path)).close()  # a second open applies nothing again
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(6,)]
    conn.execute("UPDATE schema_version SET version = 7")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 7, newer than this package's 6"):
        open_store(str(path))


def test_caps_are_fixed_when_the_store_is_created(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    open_store(path, max_event_ids=10).close()
    with open_store(path) as store:
        assert (store.max_event_ids, store.max_finished_turns) == (10, 256)
    with pytest.raises(StoreError, match="max_event_ids=11, but the store was created with 10"):
        open_store(path, max_event_ids=11)


def test_bad_urls_and_files_are_store_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database file at all" * 100)
    for url in (str(garbage), str(tmp_path / "missing-dir" / "s.db"), "ftp://host/x", ""):
        with pytest.raises(StoreError):
            open_store(url)
    with pytest.raises(StoreError, match="cannot connect"):
        open_store("postgresql://nobody@127.0.0.1:1/none")


# -- the command line -------------------------------------------------------------------------


def test_replay_into_a_store_prints_what_the_in_memory_replay_prints(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", log_lines(1500, 10, seed=12))
    code, expected = run_cli(["replay", "--json", str(log)])
    assert code == 1  # the log has malformed lines
    db = str(tmp_path / "s.db")
    assert run_cli(["replay", "--json", "--store", db, "--batch", "50", str(log)]) == (1, expected)
    # Run again on the finished log: nothing is applied twice, the same report comes back.
    assert run_cli(["replay", "--json", "--store", db, str(log)]) == (1, expected)
    code, text = run_cli(["replay", "--store", db, str(log)])
    assert code == 1 and "malformed" in text


def test_replay_resumes_after_the_log_grew_and_restarts_on_another_log(tmp_path: Path) -> None:
    lines = log_lines(800, 6, seed=13)
    log = tmp_path / "log.jsonl"
    db = str(tmp_path / "s.db")
    write_log(log, lines[:300])
    run_cli(["replay", "--json", "--store", db, str(log)])
    write_log(log, lines)  # the same prefix, more lines after it: carries on from line 300
    code, out = run_cli(["replay", "--json", "--store", db, str(log)])
    assert (code, out) == run_cli(["replay", "--json", str(log)])
    other = log_lines(100, 2, seed=14)
    write_log(log, other)  # different bytes under the same key: starts over
    code, out = run_cli(["replay", "--json", "--store", db, str(log)])
    counts = json.loads(out)["outcomes"]
    assert counts["malformed"] == len(json.loads(out)["errors"])
    assert sum(counts.values()) == len([line for line in other if line.strip()])


def test_replay_store_flags_and_failures_exit_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = write_log(tmp_path / "log.jsonl", log_lines(50, 2, seed=15))
    db = str(tmp_path / "s.db")
    assert run_cli(["replay", "--store", db, "--snapshot-out", str(tmp_path / "x.json"), str(log)])[0] == 2
    assert run_cli(["replay", "--store", "postgresql://u:secret@127.0.0.1:1/x", str(log)])[0] == 2
    err = capsys.readouterr().err
    assert "secret" not in err and "cannot connect" in err
    assert run_cli(["replay", "--store", db, str(tmp_path / "missing.jsonl")])[0] == 2
    with pytest.raises(SystemExit) as exit_:
        run_cli(["replay", "--store", db, "--batch", "0", str(log)])
    assert exit_.value.code == 2


def test_store_export_and_import_round_trip_the_snapshot(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", log_lines(1200, 8, seed=19))
    snap = tmp_path / "snap.json"
    run_cli(["replay", "--snapshot-out", str(snap), str(log)])
    db = str(tmp_path / "s.db")
    code, out = run_cli(["store", "import", db, str(snap)])
    assert code == 0 and "imported 8 thread(s)" in out
    code, exported = run_cli(["store", "export", db])
    assert code == 0 and json.loads(exported) == json.loads(snap.read_text())
    assert run_cli(["store", "export", db, "-o", str(tmp_path / "out.json")])[0] == 0
    assert json.loads((tmp_path / "out.json").read_text()) == json.loads(snap.read_text())
    # A store that already holds sessions is never merged into; a bad snapshot is bad input.
    assert run_cli(["store", "import", db, str(snap)])[0] == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "session-lifecycle-snapshot", "version": 1, "threads": 3}')
    assert run_cli(["store", "import", str(tmp_path / "fresh.db"), str(bad)])[0] == 1
    assert run_cli(["store", "import", db, str(tmp_path / "nope.json")])[0] == 2
    assert run_cli(["store", "export", "mysql://x"])[0] == 2


def test_import_keeps_the_snapshots_caps_and_applies_like_the_projector(tmp_path: Path) -> None:
    events = generate_stream(1000, 5, seed=17)
    projector = SessionProjector(max_event_ids=20, max_finished_turns=3)
    projector.apply_all(events[:500])
    with open_store(str(tmp_path / "s.db")) as store:
        assert store.import_snapshot(projector.snapshot()) == 5
        assert (store.max_event_ids, store.max_finished_turns) == (20, 3)
        apply_in_batches(store, events[500:], seed=3)
        projector.apply_all(events[500:])
        assert_equals_projector(store, projector)


# -- crashes ----------------------------------------------------------------------------------


def test_a_replay_killed_at_50_points_ends_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", log_lines(4000, 30, seed=18))
    reference_db, crashed_db = tmp_path / "ref.db", tmp_path / "crashed.db"
    reference = run_cli(["replay", "--json", "--store", str(reference_db), "--batch", "4", str(log)])
    argv = ["replay", "--json", "--store", str(crashed_db), "--batch", "4", str(log)]
    # Each store keys its eventId digests with a random key of its own: the crashed one gets the
    # reference's, so that the two files can be compared byte for byte.
    open_store(str(crashed_db)).close()
    conn = sqlite3.connect(crashed_db)
    conn.execute("UPDATE store_meta SET value = ? WHERE key = 'eventIdKey'",
                 (dict(_dump(reference_db)["store_meta"])["eventIdKey"],))
    conn.commit()
    conn.close()

    def position() -> int:
        if not crashed_db.exists():
            return 0
        conn = sqlite3.connect(crashed_db)
        try:
            row = conn.execute("SELECT position FROM replay_progress").fetchone()
        except sqlite3.OperationalError:
            row = None  # killed before the schema was created
        conn.close()
        return int(row[0]) if row else 0

    positions = killed_replays(argv, kill_targets(log.stat().st_size, 50, seed=18), seed=18, position=position)
    assert len(positions) == 50  # every kill landed mid-replay ...
    # ... at many different points over the log (close targets may share a committed position)
    assert len(set(positions)) >= 25 and max(positions) > log.stat().st_size * 0.7
    assert run_cli(argv) == reference
    assert _dump(crashed_db) == _dump(reference_db)


def test_postgresql_without_psycopg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the [postgres] extra was not installed
    with pytest.raises(StoreError, match=r"agent-session-lifecycle\[postgres\]"):
        open_store("postgresql://localhost/sessions")


def test_a_pipe_with_other_bytes_under_a_recorded_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")

    def replay_from_pipe(lines: list[str]) -> int:
        read_fd, write_fd = os.pipe()
        os.write(write_fd, "".join(line + "\n" for line in lines).encode())
        os.close(write_fd)
        with open(read_fd, "rb") as pipe:  # a pipe cannot seek: it cannot be read twice
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(pipe))
            return run_cli(["replay", "--store", db, "-"])[0]

    assert replay_from_pipe(log_lines(200, 3, seed=20)) == 1
    assert replay_from_pipe(log_lines(200, 3, seed=20)) == 1  # the same bytes: nothing new to apply
    assert replay_from_pipe(log_lines(200, 3, seed=22)) == 2
    assert "another --log-key" in capsys.readouterr().err


# -- rows edited by hand (each found by scripts/store_fuzz.py) ----------------------------------


def _started(path: Path) -> None:
    with open_store(str(path)) as store:
        store.apply_all([_wire(1, "session.started"), _wire(2, "turn.started", turn="T1"),
                         _wire(3, "turn.completed", turn="T1", state="completed")])


def _wire(n: int, type_: str, thread: str = "t1", turn: str | None = None, **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"eventId": f"e{n}", "type": type_, "provider": "codex", "threadId": thread,
                             "createdAt": f"2026-01-01T00:00:{n:02d}Z"}
    if turn is not None:
        event["turnId"] = turn
    if payload:
        event["payload"] = payload
    return event


def _edit(path: Path, *statements: str) -> dict[str, list[Any]]:
    conn = sqlite3.connect(path)
    try:
        for sql in statements:
            conn.execute(sql)
        conn.commit()
    finally:
        conn.close()
    return _dump(path)


def _open_files(path: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    found = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_a_refused_open_leaves_no_connection_open(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _started(path)
    _edit(path, "UPDATE store_meta SET value = 'abc' WHERE key = 'maxEventIds'")
    assert _open_files(path) == []
    stores = []
    for _ in range(3):
        with pytest.raises(StoreError, match="maxEventIds"):
            stores.append(open_store(str(path)))
    # Before, each refused store kept its connection (the file and its WAL) open until collected.
    assert _open_files(path) == []


def test_a_bad_journal_row_is_a_stored_row_error_naming_the_column(tmp_path: Path) -> None:
    from statemachine.store import StoredRowError

    path = tmp_path / "s.db"
    _started(path)
    _edit(path, "UPDATE outcomes SET kind = 'bogus' WHERE id = 2")
    with open_store(str(path)) as store, pytest.raises(StoredRowError) as caught:
        store.journal()  # was a ValueError from OutcomeKind('bogus')
    assert (caught.value.thread_id, caught.value.field) == ("t1", "outcomes.kind")


def test_bad_replay_progress_rows_are_store_errors_naming_the_column(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    log = write_log(tmp_path / "log.jsonl", [json.dumps(_wire(1, "session.started")), "not json"])
    assert run_cli(["replay", str(log), "--store", str(path)])[0] == 1
    key = str(log)
    for sql, named in (("UPDATE replay_progress SET position = 'x'", "position"),
                       ("UPDATE replay_progress SET digest = 'abc'", "digest"),
                       ("UPDATE replay_notes SET kind = 'other'", "kind"),
                       ("UPDATE replay_notes SET line = -3", "line")):
        before = _dump(path)
        _edit(path, sql)
        with open_store(str(path)) as store, pytest.raises(StoreError, match=rf"replay_\w+ row .* {named}:"):
            store.progress(key)  # was a ValueError from int('x'), or a note that is not one
        _edit(path, *[f"DELETE FROM {t}" for t in ("replay_progress", "replay_notes")])
        conn = sqlite3.connect(path)
        with conn:
            conn.executemany("INSERT INTO replay_progress VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             before["replay_progress"])
            conn.executemany("INSERT INTO replay_notes VALUES (?, ?, ?, ?, ?)", before["replay_notes"])
        conn.close()


def test_an_emptied_store_meta_is_refused_not_filled_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with open_store(str(path), max_event_ids=4, max_finished_turns=2) as store:
        store.apply(_wire(1, "session.started"))
    dumped = _edit(path, "DELETE FROM store_meta")
    # Before, the store wrote the default caps (1024, 256) and went on forgetting differently.
    with pytest.raises(StoreError, match="store_meta is empty"):
        open_store(str(path))
    assert _dump(path) == dumped
    _edit(path, "INSERT INTO store_meta VALUES ('maxEventIds', '4'), ('maxFinishedTurns', '2')")
    with pytest.raises(StoreError, match="store_meta has no spec"):
        open_store(str(path))


def test_each_store_keys_its_digests_and_a_lost_or_bad_key_is_refused(tmp_path: Path) -> None:
    path, other = tmp_path / "s.db", tmp_path / "other.db"
    with open_store(str(path)) as store, open_store(str(other)) as second:
        assert len(store.event_id_key) == 16 and store.event_id_key != second.event_id_key
        store.apply(_wire(1, "session.started"))
        key = store.event_id_key
    with open_store(str(path)) as store:  # the key is the store's for good: reopened, the same
        assert store.event_id_key == key and store.apply(_wire(1, "session.started")).kind is OutcomeKind.DUPLICATE
    for statement, message in (
        ("UPDATE store_meta SET value = 'ABCD' WHERE key = 'eventIdKey'", "eventIdKey is not 32 lowercase hex digits"),
        ("UPDATE store_meta SET value = upper(value) WHERE key = 'eventIdKey'", "not 32 lowercase hex digits"),
        ("DELETE FROM store_meta WHERE key = 'eventIdKey'", "store_meta has no eventIdKey"),
    ):
        _edit(path, f"UPDATE store_meta SET value = '{key.hex()}' WHERE key = 'eventIdKey'")
        dumped = _edit(path, statement)
        with pytest.raises(StoreError, match=message):  # new defaults would match none of its digests
            open_store(str(path))
        assert _dump(path) == dumped


def test_an_imported_snapshot_brings_its_key(tmp_path: Path) -> None:
    projector = SessionProjector(event_id_key=bytes(range(16)))
    projector.apply_all([_wire(1, "session.started"), _wire(2, "turn.started", turn="T1")])
    with open_store(str(tmp_path / "s.db")) as store:
        assert store.import_snapshot(projector.snapshot()) == 1 and store.event_id_key == bytes(range(16))
        assert store.export_snapshot() == projector.snapshot()
        assert store.apply(_wire(2, "turn.started", turn="T1")).kind is OutcomeKind.DUPLICATE
    with open_store(str(tmp_path / "s.db")) as store:
        assert store.event_id_key == bytes(range(16))


def test_memory_rows_left_by_a_deleted_session_row_are_refused_not_merged(tmp_path: Path) -> None:
    from statemachine.store import StoredRowError

    path = tmp_path / "s.db"
    _started(path)
    # Without the table's keys, nothing in the database stops the old rows joining the new thread's.
    dumped = _edit(path, "DELETE FROM sessions WHERE thread_id = 't1'",
                   "CREATE TABLE loose AS SELECT * FROM seen_event_digests", "DROP TABLE seen_event_digests",
                   "ALTER TABLE loose RENAME TO seen_event_digests")
    with open_store(str(path)) as store:
        for event in (_wire(9, "session.started"), _wire(1, "session.started")):
            with pytest.raises(StoredRowError) as caught:
                store.apply(event)  # was applied, the old eventIds then duplicates of a new thread
            assert (caught.value.thread_id, caught.value.field) == ("t1", "seen_event_digests")
    assert _dump(path) == dumped


@pytest.mark.parametrize(("value", "shown"), [("9223372036854775807", "9223372036854775807"), ("-1", "-1"),
                                              ("'x7'", "str"), ("1.5", "1.5")])
def test_a_memory_seq_out_of_range_is_refused_before_anything_is_written(tmp_path: Path, value: str,
                                                                         shown: str) -> None:
    from statemachine.store import StoredRowError

    path = tmp_path / "s.db"
    _started(path)
    dumped = _edit(path, f"UPDATE seen_event_digests SET seq = {value} WHERE seq = 3")
    with open_store(str(path)) as store, pytest.raises(StoredRowError) as caught:
        # The largest seq made the next row's number overflow SQLite's integer: an OverflowError.
        store.apply(_wire(4, "session.error", message="x"))
    assert caught.value.field == "seen_event_digests.seq" and shown in str(caught.value)
    assert _dump(path) == dumped


def test_a_repeated_memory_seq_is_refused(tmp_path: Path) -> None:
    from statemachine.store import StoredRowError

    path = tmp_path / "s.db"
    _started(path)
    _edit(path, "CREATE TABLE loose AS SELECT * FROM finished_turns", "DROP TABLE finished_turns",
          "ALTER TABLE loose RENAME TO finished_turns",
          "INSERT INTO finished_turns VALUES ('t1', 1, 'T0')")
    with open_store(str(path)) as store, pytest.raises(StoredRowError, match="1 is repeated") as caught:
        store.threads()
    assert caught.value.field == "finished_turns.seq"


@pytest.mark.parametrize(("column", "field"), [("provider_instance_id", "session.providerInstanceId"),
                                               ("provider_name", "session.providerName"),
                                               ("runtime_mode", "session.runtimeMode")])
def test_text_no_event_could_carry_is_refused_in_a_row(tmp_path: Path, column: str, field: str) -> None:
    from statemachine.store import StoredRowError

    path = tmp_path / "s.db"
    _started(path)
    _edit(path, f"UPDATE sessions SET {column} = 'a' || char(0) || 'b'")
    with open_store(str(path)) as store:
        # Was loaded; exported, it was a session PostgreSQL cannot keep and the parser never makes.
        with pytest.raises(StoredRowError, match="NUL") as caught:
            store.threads()
        assert caught.value.field == field


def test_two_schema_version_rows_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _started(path)
    _edit(path, "INSERT INTO schema_version VALUES (1)")
    with pytest.raises(StoreError, match="schema_version holds 2 rows"):
        open_store(str(path))


# -- open requests (schema version 5) ------------------------------------------------------------


def _asking_events() -> list[dict[str, Any]]:
    """t1 running turn T1 with requests 7, "7" and one without id; t2 ready with none."""
    return [_wire(1, "turn.started", turn="T1"), _wire(2, "request.opened", turn="T1", requestId=7),
            _wire(3, "user-input.requested", turn="T1", requestId="7"), _wire(4, "request.opened", turn="T1"),
            _wire(5, "session.started", "t2")]


_ASKED = ((7, "approval"), ("7", "user-input"), (None, "approval"))


def test_open_requests_round_trip_through_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with open_store(str(path)) as store:
        projector = SessionProjector(event_id_key=store.event_id_key)
        projector.apply_all(_asking_events())
        store.apply_all(_asking_events()[:2])
        store.apply_all(_asking_events()[2:])  # a second upsert of t1 rewrites its requests
    with open_store(str(path)) as store:
        session = store.get("t1")
        assert session is not None and (session.open_requests, session.awaiting) == (_ASKED, "approval")
        assert store.sessions() == projector.sessions()
        assert store.export_snapshot() == projector.snapshot()
        # Answered one by one, by the id's type: "7" is not 7.
        assert store.apply(_wire(6, "request.resolved", turn="T1", requestId=7)).after.open_requests == _ASKED[1:]
    conn = sqlite3.connect(path)
    rows = dict(conn.execute("SELECT thread_id, open_requests FROM sessions").fetchall())
    conn.close()
    assert [json.loads(rows["t1"]), json.loads(rows["t2"])] == [
        [{"requestId": "7", "kind": "user-input"}, {"requestId": None, "kind": "approval"}], []]
    # A snapshot with open requests imports into an empty store as it was.
    with open_store(str(tmp_path / "imported.db")) as other:
        assert other.import_snapshot(json.dumps(projector.snapshot())) == 2
        assert other.sessions() == projector.sessions()


def test_a_version_4_store_gets_its_open_requests_from_awaiting(tmp_path: Path) -> None:
    from statemachine.store.schema import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for migration in MIGRATIONS["sqlite"][:4]:
        for statement in migration:
            conn.execute(statement)
    conn.execute("INSERT INTO schema_version (version) VALUES (4)")
    conn.executemany("INSERT INTO store_meta (key, value) VALUES (?, ?)",
                     [("spec", "session-lifecycle"), ("maxEventIds", "1024"), ("maxFinishedTurns", "256")])
    # Rows as version 4 wrote them: one awaiting input within its turn, one awaiting nothing.
    conn.execute("INSERT INTO sessions (thread_id, status, provider_name, active_turn_id, updated_at, awaiting) "
                  "VALUES ('t1', 'running', 'codex', 'T1', '2026-01-01T00:00:01Z', 'user-input')")
    conn.execute("INSERT INTO sessions (thread_id, status, provider_name) VALUES ('t2', 'ready', 'codex')")
    conn.commit()
    conn.close()
    with open_store(str(path)) as store:
        asked, idle = store.get("t1"), store.get("t2")
        assert asked is not None and (asked.awaiting, asked.open_requests) == ("user-input", ((None, "user-input"),))
        assert idle is not None and (idle.awaiting, idle.open_requests) == (None, ())
        # The request without id is answered by a resolution naming none, as the slot was.
        after = store.apply(_wire(2, "request.resolved", turn="T1")).after
        assert (after.awaiting, after.open_requests) == (None, ())
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(6,)]
    assert conn.execute("SELECT open_requests FROM sessions ORDER BY ord").fetchall() == [("[]",), ("[]",)]
    conn.close()


def _requests_sql(*entries: Any) -> str:
    text = json.dumps([{"requestId": rid, "kind": kind} for rid, kind in entries])
    return "'" + text.replace("'", "''") + "'"


@pytest.mark.parametrize(("value", "field", "text"), [
    ("'not json'", "session.openRequests", "not valid JSON"),
    ("'" + "[" * 50_000 + "'", "session.openRequests", "not valid JSON"),
    ("'[" + " " * 400_000 + "]'", "session.openRequests", "characters long"),
    ("X'5b5d'", "session.openRequests", "must be JSON text (an array), got bytes"),
    ("7", "session.openRequests", "must be a JSON array, got int"),
    ("'{}'", "session.openRequests", "must be a JSON array"),
    ("'[[7, \"approval\"]]'", "session.openRequests[0]", "must be a JSON object"),
    (_requests_sql((True, "approval")), "session.openRequests[0].requestId", "got bool"),
    (_requests_sql((2**53, "approval")), "session.openRequests[0].requestId", "beyond"),
    (_requests_sql(("", "approval")), "session.openRequests[0].requestId", "must not be empty"),
    (_requests_sql(("x" * 257, "approval")), "session.openRequests[0].requestId", "limit is 256"),
    (_requests_sql(("a\x00b", "approval")), "session.openRequests[0].requestId", "NUL"),
    (_requests_sql((1, "approval"), (1, "approval")), "session.openRequests[1].requestId", "repeats 1"),
    (_requests_sql(*((i, "approval") for i in range(33))), "session.openRequests", "MAX_OPEN_REQUESTS=32"),
    (_requests_sql((1, "")), "session.openRequests[0].kind", "must not be empty"),
    (_requests_sql((1, "user-input")), "session.awaiting", 'must be "user-input"'),
    ("'[]'", "session.awaiting", "must be null"),
])
def test_a_bad_open_requests_column_is_refused_naming_the_field(tmp_path: Path, value: str, field: str,
                                                                 text: str) -> None:
    from statemachine.store import StoredRowError

    path = tmp_path / "s.db"
    with open_store(str(path)) as store:
        store.apply_all([_wire(1, "turn.started", turn="T1"), _wire(2, "request.opened", turn="T1", requestId=1)])
    dumped = _edit(path, f"UPDATE sessions SET open_requests = {value} WHERE thread_id = 't1'")
    with open_store(str(path)) as store:
        for read in (store.threads, lambda: store.get("t1"), store.snapshot,
                     lambda: store.apply(_wire(3, "request.resolved", turn="T1", requestId=1))):
            with pytest.raises(StoredRowError) as caught:
                read()
            assert (caught.value.thread_id, caught.value.field) == ("t1", field)
            assert text in str(caught.value)
    assert _dump(path) == dumped  # refused before anything was written


def test_open_requests_on_a_settled_session_row_are_refused(tmp_path: Path) -> None:
    from statemachine.store import StoredRowError

    path = tmp_path / "s.db"
    _started(path)  # t1 ready
    _edit(path, f"UPDATE sessions SET open_requests = {_requests_sql((1, 'approval'))}")
    with open_store(str(path)) as store, pytest.raises(StoredRowError, match="may hold no open request") as caught:
        store.threads()
    assert caught.value.field == "session.openRequests"


def test_the_longest_open_requests_a_session_can_hold_load(tmp_path: Path) -> None:
    # 32 ids of 256 characters outside the BMP: the JSON text escapes each as two \uXXXX.
    path = tmp_path / "s.db"
    ids = [chr(0x1F600 + i) * 256 for i in range(32)]
    with open_store(str(path)) as store:
        store.apply_all([_wire(1, "turn.started", turn="T1"),
                         *(_wire(2 + i, "request.opened", turn="T1", requestId=rid) for i, rid in enumerate(ids))])
    with open_store(str(path)) as store:
        session = store.get("t1")
        assert session is not None and [rid for rid, _ in session.open_requests] == ids
