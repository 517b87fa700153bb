"""examples/orchestrator/: provider processes over real pipes, adapters, a SQLite store, metrics and
the reaper under asyncio, run as a subprocess; its printed sessions and metrics are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from statemachine.store import open_store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "orchestrator" / "orchestrator.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# The threads of the four transcripts the example runs (examples/raw/; docs/adapters.md lists them).
CLAUDE = "c41d7e09-2a3b-4c5d-8e6f-7a8b9c0d1e03"
ACP = "sess_7Kq2mX9pLr4vN1aB"
THREADS = {"019a7c3e-1f2b-7d40-9c1e-5b8a2f6e0a01", CLAUDE, ACP, "0199d6a4-3c2e-7f10-b7a2-8e1f0c9d4a01"}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, env=ENV,
                          timeout=180, cwd=ROOT)


def _sums(points: list[dict[str, Any]], key: str) -> dict[str, int]:
    total: Counter[str] = Counter()
    for p in points:
        total[p["attributes"].get(key)] += p["value"]
    return {k: v for k, v in total.items() if v}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    db = tmp_path_factory.mktemp("orchestrator") / "sessions.db"
    proc = _run("--db", str(db))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr, db


def test_every_provider_is_stopped_and_the_store_holds_the_printed_sessions(
        run: tuple[dict[str, Any], str, Path]) -> None:
    result, _, db = run
    sessions = result["sessions"]
    assert set(sessions) == THREADS
    assert {s["status"] for s in sessions.values()} == {"stopped"}
    assert all(s["activeTurnId"] is None and s["pendingTurn"] is None for s in sessions.values())
    assert sessions[ACP]["lastError"] == "Internal error: model provider unavailable"
    with open_store(str(db)) as store:
        assert {t.session.thread_id: t.session.to_wire() for t in store.threads()} == sessions


def test_the_silent_provider_is_caught_mid_turn_and_the_others_are_reaped(
        run: tuple[dict[str, Any], str, Path]) -> None:
    result, log, _ = run
    metrics = result["metrics"]
    attention = metrics["session_lifecycle.needs_attention"]
    assert [(p["attributes"]["session_lifecycle.attention.reason"], p["attributes"]["session_lifecycle.provider.name"],
             p["attributes"]["session_lifecycle.session.status"], p["value"]) for p in attention] == [
        ("stale-turn", "claude", "running", 1)]
    assert _sums(metrics["session_lifecycle.reaper.stops"], "session_lifecycle.provider.name") == {"codex": 2, "acp": 1}
    assert f"thread {CLAUDE!r}: no word from its provider" in log
    # The logger observer saw every committed outcome; the stops are the orchestrator's commands.
    assert log.count("thread.session.stop applied") == 4


def test_the_metrics_agree_with_the_store(run: tuple[dict[str, Any], str, Path]) -> None:
    result, _, _ = run
    metrics = result["metrics"]
    assert _sums(metrics["session_lifecycle.outcomes"], "session_lifecycle.outcome.kind") == result["journal"]
    assert _sums(metrics["session_lifecycle.sessions"], "session_lifecycle.session.status") == {"stopped": 4}
    durations = metrics["session_lifecycle.turn.duration"]
    assert sum(p["count"] for p in durations) >= 4


def test_a_run_that_cannot_finish_or_start_says_why_without_a_traceback(tmp_path: Path) -> None:
    late = _run("--db", str(tmp_path / "late.db"), "--timeout", "0.3")
    assert late.returncode == 1 and "not every provider was stopped within 0.3 s" in late.stderr
    nowhere = _run("--db", str(tmp_path / "no-such-dir" / "x.db"))
    assert nowhere.returncode == 2 and "Traceback" not in nowhere.stderr
    assert nowhere.stdout == ""
