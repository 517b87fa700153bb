"""`SessionStore`: sessions and their per-thread memories in a database, one transaction per batch.

Applying a batch, in one transaction: lock the batch's threads, load their rows (session, seen
eventIds, finished turns), seed a fresh `SessionProjector` with them, apply the events in order,
write back only what changed, append one outcome row per event and, for a resumable replay, the
log position. Either all of it commits or none of it does. The projector does every lifecycle
decision and enforces the memory caps, so a store's result equals an in-memory projector's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol, TypeVar

from statemachine.core.clock import DEFAULT_MAX_CLOCK_SKEW, Clock
from statemachine.core.event import MAX_ID_LENGTH, Event, EventError
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.core.record import KEY_SIZE, ThreadRecord, key_from_hex
from statemachine.core.session import FIELDS, MAX_OPEN_REQUESTS, Session
from statemachine.engine.boundary import EngineName
from statemachine.runtime.observers import Observers
from statemachine.runtime.pipeline import (
    DEFAULT_MAX_EVENT_IDS,
    DEFAULT_MAX_FINISHED_TURNS,
    BatchResult,
    OnMalformed,
    OnRejected,
    Pipeline,
)
from statemachine.runtime.projector import SessionProjector
from statemachine.runtime.snapshot import (
    MAX_SNAPSHOT_BYTES,
    Limits,
    SnapshotError,
    ThreadState,
    Tombstone,
    bury,
    check_thread,
    check_tombstone,
    record_of,
)
from statemachine.spec.load import builtin_spec
from statemachine.spec.model import Spec
from statemachine.spec.parser import EventParser
from statemachine.store.errors import StoreError
from statemachine.store.schema import DATA_STEPS, MIGRATIONS, requests_text

__all__ = [
    "Cursor",
    "JournalEntry",
    "ReplayNote",
    "ReplayProgress",
    "SessionStore",
    "SqlStore",
    "StoredRowError",
]

EventInput = Event | Mapping[str, Any] | str | bytes
Observer = Callable[[Outcome], object]
ObserverErrorHandler = Callable[[Exception, Outcome], object]
T = TypeVar("T")

_log = logging.getLogger("statemachine.observers")

# The outcome kinds a replay counts, one column each in `replay_progress` (a replay has no
# observers, so no apply is ever deferred).
REPLAY_KINDS = (OutcomeKind.APPLIED, OutcomeKind.IGNORED, OutcomeKind.DUPLICATE, OutcomeKind.REJECTED,
                OutcomeKind.FORGOTTEN)

# The largest memory cap `import_snapshot` takes from a snapshot file.
MAX_IMPORTED_CAP = 1 << 20


def _snapshot_object(data: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError("snapshot", f"is {len(data)} long; the limit is {MAX_SNAPSHOT_BYTES} (MAX_SNAPSHOT_BYTES)")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SnapshotError("snapshot", f"not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(obj, dict):
        raise SnapshotError("snapshot", f"must be a JSON object, got {type(obj).__name__}")
    return obj


# The sessions table's columns: the session's fields, in order (`statemachine.core.session.FIELDS`).
_SESSION_COLUMNS = ", ".join(f.attr for f in FIELDS)
# Every column but the key, replaced by an upsert.
_SESSION_UPSERT = (f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES ({', '.join('?' * len(FIELDS))}) "
                   "ON CONFLICT (thread_id) DO UPDATE SET "
                   + ", ".join(f"{f.attr} = excluded.{f.attr}" for f in FIELDS if f.attr != "thread_id"))
# Where the open requests sit in a row: the one column kept as JSON text (`requests_text`).
_REQUESTS_AT = Session._fields.index("open_requests")


class StoredRowError(StoreError):
    """A stored row that fails the checks `SessionProjector.restore()` applies to a snapshot: a
    wrong type, an id past the parser's limit, memories fuller than the caps, an unknown status,
    or a session that breaks the invariants. `thread_id` and `field` say where."""

    def __init__(self, thread_id: str, field: str, message: str) -> None:
        super().__init__("loading a thread", f"stored row of thread {thread_id[:80]!r} is invalid: {field}: "
                         f"{message}")
        self.thread_id = thread_id
        self.field = field


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One processed event, in the order the store committed it (per thread)."""

    thread_id: str
    event_id: str
    kind: OutcomeKind
    reason: str | None
    transition: int | None


@dataclass(frozen=True, slots=True)
class ReplayNote:
    """A listed rejection (`kind="rejected"`, with the eventId) or malformed line (`kind="error"`)."""

    line: int
    kind: Literal["rejected", "error"]
    event_id: str | None
    message: str


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """How far a replay of one log got, committed with the events it covers.

    `position` is the byte offset just past the last line applied, `digest` the SHA-256 of the
    bytes before it (to recognise the same log on resume), the counts are the replay report's.
    """

    log_key: str
    position: int
    lines: int
    digest: str
    outcomes: dict[str, int]
    malformed: int
    new_notes: tuple[ReplayNote, ...] = field(default=(), compare=False)


class Cursor(Protocol):
    """The part of a DB-API cursor the store uses (sqlite3 and psycopg both have it)."""

    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...
    def executemany(self, sql: Any, params: Any, /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class SessionStore(ABC):
    """Sessions per thread in durable storage; the same outcomes as an in-memory `SessionProjector`."""

    spec: Spec
    parser: EventParser
    max_event_ids: int
    max_finished_turns: int

    @abstractmethod
    def apply(self, event: EventInput) -> Outcome:
        """Apply one event in its own transaction. `EventError` for malformed input (nothing changes),
        `StoreError` when the database fails (nothing was committed)."""

    @abstractmethod
    def apply_all(
        self,
        events: Iterable[EventInput],
        *,
        checkpoint: Callable[[Sequence[Outcome]], ReplayProgress] | None = None,
    ) -> list[Outcome]:
        """Apply events in order in one transaction and return every outcome. Every event is
        checked first: one malformed event raises `EventError` and nothing is applied (as
        `SessionProjector.apply_all`). `checkpoint(outcomes)`, if given, runs inside the
        transaction and its progress commits with the events."""

    @abstractmethod
    def apply_batch(
        self,
        events: Iterable[EventInput | None],
        *,
        on_rejected: OnRejected | None = None,
        on_malformed: OnMalformed | None = None,
    ) -> BatchResult:
        """As `SessionProjector.apply_batch`, in one transaction: the counts by outcome kind plus
        `malformed`; a malformed item is counted, told to `on_malformed` and skipped."""

    def sessions(self) -> dict[str, Session]:
        """threadId -> Session, every thread, in the order each was first stored."""
        return {t.session.thread_id: t.session for t in self.threads()}

    def __iter__(self) -> Iterator[str]:
        return iter(self.sessions())

    def __len__(self) -> int:
        return len(self.threads())

    def __contains__(self, thread_id: object) -> bool:
        return isinstance(thread_id, str) and self.get(thread_id) is not None

    def __getitem__(self, thread_id: str) -> Session:
        session = self.get(thread_id)
        if session is None:
            raise KeyError(thread_id)
        return session

    @abstractmethod
    def forget(self, thread_id: str) -> bool:
        """Drop a thread's session and memories without an event; False if there was none."""

    @abstractmethod
    def get(self, thread_id: str) -> Session | None: ...

    @abstractmethod
    def thread(self, thread_id: str) -> ThreadState | None:
        """One thread's session and memories, loading nothing else."""

    @abstractmethod
    def threads(self) -> list[ThreadState]:
        """Every thread, in the order each was first stored."""

    @abstractmethod
    def journal(self, thread_id: str | None = None) -> list[JournalEntry]:
        """Outcomes committed so far (one per processed event), in commit order per thread."""

    @abstractmethod
    def progress(self, log_key: str) -> tuple[ReplayProgress, list[ReplayNote]] | None: ...

    @abstractmethod
    def reset_progress(self, log_key: str) -> None: ...

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """Every thread in the `SessionProjector.snapshot()` format."""

    def export_snapshot(self) -> dict[str, Any]:
        """The same as `snapshot()` (the name `store export` uses)."""
        return self.snapshot()

    @abstractmethod
    def import_snapshot(self, data: Mapping[str, Any] | str | bytes) -> int:
        """Load a snapshot into a store that holds no thread yet; returns the number of threads."""

    @abstractmethod
    def subscribe(
        self,
        observer: Observer,
        *,
        what: Literal["outcome", "change", "status"] = "outcome",
        on_error: ObserverErrorHandler | None = None,
    ) -> Callable[[], None]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqlStore(SessionStore):
    """The shared implementation; a backend supplies the connection, locking and error mapping.

    SQL is written with `?` placeholders; a backend with another style sets `placeholder`.
    """

    dialect: str
    placeholder = "?"

    def __init__(
        self,
        spec: Spec | None,
        *,
        max_event_ids: int | None,
        max_finished_turns: int | None,
        journal: bool,
        engine: EngineName = "compiled",
        max_clock_skew: timedelta | None = DEFAULT_MAX_CLOCK_SKEW,
        clock: Clock | None = None,
    ) -> None:
        """`engine`, `max_clock_skew` and `clock` are the pipeline's options, as for a
        `SessionProjector`: every batch runs through a pipeline built with them."""
        if max_event_ids is not None and max_event_ids < 1:
            raise ValueError("max_event_ids must be at least 1")
        if max_finished_turns is not None and max_finished_turns < 1:
            raise ValueError("max_finished_turns must be at least 1")
        self.spec = spec if spec is not None else builtin_spec()
        self.parser = EventParser(self.spec)
        self.keep_journal = journal
        self.engine: EngineName = engine
        self.max_clock_skew = max_clock_skew
        self._clock = clock
        self._observers = Observers()
        self._conn: Any = None
        self._sql_cache: dict[str, str] = {}
        try:
            self.max_event_ids, self.max_finished_turns, self.event_id_key = self._migrate(
                max_event_ids, max_finished_turns)
            # Built now, so that a bad option fails here; each batch gets a fresh one over its rows.
            self._pipeline()
        except BaseException:
            # The caller never gets this store to close: its connection (a file handle, a server
            # session) would stay open until the garbage collector found it.
            self.close()
            raise

    # -- what a backend provides ---------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> Any:
        """A new connection in autocommit mode (transactions are begun explicitly)."""

    @abstractmethod
    def _begin(self, cur: Cursor, write: bool) -> None: ...

    @abstractmethod
    def _lock_threads(self, cur: Cursor, thread_ids: Sequence[str]) -> None:
        """Serialise writers of these threads until the transaction ends (sorted ids: no deadlock)."""

    @abstractmethod
    def _lock_schema(self, cur: Cursor) -> None: ...

    @abstractmethod
    def _is_db_error(self, exc: BaseException) -> bool: ...

    @abstractmethod
    def _is_disconnected(self, conn: Any) -> bool: ...

    def _describe(self, exc: BaseException) -> str:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

    # -- transactions --------------------------------------------------------------------------

    def _sql(self, text: str) -> str:
        sql = self._sql_cache.get(text)
        if sql is None:
            sql = self._sql_cache[text] = text if self.placeholder == "?" else text.replace("?", self.placeholder)
        return sql

    def _transaction(self, doing: str, work: Callable[[Cursor], T], *, write: bool = True) -> T:
        """Run `work` in one transaction; any database failure rolls back and raises `StoreError`."""
        try:
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
        except Exception as exc:
            if self._is_db_error(exc):
                raise StoreError(doing, f"cannot connect: {self._describe(exc)}", exc) from exc
            raise
        cur = conn.cursor()
        try:
            self._begin(cur, write)
            result = work(cur)
            cur.execute("COMMIT")
            return result
        except BaseException as exc:
            self._rollback(conn, cur)
            if self._is_db_error(exc):
                raise StoreError(doing, self._describe(exc), exc) from exc
            raise
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def _rollback(self, conn: Any, cur: Cursor) -> None:
        # A lost connection cannot roll back, but its transaction is gone with it anyway.
        with contextlib.suppress(Exception):
            cur.execute("ROLLBACK")
        if self._is_disconnected(conn):
            # Dropped so the next call connects afresh (after the server is back).
            with contextlib.suppress(Exception):
                conn.close()
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    # -- schema and settings -------------------------------------------------------------------

    def _migrate(self, max_event_ids: int | None, max_finished_turns: int | None) -> tuple[int, int, bytes]:
        migrations = MIGRATIONS[self.dialect]

        def work(cur: Cursor) -> tuple[int, int, bytes]:
            self._lock_schema(cur)
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            cur.execute("SELECT version FROM schema_version")
            rows = cur.fetchall()
            if len(rows) > 1:
                raise StoreError("opening the store", f"schema_version holds {len(rows)} rows, not one: the "
                                 "database is damaged")
            row = rows[0] if rows else None
            version = 0 if row is None else row[0]
            if type(version) is not int or version < 0:
                raise StoreError("opening the store", f"schema_version holds {str(version)[:40]!r}, not a version "
                                 "number: the database is damaged or not a session store")
            if version > len(migrations):
                raise StoreError("opening the store", f"the database has schema version {version}, newer than "
                                 f"this package's {len(migrations)}: upgrade agent-session-lifecycle")
            for number in range(version + 1, len(migrations) + 1):
                for statement in migrations[number - 1]:
                    cur.execute(statement)
                data_step = DATA_STEPS.get(number)
                if data_step is not None:
                    data_step(cur, self._sql)
            if row is None:
                cur.execute(self._sql("INSERT INTO schema_version (version) VALUES (?)"), (len(migrations),))
            elif version < len(migrations):
                cur.execute(self._sql("UPDATE schema_version SET version = ?"), (len(migrations),))
            return self._settings(cur, max_event_ids, max_finished_turns, created=row is None)

        return self._transaction("opening the store", work)

    def _settings(self, cur: Cursor, max_event_ids: int | None, max_finished: int | None,
                  *, created: bool) -> tuple[int, int, bytes]:
        """The spec name and memory caps are fixed when the store is created: a store whose caps
        changed would forget differently from the projector that its rows came from. So they are
        written only into a store made in this transaction; an existing store without them is damaged
        (new defaults would silently change how its threads forget). The eventId digest key is
        written by migration 6; a store without it is damaged too (its digests would match nothing)."""
        cur.execute("SELECT key, value FROM store_meta")
        meta = {str(k): str(v) for k, v in cur.fetchall()}
        if not meta and not created:
            raise StoreError("opening the store", "store_meta is empty: the database is damaged")
        if created:
            wanted = {
                "spec": self.spec.name,
                "maxEventIds": str(max_event_ids or DEFAULT_MAX_EVENT_IDS),
                "maxFinishedTurns": str(max_finished or DEFAULT_MAX_FINISHED_TURNS),
            }
            cur.executemany(self._sql("INSERT INTO store_meta (key, value) VALUES (?, ?)"), list(wanted.items()))
            meta = {**meta, **wanted}
        if "spec" not in meta:
            raise StoreError("opening the store", "store_meta has no spec: the database is damaged")
        if meta.get("spec") != self.spec.name:
            raise StoreError("opening the store", f"the store holds sessions of spec {meta.get('spec')!r}, "
                             f"not {self.spec.name!r}")
        caps = _cap(meta, "maxEventIds"), _cap(meta, "maxFinishedTurns")
        for name, given, stored in (("max_event_ids", max_event_ids, caps[0]),
                                    ("max_finished_turns", max_finished, caps[1])):
            if given is not None and given != stored:
                raise StoreError("opening the store", f"{name}={given}, but the store was created with {stored}")
        return (*caps, _key(meta))

    # -- applying ------------------------------------------------------------------------------

    def _pipeline(self) -> Pipeline:
        """The pipeline a transaction drives over the rows it loaded, with this store's options."""
        return Pipeline(self.spec, parser=self.parser, engine=self.engine, max_event_ids=self.max_event_ids,
                        max_finished_turns=self.max_finished_turns, max_clock_skew=self.max_clock_skew,
                        clock=self._clock, event_id_key=self.event_id_key)

    def apply(self, event: EventInput) -> Outcome:
        return self.apply_all((event,))[0]

    def apply_all(
        self,
        events: Iterable[EventInput],
        *,
        checkpoint: Callable[[Sequence[Outcome]], ReplayProgress] | None = None,
    ) -> list[Outcome]:
        parsed = [self.parser.coerce(e) for e in events]  # EventError here: nothing touched yet
        outcomes: list[Outcome] = []
        self._run(list(enumerate(parsed, 1)), outcomes, BatchResult(), None, checkpoint)
        return outcomes

    def apply_batch(
        self,
        events: Iterable[EventInput | None],
        *,
        on_rejected: OnRejected | None = None,
        on_malformed: OnMalformed | None = None,
    ) -> BatchResult:
        result = BatchResult()
        items: list[tuple[int, Event]] = []
        # Checked before the transaction (the threads to lock come from the events): a malformed
        # item is counted and told here, in its place among the others' numbers.
        for number, item in enumerate(events, 1):
            result.last = number
            if item is None:
                result.counts["malformed"] += 1
                if on_malformed is not None:
                    on_malformed(number, None)
                continue
            try:
                items.append((number, self.parser.coerce(item)))
            except EventError as exc:
                if isinstance(item, (bytes, str)) and not item.strip():
                    continue
                result.counts["malformed"] += 1
                if on_malformed is not None:
                    on_malformed(number, exc)
        keep = self.keep_journal or bool(self._observers)
        self._run(items, [] if keep else None, result, on_rejected, None)
        result.lines = result.last or 0
        return result

    def _run(
        self,
        items: list[tuple[int, Event]],
        outcomes: list[Outcome] | None,
        result: BatchResult,
        on_rejected: OnRejected | None,
        checkpoint: Callable[[Sequence[Outcome]], ReplayProgress] | None,
    ) -> None:
        """One transaction: lock the items' threads, load and check their rows, run the pipeline
        over them, write back what changed (in the pipeline's thread order), the journal and the
        checkpoint; after commit, tell the observers. `outcomes` collects every outcome (None: the
        pipeline's lean steps, no outcome built)."""
        thread_ids = list(dict.fromkeys(ev.thread_id for _, ev in items))
        forgotten: list[str] = []
        # Rejections are told after commit: a rolled-back batch told nobody anything.
        told: list[tuple[int, str, str]] = []

        def work(cur: Cursor) -> None:
            self._lock_threads(cur, sorted(thread_ids))
            stored = self._load(cur, thread_ids)
            pipeline = self._pipeline()
            for thread_id, rows in stored.items():
                if rows.session is None:
                    bury(pipeline, self._tombstone(thread_id, rows))
                else:
                    pipeline.threads[thread_id] = self._record(pipeline, thread_id, rows)
            if outcomes is not None:
                del outcomes[:]
            pipeline.run(
                items, step=pipeline.step if outcomes is not None else None,
                on_outcome=(lambda _n, o: outcomes.append(o)) if outcomes is not None else None,
                on_rejected=lambda n, e, r: told.append((n, e, r)),
                on_forgotten=lambda _n, t: forgotten.append(t), result=run_result,
            )
            # A thread forgotten in this transaction loses its rows (its memory stays as a tombstone);
            # if it started again, it is new. A tombstone a new event ended goes, its memory kept.
            buried = list(dict.fromkeys(forgotten))
            for t in buried:
                self._delete_thread(cur, t)
                stored.pop(t, None)
            for t, rows in stored.items():
                if rows.session is None and t in pipeline.threads:
                    cur.execute(self._sql("DELETE FROM tombstones WHERE thread_id = ?"), (t,))
            self._write_threads(cur, list(pipeline.threads), stored, pipeline)
            if buried:
                self._write_tombstones(cur, [t for t in buried if t not in pipeline.threads], pipeline)
            if self.keep_journal and outcomes:
                cur.executemany(
                    self._sql("INSERT INTO outcomes (thread_id, event_id, kind, reason, transition) "
                              "VALUES (?, ?, ?, ?, ?)"),
                    [(o.event.thread_id, o.event.event_id, o.kind.value, o.reason, o.transition) for o in outcomes],
                )
            if checkpoint is not None:
                self._write_progress(cur, checkpoint(outcomes if outcomes is not None else ()))

        run_result = BatchResult()
        self._transaction(f"applying {len(items)} event(s)", work)
        for kind, n in run_result.counts.items():
            result.counts[kind] += n
        if on_rejected is not None:
            for number, event_id, reason in told:
                on_rejected(number, event_id, reason)
        if self._observers and outcomes:
            for outcome in outcomes:
                self._observers.notify(outcome)

    def _tombstone(self, thread_id: str, rows: _Rows) -> Tombstone:
        """A loaded tombstone, checked as a snapshot's is."""
        limits = Limits(max_event_ids=self.max_event_ids, max_finished_turns=self.max_finished_turns,
                        max_id_length=self.parser.max_id_length)
        try:
            tomb = check_tombstone({"threadId": thread_id, "seenEventDigests": [e for _, e in rows.seen]}, "row",
                                   limits)
        except SnapshotError as exc:
            raise StoredRowError(thread_id, exc.path.removeprefix("row."), exc.message) from None
        if rows.finished:
            raise StoredRowError(thread_id, "finished_turns", "a deleted thread keeps no finished turns")
        return tomb

    def _record(self, pipeline: Pipeline, thread_id: str, rows: _Rows) -> ThreadRecord:
        """A loaded thread as the pipeline holds it, checked as `restore()` checks a snapshot's."""
        s = rows.session
        assert s is not None
        limits = Limits(max_event_ids=self.max_event_ids, max_finished_turns=self.max_finished_turns,
                        max_id_length=self.parser.max_id_length, in_future=pipeline.horizon.beyond)
        try:
            wire = {
                "session": {f.wire: _row_value(f.wire, getattr(s, f.attr), self.parser.max_id_length)
                            for f in FIELDS if f.always or getattr(s, f.attr) is not None},
                "seenEventDigests": [e for _, e in rows.seen],
                "finishedTurns": [t for _, t in rows.finished],
            }
            thread = check_thread(wire, "row", self.spec, limits)
        except SnapshotError as exc:
            raise StoredRowError(thread_id, exc.path.removeprefix("row."), exc.message) from None
        if thread.session.thread_id != thread_id:
            raise StoredRowError(thread_id, "session.threadId", "differs from the row's key")
        return record_of(pipeline, thread)

    def _load(self, cur: Cursor, thread_ids: Sequence[str]) -> dict[str, _Rows]:
        """The rows of these threads (absent: no row yet), three queries per 500 threads."""
        loaded: dict[str, _Rows] = {}
        for chunk in iter_chunks(thread_ids, 500):
            where = f"thread_id IN ({', '.join('?' * len(chunk))})"
            cur.execute(self._sql(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE {where}"), chunk)
            rows = cur.fetchall()
            for row in rows:
                loaded[row[0]] = _Rows(Session(*row), [], [])
            cur.execute(self._sql(f"SELECT thread_id FROM tombstones WHERE {where}"), chunk)
            for (thread_id,) in cur.fetchall():
                if thread_id in loaded:
                    raise StoredRowError(str(thread_id), "tombstones", "a live thread has a tombstone")
                loaded[thread_id] = _Rows(None, [], [])
            # Memory rows are read even for threads without a session or tombstone row: a new thread
            # has none, and rows left by a session row deleted by hand must be refused, not merged
            # into the new thread's memory. Both memories in one query: one round trip, not two.
            cur.execute(self._sql(f"SELECT 0, thread_id, seq, digest FROM seen_event_digests WHERE {where} "
                                  f"UNION ALL SELECT 1, thread_id, seq, turn_id FROM finished_turns WHERE {where} "
                                  "ORDER BY 1, 2, 3"), [*chunk, *chunk])
            for which, thread_id, seq, value in cur.fetchall():
                table = _MEMORY_TABLES[which]
                rows_of = loaded.get(thread_id)
                if rows_of is None:
                    raise StoredRowError(str(thread_id), table, "memory rows without a session row")
                _add_memory_row(rows_of.finished if which else rows_of.seen, str(thread_id), table, seq, value)
        return loaded

    def _delete_thread(self, cur: Cursor, thread_id: str) -> None:
        for table in ("sessions", "seen_event_digests", "finished_turns", "tombstones"):
            cur.execute(self._sql(f"DELETE FROM {table} WHERE thread_id = ?"), (thread_id,))

    def _write_tombstones(self, cur: Cursor, buried: Sequence[str], pipeline: Pipeline) -> None:
        """Each thread deleted in this transaction keeps its de-duplication memory as the newest
        tombstone; past `max_tombstones` the oldest go, with their memories."""
        for thread_id in buried:
            record = pipeline.tombstones.get(thread_id)
            if record is None:
                continue
            cur.execute(self._sql("INSERT INTO tombstones (thread_id) VALUES (?)"), (thread_id,))
            cur.executemany(self._sql("INSERT INTO seen_event_digests (thread_id, seq, digest) VALUES (?, ?, ?)"),
                            [(thread_id, i, d.hex()) for i, d in enumerate(record.seen_digests(), 1)])
        cur.execute("SELECT COUNT(*) FROM tombstones")
        excess = int(cur.fetchone()[0]) - pipeline.max_tombstones
        if excess > 0:
            cur.execute(self._sql("SELECT thread_id FROM tombstones ORDER BY ord LIMIT ?"), (excess,))
            for (thread_id,) in cur.fetchall():
                self._delete_thread(cur, str(thread_id))

    def _write_threads(
        self, cur: Cursor, thread_ids: Sequence[str], old: Mapping[str, _Rows], pipeline: Pipeline
    ) -> None:
        """Write what changed for these threads, one statement per kind of change. New threads are
        written in `thread_ids`' order (the pipeline's): their `ord` is the output order."""
        records = pipeline.threads
        sessions = []
        for thread_id in thread_ids:
            row = _session_row(records[thread_id].session)
            before = old.get(thread_id)
            # Compared as stored: the loaded row holds its columns as read (`_Rows`).
            if before is None or before.session is None or row != tuple(before.session):
                sessions.append(row)
        if sessions:
            cur.executemany(self._sql(_SESSION_UPSERT), sessions)
        def seen(thread_id: str) -> tuple[str, ...]:
            return tuple(d.hex() for d in records[thread_id].seen_digests())

        def finished(thread_id: str) -> tuple[str, ...]:
            return tuple(records[thread_id].finished)

        for table, column, attr, read in (("seen_event_digests", "digest", "seen", seen),
                                          ("finished_turns", "turn_id", "finished", finished)):
            deletes: list[tuple[str, int]] = []
            inserts: list[tuple[str, int, str]] = []
            for thread_id in thread_ids:
                before = old.get(thread_id)
                _memory_changes(thread_id, getattr(before, attr) if before else [], read(thread_id), deletes, inserts)
            if deletes:
                cur.executemany(self._sql(f"DELETE FROM {table} WHERE thread_id = ? AND seq < ?"), deletes)
            if inserts:
                cur.executemany(self._sql(f"INSERT INTO {table} (thread_id, seq, {column}) VALUES (?, ?, ?)"),
                                inserts)

    def _write_progress(self, cur: Cursor, p: ReplayProgress) -> None:
        counts = [p.outcomes.get(k.value, 0) for k in REPLAY_KINDS]
        cur.execute(
            self._sql("INSERT INTO replay_progress (log_key, position, lines, digest, applied, ignored, duplicate, "
                      "rejected, forgotten, malformed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (log_key) "
                      "DO UPDATE SET position = excluded.position, lines = excluded.lines, digest = excluded.digest, "
                      "applied = excluded.applied, ignored = excluded.ignored, duplicate = excluded.duplicate, "
                      "rejected = excluded.rejected, forgotten = excluded.forgotten, malformed = excluded.malformed"),
            (p.log_key, p.position, p.lines, p.digest, *counts, p.malformed),
        )
        if p.new_notes:
            cur.executemany(
                self._sql("INSERT INTO replay_notes (log_key, kind, line, event_id, message) VALUES (?, ?, ?, ?, ?)"),
                [(p.log_key, n.kind, n.line, n.event_id, n.message) for n in p.new_notes],
            )

    # -- reading -------------------------------------------------------------------------------

    def get(self, thread_id: str) -> Session | None:
        thread = self.thread(thread_id)
        return thread.session if thread is not None else None

    def thread(self, thread_id: str) -> ThreadState | None:
        """One thread's session and memories, checked as every loaded row is."""
        def work(cur: Cursor) -> ThreadState | None:
            rows = self._load(cur, [thread_id]).get(thread_id)
            if rows is None or rows.session is None:  # none, or deleted (a tombstone)
                return None
            return self._checked(thread_id, rows)

        return self._transaction("reading a thread", work, write=False)

    def threads(self) -> list[ThreadState]:
        """Every thread, in the order each was first stored, each checked as every loaded row is."""
        def work(cur: Cursor) -> list[ThreadState]:
            cur.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions ORDER BY ord")
            loaded = {row[0]: _Rows(Session(*row), [], []) for row in cur.fetchall()}
            cur.execute("SELECT thread_id FROM tombstones")
            buried = {thread_id for (thread_id,) in cur.fetchall()}
            for table, column, attr in (("seen_event_digests", "digest", "seen"),
                                        ("finished_turns", "turn_id", "finished")):
                cur.execute(f"SELECT thread_id, seq, {column} FROM {table} ORDER BY thread_id, seq")
                for thread_id, seq, value in cur.fetchall():
                    rows_of = loaded.get(thread_id)
                    if rows_of is None:
                        if thread_id in buried and attr == "seen":
                            continue  # a deleted thread's memory (`tombstones()`)
                        raise StoredRowError(str(thread_id), table, "memory rows without a session row")
                    _add_memory_row(getattr(rows_of, attr), str(thread_id), table, seq, value)
            return [self._checked(str(t), rows) for t, rows in loaded.items()]

        return self._transaction("reading every thread", work, write=False)

    def tombstones(self) -> list[Tombstone]:
        """Deleted threads' de-duplication memories, oldest deletion first, each checked."""
        def work(cur: Cursor) -> list[Tombstone]:
            cur.execute("SELECT thread_id FROM tombstones ORDER BY ord")
            buried = [str(t) for (t,) in cur.fetchall()]
            rows = self._load(cur, buried)
            out = []
            for thread_id in buried:
                out.append(self._tombstone(thread_id, rows[thread_id]))
            return out

        return self._transaction("reading the tombstones", work, write=False)

    def _checked(self, thread_id: str, rows: _Rows) -> ThreadState:
        record = self._record(self._pipeline(), thread_id, rows)
        return ThreadState(record.session, tuple(d.hex() for d in record.seen_digests()), tuple(record.finished))

    def forget(self, thread_id: str) -> bool:
        def work(cur: Cursor) -> bool:
            self._lock_threads(cur, [thread_id])
            cur.execute(self._sql("SELECT COUNT(*) FROM sessions WHERE thread_id = ?"), (thread_id,))
            held = bool(int(cur.fetchone()[0]))
            self._delete_thread(cur, thread_id)
            return held

        return self._transaction("forgetting a thread", work)

    def journal(self, thread_id: str | None = None) -> list[JournalEntry]:
        def work(cur: Cursor) -> list[JournalEntry]:
            columns = "thread_id, event_id, kind, reason, transition"
            if thread_id is None:
                cur.execute(f"SELECT {columns} FROM outcomes ORDER BY id")
            else:
                cur.execute(self._sql(f"SELECT {columns} FROM outcomes WHERE thread_id = ? ORDER BY id"),
                            (thread_id,))
            return [_journal_entry(*row) for row in cur.fetchall()]

        return self._transaction("reading the outcome journal", work, write=False)

    def progress(self, log_key: str) -> tuple[ReplayProgress, list[ReplayNote]] | None:
        def work(cur: Cursor) -> tuple[ReplayProgress, list[ReplayNote]] | None:
            cur.execute(self._sql("SELECT position, lines, digest, applied, ignored, duplicate, rejected, forgotten, "
                                  "malformed FROM replay_progress WHERE log_key = ?"), (log_key,))
            row = cur.fetchone()
            if row is None:
                return None
            names = ("position", "lines", "digest", *(k.value for k in REPLAY_KINDS), "malformed")
            values = dict(zip(names, row, strict=True))
            for name, value in values.items():
                if name == "digest":
                    if not isinstance(value, str) or _SHA256_HEX.fullmatch(value) is None:
                        raise _bad_progress(log_key, "digest", "must be 64 lowercase hex digits (a SHA-256)")
                elif type(value) is not int or value < 0:
                    raise _bad_progress(log_key, name, f"must be a whole number, got {_shown(value)}")
            outcomes = {k.value: values[k.value] for k in REPLAY_KINDS}
            cur.execute(self._sql("SELECT line, kind, event_id, message FROM replay_notes WHERE log_key = ? "
                                  "ORDER BY kind, line"), (log_key,))
            notes = [_replay_note(log_key, *note) for note in cur.fetchall()]
            return ReplayProgress(log_key, values["position"], values["lines"], values["digest"], outcomes,
                                  values["malformed"]), notes

        return self._transaction("reading replay progress", work, write=False)

    def reset_progress(self, log_key: str) -> None:
        def work(cur: Cursor) -> None:
            cur.execute(self._sql("DELETE FROM replay_progress WHERE log_key = ?"), (log_key,))
            cur.execute(self._sql("DELETE FROM replay_notes WHERE log_key = ?"), (log_key,))

        self._transaction("resetting replay progress", work)

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        projector = SessionProjector(
            self.spec, max_event_ids=self.max_event_ids, max_finished_turns=self.max_finished_turns,
            event_id_key=self.event_id_key,
        )
        for t in self.threads():
            projector.seed(t.session, finished_turns=t.finished_turns, seen_event_digests=t.seen_event_digests)
        for tomb in self.tombstones():
            bury(projector.pipeline, tomb)
        return projector.snapshot()

    def import_snapshot(self, data: Mapping[str, Any] | str | bytes) -> int:
        """Raises `SnapshotError` for a bad snapshot (nothing written) and `StoreError` when the store
        already holds threads: an import never merges into or overwrites live sessions.

        The empty store adopts the snapshot's memory caps, so that it forgets exactly as the projector
        the snapshot came from did, and its eventId digest key (version 7); caps above
        `MAX_IMPORTED_CAP` are refused (a tampered file must not lift the memory bounds)."""
        obj = _snapshot_object(data)
        caps: list[int] = []
        for key in ("maxEventIds", "maxFinishedTurns"):
            value = obj.get(key)
            if type(value) is not int or not 1 <= value <= MAX_IMPORTED_CAP:
                raise SnapshotError(key, f"must be a whole number from 1 to {MAX_IMPORTED_CAP} (MAX_IMPORTED_CAP)")
            caps.append(value)
        projector = SessionProjector.restore(obj, self.spec, max_event_ids=caps[0], max_finished_turns=caps[1],
                                             event_id_key=self.event_id_key)
        threads = [ThreadState(projector[t], projector.seen_event_digests(t), projector.finished_turns(t))
                   for t in projector]

        def work(cur: Cursor) -> int:
            cur.execute("SELECT COUNT(*) FROM sessions")
            if int(cur.fetchone()[0]):
                raise StoreError("importing a snapshot", "the store already holds sessions; import into an "
                                 "empty store")
            self._lock_threads(cur, sorted(t.session.thread_id for t in threads))
            cur.execute(self._sql("UPDATE store_meta SET value = ? WHERE key = 'maxEventIds'"),
                        (str(projector.max_event_ids),))
            cur.execute(self._sql("UPDATE store_meta SET value = ? WHERE key = 'maxFinishedTurns'"),
                        (str(projector.max_finished_turns),))
            cur.execute(self._sql("UPDATE store_meta SET value = ? WHERE key = 'eventIdKey'"),
                        (projector.event_id_key.hex(),))
            self._write_threads(cur, [t.session.thread_id for t in threads], {}, projector.pipeline)
            self._write_tombstones(cur, list(projector.pipeline.tombstones), projector.pipeline)
            return len(threads)

        count = self._transaction("importing a snapshot", work)
        self.max_event_ids, self.max_finished_turns = projector.max_event_ids, projector.max_finished_turns
        self.event_id_key = projector.event_id_key
        return count

    # -- observers -----------------------------------------------------------------------------

    def subscribe(
        self,
        observer: Observer,
        *,
        what: Literal["outcome", "change", "status"] = "outcome",
        on_error: ObserverErrorHandler | None = None,
    ) -> Callable[[], None]:
        """Call `observer(outcome)` for each event after its transaction committed (never for a
        rolled-back one), in event order; otherwise as `SessionProjector.subscribe`."""
        return self._observers.subscribe(observer, what=what, on_error=on_error)


def _memory_changes(
    thread_id: str,
    old: list[tuple[int, str]],
    new: tuple[str, ...],
    deletes: list[tuple[str, int]],
    inserts: list[tuple[str, int, str]],
) -> None:
    """Rows for what a memory added, a delete for what it forgot; sequence numbers keep the order
    (oldest first) that the next load seeds back.

    A FIFO memory only forgets from the front and adds at the back, so `new` is a suffix of `old`
    followed by added entries (an entry forgotten and added again within one batch is both:
    deleted, then added at the back). The forgotten ones are those below the first kept `seq`.
    """
    values = tuple(value for _, value in old)
    start = len(old)
    if new and values:
        with contextlib.suppress(ValueError):
            first = values.index(new[0])
            if values[first:] == new[:len(values) - first]:
                start = first
    next_seq = old[-1][0] + 1 if old else 1
    if start:
        deletes.append((thread_id, old[start][0] if start < len(old) else next_seq))
    kept = len(old) - start
    inserts.extend((thread_id, next_seq + i, value) for i, value in enumerate(new[kept:]))


def _key(meta: Mapping[str, str]) -> bytes:
    """The eventId digest key from `store_meta`, checked: 32 lowercase hex digits."""
    text = meta.get("eventIdKey")
    if text is None:
        raise StoreError("opening the store", "store_meta has no eventIdKey: the database is damaged")
    key = key_from_hex(text)
    if key is None:
        raise StoreError("opening the store", f"store_meta eventIdKey is not {KEY_SIZE * 2} lowercase hex digits: "
                         "the database is damaged")
    return key


def _cap(meta: Mapping[str, str], key: str) -> int:
    """A memory cap from `store_meta`, checked: a whole number from 1 to `MAX_IMPORTED_CAP`."""
    text = meta.get(key)
    if text is None:
        raise StoreError("opening the store", f"store_meta has no {key}: the database is damaged")
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_IMPORTED_CAP:
        raise StoreError("opening the store", f"store_meta {key} is {text[:40]!r}, not a whole number from 1 to "
                         f"{MAX_IMPORTED_CAP}: the database is damaged")
    return int(text)


# The memory tables by the tag `_load`'s query gives their rows.
_MEMORY_TABLES = ("seen_event_digests", "finished_turns")

# The largest `seq` a memory row may hold: the store numbers rows up from 1, and numbers this far
# from SQL's 64-bit limit can grow by a memory's cap many times over without overflowing it.
MAX_SEQ = 1 << 62

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _shown(value: Any) -> str:
    return f"{value!r:.40}" if isinstance(value, (int, float)) and not isinstance(value, bool) else \
        type(value).__name__


def _add_memory_row(rows: list[tuple[Any, Any]], thread_id: str, table: str, seq: Any, value: Any) -> None:
    """A memory row in load order (by seq): its seq a whole number from 1 to `MAX_SEQ`, above the
    one before, so that the next write's numbers follow on and its deletes remove what they meant."""
    if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
        raise StoredRowError(thread_id, f"{table}.seq", f"must be a whole number from 1 to {MAX_SEQ}, got "
                             f"{_shown(seq)}")
    if rows and seq <= rows[-1][0]:
        raise StoredRowError(thread_id, f"{table}.seq", f"{seq} is repeated")
    rows.append((seq, value))


def _journal_entry(thread_id: Any, event_id: Any, kind: Any, reason: Any, transition: Any) -> JournalEntry:
    """An `outcomes` row, checked: text ids, a known outcome kind, a number or null for the transition."""
    shown = str(thread_id)
    for name, value, nullable in (("thread_id", thread_id, False), ("event_id", event_id, False),
                                  ("reason", reason, True)):
        if not isinstance(value, str) and not (nullable and value is None):
            raise StoredRowError(shown, f"outcomes.{name}", f"must be text, got {type(value).__name__}")
    if kind not in _OUTCOME_KINDS:
        raise StoredRowError(shown, "outcomes.kind", f"unknown outcome kind {kind!r:.40}")
    if transition is not None and type(transition) is not int:
        raise StoredRowError(shown, "outcomes.transition", f"must be a whole number or null, got {_shown(transition)}")
    return JournalEntry(thread_id, event_id, OutcomeKind(kind), reason, transition)


_OUTCOME_KINDS = frozenset(k.value for k in OutcomeKind)


def _bad_progress(log_key: str, column: str, message: str) -> StoreError:
    return StoreError("reading replay progress", f"replay_progress row of log {log_key[:80]!r} is invalid: "
                      f"{column}: {message}")


def _replay_note(log_key: str, line: Any, kind: Any, event_id: Any, message: Any) -> ReplayNote:
    """A `replay_notes` row, checked."""
    def bad(column: str, text: str) -> StoreError:
        return StoreError("reading replay progress", f"replay_notes row of log {log_key[:80]!r} is invalid: "
                          f"{column}: {text}")

    if type(line) is not int or line < 1:
        raise bad("line", f"must be a whole number from 1, got {_shown(line)}")
    if kind not in ("rejected", "error"):
        raise bad("kind", f"must be 'rejected' or 'error', got {kind!r:.40}")
    if event_id is not None and not isinstance(event_id, str):
        raise bad("event_id", f"must be text or null, got {type(event_id).__name__}")
    if not isinstance(message, str):
        raise bad("message", f"must be text, got {type(message).__name__}")
    return ReplayNote(line, kind, event_id, message)


def _session_row(session: Session) -> tuple[Any, ...]:
    """A session as its `sessions` row: its fields in order, the open requests as JSON text."""
    row = list(session)
    row[_REQUESTS_AT] = requests_text(session.open_requests)
    return tuple(row)


def _requests_text_limit(max_id_length: int) -> int:
    """The longest `open_requests` text a valid row can hold: MAX_OPEN_REQUESTS entries whose id and
    kind are as long as allowed, every character escaped (12 characters for one outside the BMP:
    two \\uXXXX), with room for the keys and some spacing."""
    return MAX_OPEN_REQUESTS * (12 * (MAX_ID_LENGTH + max_id_length) + 64) + 2


def _row_value(wire: str, value: Any, max_id_length: int) -> Any:
    """A session column as a snapshot spells it: the stores keep `pendingTurn` as its turn id
    ("" when unknown), a snapshot as {"turnId": id or null}; and `openRequests` as JSON text, which
    is parsed here (bounded, so that damaged text is refused before it is parsed) and then checked
    as a snapshot's list is. Raises `SnapshotError` under the path `check_thread` is given."""
    if wire == "pendingTurn" and isinstance(value, str):
        return {"turnId": value or None}
    if wire == "openRequests":
        where = "row.session.openRequests"
        if not isinstance(value, str):
            shown = "null" if value is None else type(value).__name__
            raise SnapshotError(where, f"must be JSON text (an array), got {shown}")
        limit = _requests_text_limit(max_id_length)
        if len(value) > limit:
            raise SnapshotError(where, f"is {len(value)} characters long, more than {MAX_OPEN_REQUESTS} open "
                                       f"requests can take ({limit})")
        try:
            return json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise SnapshotError(where, f"not valid JSON: {str(exc)[:200]}") from None
    return value


@dataclass(slots=True)
class _Rows:
    # The row's columns as read, unchecked (the open requests still JSON text); None: a tombstone
    # (a deleted thread's memory).
    session: Session | None
    seen: list[tuple[Any, Any]]  # (seq, eventId digest in hex), oldest first; checked on use
    finished: list[tuple[Any, Any]]  # (seq, turnId), oldest first; checked on use


def iter_chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to `size` items: keeps an IN (...) list under the databases' parameter limits."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

