"""Every example log, replayed by the CLI, gives what examples/README.md says it gives.

The expected values are parsed from the README's two tables, so the docs and the test cannot
disagree; a new log without a row there fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import markdown_tables

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
README = EXAMPLES / "README.md"
LOGS = sorted(p.name for p in EXAMPLES.glob("*.jsonl"))


def _value(cell: str) -> str | None:
    return None if cell == "null" else cell


def _documented() -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, Any]]]:
    tables = markdown_tables(README.read_text(encoding="utf-8"))
    session_rows = next(t for t in tables if t and {"log", "thread", "status"} <= set(t[0]))
    outcome_rows = next(t for t in tables if t and {"log", "applied", "rejections"} <= set(t[0]))
    sessions: dict[str, dict[str, dict[str, Any]]] = {}
    for row in session_rows:
        sessions.setdefault(row["log"], {})[row["thread"]] = {
            "status": row["status"],
            "activeTurnId": _value(row["activeTurnId"]),
            "lastError": _value(row["lastError"]),
        }
    outcomes = {}
    for row in outcome_rows:
        rejections = []
        for item in filter(None, (s.strip() for s in row["rejections"].split(","))):
            line, reason = item.split(":")
            rejections.append((int(line), reason.strip()))
        outcomes[row["log"]] = {
            "outcomes": {k: int(row[k]) for k in ("applied", "ignored", "duplicate", "rejected", "forgotten",
                                                  "malformed")},
            "malformed": int(row["malformed"]),
            "rejections": rejections,
        }
    return sessions, outcomes


SESSIONS, OUTCOMES = _documented()


def test_every_log_is_documented_and_every_documented_log_exists() -> None:
    assert LOGS
    assert set(SESSIONS) == set(LOGS)
    assert set(OUTCOMES) == set(LOGS)


@pytest.mark.parametrize("log", LOGS)
def test_replay_json_gives_what_the_readme_says(log: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "statemachine", "replay", "--json", str(EXAMPLES / log)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "Traceback" not in proc.stderr
    expected = OUTCOMES[log]
    assert proc.returncode == (1 if expected["malformed"] else 0), proc.stderr
    data = json.loads(proc.stdout)
    got_sessions = {
        tid: {k: s[k] for k in ("status", "activeTurnId", "lastError")} for tid, s in data["sessions"].items()
    }
    assert got_sessions == SESSIONS[log]
    assert data["outcomes"] == expected["outcomes"]
    assert len(data["errors"]) == expected["malformed"]
    assert [(r["line"], r["reason"]) for r in data["rejected"]] == expected["rejections"]
    # Every line is accounted for exactly once.
    lines = [line for line in (EXAMPLES / log).read_text().splitlines() if line.strip()]
    assert sum(data["outcomes"].values()) == len(lines)
