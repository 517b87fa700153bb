"""The embedded default: one SQLite file in WAL mode (stdlib `sqlite3`, nothing to install).

Writers are serialised by SQLite's own database lock, taken at `BEGIN IMMEDIATE`; readers are
never blocked (WAL). Several processes may share the file; they take turns to write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from statemachine.spec.model import Spec
from statemachine.store.base import Cursor, SqlStore

__all__ = ["SQLiteStore"]


class SQLiteStore(SqlStore):
    dialect = "sqlite"

    def __init__(
        self,
        path: str,
        spec: Spec | None = None,
        *,
        max_event_ids: int | None = None,
        max_finished_turns: int | None = None,
        journal: bool = True,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        **options: Any,
    ) -> None:
        """`busy_timeout`: seconds to wait for another process's write lock before giving up with
        `StoreError` ("database is locked"). `synchronous`: "NORMAL" (loses nothing when the
        process dies; a power loss may lose the last transactions) or "FULL" (an fsync per commit)."""
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        self.path = path
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous
        super().__init__(spec, max_event_ids=max_event_ids, max_finished_turns=max_finished_turns, journal=journal,
                         **options)

    def _connect(self) -> Any:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL never corrupts and loses nothing on a process crash; only a power
            # loss may lose the last transactions (see docs/storage.md).
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _begin(self, cur: Cursor, write: bool) -> None:
        # IMMEDIATE takes the write lock now, so a transaction never fails half-way on upgrading it.
        cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def _lock_threads(self, cur: Cursor, thread_ids: Sequence[str]) -> None:
        pass  # BEGIN IMMEDIATE already holds the database's one write lock

    def _lock_schema(self, cur: Cursor) -> None:
        pass

    def _is_db_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error)

    def _is_disconnected(self, conn: Any) -> bool:
        return False
