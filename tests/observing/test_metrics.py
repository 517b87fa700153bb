"""Lifecycle metrics, read back through the real OpenTelemetry SDK's in-memory reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import Events
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from statemachine import LockedProjector, SessionProjector, expire_stale_turns, reconcile
from statemachine.observing import metrics as metrics_module
from statemachine.observing.metrics import (
    INSTRUMENTS,
    OTHER,
    LifecycleMetrics,
    instruments_markdown,
    operation_of,
)
from statemachine.runtime.operations import RESTART_EVENT_PREFIX, STALE_TURN_EVENT_PREFIX
from statemachine.store import open_store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.jsonl"))
DOC = ROOT / "docs" / "metrics.md"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


class Reader:
    """A MeterProvider with an in-memory reader; `points(name)` -> [(attributes, value)]."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        for rm in data.resource_metrics if data is not None else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend((dict(p.attributes or {}), p) for p in metric.data.data_points)
        return found

    def sums(self, name: str, *keys: str) -> dict[tuple[Any, ...], int]:
        """The counter's values added up by the given attributes, zeros left out."""
        total: Counter[tuple[Any, ...]] = Counter()
        for attributes, point in self.points(name):
            total[tuple(attributes.get(k) for k in keys)] += point.value
        return {k: v for k, v in total.items() if v}


@pytest.fixture
def reader() -> Iterator[Reader]:
    r = Reader()
    yield r
    r.provider.shutdown()


def _replay_json(path: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "statemachine", "replay", "--json", str(path)],
                          capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _logs(tmp_path: Path) -> list[Path]:
    # Each example, and all of them as one log: several threads, a shared thread id, redeliveries.
    together = tmp_path / "all.jsonl"
    together.write_bytes(b"".join(p.read_bytes() for p in EXAMPLES))
    return [*EXAMPLES, together]


def test_replayed_logs_give_the_counts_replay_reports(tmp_path: Path) -> None:
    assert len(EXAMPLES) >= 5
    for log in _logs(tmp_path):
        reader = Reader()
        projector = SessionProjector()
        LifecycleMetrics(reader.provider).observe(projector)
        projector.apply_batch(log.read_bytes().splitlines())
        report = _replay_json(log)

        kinds = reader.sums("session_lifecycle.outcomes", "session_lifecycle.outcome.kind")
        by_kind = {k[0]: v for k, v in kinds.items()}
        assert by_kind == {k: n for k, n in report["outcomes"].items() if n and k != "malformed"}, log.name
        rejected = reader.sums("session_lifecycle.outcomes", "session_lifecycle.outcome.kind",
                               "session_lifecycle.outcome.reason")
        assert {k[1]: v for k, v in rejected.items() if k[0] == "rejected"} == Counter(
            r["reason"] for r in report["rejected"]), log.name
        assert all(k[1] is None for k in rejected if k[0] != "rejected")
        statuses = {k[0]: v for k, v in reader.sums("session_lifecycle.sessions",
                                                     "session_lifecycle.session.status").items()}
        assert statuses == Counter(s["status"] for s in report["sessions"].values()), log.name
        reader.provider.shutdown()


def test_a_wrong_count_would_be_seen(reader: Reader) -> None:
    # The comparison above is not vacuous: a projector fed one event less disagrees with replay.
    log = ROOT / "examples" / "out_of_order.jsonl"
    projector = SessionProjector()
    LifecycleMetrics(reader.provider).observe(projector)
    projector.apply_batch(log.read_bytes().splitlines()[:-1])
    report = _replay_json(log)
    by_kind = {k[0]: v for k, v in reader.sums("session_lifecycle.outcomes", "session_lifecycle.outcome.kind").items()}
    assert by_kind != {k: n for k, n in report["outcomes"].items() if n and k != "malformed"}


def test_turn_durations_stale_expiries_and_restart_events(reader: Reader) -> None:
    projector = SessionProjector(max_clock_skew=None)
    metrics = LifecycleMetrics(reader.provider)
    metrics.observe(projector)
    a, b, c = Events("a"), Events("b", provider="claude"), Events("c")
    projector.apply(a("turn.started", "t1", created_at="2026-11-20T10:00:00Z"))
    projector.apply(a("turn.completed", "t1", created_at="2026-11-20T10:00:42Z"))
    projector.apply(a("turn.started", "t2", created_at="2026-11-20T10:01:00Z"))
    projector.apply(a("turn.aborted", "t2", created_at="2026-11-20T10:01:05Z", reason="user"))
    projector.apply(b("turn.started", "t9", created_at="2026-11-20T10:00:00Z"))
    projector.apply(c("turn.started", "t5", created_at="2026-11-20T10:00:00Z"))

    now = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    expired = expire_stale_turns(projector, now, timedelta(minutes=20), last_seen={"c": now})
    assert [o.event.thread_id for o in expired] == ["b"]
    restarted = reconcile(projector, live_thread_ids=set(), now=now)
    assert [o.event.thread_id for o in restarted] == ["c"]

    durations = {(p["session_lifecycle.provider.name"], p["session_lifecycle.session.status"],
                  p["session_lifecycle.event.type"]): (point.count, point.sum)
                 for p, point in reader.points("session_lifecycle.turn.duration")}
    assert durations == {
        ("codex", "ready", "turn.completed"): (1, 42.0),
        ("codex", "interrupted", "turn.aborted"): (1, 5.0),
        ("claude", "interrupted", "turn.completed"): (1, 3600.0),  # the stale-turn bound settled it
        ("codex", "error", "session.state.changed"): (1, 3600.0),  # restart reconciliation
    }
    assert reader.sums("session_lifecycle.stale_turn.expiries", "session_lifecycle.provider.name") == {("claude",): 1}
    assert reader.sums("session_lifecycle.operation.events", "session_lifecycle.operation.name",
                       "session_lifecycle.outcome.kind") == {("stale-turn", "applied"): 1, ("restart", "applied"): 1}
    statuses = reader.sums("session_lifecycle.sessions", "session_lifecycle.session.status")
    assert statuses == {("interrupted",): 2, ("error",): 1}


def test_forgotten_threads_leave_the_count_and_a_baseline_is_taken(reader: Reader) -> None:
    projector = SessionProjector(max_clock_skew=None)
    a, b = Events("a"), Events("b")
    projector.apply(a("session.started"))
    projector.apply(b("turn.started", "t1"))  # before observing: counted by the baseline, duration unknown
    LifecycleMetrics(reader.provider).observe(projector)
    projector.apply(b("turn.completed", "t1"))
    assert reader.points("session_lifecycle.turn.duration") == []
    assert reader.sums("session_lifecycle.sessions", "session_lifecycle.session.status") == {("ready",): 2}
    forgotten = projector.apply(a("thread.delete"))
    assert forgotten.kind.value == "forgotten"
    assert reader.sums("session_lifecycle.sessions", "session_lifecycle.session.status") == {("ready",): 1}


def test_a_store_and_a_locked_projector_feed_it_too(reader: Reader, tmp_path: Path) -> None:
    ev = Events("s")
    with open_store(str(tmp_path / "sessions.db")) as store:
        store.apply(ev("session.started"))
        metrics = LifecycleMetrics(reader.provider)
        unsubscribe = metrics.observe(store)
        started = ev("turn.started", "t1")
        store.apply_batch([started, started])
        unsubscribe()
        store.apply(ev("turn.completed", "t1"))  # not observed any more
    assert reader.sums("session_lifecycle.outcomes", "session_lifecycle.outcome.kind") == {
        ("applied",): 1, ("duplicate",): 1}
    assert reader.sums("session_lifecycle.sessions", "session_lifecycle.session.status") == {("running",): 1}

    shared = LockedProjector()
    shared.apply(Events("l")("session.started"))
    LifecycleMetrics(reader.provider).observe(shared)
    assert reader.sums("session_lifecycle.sessions", "session_lifecycle.session.status") == {
        ("running",): 1, ("ready",): 1}


def test_outside_values_are_bounded_and_hooks_count(reader: Reader) -> None:
    projector = SessionProjector(max_clock_skew=None)
    metrics = LifecycleMetrics(reader.provider, max_attribute_values=2)
    metrics.observe(projector)
    for n in range(5):
        projector.apply(Events(f"t{n}", provider=f"provider-{n}")("session.started"))
    providers = reader.sums("session_lifecycle.outcomes", "session_lifecycle.provider.name")
    assert providers == {("provider-0",): 1, ("provider-1",): 1, (OTHER,): 3}
    for reason in ("stuck", "stuck", "flapping", "third"):
        metrics.needs_attention(projector["t0"], reason)
    metrics.reaped(projector["t1"])
    assert reader.sums("session_lifecycle.needs_attention", "session_lifecycle.attention.reason") == {
        ("stuck",): 2, ("flapping",): 1, (OTHER,): 1}
    assert reader.sums("session_lifecycle.reaper.stops", "session_lifecycle.provider.name",
                       "session_lifecycle.session.status") == {("provider-1", "ready"): 1}
    with pytest.raises(ValueError, match="max_attribute_values"):
        LifecycleMetrics(reader.provider, max_attribute_values=0)


def test_every_instrument_is_created_with_its_declared_name_unit_and_kind(reader: Reader) -> None:
    metrics = LifecycleMetrics(reader.provider)
    projector = SessionProjector(max_clock_skew=None)
    metrics.observe(projector)
    ev = Events("x")
    projector.apply(ev("turn.started", "t1"))
    projector.apply(ev("turn.completed", "t1"))
    projector.apply(ev("turn.started", "t2"))
    assert len(expire_stale_turns(projector, datetime(2030, 1, 1, tzinfo=UTC), timedelta(seconds=1))) == 1
    metrics.reaped(projector["x"])
    metrics.needs_attention(projector["x"], "why")
    data = reader.reader.get_metrics_data()
    assert data is not None
    seen = {m.name: (m.unit, type(m.data).__name__, getattr(m.data, "is_monotonic", None))
            for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    kinds = {"counter": ("Sum", True), "up_down_counter": ("Sum", False), "histogram": ("Histogram", None)}
    assert seen == {i.name: (i.unit, *kinds[i.kind]) for i in INSTRUMENTS}
    for i in INSTRUMENTS:
        assert i.name.startswith("session_lifecycle.") and i.name == i.name.lower() and not i.name.endswith("_total")
        assert all(a.startswith("session_lifecycle.") and a == a.lower() for a in i.attributes)


def test_operation_names_come_from_the_prefixes() -> None:
    assert operation_of(STALE_TURN_EVENT_PREFIX + "t:1") == "stale-turn"
    assert operation_of(RESTART_EVENT_PREFIX + "t:2026") == "restart"
    assert operation_of("evt-1") is None


def test_the_docs_table_is_the_code_table() -> None:
    text = DOC.read_text()
    assert instruments_markdown() in text, "run `python -m statemachine.observing.metrics docs/metrics.md`"
    for i in INSTRUMENTS:
        assert f"`{i.name}`" in text


def test_the_table_command_finds_and_fixes_drift(tmp_path: Path) -> None:
    page = tmp_path / "metrics.md"
    stale = DOC.read_text().replace("session_lifecycle.outcomes`", "session_lifecycle.outcome_count`", 1)
    page.write_text(stale)
    run = [sys.executable, "-m", "statemachine.observing.metrics"]
    check = subprocess.run([*run, "--check", str(page)], capture_output=True, text=True, env=ENV, timeout=60)
    assert check.returncode == 1 and "out of date" in check.stderr
    fix = subprocess.run([*run, str(page)], capture_output=True, text=True, env=ENV, timeout=60)
    assert fix.returncode == 0, fix.stderr
    assert page.read_text() == DOC.read_text()
    missing = subprocess.run([*run, str(tmp_path / "nope.md")], capture_output=True, text=True, env=ENV, timeout=60)
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr


def test_without_opentelemetry_it_imports_and_does_nothing() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from statemachine import SessionProjector\n"
        "from statemachine.observing.metrics import LifecycleMetrics\n"
        "m = LifecycleMetrics(); p = SessionProjector(max_clock_skew=None)\n"
        "m.observe(p)()\n"
        "p.apply({'eventId': 'e', 'type': 'session.started', 'provider': 'x', 'threadId': 't',"
        " 'createdAt': '2026-11-20T10:00:00Z'})\n"
        "m(p.apply({'eventId': 'f', 'type': 'turn.started', 'provider': 'x', 'threadId': 't',"
        " 'createdAt': '2026-11-20T10:00:01Z', 'turnId': 'u'}))\n"
        "m.needs_attention(p['t'], 'r'); m.reaped(p['t'])\n"
        "print(m.enabled, 'opentelemetry.metrics' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


def test_the_package_does_not_import_metrics_or_opentelemetry() -> None:
    code = ("import sys, statemachine; statemachine.SessionProjector; statemachine.reconcile\n"
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'statemachine.observing',"
            " 'statemachine.rendering', 'sphinx', 'mkdocs'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert metrics_module.__name__ not in proc.stdout
