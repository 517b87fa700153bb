"""An orchestrator in one file: provider processes, their adapters, a SQLite session store,
observers (OpenTelemetry metrics and a logger), and the reaper and stale-turn bound on a timer,
all under asyncio.

    python examples/orchestrator/orchestrator.py [--db sessions.db]

It starts four stand-in providers (`provider.py`, each writing a raw transcript from
`examples/raw/` over a real pipe and then idling), adapts what they write into lifecycle events
and applies them to the store. Every `--tick` seconds it looks for sessions to stop:

- a session holding a turn with no line from its provider for `--stale` seconds (the provider went
  silent mid-turn): stopped, its provider closed, and flagged as needing attention;
- a settled session idle for `--idle` seconds: stopped and its provider closed (the reaper).

When every provider has been stopped it prints one JSON object: the sessions, the outcomes the
store journaled, and the metrics collected. Copy what you need; each part is marked below.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from statemachine import ActivityClock, EventError, Outcome, Session, reapable_sessions, stale_turns
from statemachine.adapters import make_adapter
from statemachine.observing.metrics import LifecycleMetrics
from statemachine.store import SessionStore, StoreError, open_store

HERE = Path(__file__).resolve().parent
RAW = HERE.parent / "raw"

# (transcript, its format). The Claude one ends mid-turn while its process stays up: only the
# stale-turn bound can notice it.
PROVIDERS = (
    ("codex_app_server_turns.jsonl", "codex-app-server"),
    ("claude_mid_turn.jsonl", "claude-stream-json"),
    ("acp_turns.jsonl", "acp"),
    ("codex_exec_turns.jsonl", "codex-exec"),
)

log = logging.getLogger("orchestrator")


# -- observers ---------------------------------------------------------------------------------


def log_outcome(outcome: Outcome) -> None:
    """One log line per committed outcome. Ids come from providers: written with repr, so a
    control character in one cannot reach the terminal."""
    after = outcome.after
    reason = f" ({outcome.reason})" if outcome.reason else ""
    log.info("%s %s %r -> %s%s", outcome.event.type, outcome.kind.value, after.thread_id, after.status, reason)


def make_metrics() -> tuple[LifecycleMetrics, Any]:
    """Metrics with an in-memory reader, to print them at the end. In production, give
    `LifecycleMetrics()` nothing and configure the global MeterProvider with your exporter."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    except ImportError:
        return LifecycleMetrics(), None  # no SDK: metrics go to the global provider (a no-op by default)
    reader = InMemoryMetricReader()
    return LifecycleMetrics(MeterProvider(metric_readers=[reader])), reader


def metrics_summary(reader: Any) -> dict[str, list[dict[str, Any]]] | None:
    if reader is None:
        return None
    summary: dict[str, list[dict[str, Any]]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data is not None else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points = summary.setdefault(metric.name, [])
                for p in metric.data.data_points:
                    value = {"count": p.count, "sum": p.sum} if hasattr(p, "bucket_counts") else {"value": p.value}
                    points.append({"attributes": dict(p.attributes or {}), **value})
    return summary


# -- providers ---------------------------------------------------------------------------------


@dataclass
class Provider:
    transcript: str
    format: str
    process: asyncio.subprocess.Process
    threads: set[str] = field(default_factory=set)


class Orchestrator:
    def __init__(self, store: SessionStore, metrics: LifecycleMetrics, *, idle: timedelta, stale: timedelta) -> None:
        self.store = store
        self.metrics = metrics
        self.idle = idle
        self.stale = stale
        # When each thread last sent anything, ignored events included, and for how long this process
        # has run since (a monotonic clock: a host that sleeps does not make every session idle).
        self.activity = ActivityClock(max_clock_skew=None)
        store.subscribe(self.activity)
        self.provider_of: dict[str, Provider] = {}
        self._commands = itertools.count(1)

    async def start(self, transcript: Path, fmt: str, delay: float) -> asyncio.Task[None]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / "provider.py"), str(transcript), "--delay", str(delay),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 20,
        )
        provider = Provider(transcript.name, fmt, process)
        return asyncio.create_task(self.read(provider), name=transcript.name)

    async def read(self, provider: Provider) -> None:
        """Provider output -> adapter -> store, line by line, until the provider's stdout closes."""
        adapter = make_adapter(provider.format, clock=lambda: datetime.now(UTC))
        stdout = provider.process.stdout
        assert stdout is not None
        async for raw in stdout:
            self.deliver(provider, adapter.feed(raw))
            if adapter.last_error is not None:
                log.warning("%s: line %d: %s", provider.transcript, adapter.last_error.line, adapter.last_error)
        self.deliver(provider, adapter.finish())  # end of stream: the adapter settles any open turn
        await provider.process.wait()

    def deliver(self, provider: Provider, envelopes: list[dict[str, Any]]) -> None:
        if not envelopes:
            return
        for envelope in envelopes:
            thread_id = envelope["threadId"]
            self.provider_of.setdefault(thread_id, provider).threads.add(thread_id)
        try:
            self.store.apply_batch(envelopes)  # one transaction per raw line
        except EventError as exc:
            log.warning("%s: events refused, none applied: %s", provider.transcript, exc)

    # -- the timer: stale turns and the reaper ---------------------------------------------------

    async def maintain(self, tick: float) -> None:
        while True:
            await asyncio.sleep(tick)
            self.sweep(datetime.now(UTC))

    def sweep(self, now: datetime) -> None:
        # The operations read the store as they read a projector (both hold sessions). They only
        # decide here; what is done goes to the store as the orchestrator's own commands.
        for session in stale_turns(self.store, now, self.stale, last_seen=self.activity.last_seen):
            log.warning("thread %r: no word from its provider for %s mid-turn", session.thread_id, self.stale)
            self.metrics.needs_attention(session, "stale-turn")
            self.stop(session, now, settled_only=False)
        for session in reapable_sessions(self.store, now, threshold=self.idle, activity=self.activity):
            self.metrics.reaped(session)
            self.stop(session, now, settled_only=True)

    def stop(self, session: Session, now: datetime, *, settled_only: bool) -> None:
        """Record the stop as the orchestrator's command, then close the provider's input."""
        self.store.apply({
            "eventId": f"orchestrator:stop:{session.thread_id}:{next(self._commands)}",
            "type": "thread.session.stop",
            "provider": session.provider_name or "orchestrator",
            "threadId": session.thread_id,
            "createdAt": now.isoformat().replace("+00:00", "Z"),
            "payload": {"onlyIfSettled": settled_only},
        })
        provider = self.provider_of.get(session.thread_id)
        stdin = provider.process.stdin if provider is not None else None
        if stdin is not None and not stdin.is_closing():
            stdin.close()


# -- main --------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, db: str) -> dict[str, Any]:
    store = open_store(db)
    try:
        metrics, reader = make_metrics()
        metrics.observe(store)
        store.subscribe(log_outcome)
        orchestrator = Orchestrator(store, metrics, idle=timedelta(seconds=args.idle),
                                    stale=timedelta(seconds=args.stale))
        readers = [await orchestrator.start(RAW / name, fmt, args.delay) for name, fmt in PROVIDERS]
        maintenance = asyncio.create_task(orchestrator.maintain(args.tick))
        try:
            await asyncio.wait_for(asyncio.gather(*readers), timeout=args.timeout)
        finally:
            maintenance.cancel()
            for provider in {id(p): p for p in orchestrator.provider_of.values()}.values():
                if provider.process.returncode is None:
                    provider.process.kill()
                    await provider.process.wait()
        return {
            "sessions": {t.session.thread_id: t.session.to_wire() for t in store.threads()},
            "journal": dict(Counter(entry.kind.value for entry in store.journal())),
            "metrics": metrics_summary(reader),
        }
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="Run four stand-in providers through an adapter, a SQLite store, "
                                                 "metrics and the reaper; print the sessions as JSON.")
    parser.add_argument("--db", help="SQLite file for the sessions (default: a temporary one)")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds between a provider's lines (0.02)")
    parser.add_argument("--idle", type=float, default=1.0, help="seconds idle before the reaper stops a session (1)")
    parser.add_argument("--stale", type=float, default=2.0, help="seconds of silence mid-turn before a stop (2)")
    parser.add_argument("--tick", type=float, default=0.2, help="seconds between sweeps (0.2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds (60)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "sessions.db")
        try:
            result = asyncio.run(run(args, db))
        except TimeoutError:
            print(f"orchestrator: not every provider was stopped within {args.timeout} s", file=sys.stderr)
            return 1
        except StoreError as exc:
            print(f"orchestrator: {exc}", file=sys.stderr)
            return 2
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
