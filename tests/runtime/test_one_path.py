"""Every way from an event to a session gives the same sessions, byte for byte.

`replay --json` in memory, into a SQLite store, into a PostgreSQL store and with `--jobs 2`, and
`apply` per event against `apply_batch`, on random logs that hold deletes and redeliveries,
far-future timestamps (under each `--max-clock-skew` setting), malformed lines and odd strings."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg import PgCluster, fresh_database, pg_cluster

from statemachine import EventError, SessionProjector

ROOT = Path(__file__).resolve().parents[2]
SKEWS = ("1d", "0", "none")
LOGS = 4
# Each log goes through 15 commands (five paths, three skews): the suite runs two logs, and
# STATEMACHINE_FULL_TESTS=1 all of them. Every log mixes every kind of line (see random_log).
CLI_LOGS = LOGS if os.environ.get("STATEMACHINE_FULL_TESTS") == "1" else 2


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with pg_cluster() as c:
        yield c


def random_log(seed: int, lines: int = 160) -> list[bytes]:
    """A log of a few threads: the lifecycle's events and commands, redeliveries, deletes, a date
    far in the future, malformed lines, odd but valid strings."""
    rng = random.Random(seed)
    threads = [f"t{i}" for i in range(4)] + ["t\u00e9\u2028", "t\\\"q"]
    turns = ["T1", "T2", "T3"]
    out: list[bytes] = []
    sent: list[bytes] = []
    for n in range(lines):
        roll = rng.random()
        if roll < 0.08 and sent:
            out.append(rng.choice(sent))  # a redelivery: same eventId
            continue
        if roll < 0.12:
            out.append(rng.choice([b"{not json", b"", b'{"eventId": 5}', b"[]", b'{"eventId": "x\\u0000"}',
                                   b'{"eventId":"z","type":"turn.started","provider":"p","threadId":"t\\ud800",'
                                   b'"createdAt":"2026-11-20T10:00:00Z","payload":{}}']))
            continue
        kind = rng.choice(["session.started", "turn.started", "turn.completed", "turn.aborted", "runtime.error",
                           "session.state.changed", "thread.delete", "thread.turn.start", "request.opened",
                           "request.resolved", "item.delta", "thread.session.stop"])
        year = 2026 if rng.random() > 0.05 else 2999  # far in the future: beyond any bound but none
        event: dict[str, Any] = {
            "eventId": f"e{seed}-{n}", "type": kind, "provider": rng.choice(["codex", "claudeAgent"]),
            "threadId": rng.choice(threads), "createdAt": f"{year}-11-20T10:{n // 60:02d}:{n % 60:02d}Z",
            "payload": {},
        }
        if kind in ("turn.started", "turn.completed", "turn.aborted", "runtime.error", "request.opened",
                    "request.resolved", "thread.turn.start") and rng.random() < 0.9:
            event["turnId"] = rng.choice(turns)
        if kind == "turn.completed":
            event["payload"] = {"state": rng.choice(["completed", "failed", "interrupted"])}
        elif kind == "session.state.changed":
            event["payload"] = {"state": rng.choice(["ready", "running", "error", "stopped"]),
                                "reason": "x\u00e9\x1b[0m"}
        elif kind == "runtime.error":
            event["payload"] = {"message": "boom \u2603"}
        elif kind == "request.opened":
            event["payload"] = {"requestType": rng.choice(["command_execution_approval", "file_change_approval"])}
        line = json.dumps(event, ensure_ascii=rng.random() < 0.5).encode()
        sent.append(line)
        out.append(line)
    return out


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "statemachine", *args], capture_output=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "SESSION_LIFECYCLE_CACHE": "off"})


def test_the_random_logs_exercise_what_they_claim() -> None:
    lines = [line for seed in range(LOGS) for line in random_log(seed)]
    text = b"\n".join(lines)
    assert b"thread.delete" in text and b"2999-" in text and b"{not json" in text
    assert len(lines) > len(set(lines))  # redeliveries


@pytest.mark.parametrize("seed", range(CLI_LOGS))
def test_every_path_prints_the_same_bytes(tmp_path: Path, cluster: PgCluster, seed: int) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"\n".join(random_log(seed)) + b"\n")
    for skew in SKEWS:
        flags = ("--json", "--max-clock-skew", skew)
        memory = run("replay", *flags, str(log))
        assert memory.returncode in (0, 1), memory.stderr
        assert b"Traceback" not in memory.stderr
        variants = {
            "jobs": run("replay", *flags, "--jobs", "2", str(log)),
            "sqlite": run("replay", *flags, "--store", str(tmp_path / f"s{skew}.db"), str(log)),
            "postgres": run("replay", *flags, "--store", fresh_database(cluster), str(log)),
            "sqlite-batch-7": run("replay", *flags, "--store", str(tmp_path / f"b{skew}.db"), "--batch", "7",
                                  str(log)),
        }
        for name, proc in variants.items():
            assert (name, proc.returncode, proc.stdout) == (name, memory.returncode, memory.stdout), proc.stderr


@pytest.mark.parametrize("seed", range(LOGS))
def test_apply_and_apply_batch_agree(seed: int) -> None:
    lines = random_log(seed)
    one, batch = SessionProjector(), SessionProjector()
    counts: dict[str, int] = {}
    for line in lines:
        try:
            kind = one.apply(line).kind.value
        except EventError:
            if not line.strip():
                continue
            kind = "malformed"
        counts[kind] = counts.get(kind, 0) + 1
    result = batch.apply_batch(lines)
    assert {k: v for k, v in result.counts.items() if v} == counts
    assert one.snapshot() == batch.snapshot()
    assert list(one) == list(batch)
