"""Memory per session, measured in a process of its own (started by `benchmarks/run.py`).

The events are read one JSON line at a time from a file, so the only thing that grows is the
projector: sessions, their de-duplication memory (eventIds) and their finished turns, with the
strings they keep alive. Two measures, each in a fresh process:
- `rss`: resident set size (VmRSS) after the events minus before, over the number of sessions.
  What the operating system charges; includes allocator slack.
- `tracemalloc`: bytes of live Python allocations after minus before (exact, no slack; slow).
`--breakdown` adds where the bytes go, by sys.getsizeof of what each thread keeps alive.
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
        ids = getattr(record, "_ids", None)
        if ids is not None:
            memory(ids, "eventId memory: digests and container", "eventId memory: digests and container")
        else:
            memory(record.seen, "eventId memory: dict", "eventId memory: strings")
        memory(record.finished, "finished turns: container", "turn id strings")
    n = len(records)
    return {k: v / n for k, v in sorted(parts.items(), key=lambda kv: -kv[1])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--contender", choices=["a", "b"], required=True)
    ap.add_argument("--mode", choices=["rss", "tracemalloc"], required=True)
    ap.add_argument("--events", required=True, help="JSONL file of wire events")
    ap.add_argument("--breakdown", action="store_true", help="also where the bytes go (sys.getsizeof)")
    args = ap.parse_args()
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
