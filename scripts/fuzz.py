"""Full-size fuzzing of every door into the projector; prints the counts.

    .venv/bin/python scripts/fuzz.py               # 100000 cases
    .venv/bin/python scripts/fuzz.py --cases 5000 --seed 7 --json

A case is one Hypothesis example: a fresh projector (on either engine, sometimes with tiny memory
caps, with or without the clock bound) and its twin on the other engine, and a sequence of 1-12
inputs from `tests/hostile.py` (wire dicts, JSON lines, Events replaced, built by hand or parsed by
another parser), each applied to both and checked by `check_step`. Besides, every
`REPLAY_EVERY`-th case replays its inputs as a JSONL log (`check_replay`), every
`CONSUME_EVERY`-th feeds them to async `consume` (`check_consume`), every `SNAPSHOT_EVERY`-th
restores a tampered snapshot of the projector (`check_snapshot_tamper`), and every
`SPEC_EVERY`-th runs them on a hostile variant of the spec, when it loads, on both engines.
Counted: cases, inputs, outcomes by kind, typed errors by field, crashes (any exception other
than `EventError` or `SnapshotError` escaping), state changes on refusal (`StateChanged`), and
engine disagreements (`EnginesDisagree`). Failures are counted, not raised, so the run always
completes; exit status 1 if any was seen.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hostile import (
    EnginesDisagree,
    Forge,
    StateChanged,
    check_consume,
    check_replay,
    check_snapshot_tamper,
    check_step,
    fresh_like,
    fuzz_inputs,
    load_variant,
    projectors,
    reference_for,
    spec_edits,
    spec_variant,
    tampers,
)
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from statemachine import SessionProjector

REPLAY_EVERY = 10
CONSUME_EVERY = 10
SNAPSHOT_EVERY = 5
SPEC_EVERY = 100
# Hypothesis keeps per-example data for the length of one run; batches of this many cases,
# each a run of its own with a seed derived from --seed, keep the fuzzer's own memory flat.
BATCH = 2_000
MAX_EXAMPLES_KEPT = 5


def run(cases: int, seed_value: int | None = 0, *, progress: bool = False, first_batch: int = 0) -> dict[str, Any]:
    """`cases` cases from batch `first_batch` on. Batches hold `BATCH` cases, a multiple of every
    `*_EVERY`, and each has its own seed: batches 25-49 run alone are the second half of a
    100 000-case run, case for case, so a run can be split over processes and the counts added."""
    counts: dict[str, Any] = {
        "cases": 0,
        "inputs": 0,
        "outcomes": Counter[str](),
        "errors_by_field": Counter[str](),
        "forged_inputs": 0,
        "replayed_logs": 0,
        "replayed_lines": 0,
        "consumed_cases": 0,
        "snapshots": Counter[str](),
        "specs": Counter[str](),
        "spec_inputs": 0,
        "crashes": 0,
        "state_changes": 0,
        "engine_disagreements": 0,
        "examples": [],
    }
    started = time.monotonic()

    def failure(kind: str, item: Any) -> None:
        counts[kind] += 1
        if len(counts["examples"]) < MAX_EXAMPLES_KEPT:
            counts["examples"].append({"kind": kind, "input": repr(item)[:300], "trace": traceback.format_exc()})

    def guarded(item: Any, check: Any, *args: Any, **kwargs: Any) -> Any:
        """`check(*args)`, with its failure counted; None when it failed."""
        try:
            return check(*args, **kwargs)
        except EnginesDisagree:
            failure("engine_disagreements", item)
        except StateChanged:
            failure("state_changes", item)
        except Exception:
            failure("crashes", item)
        return None

    def case(projector: SessionProjector, inputs: list[Any], edits: Any, spec_change: Any) -> None:
        counts["cases"] += 1
        n = counts["cases"]
        reference = reference_for(projector)
        for item in inputs:
            counts["inputs"] += 1
            counts["forged_inputs"] += isinstance(item, Forge)
            result = guarded(item, check_step, projector, item, reference=reference)
            if result is None:
                continue
            if result.startswith("error:"):
                counts["outcomes"]["error"] += 1
                counts["errors_by_field"][result.removeprefix("error:")] += 1
            else:
                counts["outcomes"][result] += 1
        if n % SNAPSHOT_EVERY == 0:
            result = guarded(edits, check_snapshot_tamper, projector, edits)
            if result is not None:
                counts["snapshots"][result] += 1
        if n % CONSUME_EVERY == 5 and guarded(inputs, check_consume, fresh_like(projector), inputs) is not None:
            counts["consumed_cases"] += 1
        if n % SPEC_EVERY == 0:
            spec_case(spec_change, inputs)
        if n % REPLAY_EVERY == 0:
            try:
                report = check_replay(inputs, max_line_bytes=4096)
            except StateChanged:
                failure("state_changes", inputs)
            except Exception:
                failure("crashes", inputs)
            else:
                counts["replayed_logs"] += 1
                counts["replayed_lines"] += report.lines
        if progress and counts["cases"] % 10_000 == 0:
            print(f"  {counts['cases']} cases, {time.monotonic() - started:.0f}s", file=sys.stderr)

    def spec_case(spec_change: Any, inputs: list[Any]) -> None:
        text = spec_variant(spec_change)
        spec = guarded(text, load_variant, text)
        if spec is None:
            counts["specs"]["refused"] += 1
            return
        counts["specs"]["loaded"] += 1
        projector = SessionProjector(spec, max_event_ids=4, max_finished_turns=2)
        reference = reference_for(projector)
        for item in inputs:
            counts["spec_inputs"] += 1
            # a hostile spec need not keep the invariant: only crashes, refusals and agreement count
            guarded(item, check_step, projector, item, reference=reference, invariant=False)

    batch = first_batch
    while counts["cases"] < cases:
        runner = settings(
            max_examples=min(BATCH, cases - counts["cases"]),
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )(given(projectors(), st.lists(fuzz_inputs(), min_size=1, max_size=12), tampers, spec_edits)(case))
        if seed_value is not None:
            runner = seed(seed_value * 1_000_003 + batch)(runner)
        before = counts["cases"]
        runner()
        batch += 1
        if counts["cases"] == before:
            break  # nothing left to generate
    counts["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    counts["seconds"] = round(time.monotonic() - started, 1)
    for name in ("outcomes", "errors_by_field", "snapshots", "specs"):
        counts[name] = dict(counts[name].most_common())
    return counts



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0: a reproducible run)")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.add_argument("--first-batch", type=int, default=0, metavar="B",
                        help=f"start at batch B (of {BATCH} cases): the part of a longer run that begins there")
    args = parser.parse_args()
    counts = run(args.cases, args.seed, progress=not args.json, first_batch=args.first_batch)
    if args.json:
        print(json.dumps(counts, indent=2))
    else:
        print(
            f"cases: {counts['cases']}  inputs: {counts['inputs']}"
            f"  ({counts['seconds']}s, seed {args.seed}, peak RSS {counts['peak_rss_mib']} MiB)"
        )
        print("outcomes:", ", ".join(f"{k} {v}" for k, v in counts["outcomes"].items()))
        print("typed errors by field:", ", ".join(f"{k} {v}" for k, v in counts["errors_by_field"].items()))
        print(f"forged Events among the inputs: {counts['forged_inputs']}")
        print(f"replayed logs: {counts['replayed_logs']} ({counts['replayed_lines']} lines)")
        print(f"async consume cases: {counts['consumed_cases']}")
        print("tampered snapshots:", ", ".join(f"{k} {v}" for k, v in counts["snapshots"].items()))
        print("hostile specs:", ", ".join(f"{k} {v}" for k, v in counts["specs"].items()),
              f"({counts['spec_inputs']} inputs on both engines)")
        print(f"crashes: {counts['crashes']}")
        print(f"state changes on refusal: {counts['state_changes']}")
        print(f"engine disagreements: {counts['engine_disagreements']}")
        for example in counts["examples"]:
            print(f"\n{example['kind']}: {example['input']}\n{example['trace']}")
    return 1 if counts["crashes"] or counts["state_changes"] or counts["engine_disagreements"] else 0


if __name__ == "__main__":
    sys.exit(main())
