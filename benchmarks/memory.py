"""Memory per session, measured in a process of its own (started by `benchmarks/run.py`).

The events are read one JSON line at a time from a file, so the only thing that grows is the
projector: sessions, their de-duplication memory (eventIds) and their finished turns, with the
strings they keep alive. Two measures, each in a fresh process:
- `rss`: resident set size (VmRSS) after the events minus before, over the number of sessions.
  What the operating system charges; includes allocator slack.
- `tracemalloc`: bytes of live Python allocations after minus before (exact, no slack; slow).
`--breakdown` adds where the bytes go, by sys.getsizeof of what each thread keeps alive.

    .venv/bin/python benchmarks/memory.py --compare    # (a) and (b), 1M events over 100k sessions, one run
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _make(contender: str) -> tuple[Any, Any, Any]:
    """(projector, apply one JSON line, number of sessions)."""
    if contender == "a":
        from statemachine import SessionProjector

        warm = SessionProjector()  # builds the compiled table once, outside the measure
        warm.apply('{"eventId":"w","type":"turn.started","provider":"p","threadId":"w",'
                   '"createdAt":"2026-01-01T00:00:00Z","turnId":"t","payload":{}}')
        p = SessionProjector()
        return p, p.apply, lambda: len(p)
    from handwritten import HandwrittenProjector, from_wire

    h = HandwrittenProjector()
    loads = json.loads
    return h, lambda line: h.apply(from_wire(loads(line))), lambda: len(h.records)


def _breakdown(projector: Any) -> dict[str, float]:
    """Where the bytes of one session go: sys.getsizeof of what each thread keeps alive (each
    object counted once), as a mean per session, plus the threadId -> record dict's share. Reads
    the projector's per-thread records: (a)'s `ThreadRecord` (packed memories or BoundedSets), or
    (b)'s record with plain dicts."""
    records = getattr(projector, "_threads", None) or getattr(projector, "records", None)
    if not records:
        return {}
    counted: set[int] = set()
    parts: Counter[str] = Counter()

    def size(obj: object, part: str) -> None:
        if obj is None or id(obj) in counted:
            return
        counted.add(id(obj))
        parts[part] += sys.getsizeof(obj)

    def memory(obj: Any, part: str, keys: str) -> None:
        """A memory: a packed bytes/tuple, a dict, or a BoundedSet (its dict and ring), and its keys."""
        members = getattr(obj, "_members", None)
        if members is not None:  # a BoundedSet
            size(obj, part)
            size(members, part)
            size(obj._ring, part)
            obj = members
        else:
            size(obj, part)
        if not isinstance(obj, (bytes, bytearray)):
            for key in obj:
                size(key, keys)

    parts["threadId -> record dict"] += sys.getsizeof(records)
    for key, record in records.items():
        size(key, "threadId string")
        size(record, "per-thread record")
        session = getattr(record, "session", record)  # (b) keeps the fields on the record
        if session is not record:
            size(session, "Session object")
        size(getattr(session, "updated_at", None), "updatedAt string")
        if "updated_dt" in getattr(type(record), "__slots__", ()) or "updated_dt" in getattr(record, "__dict__", {}):
            size(record.updated_dt, "updatedAt datetime")  # kept, not derived
        size(getattr(session, "active_turn_id", getattr(session, "turn", None)), "turn id strings")
        size(getattr(session, "last_error", getattr(session, "error", None)), "lastError string")
        size(getattr(session, "provider_name", getattr(session, "provider", None)), "providerName string")
        ids = getattr(record, "_ids", None)
        if ids is not None:
            memory(ids, "eventId memory: digests and container", "eventId memory: digests and container")
        else:
            memory(record.seen, "eventId memory: dict", "eventId memory: strings")
        memory(record.finished, "finished turns: container", "turn id strings")
    n = len(records)
    return {k: v / n for k, v in sorted(parts.items(), key=lambda kv: -kv[1])}


def compare(events: int, sessions: int, seed: int, modes: list[str]) -> str:
    """(a) and (b) on the same seeded stream, each in a fresh process, one run: a Markdown table
    of bytes per session and one of where they go."""
    import subprocess
    import tempfile

    from stream import generate_stream

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory-stream.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for wire in generate_stream(events, sessions, seed):
                f.write(json.dumps(wire) + "\n")
        for mode in modes:
            for contender in ("a", "b"):
                cmd = [sys.executable, __file__, "--contender", contender, "--mode", mode, "--events", str(path)]
                if mode == "rss":
                    cmd.append("--breakdown")
                done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                results[f"{contender}/{mode}"] = json.loads(done.stdout)
    lines = ["| contender | measure | sessions | events | bytes/session |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['contender']} | {r['mode']} | {r['sessions']:,} | {r['events']:,} | "
              f"{r['bytes_per_session']:,.0f} |" for r in results.values()]
    parts_a = results.get("a/rss", {}).get("breakdown", {})
    parts_b = results.get("b/rss", {}).get("breakdown", {})
    if parts_a:
        lines += ["", "| part | (a) bytes/session | (b) bytes/session |", "|---|---:|---:|"]
        lines += [f"| {part} | {parts_a.get(part, 0):,.0f} | {parts_b.get(part, 0):,.0f} |"
                  for part in dict.fromkeys([*parts_a, *parts_b])]
        lines.append(f"| total of the parts | {sum(parts_a.values()):,.0f} | {sum(parts_b.values()):,.0f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--compare", action="store_true",
                    help="generate the benchmark stream and measure (a) and (b) on it, printing tables")
    ap.add_argument("--contender", choices=["a", "b"])
    ap.add_argument("--mode", choices=["rss", "tracemalloc"])
    ap.add_argument("--events", help="JSONL file of wire events; with --compare, how many events (1000000)")
    ap.add_argument("--sessions", type=int, default=100_000, help="with --compare: how many sessions")
    ap.add_argument("--seed", type=int, default=2026, help="with --compare: the stream's seed")
    ap.add_argument("--tracemalloc", action="store_true", help="with --compare: also measure with tracemalloc")
    ap.add_argument("--breakdown", action="store_true", help="also where the bytes go (sys.getsizeof)")
    args = ap.parse_args()
    if args.compare:
        modes = ["rss", "tracemalloc"] if args.tracemalloc else ["rss"]
        print(compare(int(args.events or 1_000_000), args.sessions, args.seed, modes))
        return 0
    if args.contender is None or args.mode is None or args.events is None:
        ap.error("--contender, --mode and --events are required (or --compare)")
    if args.mode == "tracemalloc":
        tracemalloc.start()
    projector, apply, count = _make(args.contender)
    events_seen = 0
    gc.collect()
    before = tracemalloc.get_traced_memory()[0] if args.mode == "tracemalloc" else _rss()
    with open(args.events, encoding="utf-8") as f:
        for line in f:
            apply(line)
            events_seen += 1
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if args.mode == "tracemalloc" else _rss()
    sessions = count()
    report: dict[str, Any] = {
        "contender": args.contender,
        "mode": args.mode,
        "events": events_seen,
        "sessions": sessions,
        "bytes": after - before,
        "bytes_per_session": (after - before) / sessions,
    }
    if args.breakdown:
        report["breakdown"] = _breakdown(projector)
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
