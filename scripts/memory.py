"""Memory on hostile logs: bounded per thread, linear in threads. Prints the figures.

    .venv/bin/python scripts/memory.py                 # the three scenarios, 1M events each
    .venv/bin/python scripts/memory.py --events 100000 --json

Scenarios, each in a fresh interpreter, events made on the fly (nothing is kept but the projector):
- one-thread: 1M unique eventIds on one thread, a quarter of them lifecycle turns with unique
  turn ids. Both memories must stop growing at their caps, so retained memory plateaus.
- many-threads: 1M distinct threads, one event each. Memory grows by a fixed amount per session.
- worst-thread: one thread filled to both caps with identifiers of the maximum length, the most
  one session can ever hold.
Two measures: `tracemalloc` (live Python allocations, exact, a slower run) and RSS from
/proc/self/status (what the OS charges, allocator slack included; `VmHWM` is the peak).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from statemachine import SessionProjector
from statemachine.core.event import MAX_ID_LENGTH
from statemachine.runtime.projector import DEFAULT_MAX_EVENT_IDS, DEFAULT_MAX_FINISHED_TURNS

CHECKPOINTS = 10


def _proc_status(key: str) -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _uuidish(prefix: str, i: int) -> str:
    # 36 characters, like the UUIDs providers send.
    return f"{prefix}{i:0{36 - len(prefix)}d}"


def one_thread(n: int) -> Iterator[dict[str, Any]]:
    """turn.started, content.delta, content.delta, turn.completed; every eventId and turn new."""
    for i in range(n):
        turn = _uuidish("turn-", i // 4)
        kind = i % 4
        event: dict[str, Any] = {
            "eventId": _uuidish("evt-", i),
            "type": ("turn.started", "content.delta", "content.delta", "turn.completed")[kind],
            "provider": "codex",
            "threadId": "thread-hostile",
            "createdAt": "2026-01-01T00:00:00Z",
            "turnId": turn,
        }
        if kind in (1, 2):
            event["payload"] = {"delta": "x"}
        yield event


def many_threads(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {
            "eventId": _uuidish("evt-", i),
            "type": "session.started",
            "provider": "codex",
            "threadId": _uuidish("thread-", i),
            "createdAt": "2026-01-01T00:00:00Z",
        }


def worst_thread(n: int) -> Iterator[dict[str, Any]]:
    """Identifiers of the maximum length; enough events to fill both memories past their caps."""
    del n
    count = 2 * max(DEFAULT_MAX_EVENT_IDS, 2 * DEFAULT_MAX_FINISHED_TURNS)
    for i in range(count):
        yield {
            "eventId": f"{i:0{MAX_ID_LENGTH}d}",
            "type": ("turn.started", "turn.completed")[i % 2],
            "provider": "p" * MAX_ID_LENGTH,
            "threadId": "t" * MAX_ID_LENGTH,
            "createdAt": "2026-01-01T00:00:00Z",
            "turnId": f"T{i // 2:0{MAX_ID_LENGTH - 1}d}",
            "payload": {},
        }


SCENARIOS: dict[str, Callable[[int], Iterator[dict[str, Any]]]] = {
    "one-thread": one_thread,
    "many-threads": many_threads,
    "worst-thread": worst_thread,
}


def measure(scenario: str, n: int, how: str) -> dict[str, Any]:
    """Run one scenario in this process and measure it."""
    warm = SessionProjector()  # builds the compiled table and caches before the baseline
    warm.apply(next(one_thread(1)))
    del warm
    gc.collect()
    if how == "tracemalloc":
        tracemalloc.start()

    def used() -> int:
        return tracemalloc.get_traced_memory()[0] if how == "tracemalloc" else _proc_status("VmRSS")

    baseline = used()
    projector = SessionProjector()
    started = time.monotonic()
    every = max(1, n // CHECKPOINTS)
    curve: list[tuple[int, int]] = []
    count = 0
    # Each event is made, applied and dropped: what stays is what the projector keeps.
    for count, event in enumerate(SCENARIOS[scenario](n), 1):
        projector.apply(event)
        if count % every == 0:
            curve.append((count, used() - baseline))
    gc.collect()
    retained = used() - baseline
    result: dict[str, Any] = {
        "scenario": scenario,
        "measure": how,
        "events": count,
        "threads": len(projector),
        "seconds": round(time.monotonic() - started, 1),
        "retained_bytes": retained,
        "bytes_per_thread": round(retained / max(1, len(projector))),
        "curve": curve,
        "max_seen_event_ids": max(projector.seen_count(t) for t in projector),
        "max_finished_turns": max(len(projector.finished_turns(t)) for t in projector),
    }
    if how == "tracemalloc":
        result["peak_bytes"] = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.stop()
    else:
        result["peak_rss_bytes"] = _proc_status("VmHWM")
    return result


def _in_child(scenario: str, n: int, how: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", scenario, how, "--events", str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if abs(n) >= 10 << 20 else f"{n / 1024:.0f} KiB"


def render(r: dict[str, Any]) -> str:
    lines = [
        f"{r['scenario']} ({r['measure']}): {r['events']} events, {r['threads']} threads, {r['seconds']}s",
        f"  retained {_mib(r['retained_bytes'])} ({r['bytes_per_thread']} bytes per thread);"
        + (f" peak {_mib(r['peak_bytes'])}" if "peak_bytes" in r else f" peak RSS {_mib(r['peak_rss_bytes'])}"),
        f"  largest memories: {r['max_seen_event_ids']} eventIds, {r['max_finished_turns']} finished turns",
    ]
    if r["curve"]:
        lines.append("  after: " + ", ".join(f"{k // 1000}k {_mib(v)}" for k, v in r["curve"]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--child", nargs=2, metavar=("SCENARIO", "MEASURE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], args.events, args.child[1])))
        return 0
    results = [
        _in_child(scenario, args.events, how)
        for scenario in (args.only or list(SCENARIOS))
        for how in ("tracemalloc", "rss")
    ]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"caps: {DEFAULT_MAX_EVENT_IDS} eventIds, {DEFAULT_MAX_FINISHED_TURNS} finished turns per thread;"
              f" identifiers up to {MAX_ID_LENGTH} characters")
        for r in results:
            print(render(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
