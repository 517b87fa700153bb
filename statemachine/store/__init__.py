"""Durable sessions: a `SessionStore` keeps every thread's session and memories in a database.

`open_store(url)` picks the backend: a file path (or `sqlite:///path`) for SQLite, the embedded
default; a `postgresql://` URL for PostgreSQL (needs the `[postgres]` extra, imported only then).
See docs/storage.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from statemachine.spec.model import Spec
    from statemachine.store.base import JournalEntry, ReplayNote, ReplayProgress, SessionStore, StoredRowError
    from statemachine.store.errors import StoreError
    from statemachine.store.sqlite import SQLiteStore

__all__ = [
    "JournalEntry",
    "ReplayNote",
    "ReplayProgress",
    "SQLiteStore",
    "SessionStore",
    "StoreError",
    "StoredRowError",
    "open_store",
]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")

# Imported on first use (PEP 562): `replay` builds the store's command-line options through
# `statemachine.cli.store`, and should not load SQLite for that.
_EXPORTS = {
    "JournalEntry": "base", "ReplayNote": "base", "ReplayProgress": "base", "SessionStore": "base",
    "StoredRowError": "base", "StoreError": "errors", "SQLiteStore": "sqlite",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def open_store(
    url: str,
    spec: Spec | None = None,
    *,
    max_event_ids: int | None = None,
    max_finished_turns: int | None = None,
    journal: bool = True,
    **options: Any,
) -> SessionStore:
    """A store for `url`, created (schema and settings) if new. Raises `StoreError`.

    The memory caps are fixed when a store is created; `None` takes the stored ones (or the
    projector's defaults for a new store), a different number is refused. `options` are the
    pipeline's, as for a `SessionProjector`: `engine`, `max_clock_skew`, `clock`.
    """
    from statemachine.store.errors import StoreError
    from statemachine.store.sqlite import SQLiteStore

    if url.startswith(_POSTGRES_SCHEMES):
        from statemachine.store.postgres import PostgresStore

        return PostgresStore(url, spec, max_event_ids=max_event_ids, max_finished_turns=max_finished_turns,
                             journal=journal, **options)
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    if "://" in path or not path:
        raise StoreError("opening the store", f"unsupported store URL {url[:80]!r}: give a SQLite file path "
                         "or a postgresql:// URL")
    return SQLiteStore(path, spec, max_event_ids=max_event_ids, max_finished_turns=max_finished_turns,
                       journal=journal, **options)
