"""Where (a)'s time goes: a cProfile of `SessionProjector.apply`, and a per-event breakdown.

    .venv/bin/python benchmarks/hotspots.py [--events 200000 --sessions 2000]

The breakdown times each stage of one apply on its own, over the very inputs it sees in the
stream (recorded from a real run): parsing a wire dict, `coerce` of an `Event`, one step of the
compiled engine (and, inside it, the Cursor, the `updatedAt` re-parse, the `Session` snapshot of
an applied event, the `Step`), and the `Outcome` every event gets. "Rest" is apply minus the
stages: thread lookup, de-duplication and the bounded memories. Medians of alternated repeats.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from handwritten import HandwrittenProjector, from_wire
from stream import generate_stream

from statemachine import OutcomeKind, SessionProjector, builtin_spec
from statemachine.compiled import compiled_for
from statemachine.events import parse_timestamp
from statemachine.machine import Step
from statemachine.outcome import Outcome
from statemachine.semantics import Cursor
from statemachine.session import Session


def _time(fn: Callable[[], None]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--sessions", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()

    wire = generate_stream(args.events, args.sessions, args.seed)
    parser = SessionProjector()
    events = [parser.parse(w) for w in wire]
    tuples = [from_wire(w) for w in wire]
    n = len(events)

    # Record what each stage sees: the engine's inputs, the applied sessions, the outcomes.
    rec = SessionProjector()
    steps: list[tuple[Session, frozenset[str], Any]] = []
    applied: list[Session] = []
    outcomes: list[Outcome] = []
    for ev in events:
        finished = frozenset(rec.finished_turns(ev.thread_id)) if ev.trigger is not None else frozenset()
        o = rec.apply(ev)
        outcomes.append(o)
        if o.kind in (OutcomeKind.APPLIED, OutcomeKind.REJECTED):
            steps.append((o.before, finished, ev))
        if o.kind is OutcomeKind.APPLIED:
            applied.append(o.after)
    engine = compiled_for(builtin_spec())
    stamps = [s.updated_at for s, _, _ in steps if s.updated_at is not None]
    gc.collect()
    gc.freeze()

    def apply_all() -> None:
        apply = SessionProjector().apply
        for ev in events:
            apply(ev)

    def handwritten_all() -> None:
        apply = HandwrittenProjector().apply
        for t in tuples:
            apply(t)

    def parse_all() -> None:
        parse = parser.parse
        for w in wire:
            parse(w)

    def coerce_all() -> None:
        coerce = parser.parser.coerce
        for ev in events:
            coerce(ev)

    def step_all() -> None:
        step = engine.step
        for s, f, ev in steps:
            step(s, f, ev)

    def cursor_all() -> None:
        for s, f, ev in steps:
            Cursor(s.status, s.active_turn_id, s.last_error, s.updated_at, None, s.provider_name, ev, f)

    def restamp_all() -> None:
        for st in stamps:
            parse_timestamp(st)

    def stepobj_all() -> None:
        for s, _, _ in steps:
            Step(True, s, None, (), 0)

    def session_all() -> None:
        for s in applied:
            Session(s.thread_id, s.status, s.provider_name, s.active_turn_id, s.last_error, s.updated_at,
                    s.provider_instance_id, s.runtime_mode)

    def outcome_all() -> None:
        for o in outcomes:
            Outcome(o.kind, o.event, o.before, o.after, o.reason, o.transition)

    stages: dict[str, tuple[Callable[[], None], int]] = {
        "(a) apply, pre-parsed Event": (apply_all, n),
        "(b) hand-written reducer": (handwritten_all, n),
        "parse: wire dict -> Event": (parse_all, n),
        "coerce(Event)": (coerce_all, n),
        "engine step (compiled)": (step_all, len(steps)),
        "  of which Cursor(...)": (cursor_all, len(steps)),
        "  of which parse_timestamp(updatedAt)": (restamp_all, len(stamps)),
        "  of which Session(...) snapshot": (session_all, len(applied)),
        "  of which Step(...)": (stepobj_all, len(steps)),
        "Outcome(...)": (outcome_all, n),
    }
    times: dict[str, list[float]] = {k: [] for k in stages}
    for r in range(args.repeats):
        keys = list(stages)
        keys = keys[r % len(keys):] + keys[: r % len(keys)]
        for k in keys:
            times[k].append(_time(stages[k][0]))
    med = {k: statistics.median(v) for k, v in times.items()}
    apply_us = med["(a) apply, pre-parsed Event"] / n * 1e6

    print(f"stream: {n:,} events, {args.sessions:,} sessions, seed {args.seed}; {len(steps):,} engine steps, "
          f"{len(applied):,} applied; median of {args.repeats}, alternated\n")
    print("| stage | calls | us/call | us per stream event | share of (a) apply |")
    print("|---|---:|---:|---:|---:|")
    for k, (_, calls) in stages.items():
        per_event = med[k] / n * 1e6
        print(f"| {k} | {calls:,} | {med[k] / calls * 1e6:.3f} | {per_event:.3f} | {per_event / apply_us:.0%} |")
    rest = med["(a) apply, pre-parsed Event"] - (
        med["coerce(Event)"] + med["engine step (compiled)"] + med["Outcome(...)"]
    )
    print(f"| rest of apply: thread lookup, de-dup, memories, calls | - | - | {rest / n * 1e6:.3f} | "
          f"{rest / n * 1e6 / apply_us:.0%} |")

    gc.unfreeze()
    profiler = cProfile.Profile()
    profiler.enable()
    apply_all()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
    print(f"\ncProfile of (a) apply over the stream, top {args.top} by own time (profiling inflates small calls):")
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
