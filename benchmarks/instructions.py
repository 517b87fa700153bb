"""A fixed stream through one path, for instruction counts (the machine's load does not move them).

    valgrind --tool=callgrind --callgrind-out-file=cg.setup .venv/bin/python benchmarks/instructions.py setup
    valgrind --tool=callgrind --callgrind-out-file=cg.apply .venv/bin/python benchmarks/instructions.py apply

Every mode builds the same things first (the stream, its pre-parsed Events, (b)'s tuples, both
generated step modules); `setup` stops there. (the total of a mode - the total of `setup`) / events
is the instructions one event costs on that path: `apply` (contender (a)), `batch` (`apply_batch`)
or `b` (the hand-written reducer). Run with `SESSION_LIFECYCLE_CACHE=off` for the same start-up
work in every process.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from handwritten import HandwrittenProjector, from_wire
from stream import generate_stream

from statemachine import SessionProjector
from statemachine.engine.registry import compiled_for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("setup", "apply", "batch", "b"))
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--sessions", type=int, default=1_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    wire = generate_stream(args.events, args.sessions, args.seed)
    p = SessionProjector()
    events = [p.parse(w) for w in wire]
    tuples = [from_wire(w) for w in wire]
    compiled_for(p.spec).batch_dispatch  # noqa: B018 - built here, not in the measured part
    gc.collect()
    gc.disable()
    if args.mode == "apply":
        apply = p.apply
        for ev in events:
            apply(ev)
    elif args.mode == "batch":
        p.apply_batch(events)
    elif args.mode == "b":
        reduce = HandwrittenProjector().apply
        for t in tuples:
            reduce(t)


if __name__ == "__main__":
    main()
