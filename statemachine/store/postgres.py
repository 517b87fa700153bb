"""PostgreSQL, for many workers on one database (`psycopg` 3: the optional `[postgres]` extra).

Each thread's writers are serialised by a transaction-scoped advisory lock on a hash of its
threadId, taken before its rows are read: it works for a thread's first event too, when there is
no row yet to lock with `SELECT ... FOR UPDATE`. Threads of one batch are locked in sorted order,
so two batches never wait on each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from statemachine.spec.model import Spec
from statemachine.store.base import Cursor, SqlStore
from statemachine.store.errors import StoreError

__all__ = ["PostgresStore"]

# Key of the advisory lock that serialises schema migrations between workers starting together.
_SCHEMA_LOCK = 0x5E5510


class PostgresStore(SqlStore):
    dialect = "postgresql"
    placeholder = "%s"

    def __init__(
        self,
        url: str,
        spec: Spec | None = None,
        *,
        max_event_ids: int | None = None,
        max_finished_turns: int | None = None,
        journal: bool = True,
        connect_timeout: int = 5,
        **options: Any,
    ) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError("opening the store", "PostgreSQL needs psycopg: pip install "
                             "'agent-session-lifecycle[postgres]'", exc) from None
        self._psycopg = psycopg
        self.url = url
        self.connect_timeout = connect_timeout
        super().__init__(spec, max_event_ids=max_event_ids, max_finished_turns=max_finished_turns, journal=journal,
                         **options)

    def _connect(self) -> Any:
        # autocommit: the store begins and commits each transaction itself, as with SQLite.
        return self._psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout)

    def _begin(self, cur: Cursor, write: bool) -> None:
        cur.execute("BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def _lock_threads(self, cur: Cursor, thread_ids: Sequence[str]) -> None:
        for thread_id in thread_ids:
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (thread_id,))

    def _lock_schema(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))

    def _is_db_error(self, exc: BaseException) -> bool:
        return isinstance(exc, self._psycopg.Error)

    def _is_disconnected(self, conn: Any) -> bool:
        return bool(conn.closed or conn.broken)
