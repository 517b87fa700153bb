"""Tampered store rows: a store whose database was edited by hand loads cleanly or is refused by name.

    .venv/bin/python scripts/store_fuzz.py                    # 20000 SQLite cases
    .venv/bin/python scripts/store_fuzz.py --cases 500 --seed 7 --json
    .venv/bin/python scripts/store_fuzz.py --postgres URL --cases 100   # an empty PostgreSQL database

The bases are real stores: each example log (`examples/*.jsonl`) replayed into its own SQLite file
with `replay_into_store`, and one store holding every example with tiny memory caps, its first
thread deleted (a tombstone) and the logs delivered again. A case copies one base, makes one
seeded edit with plain SQL (`TAMPERS`: a wrong type, NULL, NUL or undecodable text, an unknown
status, a bad or far-future timestamp, a digest of the wrong length or not hex, a duplicated,
negative or textual seq, memories past the cap, a missing or junk `store_meta` key, another schema
version, a tombstone for a live thread, a dropped table, ...; a table's constraints are sometimes
dropped first, so NULLs and duplicates can land), then opens the store, reads every thread, the
tombstones, the snapshot, the journal and the replay progress, applies a few events, and reads
again.

Each step ends in a clean result or a refusal: `StoredRowError` naming the thread and the field,
or `StoreError` naming the table or column. A refused step must leave the database's rows as they
were (`dump` before and after). Every clean read is checked: each session meets the built-in
requirements' state checks and the spec's invariants, memories within the caps, and the store's
snapshot restores into a projector. Failures are counted, not raised; exit status 1 if any.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statemachine import EventError, EventParser, SessionProjector
from statemachine.replay.store import replay_into_store
from statemachine.runtime.snapshot import SnapshotError
from statemachine.spec.invariants import state_violations
from statemachine.spec.load import builtin_spec
from statemachine.spec.requirements import builtin_requirements
from statemachine.store import SessionStore, StoredRowError, StoreError, open_store
from statemachine.store.base import SqlStore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.jsonl"))
SPEC = builtin_spec()
REQUIREMENTS = builtin_requirements(SPEC)
MAX_EXAMPLES_KEPT = 5

# Tables and columns of schema v5 (docs/storage.md): a refusal that is not a `StoredRowError` must
# name one of them.
COLUMNS: dict[str, tuple[str, ...]] = {
    "sessions": ("ord", "thread_id", "status", "provider_name", "active_turn_id", "last_error", "updated_at",
                 "provider_instance_id", "runtime_mode", "pending_turn", "awaiting", "open_requests"),
    "seen_event_digests": ("thread_id", "seq", "digest"),
    "finished_turns": ("thread_id", "seq", "turn_id"),
    "tombstones": ("ord", "thread_id"),
    "store_meta": ("key", "value"),
    "schema_version": ("version",),
    "outcomes": ("id", "thread_id", "event_id", "kind", "reason", "transition"),
    "replay_progress": ("log_key", "position", "lines", "digest", "applied", "ignored", "duplicate", "rejected",
                        "malformed", "forgotten"),
    "replay_notes": ("log_key", "kind", "line", "event_id", "message"),
}
TABLES = tuple(COLUMNS)
COLUMN_NAMES = frozenset(c for cs in COLUMNS.values() for c in cs)


# The unique columns the store's upserts name (`ON CONFLICT (...)`): without them every write is
# refused by the database, in its own words. Stripping them is damage to the schema, which the
# store does not check, not to rows: loosened tables keep them.
UPSERT_KEYS = {("sessions", "thread_id"), ("store_meta", "key"), ("replay_progress", "log_key")}


class Failure(Exception):
    """A broken promise: `kind` is the counter it goes to."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# -- the databases ------------------------------------------------------------------------------


class Raw(str):
    """A value written as an SQL expression, not a parameter (undecodable text)."""


class Undecodable(bytes):
    """Text a SQLite column holds that is not UTF-8, as read back: written back as it was."""


def _read_text(data: bytes) -> str | Undecodable:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return Undecodable(data)


# Text that is not UTF-8 (a lone surrogate's CESU-8 bytes, a stray byte): the column holds it as text.
UNDECODABLE = {"lone surrogate": Raw("CAST(X'74eda080' AS TEXT)"), "stray byte": Raw("CAST(X'ff41' AS TEXT)")}


class Db:
    """Plain SQL on a store's database, for one dialect: rows are picked by the row's physical id."""

    dialect: str
    rowid: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def tables(self) -> list[str]:
        raise NotImplementedError

    def columns(self, table: str) -> list[str]:
        raise NotImplementedError

    def dump(self) -> list[Any]:
        raise NotImplementedError

    def loosen(self, table: str) -> None:
        """Recreate `table` with its columns' types but no NOT NULL, UNIQUE or PRIMARY KEY (SQLite's
        `ord` keeps numbering rows), keeping its rows: NULLs and duplicates can then be written."""
        raise NotImplementedError

    def keys(self, table: str) -> list[Any]:
        return [r[0] for r in self.execute(f"SELECT {self.rowid} FROM {table} ORDER BY {self.rowid}")]

    def update(self, table: str, key: Any, column: str, value: Any) -> None:
        expr, params = self._value(value)
        self.execute(f"UPDATE {table} SET {column} = {expr} WHERE {self.rowid} = {self.ph}", [*params, key])

    def delete(self, table: str, key: Any) -> None:
        self.execute(f"DELETE FROM {table} WHERE {self.rowid} = {self.ph}", [key])

    def insert(self, table: str, row: dict[str, Any]) -> None:
        exprs, params = [], []
        for value in row.values():
            expr, ps = self._value(value)
            exprs.append(expr)
            params.extend(ps)
        self.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(exprs)})", params)

    def row(self, table: str, key: Any) -> dict[str, Any]:
        names = self.columns(table)
        values = self.execute(f"SELECT {', '.join(names)} FROM {table} WHERE {self.rowid} = {self.ph}", [key])[0]
        return dict(zip(names, values, strict=True))

    ph = "?"

    def _value(self, value: Any) -> tuple[str, list[Any]]:
        if isinstance(value, Undecodable):
            return f"CAST(X'{value.hex()}' AS TEXT)", []
        return (str(value), []) if isinstance(value, Raw) else (self.ph, [value])


class SqliteDb(Db):
    dialect = "sqlite"
    rowid = "rowid"

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.text_factory = _read_text  # undecodable text is read back as it is
        self.conn.execute("PRAGMA synchronous=OFF")  # a throwaway copy: no fsync per edit

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, list(params)).fetchall()

    def close(self) -> None:
        self.conn.close()

    def tables(self) -> list[str]:
        return [str(n) for (n,) in self.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                    "ORDER BY name")]

    def columns(self, table: str) -> list[str]:
        return [str(r[1]) for r in self.execute(f"PRAGMA table_info({table})")]

    def dump(self) -> list[Any]:
        out: list[Any] = self.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        for table in self.tables():
            out.append((table, self.execute(f"SELECT * FROM {table} ORDER BY rowid")))
        return out

    def loosen(self, table: str) -> None:
        info = self.execute(f"PRAGMA table_info({table})")
        cols = [(str(r[1]), str(r[2])) for r in info]
        defs = ", ".join(f"{n} INTEGER PRIMARY KEY" if n in ("ord", "id") else
                         f"{n} {t} UNIQUE" if (table, n) in UPSERT_KEYS else f"{n} {t}" for n, t in cols)
        names = ", ".join(n for n, _ in cols)
        self.execute(f"CREATE TABLE loose_{table} ({defs})")
        self.execute(f"INSERT INTO loose_{table} ({names}) SELECT {names} FROM {table}")
        self.execute(f"DROP TABLE {table}")
        self.execute(f"ALTER TABLE loose_{table} RENAME TO {table}")


class PostgresDb(Db):
    dialect = "postgresql"
    rowid = "ctid"
    ph = "%s"

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(sql, list(params))
        return cur.fetchall() if cur.description else []

    def close(self) -> None:
        self.conn.close()

    def keys(self, table: str) -> list[Any]:
        return [str(r[0]) for r in self.execute(f"SELECT ctid FROM {table} ORDER BY ctid")]

    def update(self, table: str, key: Any, column: str, value: Any) -> None:
        self.execute(f"UPDATE {table} SET {column} = %s WHERE ctid = %s::tid", [value, key])

    def delete(self, table: str, key: Any) -> None:
        self.execute(f"DELETE FROM {table} WHERE ctid = %s::tid", [key])

    def row(self, table: str, key: Any) -> dict[str, Any]:
        names = self.columns(table)
        values = self.execute(f"SELECT {', '.join(names)} FROM {table} WHERE ctid = %s::tid", [key])[0]
        return dict(zip(names, values, strict=True))

    def tables(self) -> list[str]:
        return [n for (n,) in self.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                           "ORDER BY tablename")]

    def columns(self, table: str) -> list[str]:
        return [n for (n,) in self.execute("SELECT column_name FROM information_schema.columns WHERE table_name = "
                                           "%s AND table_schema = 'public' ORDER BY ordinal_position", [table])]

    def dump(self) -> list[Any]:
        out: list[Any] = []
        columns: dict[str, list[str]] = {}
        for table, column in self.execute("SELECT table_name, column_name FROM information_schema.columns WHERE "
                                          "table_schema = 'public' ORDER BY table_name, ordinal_position"):
            columns.setdefault(table, []).append(column)
        for table, listed in columns.items():
            names = ", ".join(listed)
            # Sorted by content: PostgreSQL may move a row (its ctid) when a refused write rolls back.
            out.append((table, sorted(map(repr, self.execute(f"SELECT {names} FROM {table}")))))
        return out

    def loosen(self, table: str) -> None:
        keep = {c for t, c in UPSERT_KEYS if t == table}
        for name, columns in self.execute("SELECT conname, (SELECT array_agg(attname::text) FROM pg_attribute "
                                          "WHERE attrelid = conrelid AND attnum = ANY(conkey)) FROM pg_constraint "
                                          "WHERE conrelid = %s::regclass AND contype IN ('p', 'u')", [table]):
            if not set(columns) & keep:
                self.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for (name,) in self.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                                    "AND table_schema = 'public' AND is_nullable = 'NO' AND is_identity = 'NO'",
                                    [table]):
            self.execute(f"ALTER TABLE {table} ALTER COLUMN {name} DROP NOT NULL")


# -- the edits ----------------------------------------------------------------------------------

HEX = "0123456789abcdef"
STATUSES = sorted(SPEC.status_names)
JUNK: list[Any] = [None, 0, -1, 1, 2**63 - 1, 1.5, b"\x00\xff", b"A", "", " ", "x" * 300, "a\x00b", "null", "0",
                   "\x1b[31mred\x1b[0m", "\u202etxet", "'; DROP TABLE sessions; --", *UNDECODABLE.values()]
TIMES = ["2026-13-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-11-20T10:00:00+24:00",
         "yesterday", "\uff12\uff10\uff12\uff16-01-01T00:00:00Z", "2026-11-20T10:00:01.000Z", "2026-02-30T00:00:00Z",
         "2026-11-20T10:00:00Z\n", "2126-01-01T00:00:00Z"]
SEQS: list[Any] = [-1, 0, 2**62, "1", "x", 1.5, None, 2**63 - 1]
META_VALUES: list[Any] = ["0", "-5", "abc", "", "1", "3", "1048577", "99999999999999999999", "\uff11\uff10", None,
                          7, 1.5, "session-lifecycle", "other-spec"]
VERSIONS: list[Any] = [0, 1, 2, 3, 4, 6, 99, -1, "5", "x", None, 5.0, 2**63 - 1]


def _requests(*entries: tuple[Any, Any]) -> str:
    return json.dumps([{"requestId": rid, "kind": kind} for rid, kind in entries])


# `open_requests` (JSON text): valid-looking lists, each entry's refusals, and text that is no list.
REQUESTS: list[Any] = [
    "[]", _requests((None, "approval")), _requests((7, "approval")), _requests(("r-1", "user-input")),
    _requests((1, "approval"), ("1", "user-input")), _requests((1, "approval"), (1, "user-input")),
    _requests((None, "approval"), (None, "approval")), _requests((True, "approval")), _requests((1.5, "approval")),
    _requests((2**53, "approval")), _requests(("", "approval")), _requests(("x" * 257, "approval")),
    _requests(("a\x00b", "approval")), _requests(("a\ud800b", "approval")), _requests((1, "")),
    _requests((1, None)), _requests((1, "x" * 300)), _requests(*((i, "approval") for i in range(33))),
    json.dumps([{"requestId": 1}]), json.dumps([{"requestId": 1, "kind": "approval", "turnId": "T1"}]),
    json.dumps([[1, "approval"]]), '{"requestId": 1}', "[", "NaN", "[" * 100_000, "[" + " " * 10**6 + "]",
]


def _digests(rng: random.Random) -> list[Any]:
    good = "".join(rng.choice(HEX) for _ in range(32))  # an older unkeyed digest; keyed ones are 16 digits
    keyed = good[:16]
    return [good[:31], good + "0", good.upper(), "zz" * 16, good[:30] + "g0", " " + good[:31], good,
            good.encode(), int(good[:8], 16), keyed[:15], keyed + "0", keyed.upper(), " " + keyed[:15], keyed]


def _values(rng: random.Random, table: str, column: str) -> list[Any]:
    """Bad (and some valid-looking) values for one column."""
    special: list[Any] = []
    if column == "status":
        special = ["sleeping", "IDLE", "idle ", *STATUSES, *STATUSES]
    elif column in ("updated_at",):
        special = TIMES * 2
    elif column == "digest" and table == "seen_event_digests":
        special = _digests(rng) * 2
    elif column in ("seq", "ord", "id", "position", "lines", "line", "transition") or table == "replay_progress":
        special = SEQS * 2
    elif column == "value":
        special = META_VALUES * 2
    elif column == "version":
        special = VERSIONS * 2
    elif column == "kind":
        special = ["applied", "bogus", "rejected", "error", "deferred"]
    elif column == "open_requests":
        special = REQUESTS
    elif column in ("active_turn_id", "pending_turn", "awaiting", "turn_id"):
        special = ["T1", "turn-1", "x" * 257]
    return special + JUNK


@dataclass
class Edit:
    """What a case did to its base: a description, and whether the database took it."""

    what: str
    loosened: str | None = None


def _pick_row(db: Db, rng: random.Random, table: str) -> Any | None:
    keys = db.keys(table)
    return rng.choice(keys) if keys else None


def _threads(db: Db, table: str) -> list[str]:
    return [t for (t,) in db.execute(f"SELECT DISTINCT thread_id FROM {table}") if isinstance(t, str)]


def tamper_value(db: Db, rng: random.Random) -> str:
    table = rng.choice(TABLES)
    key = _pick_row(db, rng, table)
    if key is None:
        return f"{table}: no row"
    column = rng.choice(db.columns(table))
    value = rng.choice(_values(rng, table, column))
    db.update(table, key, column, value)
    return f"{table}.{column} = {value!r}"


def tamper_delete(db: Db, rng: random.Random) -> str:
    table = rng.choice(TABLES)
    key = _pick_row(db, rng, table)
    if key is None:
        return f"{table}: no row"
    db.delete(table, key)
    return f"a {table} row deleted"


def tamper_duplicate(db: Db, rng: random.Random) -> str:
    table = rng.choice(("sessions", "seen_event_digests", "finished_turns", "tombstones", "store_meta",
                        "schema_version"))
    key = _pick_row(db, rng, table)
    if key is None:
        return f"{table}: no row"
    row = db.row(table, key)
    row.pop("ord", None)
    if "seq" in row and rng.random() < 0.5:
        row["seq"] = rng.choice([row["seq"] + 1000, -row["seq"]])  # the same value under another seq
    elif "seq" in row and rng.random() < 0.5:
        column = "digest" if "digest" in row else "turn_id"
        row[column] = "".join(rng.choice(HEX) for _ in range(32))  # another value under the same seq
    db.insert(table, row)
    return f"a {table} row duplicated"


def tamper_swap(db: Db, rng: random.Random) -> str:
    """One column's value moved from one row to another of the same table."""
    table = rng.choice(("sessions", "seen_event_digests", "finished_turns", "tombstones"))
    keys = db.keys(table)
    if len(keys) < 2:
        return f"{table}: fewer than 2 rows"
    a, b = rng.sample(keys, 2)
    column = rng.choice(db.columns(table))
    db.update(table, b, column, db.row(table, a)[column])
    return f"{table}.{column} copied to another row"


def tamper_memory(db: Db, rng: random.Random) -> str:
    """Memory rows added: past the cap, for no session, for a tombstone, or out of order."""
    table = rng.choice(("seen_event_digests", "finished_turns"))
    column = "digest" if table == "seen_event_digests" else "turn_id"
    owners = _threads(db, "sessions") + _threads(db, "tombstones")
    thread = rng.choice([*owners, "ghost", "x" * 300]) if owners else "ghost"
    start = rng.choice([10_000, -5, 0])
    count = rng.choice([1, 2, 5, 1025, 1100])
    for i in range(count):
        value = "".join(rng.choice(HEX) for _ in range(32)) if column == "digest" else f"T-extra-{i}"
        db.insert(table, {"thread_id": thread, "seq": start + i, column: value})
    return f"{count} {table} rows added for {str(thread)[:20]!r} from seq {start}"


def tamper_tombstone(db: Db, rng: random.Random) -> str:
    live = _threads(db, "sessions")
    thread = rng.choice([*live, "ghost", ""]) if live else "ghost"
    db.insert("tombstones", {"thread_id": thread})
    return f"a tombstone for {str(thread)[:20]!r}"


def tamper_session(db: Db, rng: random.Random) -> str:
    """A new session row, each column valid-looking or junk."""
    row: dict[str, Any] = {"thread_id": rng.choice(["new-thread", "x" * 257, "", None, 5])}
    for column in COLUMNS["sessions"][2:]:
        if rng.random() < 0.5:
            row[column] = rng.choice(_values(rng, "sessions", column))
    row.setdefault("status", rng.choice(STATUSES))
    db.insert("sessions", row)
    return f"a session row {row!r:.120}"


def tamper_meta(db: Db, rng: random.Random) -> str:
    action = rng.choice(["drop_key", "clear", "extra", "set"])
    if action == "drop_key":
        key = rng.choice(["spec", "maxEventIds", "maxFinishedTurns"])
        db.execute(f"DELETE FROM store_meta WHERE key = {db.ph}", [key])
        return f"store_meta {key} deleted"
    if action == "clear":
        db.execute("DELETE FROM store_meta")
        return "store_meta emptied"
    if action == "extra":
        db.insert("store_meta", {"key": rng.choice(["maxTombstones", "", "x" * 300]), "value": "1"})
        return "an unknown store_meta key"
    key = rng.choice(["spec", "maxEventIds", "maxFinishedTurns"])
    value = rng.choice(META_VALUES)
    db.execute(f"UPDATE store_meta SET value = {db.ph} WHERE key = {db.ph}", [value, key])
    return f"store_meta {key} = {value!r}"


def tamper_version(db: Db, rng: random.Random) -> str:
    action = rng.choice(["set", "set", "delete", "second"])
    if action == "delete":
        db.execute("DELETE FROM schema_version")
        return "schema_version emptied"
    value = rng.choice(VERSIONS)
    if action == "second":
        db.insert("schema_version", {"version": value})
        return f"a second schema_version row {value!r}"
    db.execute(f"UPDATE schema_version SET version = {db.ph}", [value])
    return f"schema_version = {value!r}"


def tamper_drop(db: Db, rng: random.Random) -> str:
    table = rng.choice(TABLES)
    db.execute(f"DROP TABLE {table}")
    return f"table {table} dropped"


# name -> (weight, edit)
TAMPERS: dict[str, tuple[int, Callable[[Db, random.Random], str]]] = {
    "value": (10, tamper_value),
    "delete": (3, tamper_delete),
    "duplicate": (3, tamper_duplicate),
    "swap": (2, tamper_swap),
    "memory": (2, tamper_memory),
    "tombstone": (1, tamper_tombstone),
    "session": (2, tamper_session),
    "meta": (2, tamper_meta),
    "version": (1, tamper_version),
    "drop": (1, tamper_drop),
}


def tamper(db: Db, rng: random.Random) -> Edit:
    """One seeded edit; a quarter of the time the edited table first loses its constraints."""
    names = list(TAMPERS)
    name = rng.choices(names, weights=[TAMPERS[n][0] for n in names])[0]
    loosened = None
    db.execute("BEGIN")  # one transaction per edit: the database refuses all of it or none
    try:
        if name in ("value", "duplicate", "swap", "memory", "tombstone", "session") and rng.random() < 0.25:
            loosened = rng.choice(TABLES)
            db.loosen(loosened)
        edit = Edit(f"{name}: {TAMPERS[name][1](db, rng)}", loosened)
        db.execute("COMMIT")
        return edit
    except Exception as exc:
        if not _is_db_error(exc):
            raise
        db.execute("ROLLBACK")
        return Edit(f"{name}: refused by the database ({type(exc).__name__})", None)


def _is_db_error(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return True
    with contextlib.suppress(ImportError):
        import psycopg

        return isinstance(exc, psycopg.Error)
    return False


# -- the bases ----------------------------------------------------------------------------------


def _event(n: int, type_: str, thread: str, turn: str | None = None, **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"eventId": f"fuzz-{n}", "type": type_, "provider": "codex", "threadId": thread,
                             "createdAt": f"2026-11-20T11:{n % 60:02d}:00.000Z"}
    if turn is not None:
        event["turnId"] = turn
    if payload:
        event["payload"] = payload
    return event


def build_bases(url_for: Callable[[str], str]) -> list[tuple[str, str, list[str]]]:
    """(name, url, lines) per base: each example alone, and all of them with tiny caps, the first
    thread deleted and every log delivered again."""
    bases = []
    for log in EXAMPLES:
        url = url_for(log.stem)
        with open_store(url) as store, log.open("rb") as stream:
            replay_into_store(store, stream, log.name)
        bases.append((log.stem, url, log.read_text().splitlines()))
    url = url_for("all-small-caps")
    lines = [line for log in EXAMPLES for line in log.read_text().splitlines()]
    with open_store(url, max_event_ids=4, max_finished_turns=2) as store:
        for log in EXAMPLES:
            with log.open("rb") as stream:
                replay_into_store(store, stream, log.name)
        first = json.loads(lines[0])["threadId"]
        store.apply(_event(0, "thread.delete", first))
        store.apply_batch(lines)
        # Open requests of every kind of id: an integer, text, and none.
        store.apply_all([_event(1, "turn.started", "asks", "fz-R1"),
                         _event(2, "request.opened", "asks", "fz-R1", requestId=7),
                         _event(3, "user-input.requested", "asks", "fz-R1", requestId="ask-1"),
                         _event(4, "request.opened", "asks", "fz-R1")])
    bases.append(("all-small-caps", url, lines))
    return bases


PARSER = EventParser(SPEC)


def _valid_thread(thread_id: str) -> bool:
    try:
        PARSER.parse({**_event(0, "session.started", "t"), "threadId": thread_id})
    except EventError:
        return False
    return True


def events_for(rng: random.Random, threads: list[str], lines: list[str], n: int) -> list[Any]:
    """A few events on the base's threads and a new one: turns, errors, deletes, redeliveries."""
    threads = [t for t in threads if _valid_thread(t)]
    out: list[Any] = []
    for i in range(rng.randint(1, 6)):
        thread = rng.choice([*threads, "fresh-thread"])
        turn = f"fz-T{rng.randint(1, 3)}"
        kind = rng.choice(["turn.started", "turn.completed", "session.error", "thread.delete", "redeliver",
                           "session.started", "request"])
        if kind == "request":
            request = rng.choice(["request.opened", "user-input.requested", "request.resolved"])
            rid = rng.choice([None, 7, "7", "ask-1", 2**53 - 1])
            out.append(_event(n * 10 + i, request, thread, rng.choice([None, turn]),
                              **({} if rid is None else {"requestId": rid})))
        elif kind == "redeliver" and lines:
            out.append(rng.choice(lines))
        elif kind == "turn.completed":
            out.append(_event(n * 10 + i, kind, thread, turn, state=rng.choice(["completed", "failed"])))
        elif kind == "turn.started":
            out.append(_event(n * 10 + i, kind, thread, turn))
        elif kind == "session.error":
            out.append(_event(n * 10 + i, kind, thread, message="boom"))
        else:
            out.append(_event(n * 10 + i, "thread.delete" if kind == "thread.delete" else "session.started", thread))
    return out


# -- one case -----------------------------------------------------------------------------------


def refusal_key(exc: StoreError) -> str:
    """What a refusal names: `StoredRowError`'s field (indices dropped, two parts at most), or the
    table, column or setting a `StoreError`'s message names; a `Failure` when it names none."""
    if isinstance(exc, StoredRowError):
        if not exc.field or not isinstance(exc.thread_id, str):
            raise Failure("unnamed", f"a StoredRowError that names no field or thread: {exc!r}")
        return "row:" + ".".join(re.sub(r"\[\d+\]", "", exc.field).split(".")[:2])
    text = str(exc)
    # sqlite3's words for text that is not UTF-8, and for a migration run again over its own work
    column = re.search(r"column '(\w+)'|column name: (\w+)", text)
    if column is not None and (column.group(1) or column.group(2)) in COLUMN_NAMES:
        return f"store:column {column.group(1) or column.group(2)}"
    setting = re.search(r"\bstore_meta (?:has no |is |\b)(\w+)", text)
    if setting is not None and setting.group(1) in ("spec", "maxEventIds", "maxFinishedTurns", "empty"):
        return f"store:store_meta {setting.group(1)}"
    if re.search(r"holds sessions of spec\b", text):
        return "store:store_meta spec"
    if "schema version" in text:
        return "store:schema_version"
    for table in sorted(TABLES, key=len, reverse=True):
        if re.search(rf"\b{table}\b", text):
            return "store:" + table
    raise Failure("unnamed", f"a StoreError that names no table, column or setting: {text[:300]}")


def check_threads(store: SessionStore) -> int:
    """Every thread a clean read gave back meets the requirements and the store's caps, and the
    store's snapshot restores into a projector (the snapshot checks agree with the row checks)."""
    threads = store.threads()
    for t in threads:
        finished = frozenset(t.finished_turns)
        broken = REQUIREMENTS.state_violations(t.session, finished) + state_violations(SPEC, t.session, finished)
        if broken:
            raise Failure("bad_state", f"a loaded session breaks {broken}: {t.session}")
        for name, value in zip(t.session._fields, t.session, strict=True):
            if isinstance(value, str) and not _storable(value):
                raise Failure("bad_state", f"a loaded session's {name} holds text no event could have made "
                                           f"(NUL or a lone surrogate): {value!r:.80}")
        if len(t.seen_event_digests) > store.max_event_ids or len(t.finished_turns) > store.max_finished_turns:
            raise Failure("bad_state", f"a loaded memory is past the store's caps: {t.session.thread_id!r}")
    snapshot = store.snapshot()
    try:
        SessionProjector.restore(json.dumps(snapshot), SPEC, max_event_ids=store.max_event_ids,
                                 max_finished_turns=store.max_finished_turns, max_clock_skew=None)
    except SnapshotError as exc:
        raise Failure("bad_state", f"the store's snapshot does not restore: {exc}") from None
    return len(threads)


def _storable(text: str) -> bool:
    """Text the event parser lets into a session: no NUL, no lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@dataclass
class Result:
    outcome: str = "loaded"  # "loaded", or the first refusal's key
    refusals: list[str] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)  # a refusal's message, per key
    steps: int = 0


def run_case(db_factory: Callable[[], Db], url: str, rng: random.Random, lines: list[str], n: int,
             cli: Callable[[str], None] | None = None) -> tuple[Edit, Result]:
    db = db_factory()
    try:
        edit = tamper(db, rng)
        dumped = db.dump()
    finally:
        db.close()
    result = Result()

    def step(what: str, work: Callable[[], Any], writes: bool = False) -> Any:
        """`work()`; a refusal is recorded and must have changed no row. After a step that may
        write, the rows are read again: the next refusal is compared with them."""
        nonlocal dumped
        result.steps += 1
        try:
            value = work()
        except StoreError as exc:
            key = refusal_key(exc)
            result.refusals.append(key)
            result.messages.setdefault(key, str(exc)[:200])
            if result.outcome == "loaded":
                result.outcome = key
            after = _dump(db_factory)
            if after != dumped:
                raise Failure("partial_write", f"{what} was refused ({exc}) but the rows changed") from None
            return None
        if writes:
            dumped = _dump(db_factory)
        return value

    store: SqlStore | None = step("opening", lambda: open_store(url), writes=True)
    if store is None:
        if cli is not None:
            cli(url)
        return edit, result
    try:
        threads = [t for (t,) in _rows(db_factory, "SELECT thread_id FROM sessions") if isinstance(t, str)]
        step("reading every thread", lambda: check_threads(store))
        step("reading the tombstones", store.tombstones)
        for t in threads[:4]:
            step("reading a thread", lambda t=t: store.get(t))
        step("reading the journal", store.journal)
        for log in EXAMPLES:
            step("reading replay progress", lambda log=log: store.progress(log.name))
        events = events_for(rng, threads, lines, n)
        applied = step("applying events", lambda: store.apply_all(events), writes=True)
        if rng.random() < 0.5:
            step("applying a batch", lambda: store.apply_batch([*events, b"{broken"]), writes=True)
        if applied is not None:
            step("reading every thread again", lambda: check_threads(store))
    finally:
        store.close()
    if cli is not None and result.outcome != "loaded":
        cli(url)
    return edit, result


def _rows(db_factory: Callable[[], Db], sql: str) -> list[tuple[Any, ...]]:
    db = db_factory()
    try:
        return db.execute(sql)
    except Exception as exc:
        if _is_db_error(exc):
            return []
        raise
    finally:
        db.close()


def _dump(db_factory: Callable[[], Db]) -> list[Any]:
    db = db_factory()
    try:
        return db.dump()
    finally:
        db.close()


def cli_export(url: str) -> None:
    """`store export` of a store: exit 0, or exit 2 with one line on standard error, no traceback."""
    from statemachine.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["store", "export", url])
    text = err.getvalue()
    if code == 0 and not text:
        return
    if code != 2 or text.count("\n") != 1 or "Traceback" in text:
        raise Failure("cli", f"store export gave exit {code} and {text[:300]!r}")


# -- a run --------------------------------------------------------------------------------------


def run(cases: int, seed: int = 0, *, postgres: str | None = None, cli_every: int = 10,
        progress: bool = False) -> dict[str, Any]:
    """`cases` cases over SQLite (or over PostgreSQL at `postgres`, an empty database's URL);
    case `i` draws from `Random(seed * 1_000_003 + i)`, so one case can be run alone."""
    counts: dict[str, Any] = {
        "cases": 0, "backend": "postgresql" if postgres else "sqlite", "edits": Counter[str](),
        "edits_refused_by_the_database": 0, "loosened": 0, "outcomes": Counter[str](),
        "refusals": Counter[str](), "messages": {}, "steps": 0, "cli_checked": 0,
        "crashes": 0, "partial_writes": 0, "bad_states": 0, "unnamed": 0, "cli_failures": 0, "examples": [],
    }
    failures = {"crash": "crashes", "partial_write": "partial_writes", "bad_state": "bad_states",
                "unnamed": "unnamed", "cli": "cli_failures"}
    started = time.monotonic()
    with _workspace(postgres) as (base_url, case_url, db_for, copy):
        bases = build_bases(base_url)
        for i in range(cases):
            rng = random.Random(seed * 1_000_003 + i)
            name, url, lines = bases[rng.randrange(len(bases))]
            target = case_url(i)
            copy(url, target)
            counts["cases"] += 1
            edit: Edit | None = None
            cli = None
            if cli_every and i % cli_every == 0:
                counts["cli_checked"] += 1
                cli = cli_export
            try:
                edit, result = run_case(lambda t=target: db_for(t), target, rng, lines, i, cli)
            except Failure as exc:
                kind, message, trace = exc.kind, str(exc), ""
            except Exception as exc:
                kind, message, trace = "crash", f"{type(exc).__name__}: {exc}"[:300], traceback.format_exc()[-2000:]
            else:
                counts["outcomes"][result.outcome] += 1
                counts["refusals"].update(result.refusals)
                for key, message in result.messages.items():
                    counts["messages"].setdefault(key, message)
                counts["steps"] += result.steps
                kind = ""
            if edit is not None:
                counts["edits"][edit.what.split(":")[0]] += 1
                counts["edits_refused_by_the_database"] += "refused by the database" in edit.what
                counts["loosened"] += edit.loosened is not None
            if kind:
                counts[failures[kind]] += 1
                if len(counts["examples"]) < MAX_EXAMPLES_KEPT:
                    counts["examples"].append({"case": i, "seed": seed, "base": name, "kind": kind,
                                               "edit": edit.what if edit else None, "message": message,
                                               "trace": trace})
            if progress and (i + 1) % 1000 == 0:
                print(f"  {i + 1} cases, {time.monotonic() - started:.0f}s", file=sys.stderr)
    counts["seconds"] = round(time.monotonic() - started, 1)
    for name in ("edits", "outcomes", "refusals"):
        counts[name] = dict(counts[name].most_common())
    return counts


@contextlib.contextmanager
def _workspace(postgres: str | None) -> Iterator[tuple[Callable[[str], str], Callable[[int], str],
                                                     Callable[[str], Db], Callable[[str, str], None]]]:
    """Where bases and cases live: files in a temporary directory, or databases on one server
    (a case is `CREATE DATABASE ... TEMPLATE` its base)."""
    if postgres is None:
        # In memory where there is a tmpfs: the cases are copies made and thrown away.
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        directory = Path(tempfile.mkdtemp(prefix="store-fuzz-", dir=shm))
        try:
            def copy_file(source: str, target: str) -> None:
                shutil.copyfile(source, target)
                for suffix in ("-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(target + suffix)

            yield (lambda name: str(directory / f"{name}.db"), lambda i: str(directory / f"case-{i % 2}.db"),
                   SqliteDb, copy_file)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    import psycopg

    admin = psycopg.connect(postgres, autocommit=True)
    prefix = f"sfz{os.getpid()}_"
    made: list[str] = []

    def url_of(name: str) -> str:
        database = prefix + re.sub(r"\W", "_", name)
        return re.sub(r"(postgres(?:ql)?://[^/]*/)([^?]*)", lambda m: m.group(1) + database, postgres, count=1)

    def create(name: str, template: str | None = None) -> str:
        database = prefix + re.sub(r"\W", "_", name)
        admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
        admin.execute(f'CREATE DATABASE "{database}"' + (f' TEMPLATE "{template}"' if template else ""))
        made.append(database)
        return url_of(name)

    def base_url(name: str) -> str:
        return create(name)

    def copy(source: str, target: str) -> None:
        template = re.search(r"://[^/]*/([^?]*)", source)
        case = re.search(r"://[^/]*/([^?]*)", target)
        assert template is not None and case is not None
        admin.execute(f'DROP DATABASE IF EXISTS "{case.group(1)}"')
        admin.execute(f'CREATE DATABASE "{case.group(1)}" TEMPLATE "{template.group(1)}"')
        made.append(case.group(1))

    try:
        yield base_url, lambda i: url_of(f"case{i % 2}"), PostgresDb, copy
    finally:
        for database in dict.fromkeys(made):
            with contextlib.suppress(Exception):
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (default 0: a reproducible run)")
    parser.add_argument("--postgres", metavar="URL", help="run on PostgreSQL: a server where this user may "
                        "create databases")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args()
    counts = run(args.cases, args.seed, postgres=args.postgres, progress=not args.json)
    if args.json:
        print(json.dumps(counts, indent=2))
    else:
        print(f"cases: {counts['cases']} on {counts['backend']} ({counts['seconds']}s, seed {args.seed}); "
              f"{counts['steps']} steps")
        print("edits:", ", ".join(f"{k} {v}" for k, v in counts["edits"].items()),
              f"({counts['edits_refused_by_the_database']} refused by the database itself, "
              f"{counts['loosened']} on a table stripped of its constraints)")
        print("cases by outcome:", ", ".join(f"{k} {v}" for k, v in counts["outcomes"].items()))
        print("refused steps by what they name:", ", ".join(f"{k} {v}" for k, v in counts["refusals"].items()))
        print(f"store export checked: {counts['cli_checked']}")
        for name in ("crashes", "partial_writes", "bad_states", "unnamed", "cli_failures"):
            print(f"{name.replace('_', ' ')}: {counts[name]}")
        for example in counts["examples"]:
            print(f"\n{example['kind']} (case {example['case']}, base {example['base']}): {example['edit']}\n"
                  f"{example['message']}\n{example['trace']}")
    failed = sum(counts[k] for k in ("crashes", "partial_writes", "bad_states", "unnamed", "cli_failures"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
