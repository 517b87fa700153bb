"""Tampered store rows (`scripts/store_fuzz.py`): a sample of its cases on SQLite and PostgreSQL.
Every case loads cleanly (and its sessions meet the requirements) or is refused by name, and a
refusal changes no row. The full run is the script: `scripts/store_fuzz.py` (20 000 cases)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pg import PgCluster, pg_cluster

from statemachine.store import StoredRowError, StoreError


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "store_fuzz.py"
    spec = importlib.util.spec_from_file_location("store_fuzz", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["store_fuzz"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


store_fuzz = _load()


def _assert_clean(counts: dict[str, Any]) -> None:
    failures = {k: counts[k] for k in ("crashes", "partial_writes", "bad_states", "unnamed", "cli_failures")}
    assert failures == dict.fromkeys(failures, 0), counts["examples"]


def test_a_sample_of_tampered_sqlite_stores_loads_or_is_refused_by_name() -> None:
    counts = store_fuzz.run(300, seed=0)
    _assert_clean(counts)
    assert counts["cases"] == 300 and counts["cli_checked"] == 30
    # The sample reaches both ends and many places: clean loads, row refusals, store refusals.
    outcomes = counts["outcomes"]
    assert outcomes["loaded"] > 50
    assert sum(n for k, n in outcomes.items() if k.startswith("row:")) > 30
    assert sum(n for k, n in outcomes.items() if k.startswith("store:")) > 30
    assert len(counts["refusals"]) > 15
    assert len(counts["edits"]) == len(store_fuzz.TAMPERS)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with pg_cluster() as c:
        yield c


def test_a_sample_of_tampered_postgresql_stores_loads_or_is_refused_by_name(cluster: PgCluster) -> None:
    # PostgreSQL's column types refuse most wrong types, NUL and undecodable text itself; what it
    # takes (junk text, other numbers, deleted, duplicated and added rows) must load or be refused.
    counts = store_fuzz.run(20, seed=0, postgres=cluster.url, cli_every=0)
    _assert_clean(counts)
    assert counts["cases"] == 20
    assert counts["outcomes"]["loaded"] > 5
    assert sum(n for k, n in counts["outcomes"].items() if k != "loaded") > 5


def test_a_refusal_that_names_nothing_is_counted_as_a_failure() -> None:
    with pytest.raises(store_fuzz.Failure) as caught:
        store_fuzz.refusal_key(StoreError("applying 1 event(s)", "database disk image is malformed"))
    assert caught.value.kind == "unnamed"
    assert store_fuzz.refusal_key(StoreError("opening the store", "no such table: tombstones")) == "store:tombstones"
    assert store_fuzz.refusal_key(StoreError("reading every thread", "Could not decode to UTF-8 column 'status' "
                                             "with text 'x'")) == "store:column status"
    assert store_fuzz.refusal_key(StoredRowError("t1", "session.status", "unknown")) == "row:session.status"
    with pytest.raises(store_fuzz.Failure):
        store_fuzz.refusal_key(StoredRowError("t1", "", "no field"))


def test_a_partial_write_on_refusal_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The checker must be able to fail: a store that writes a row and then refuses.
    import sqlite3

    from statemachine.store import SQLiteStore
    from statemachine.store.base import SqlStore

    original = SqlStore.threads

    def leaky(self: SQLiteStore) -> Any:
        conn = sqlite3.connect(self.path)
        with conn:
            conn.execute("INSERT INTO store_meta VALUES ('leak', '1')")
        conn.close()
        raise StoreError("reading every thread", "no such table: sessions")

    monkeypatch.setattr(SqlStore, "threads", leaky)
    counts = store_fuzz.run(3, seed=0, cli_every=0)
    monkeypatch.setattr(SqlStore, "threads", original)
    assert counts["partial_writes"] == 3
