"""The store's tables, as numbered migrations per database.

Migration N is applied once, in order, inside the transaction that records N in
`schema_version`; a database whose version is newer than the last one here is refused, since this
code cannot know what the newer tables mean. Add a migration by appending to both lists: never
edit one that has shipped. A migration that must compute values SQL cannot (a digest) has a data
step in `DATA_STEPS`, run right after its statements, in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from statemachine.core.record import legacy_digest_hex, new_key

__all__ = ["DATA_STEPS", "MIGRATIONS", "requests_text"]

# Both dialects share this shape; only the auto-numbered columns differ.
_V1 = """
CREATE TABLE store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE sessions (
    ord {serial},
    thread_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    provider_name TEXT,
    active_turn_id TEXT,
    last_error TEXT,
    updated_at TEXT,
    provider_instance_id TEXT,
    runtime_mode TEXT
);
CREATE TABLE seen_events (
    thread_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (thread_id, seq),
    UNIQUE (thread_id, event_id)
);
CREATE TABLE finished_turns (
    thread_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    turn_id TEXT NOT NULL,
    PRIMARY KEY (thread_id, seq),
    UNIQUE (thread_id, turn_id)
);
CREATE TABLE outcomes (
    id {serial},
    thread_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT,
    transition INTEGER
);
CREATE INDEX outcomes_by_thread ON outcomes (thread_id, id);
CREATE TABLE replay_progress (
    log_key TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    lines BIGINT NOT NULL,
    digest TEXT NOT NULL,
    applied BIGINT NOT NULL,
    ignored BIGINT NOT NULL,
    duplicate BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    malformed BIGINT NOT NULL
);
CREATE TABLE replay_notes (
    log_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    line BIGINT NOT NULL,
    event_id TEXT,
    message TEXT NOT NULL,
    PRIMARY KEY (log_key, kind, line)
)
"""


# The orchestrator's side of a session (a pending turn start, what the provider waits on), and the
# count of events that forgot their thread.
_V2 = """
ALTER TABLE sessions ADD COLUMN pending_turn TEXT;
ALTER TABLE sessions ADD COLUMN awaiting TEXT;
ALTER TABLE replay_progress ADD COLUMN forgotten BIGINT NOT NULL DEFAULT 0
"""


# The de-duplication memory keeps each eventId's digest (hex) instead of the id: `seen_events`
# becomes `seen_event_digests` (its data step digests the rows, unkeyed 128-bit as it did then).
_V3 = """
CREATE TABLE seen_event_digests (
    thread_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (thread_id, seq),
    UNIQUE (thread_id, digest)
)
"""


def _digest_seen_events(cur: Any, sql: Callable[[str], str]) -> None:
    """Migration 3's data: every remembered eventId as its digest, in the same order, then the old table dropped."""
    cur.execute("SELECT thread_id, seq, event_id FROM seen_events ORDER BY thread_id, seq")
    rows = [(str(t), int(seq), legacy_digest_hex(str(e))) for t, seq, e in cur.fetchall()]
    if rows:
        cur.executemany(sql("INSERT INTO seen_event_digests (thread_id, seq, digest) VALUES (?, ?, ?)"), rows)
    cur.execute("DROP TABLE seen_events")


# Deleted threads keep their de-duplication memory (rows in `seen_event_digests` without a session
# row), oldest deletion first by `ord`, so a redelivered event of a deleted thread is a duplicate.
_V4 = """
CREATE TABLE tombstones (
    ord {serial},
    thread_id TEXT NOT NULL UNIQUE
)
"""


# The provider's open requests per session, oldest first, as JSON text (`requests_text`). Rows
# written before get theirs from `awaiting` in the data step.
_V5 = """
ALTER TABLE sessions ADD COLUMN open_requests TEXT NOT NULL DEFAULT '[]'
"""


def requests_text(requests: Iterable[tuple[Any, str]]) -> str:
    """Open requests as the `open_requests` column keeps them: the snapshot's `openRequests`
    ([{"requestId": id or null, "kind": text}]) as JSON text; 1 and "1" stay apart."""
    return json.dumps([{"requestId": rid, "kind": kind} for rid, kind in requests], separators=(",", ":"))


def _requests_from_awaiting(cur: Any, sql: Callable[[str], str]) -> None:
    """Migration 5's data: a session awaiting something held one open request whose id was not
    kept, as an older snapshot restores it; `awaiting` stays the newest (only) request's kind."""
    cur.execute("SELECT thread_id, awaiting FROM sessions WHERE awaiting IS NOT NULL")
    # Text only: anything else is damage that loading the row refuses, naming the column.
    rows = [(requests_text([(None, a)]), t) for t, a in cur.fetchall() if isinstance(a, str)]
    if rows:
        cur.executemany(sql("UPDATE sessions SET open_requests = ? WHERE thread_id = ?"), rows)


# Each store keys its eventId digests with a secret of its own (`eventIdKey` in `store_meta`, 32 hex
# digits): new digests are 64-bit and keyed; the 128-bit ones written before stay until forgotten.
# No statement: the data step writes the key.
_V6 = ""


def _event_id_key(cur: Any, sql: Callable[[str], str]) -> None:
    """Migration 6's data: a fresh random key for the store's eventId digests."""
    cur.execute(sql("INSERT INTO store_meta (key, value) VALUES (?, ?)"), ("eventIdKey", new_key().hex()))


# migration number -> its data step: (cursor, the dialect's placeholder rewrite) -> None.
DATA_STEPS: dict[int, Callable[[Any, Callable[[str], str]], None]] = {
    3: _digest_seen_events, 5: _requests_from_awaiting, 6: _event_id_key,
}


def _statements(text: str, serial: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.format(serial=serial).split(";") if s.strip())


# dialect -> migrations; migration N (1-based) is MIGRATIONS[dialect][N - 1].
MIGRATIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    # INTEGER PRIMARY KEY is SQLite's rowid: numbered in insertion order.
    "sqlite": (_statements(_V1, "INTEGER PRIMARY KEY"), _statements(_V2, ""), _statements(_V3, ""),
               _statements(_V4, "INTEGER PRIMARY KEY"), _statements(_V5, ""), _statements(_V6, "")),
    "postgresql": (_statements(_V1, "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"), _statements(_V2, ""),
                   _statements(_V3, ""), _statements(_V4, "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
                   _statements(_V5, ""), _statements(_V6, "")),
}
