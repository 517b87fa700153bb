"""The PostgreSQL session store on a real throwaway server: same results as the in-memory
projector, four racing worker processes, the server stopped mid-apply, a killed replay."""

from __future__ import annotations

import json
import multiprocessing
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from pg import PgCluster, fresh_database, pg_cluster
from store_support import (
    apply_in_batches,
    assert_equals_projector,
    generate_stream,
    kill_targets,
    killed_replays,
    log_lines,
    run_cli,
    write_log,
)

from statemachine import OutcomeKind, SessionProjector
from statemachine.core.record import event_digest_hex, legacy_digest_hex
from statemachine.spec.invariants import state_violations
from statemachine.spec.load import builtin_spec
from statemachine.store import ReplayProgress, StoreError, open_store
from statemachine.store.schema import MIGRATIONS

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with pg_cluster() as c:
        yield c


def _dump(url: str) -> dict[str, list[Any]]:
    order = {"sessions": "ord", "seen_event_digests": "thread_id, seq", "finished_turns": "thread_id, seq",
             "outcomes": "id", "replay_progress": "log_key", "replay_notes": "log_key, kind, line"}
    with psycopg.connect(url) as conn:
        # The identity columns are left out: PostgreSQL does not hand back numbers of rolled-back rows.
        columns = {"sessions": "thread_id, status, provider_name, active_turn_id, last_error, updated_at, "
                               "provider_instance_id, runtime_mode, pending_turn, awaiting, open_requests",
                   "outcomes": "thread_id, event_id, kind, reason, transition"}
        return {t: conn.execute(f"SELECT {columns.get(t, '*')} FROM {t} ORDER BY {o}").fetchall()
                for t, o in order.items()}


def test_generated_stream_equals_the_projector(cluster: PgCluster) -> None:
    url = fresh_database(cluster)
    events = generate_stream(3000, 10, seed=21)
    with open_store(url, max_event_ids=30, max_finished_turns=4) as store:
        outcomes = apply_in_batches(store, events, seed=4)
        projector = SessionProjector(max_event_ids=30, max_finished_turns=4, event_id_key=store.event_id_key)
        expected = projector.apply_all(events)
        assert [(o.kind, o.after, o.reason) for o in outcomes] == [(o.kind, o.after, o.reason) for o in expected]
        assert_equals_projector(store, projector)
    with open_store(url) as reopened:
        assert (reopened.max_event_ids, reopened.max_finished_turns) == (30, 4)
        assert_equals_projector(reopened, projector)


def test_a_version_2_database_has_its_event_ids_digested(cluster: PgCluster) -> None:
    url = fresh_database(cluster)
    with psycopg.connect(url, autocommit=True) as conn:  # a database as version 2 left it
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for statement in (*MIGRATIONS["postgresql"][0], *MIGRATIONS["postgresql"][1]):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (2)")
        conn.execute("INSERT INTO store_meta (key, value) VALUES ('spec', 'session-lifecycle'), "
                     "('maxEventIds', '1024'), ('maxFinishedTurns', '256')")
        conn.execute("INSERT INTO sessions (thread_id, status, provider_name) VALUES ('t', 'ready', 'codex')")
        conn.execute("INSERT INTO seen_events (thread_id, seq, event_id) VALUES ('t', 1, 'e-1'), ('t', 2, 'e-2')")
    with open_store(url) as store:
        thread = store.thread("t")
        assert thread is not None and thread.seen_event_digests == (legacy_digest_hex("e-1"), legacy_digest_hex("e-2"))
        duplicate = {"eventId": "e-1", "type": "session.started", "provider": "codex", "threadId": "t",
                     "createdAt": "2026-11-20T10:00:00Z"}
        assert store.apply(duplicate).kind is OutcomeKind.DUPLICATE
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS["postgresql"]),)]
        assert conn.execute("SELECT to_regclass('seen_events')").fetchone() == (None,)


def test_schema_version_newer_than_the_package_is_refused(cluster: PgCluster) -> None:
    url = fresh_database(cluster)
    open_store(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = 7")
    with pytest.raises(StoreError, match="schema version 7"):
        open_store(url)


# -- four workers -----------------------------------------------------------------------------


def _noise(thread_id: str, index: int) -> list[dict[str, Any]]:
    """Events of a type the lifecycle ignores, with new eventIds: they change only the de-dup memory."""
    return [{"eventId": f"noise-{thread_id}-{index}-{j}", "type": "item.updated", "provider": "codex",
             "threadId": thread_id, "createdAt": "2026-11-20T10:00:00Z", "payload": {}} for j in range(3)]


def _worker(url: str, tasks: Any, done: Any, chunks: dict[tuple[str, int], list[dict[str, Any]]],
            worker_id: int) -> None:
    with open_store(url) as store:
        while True:
            task = tasks.get()
            if task is None:
                return
            thread_id, index, kind = task
            batch = _noise(thread_id, index) if kind == "noise" else chunks[(thread_id, index)]
            try:
                outcomes = store.apply_all(batch)
            except Exception as exc:  # reported to the test, which fails on it at once
                done.put((worker_id, thread_id, index, "failed", [repr(exc)]))
                return
            done.put((worker_id, thread_id, index, kind, [o.kind.value for o in outcomes]))


def test_four_workers_racing_over_shared_threads_equal_one_worker(cluster: PgCluster) -> None:
    """Each thread's events are cut into chunks; a chunk goes to whichever worker is free, and the
    thread's next chunk is queued only once the previous one committed. So per-thread order is the
    log's, while a thread hops between workers. On top, racing the thread's live chunk for its lock
    on other workers: already committed chunks sent again (they must all come back as duplicates)
    and new events the lifecycle ignores ("noise": they only add eventIds to the de-dup memory, at
    a place that depends on who wins the race). Without the per-thread lock, two writers would
    read the same memory and one's rows would be lost or collide.

    "Equal" then means: every delivery has exactly one outcome row; each original event's outcome
    is the single-worker replay's; the stored sessions and finished turns are the single-worker
    projector's; the de-dup memory holds exactly the projector's eventIds in the projector's order
    plus every noise eventId. Threads may be created in another order (rows are compared by thread).
    """
    url = fresh_database(cluster)
    with open_store(url) as first:
        key = first.event_id_key  # the store's eventId digest key: the projector's digests must compare
    rng = random.Random(31)
    events = generate_stream(50_000, 120, seed=31)
    per_thread: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        per_thread.setdefault(e["threadId"], []).append(e)
    chunks: dict[tuple[str, int], list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for thread_id, evs in per_thread.items():
        i = n = 0
        while i < len(evs):
            size = rng.randint(5, 40)
            chunks[(thread_id, n)] = evs[i:i + size]
            i, n = i + size, n + 1
        counts[thread_id] = n

    ctx = multiprocessing.get_context("fork")
    tasks, done = ctx.Queue(), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(url, tasks, done, chunks, w)) for w in range(4)]
    for w in workers:
        w.start()
    try:
        order = list(per_thread)
        rng.shuffle(order)
        for thread_id in order:
            tasks.put((thread_id, 0, "live"))
        pending = len(order)
        results: dict[tuple[str, int], tuple[int, list[str]]] = {}
        redelivered: list[list[str]] = []
        noise: dict[str, set[str]] = {t: set() for t in per_thread}
        racing = 0
        while pending or racing:
            worker_id, thread_id, index, kind, kinds = done.get(timeout=120)
            assert kind != "failed", f"worker {worker_id}: {kinds[0]}"
            if kind != "live":
                racing -= 1
                if kind == "again":
                    redelivered.append(kinds)
                else:
                    assert kinds == [OutcomeKind.IGNORED.value] * 3
                    noise[thread_id].update(e["eventId"] for e in _noise(thread_id, index))
                continue
            results[(thread_id, index)] = (worker_id, kinds)
            pending -= 1
            if index + 1 < counts[thread_id]:
                tasks.put((thread_id, index + 1, "live"))
                pending += 1
                if rng.random() < 0.1:  # an old chunk again, racing the live one
                    tasks.put((thread_id, rng.randrange(index + 1), "again"))
                    racing += 1
                if rng.random() < 0.3:
                    tasks.put((thread_id, index, "noise"))
                    racing += 1
    finally:
        for _ in workers:
            tasks.put(None)
        for w in workers:
            w.join(timeout=60)
    assert all(w.exitcode == 0 for w in workers)

    projector = SessionProjector(event_id_key=key)
    expected = projector.apply_all(events)
    # Every original event's outcome is the single-worker one, and threads did hop workers.
    got_kinds: dict[str, list[str]] = {t: [] for t in per_thread}
    workers_of: dict[str, set[int]] = {t: set() for t in per_thread}
    for (thread_id, index) in sorted(results, key=lambda k: k[1]):
        worker_id, kinds = results[(thread_id, index)]
        got_kinds[thread_id].extend(kinds)
        workers_of[thread_id].add(worker_id)
    want_kinds: dict[str, list[str]] = {t: [] for t in per_thread}
    for o in expected:
        want_kinds[o.event.thread_id].append(o.kind.value)
    assert got_kinds == want_kinds
    assert sum(len(w) > 1 for w in workers_of.values()) >= len(per_thread) * 0.9
    assert redelivered and all(k == OutcomeKind.DUPLICATE.value for ks in redelivered for k in ks)

    with open_store(url) as store:
        stored = store.threads()
        journal = store.journal()
    # Nothing lost, nothing doubled: one outcome row per delivery.
    deliveries = Counter(o.kind.value for o in expected)
    deliveries[OutcomeKind.DUPLICATE.value] += sum(len(k) for k in redelivered)
    noise_count = sum(len(n) for n in noise.values())
    deliveries[OutcomeKind.IGNORED.value] += noise_count
    assert noise_count > 1000
    assert Counter(j.kind.value for j in journal) == deliveries
    assert len(journal) == len(events) + sum(len(k) for k in redelivered) + noise_count
    spec = builtin_spec()
    for t in stored:
        assert state_violations(spec, t.session, frozenset(t.finished_turns)) == []
    noise_digests = {t: {event_digest_hex(e, key) for e in ids} for t, ids in noise.items()}

    def split(t: Any) -> tuple[Any, ...]:
        own = noise_digests[t.session.thread_id]
        return (t.session, tuple(e for e in t.seen_event_digests if e not in own), t.finished_turns,
                {e for e in t.seen_event_digests if e in own})

    got = {t.session.thread_id: split(t) for t in stored}
    assert got == {t: (projector[t], projector.seen_event_digests(t), projector.finished_turns(t), noise_digests[t])
                   for t in projector}


# -- faults -----------------------------------------------------------------------------------


def test_the_server_going_away_mid_apply_is_a_store_error_and_work_resumes(cluster: PgCluster) -> None:
    url = fresh_database(cluster)
    events = generate_stream(1200, 6, seed=41)
    store = open_store(url)
    try:
        store.apply_all(events[:400])
        before = _dump(url)

        def stop_server(_: object) -> ReplayProgress:
            # Inside the transaction, after every row of the batch was written, before COMMIT.
            cluster.stop("immediate")
            return ReplayProgress("log", 1, 1, "0" * 64, {k.value: 0 for k in OutcomeKind}, 0)

        with pytest.raises(StoreError) as err:
            store.apply_all(events[400:800], checkpoint=stop_server)
        assert isinstance(err.value.cause, psycopg.Error)
        assert err.value.doing == "applying 400 event(s)"
        with pytest.raises(StoreError, match="cannot connect"):
            store.apply(events[400])  # still down
        cluster.start()
        assert _dump(url) == before  # no partial row of the failed batch
        store.apply_all(events[400:])  # the same store object reconnects
        projector = SessionProjector(event_id_key=store.event_id_key)
        projector.apply_all(events)
        assert_equals_projector(store, projector)
    finally:
        store.close()


# -- a killed replay --------------------------------------------------------------------------


def test_a_replay_killed_at_random_points_ends_where_an_uninterrupted_one_does(cluster: PgCluster,
                                                                                tmp_path: Any) -> None:
    log = write_log(tmp_path / "log.jsonl", log_lines(3000, 20, seed=51))
    reference_url, crashed_url = fresh_database(cluster), fresh_database(cluster)
    reference = run_cli(["replay", "--json", "--store", reference_url, "--batch", "8", str(log)])
    argv = ["replay", "--json", "--store", crashed_url, "--batch", "8", str(log)]
    # Each store keys its eventId digests with a random key of its own: the crashed one gets the
    # reference's, so that the two databases can be compared row for row.
    open_store(crashed_url).close()
    with psycopg.connect(reference_url) as ref, psycopg.connect(crashed_url, autocommit=True) as crashed:
        key = ref.execute("SELECT value FROM store_meta WHERE key = 'eventIdKey'").fetchone()
        crashed.execute("UPDATE store_meta SET value = %s WHERE key = 'eventIdKey'", key)

    polling: list[Any] = []

    def position() -> int:
        if not polling:
            polling.append(psycopg.connect(crashed_url, autocommit=True))
        try:
            row = polling[0].execute("SELECT position FROM replay_progress").fetchone()
        except psycopg.errors.UndefinedTable:
            row = None  # killed before the schema was created
        return int(row[0]) if row else 0

    positions = killed_replays(argv, kill_targets(log.stat().st_size, 15, seed=51), seed=51, position=position)
    for conn in polling:
        conn.close()
    assert len(positions) == 15 and len(set(positions)) >= 8 and max(positions) > log.stat().st_size * 0.6
    assert run_cli(argv) == reference
    assert _dump(crashed_url) == _dump(reference_url)


def test_cli_round_trip_through_postgres(cluster: PgCluster, tmp_path: Any) -> None:
    log = write_log(tmp_path / "log.jsonl", log_lines(600, 5, seed=61))
    snap = tmp_path / "snap.json"
    run_cli(["replay", "--snapshot-out", str(snap), str(log)])
    url = fresh_database(cluster)
    assert run_cli(["store", "import", url, str(snap)])[0] == 0
    code, out = run_cli(["store", "export", url])
    assert code == 0
    assert json.loads(out) == json.loads(snap.read_text())


# -- open requests (schema version 5) ----------------------------------------------------------


def _ev(n: int, type_: str, thread: str = "t1", turn: str | None = None, **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"eventId": f"e{n}", "type": type_, "provider": "codex", "threadId": thread,
                             "createdAt": f"2026-01-01T00:00:{n:02d}Z", "payload": payload}
    if turn is not None:
        event["turnId"] = turn
    return event


_ASKING = [_ev(1, "turn.started", turn="T1"), _ev(2, "request.opened", turn="T1", requestId=7),
           _ev(3, "user-input.requested", turn="T1", requestId="7"), _ev(4, "request.opened", turn="T1"),
           _ev(5, "session.started", "t2")]


def test_open_requests_round_trip_through_postgresql(cluster: PgCluster) -> None:
    url = fresh_database(cluster)
    with open_store(url) as store:
        projector = SessionProjector(event_id_key=store.event_id_key)
        projector.apply_all(_ASKING)
        store.apply_all(_ASKING[:2])
        store.apply_all(_ASKING[2:])
    with open_store(url) as store:
        session = store.get("t1")
        assert session is not None
        assert session.open_requests == ((7, "approval"), ("7", "user-input"), (None, "approval"))
        assert store.export_snapshot() == projector.snapshot()
        assert store.apply(_ev(6, "request.resolved", turn="T1")).after.open_requests == ()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT open_requests FROM sessions ORDER BY ord").fetchall() == [("[]",), ("[]",)]


def test_a_version_4_database_gets_its_open_requests_from_awaiting(cluster: PgCluster) -> None:
    url = fresh_database(cluster)
    with psycopg.connect(url, autocommit=True) as conn:  # a database as version 4 left it
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for migration in MIGRATIONS["postgresql"][:4]:
            for statement in migration:
                conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (4)")
        conn.execute("INSERT INTO store_meta (key, value) VALUES ('spec', 'session-lifecycle'), "
                     "('maxEventIds', '1024'), ('maxFinishedTurns', '256')")
        conn.execute("INSERT INTO sessions (thread_id, status, provider_name, active_turn_id, awaiting) "
                     "VALUES ('t1', 'running', 'codex', 'T1', 'approval'), ('t2', 'ready', 'codex', NULL, NULL)")
    with open_store(url) as store:
        assert store.get("t1") is not None and store["t1"].open_requests == ((None, "approval"),)
        assert store["t2"].open_requests == ()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(6,)]
        rows = conn.execute("SELECT thread_id, open_requests FROM sessions ORDER BY ord").fetchall()
        assert [(t, json.loads(r)) for t, r in rows] == [("t1", [{"requestId": None, "kind": "approval"}]),
                                                          ("t2", [])]


@pytest.mark.parametrize(("value", "field"), [
    ("not json", "session.openRequests"),
    (json.dumps([{"requestId": 1, "kind": "approval"}] * 2), "session.openRequests[1].requestId"),
    (json.dumps([{"requestId": False, "kind": "approval"}]), "session.openRequests[0].requestId"),
    (json.dumps([{"requestId": 1, "kind": "user-input"}]), "session.awaiting"),
])
def test_a_bad_open_requests_column_is_refused_on_postgresql(cluster: PgCluster, value: str, field: str) -> None:
    from statemachine.store import StoredRowError

    url = fresh_database(cluster)
    with open_store(url) as store:
        store.apply_all(_ASKING[:2])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET open_requests = %s", (value,))
    before = _dump(url)
    with open_store(url) as store, pytest.raises(StoredRowError) as caught:
        store.apply(_ev(9, "request.resolved", turn="T1", requestId=7))
    assert (caught.value.thread_id, caught.value.field) == ("t1", field)
    assert _dump(url) == before
