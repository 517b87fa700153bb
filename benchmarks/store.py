"""Events per second into the session stores, as ratios against the in-memory projector measured
in the same run (so the machine's speed cancels out).

    .venv/bin/python benchmarks/store.py                 # SQLite, and PostgreSQL on a throwaway cluster
    .venv/bin/python benchmarks/store.py --postgres URL  # an existing (empty) database instead
    .venv/bin/python benchmarks/store.py --no-postgres

Each row applies the same seeded stream into a fresh store: one transaction per event (`apply`)
or per batch (`apply_batch`). Every figure is the median of --repeats runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from stream import generate_stream  # noqa: E402

from statemachine import SessionProjector  # noqa: E402
from statemachine.store import SessionStore, open_store  # noqa: E402


def _median_rate(run: Callable[[], int], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = run()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def _store_run(make: Callable[[], SessionStore], events: list[dict[str, Any]], batch: int) -> Callable[[], int]:
    def run() -> int:
        store = make()
        try:
            if batch == 1:
                for e in events:
                    store.apply(e)
            else:
                for i in range(0, len(events), batch):
                    store.apply_all(events[i:i + batch])
        finally:
            store.close()
        return len(events)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="events per run (default 4000)")
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256, help="events per transaction in the batch rows")
    parser.add_argument("--postgres", metavar="URL", help="an existing database instead of a throwaway cluster")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    events = generate_stream(args.events, args.sessions, seed=7)
    # Apply as JSON text, as a store's caller usually has it: every row parses its events.
    memory = _median_rate(lambda: len(SessionProjector().apply_all(events)), max(args.repeats, 9))
    rows: list[tuple[str, float]] = [("in-memory SessionProjector", memory)]
    tmp = Path(tempfile.mkdtemp(prefix="store-bench-"))
    cluster: Any = None
    try:
        counter = iter(range(10**6))

        def sqlite() -> SessionStore:
            return open_store(str(tmp / f"s{next(counter)}.db"))

        for batch in (1, args.batch):
            rows.append((f"SQLite, {'1 event' if batch == 1 else f'{batch} events'} per transaction",
                         _median_rate(_store_run(sqlite, events, batch), args.repeats)))
        if not args.no_postgres:
            if args.postgres:
                import psycopg

                def postgres() -> SessionStore:
                    with psycopg.connect(args.postgres, autocommit=True) as conn:
                        for table in ("sessions", "seen_events", "finished_turns", "outcomes"):
                            conn.execute(f"DROP TABLE IF EXISTS {table}")
                        conn.execute("DROP TABLE IF EXISTS store_meta, replay_progress, replay_notes, schema_version")
                    return open_store(args.postgres)
            else:
                from pg import PgCluster, find_pg_bin

                bin_dir = find_pg_bin()
                if bin_dir is None:
                    print("PostgreSQL not installed: its rows are left out", file=sys.stderr)
                else:
                    cluster = PgCluster(bin_dir)
                    cluster.start()

                def postgres() -> SessionStore:
                    return open_store(cluster.create_database(f"b{next(counter)}"))

            if args.postgres or cluster is not None:
                for batch in (1, args.batch):
                    rows.append((f"PostgreSQL, {'1 event' if batch == 1 else f'{batch} events'} per transaction",
                                 _median_rate(_store_run(postgres, events, batch), args.repeats)))
    finally:
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{args.events} events over {args.sessions} sessions, median of {args.repeats} runs")
    print(f"| {'what':<44} | {'events/s':>10} | {'ratio to in-memory':>18} |")
    print(f"|{'-' * 46}|{'-' * 11}:|{'-' * 19}:|")
    for name, rate in rows:
        print(f"| {name:<44} | {rate:>10,.0f} | {rate / memory:>18.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
