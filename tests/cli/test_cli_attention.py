"""`attention`: the sessions that need attention, from a log or a store, with their recovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "statemachine", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, "SESSION_LIFECYCLE_CACHE": "off"})


def write_log(path: Path) -> Path:
    events = [
        {"eventId": "1", "type": "session.started", "provider": "codex", "threadId": "queued",
         "createdAt": "2026-11-20T10:00:00Z", "payload": {}},
        {"eventId": "2", "type": "thread.turn.start", "provider": "codex", "threadId": "queued",
         "createdAt": "2026-11-20T10:00:01Z", "turnId": "T1", "payload": {}},
        {"eventId": "3", "type": "session.state.changed", "provider": "codex", "threadId": "stuck\x1b[2J",
         "createdAt": "2026-11-20T10:00:00Z", "payload": {"state": "starting"}},
        {"eventId": "4", "type": "turn.started", "provider": "codex", "threadId": "fine",
         "createdAt": "2026-11-20T10:00:00Z", "turnId": "T2", "payload": {}},
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_attention_lists_what_waits_with_its_recovery(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl")
    early = run("attention", str(log), "--bound", "5m", "--now", "2026-11-20T10:03:00Z")
    assert (early.returncode, early.stdout) == (0, "no session needs attention\n")
    late = run("attention", str(log), "--bound", "5m", "--now", "2026-11-20T10:10:00Z", "--json")
    assert late.returncode == 1, late.stderr
    assert [(r["threadId"], r["reason"]) for r in json.loads(late.stdout)] == [
        ("queued", "pending_turn_not_started"), ("stuck\x1b[2J", "stuck_starting")]
    human = run("attention", str(log), "--bound", "5m", "--now", "2026-11-20T10:10:00Z")
    assert "queued: pending_turn_not_started" in human.stdout and "\x1b" not in human.stdout


def test_attention_reads_a_store_and_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl")
    db = tmp_path / "s.db"
    assert run("replay", "--store", str(db), "--max-clock-skew", "none", str(log)).returncode == 0
    found = run("attention", "--store", str(db), "--bound", "5m", "--now", "2026-11-20T10:10:00Z", "--json")
    assert [r["reason"] for r in json.loads(found.stdout)] == ["pending_turn_not_started", "stuck_starting"]
    for args in (["--store", str(tmp_path / "missing.db")], [], [str(log), "--store", str(db)],
                 [str(log), "--bound", "0m"], [str(log), "--now", "noon"]):
        proc = run("attention", *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr)
    assert not (tmp_path / "missing.db").exists()
