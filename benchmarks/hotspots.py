"""Where (a)'s time goes: a cProfile of `SessionProjector.apply`, and a per-event breakdown.

    .venv/bin/python benchmarks/hotspots.py [--events 200000 --sessions 2000]

The breakdown times each stage of one apply on its own, over the very inputs it sees in the
stream (recorded from a real run): parsing a wire dict; the engine's steps alone (each lifecycle
event that passed de-duplication, in stream order: its thread's record, the generated function
for (status, trigger), and the call, which builds the new `Session` and the `Outcome`); the
`Session` and `Outcome` values on their own. "Rest" is apply minus the steps and the outcomes of
the events that never reach the engine: the call of apply, the type check, the thread lookup of
those events, de-duplication. Medians of alternated repeats.
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
from statemachine.core.outcome import Outcome
from statemachine.core.record import ThreadRecord
from statemachine.core.session import Session
from statemachine.engine.registry import compiled_for


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
    rec = SessionProjector(parser=parser.parser)
    engine_events: list[Any] = []
    applied: list[Session] = []
    outcomes: list[Outcome] = []
    for ev in events:
        o = rec.apply(ev)
        outcomes.append(o)
        if o.kind in (OutcomeKind.APPLIED, OutcomeKind.REJECTED):
            engine_events.append(ev)
        if o.kind is OutcomeKind.APPLIED:
            applied.append(o.after)
    unstepped = [o for o in outcomes if o.kind in (OutcomeKind.DUPLICATE, OutcomeKind.IGNORED)]
    dispatch = compiled_for(builtin_spec()).dispatch
    gc.collect()
    gc.freeze()

    def apply_all() -> None:
        apply = SessionProjector(parser=parser.parser).apply
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

    # The engine's steps alone, in stream order, each on its thread's record: the same sequence
    # of steps as inside apply (duplicate and ignored events never touch a session), without
    # the de-duplication. Records are made fresh for each repeat, outside the clock.
    initial = builtin_spec().initial
    first_provider: dict[str, str] = {}
    for ev in events:
        first_provider.setdefault(ev.thread_id, ev.provider)
    records: list[dict[str, ThreadRecord]] = []

    def fresh_records() -> dict[str, ThreadRecord]:
        return {t: ThreadRecord(Session(t, initial, prov), rec.max_event_ids, rec.max_finished_turns)
                for t, prov in first_provider.items()}

    def step_all() -> None:
        threads = records.pop()
        for ev in engine_events:
            r = threads[ev.thread_id]
            dispatch[r.session.status][ev.trigger](r, ev)

    new = tuple.__new__

    def session_all() -> None:
        for s in applied:
            new(Session, (s.thread_id, s.status, s.provider_name, s.active_turn_id, s.last_error, s.updated_at,
                          s.provider_instance_id, s.runtime_mode))

    def outcome_all() -> None:
        for o in outcomes:
            new(Outcome, (o.kind, o.event, o.before, o.after, o.reason, o.transition))

    def unstepped_outcome_all() -> None:
        for o in unstepped:
            new(Outcome, (o.kind, o.event, o.before, o.after, o.reason, o.transition))

    stages: dict[str, tuple[Callable[[], None], int]] = {
        "(a) apply, pre-parsed Event": (apply_all, n),
        "(b) hand-written reducer": (handwritten_all, n),
        "parse: wire dict -> Event": (parse_all, n),
        "thread lookup + dispatch + generated step": (step_all, len(engine_events)),
        "  of which Session(...) snapshot": (session_all, len(applied)),
        "Outcome(...), every event": (outcome_all, n),
        "  of which events the engine never sees": (unstepped_outcome_all, len(unstepped)),
    }
    times: dict[str, list[float]] = {k: [] for k in stages}
    for r in range(args.repeats):
        keys = list(stages)
        keys = keys[r % len(keys):] + keys[: r % len(keys)]
        for k in keys:
            if stages[k][0] is step_all:
                records.append(fresh_records())
                gc.freeze()  # like the input: no contender pays for collecting it
            times[k].append(_time(stages[k][0]))
    med = {k: statistics.median(v) for k, v in times.items()}
    apply_us = med["(a) apply, pre-parsed Event"] / n * 1e6

    print(f"stream: {n:,} events, {args.sessions:,} sessions, seed {args.seed}; {len(engine_events):,} engine steps, "
          f"{len(applied):,} applied; median of {args.repeats}, alternated\n")
    print("| stage | calls | us/call | us per stream event | share of (a) apply |")
    print("|---|---:|---:|---:|---:|")
    for k, (_, calls) in stages.items():
        per_event = med[k] / n * 1e6
        print(f"| {k} | {calls:,} | {med[k] / calls * 1e6:.3f} | {per_event:.3f} | {per_event / apply_us:.0%} |")
    rest = med["(a) apply, pre-parsed Event"] - (
        med["thread lookup + dispatch + generated step"] + med["  of which events the engine never sees"]
    )
    print(f"| rest of apply: call, type check, thread lookup, de-dup | - | - | {rest / n * 1e6:.3f} | "
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
