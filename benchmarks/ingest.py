"""The ingest rows of the benchmark on their own: the batch path and whole-process replay.

    .venv/bin/python benchmarks/ingest.py                     # 1M events over 10k sessions
    .venv/bin/python benchmarks/ingest.py --events 200000 --sessions 2000 --runs 3

The same measurements as `benchmarks/run.py`'s rows `a-batch` and "Whole-process replay", without
the rest of the run: (a) `apply`, (b) the hand-written reducer and `apply_batch` on the same
pre-parsed stream (alternated rounds, medians, after the agreement check), then `replay --json` on
a log of the same stream with the stdlib decoder and with msgspec, against
`plain_replay.py` (child CPU time, alternated, medians; the outputs must be byte-identical).
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402
from handwritten import HandwrittenProjector, from_wire  # noqa: E402
from stream import generate_stream  # noqa: E402

from statemachine import SessionProjector  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the in-process rows")
    ap.add_argument("--runs", type=int, default=3, help="runs of each replay child process")
    args = ap.parse_args()
    print(f"machine: {bench.machine()}")

    wire = generate_stream(args.events, args.sessions, args.seed)
    parser = SessionProjector()
    events = [parser.parse(w) for w in wire]
    tuples = [from_wire(w) for w in wire]
    ok, detail = bench.agree_a_b(events, tuples)
    ok_batch, detail_batch = bench.agree_batch(events)
    print(f"agreement (a) vs (b): {'AGREE' if ok else 'DISAGREE'}: {detail}")
    print(f"agreement (a-batch) vs (a): {'AGREE' if ok_batch else 'DISAGREE'}: {detail_batch}")
    if not (ok and ok_batch):
        return 1
    rows = {
        "a": bench.Row("a", "Event (pre-parsed)", len(events)),
        "b": bench.Row("b", "tuple (pre-parsed)", len(tuples)),
        "a-batch": bench.Row("a-batch", "Event (pre-parsed)", len(events)),
    }
    jobs = [
        (rows["a"], bench.job(lambda: SessionProjector().apply, events)),
        (rows["b"], bench.job(lambda: HandwrittenProjector().apply, tuples)),
        (rows["a-batch"], bench.batch_job(events)),
    ]
    gc.collect()
    gc.freeze()
    bench.alternate(jobs, args.rounds, print)
    gc.unfreeze()
    del events, tuples, jobs
    gc.collect()

    log = bench.write_jsonl(bench.BENCH_DIR / "ingest-stream.jsonl", wire)
    del wire
    gc.collect()
    replay = bench.whole_replay(log, args.runs)
    log.unlink()

    b_rate = rows["b"].rate
    print(f"\n### {args.events:,} events, {args.sessions:,} sessions, seed {args.seed} "
          f"(median of {args.rounds} rounds, alternated)\n")
    print("| contender | input | events/s | us/event | vs (b) |")
    print("|---|---|---:|---:|---:|")
    for key, r in rows.items():
        print(f"| {key} | {r.input} | {r.rate:,.0f} | {1e6 / r.rate:.2f} | {r.rate / b_rate:.3f}x |")
    cpu = replay["cpu_s"]
    print(f"\n### Whole-process replay, {replay['lines']:,} lines (child CPU s, median of {replay['runs']})\n")
    print("| command | CPU s | speed vs plain |")
    print("|---|---:|---:|")
    labels = {"plain": "plain_replay.py (stdlib reducer)", "replay": "replay --json, stdlib json",
              "replay_fast": "replay --json, msgspec ([fast])"}
    for key in ("plain", "replay", "replay_fast"):
        if key in cpu:
            print(f"| {labels[key]} | {cpu[key]:.3f} | {cpu['plain'] / cpu[key]:.2f}x |")
    print(f"\nsame output bytes: {'yes' if replay['identical'] else 'NO'}")
    return 0 if replay["identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
