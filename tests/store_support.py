"""Shared by the SQLite and PostgreSQL store tests: logs, row dumps, a killable replay child."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import redirect_stdout, suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from stream import generate_stream

from statemachine import SessionProjector
from statemachine.cli.main import main
from statemachine.spec.invariants import state_violations
from statemachine.spec.load import builtin_spec
from statemachine.store import SessionStore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.jsonl"))


def log_lines(events: int, sessions: int, seed: int) -> list[str]:
    """A generated stream as JSONL, with malformed, blank and over-long lines mixed in."""
    rng = random.Random(seed)
    lines = [json.dumps(e) for e in generate_stream(events, sessions, seed=seed)]
    for _ in range(max(1, events // 200)):
        bad = rng.choice(['{"eventId": "x"', "not json", '{"eventId": "e", "type": 5}', ""])
        lines.insert(rng.randrange(len(lines)), bad)
    return lines


def write_log(path: Path, lines: Iterable[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def apply_in_batches(store: SessionStore, events: Sequence[Any], seed: int) -> list[Any]:
    """Mixed transaction sizes: single events and batches of up to 64."""
    rng = random.Random(seed)
    outcomes: list[Any] = []
    i = 0
    while i < len(events):
        size = rng.choice((1, 1, 3, 17, 64))
        chunk = events[i:i + size]
        outcomes.extend([store.apply(chunk[0])] if size == 1 else store.apply_all(chunk))
        i += size
    return outcomes


def assert_equals_projector(store: SessionStore, projector: SessionProjector) -> None:
    assert store.export_snapshot() == projector.snapshot()
    spec = builtin_spec()
    for t in store.threads():
        assert state_violations(spec, t.session, frozenset(t.finished_turns)) == []


def run_cli(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(args)
    return code, out.getvalue()


def killed_replays(argv: list[str], targets: Sequence[int], seed: int,
                   position: Callable[[], int]) -> list[int]:
    """Run `main(argv)` in a forked child and SIGKILL it once its committed log position reached the
    next of `targets` (plus a seeded random 0-5 ms, to land inside transactions too); each run
    resumes the last. Returns the committed position after each kill that landed mid-run.

    Aiming at positions, not at times, spreads the kills over the whole log however loaded the
    machine is."""
    rng = random.Random(seed)
    seen: list[int] = []
    # Build the compiled engine once here, so that each child starts replaying at once.
    SessionProjector().apply_all(generate_stream(20, 2, seed=1))
    for target in targets:
        pid = os.fork()
        if pid == 0:  # the child: the real CLI, its output thrown away
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                code = main(argv)
            except BaseException:
                code = 3
            os._exit(code)
        deadline = time.monotonic() + 60
        while position() < target and time.monotonic() < deadline:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                raise AssertionError("the replay child ended before it was killed")
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.005))
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            seen.append(position())
        else:
            assert os.WEXITSTATUS(status) in (0, 1), f"the replay child failed with {os.WEXITSTATUS(status)}"
    return seen


def kill_targets(log_size: int, points: int, seed: int) -> list[int]:
    """`points` seeded byte offsets, increasing, spread over the first 90% of the log."""
    rng = random.Random(seed)
    return sorted(rng.randrange(1, log_size * 9 // 10) for _ in range(points))
