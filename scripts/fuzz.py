"""Full-size fuzzing of the parser, the projector and replay; prints the counts.

    .venv/bin/python scripts/fuzz.py               # 100000 cases
    .venv/bin/python scripts/fuzz.py --cases 5000 --seed 7 --json

A case is one Hypothesis example: a fresh projector (sometimes with tiny memory caps) and a
sequence of 1-12 inputs from `tests/hostile.py`, each applied and checked by `check_step`; every
tenth case also replays its inputs as a JSONL log through `replay_lines` (`check_replay`).
Counted: cases, inputs, outcomes by kind, typed errors by field, crashes (any exception other
than `EventError` escaping), and state changes on refusal (`StateChanged`). Failures are counted,
not raised, so the run always completes; exit status 1 if any crash or state change was seen.
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

from hostile import StateChanged, check_replay, check_step, fuzz_inputs, projectors
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from statemachine import SessionProjector

REPLAY_EVERY = 10
# Hypothesis keeps per-example data for the length of one run; batches of this many cases,
# each a run of its own with a seed derived from --seed, keep the fuzzer's own memory flat.
BATCH = 2_000
MAX_EXAMPLES_KEPT = 5


def run(cases: int, seed_value: int | None = 0, *, progress: bool = False) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "cases": 0,
        "inputs": 0,
        "outcomes": Counter[str](),
        "errors_by_field": Counter[str](),
        "replayed_logs": 0,
        "replayed_lines": 0,
        "crashes": 0,
        "state_changes": 0,
        "examples": [],
    }
    started = time.monotonic()

    def failure(kind: str, item: Any) -> None:
        counts[kind] += 1
        if len(counts["examples"]) < MAX_EXAMPLES_KEPT:
            counts["examples"].append({"kind": kind, "input": repr(item)[:300], "trace": traceback.format_exc()})

    def case(projector: SessionProjector, inputs: list[Any]) -> None:
        counts["cases"] += 1
        for item in inputs:
            counts["inputs"] += 1
            try:
                result = check_step(projector, item)
            except StateChanged:
                failure("state_changes", item)
                continue
            except Exception:
                failure("crashes", item)
                continue
            if result.startswith("error:"):
                counts["outcomes"]["error"] += 1
                counts["errors_by_field"][result.removeprefix("error:")] += 1
            else:
                counts["outcomes"][result] += 1
        if counts["cases"] % REPLAY_EVERY == 0:
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

    batch = 0
    while counts["cases"] < cases:
        runner = settings(
            max_examples=min(BATCH, cases - counts["cases"]),
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )(given(projectors(), st.lists(fuzz_inputs(), min_size=1, max_size=12))(case))
        if seed_value is not None:
            runner = seed(seed_value * 1_000_003 + batch)(runner)
        before = counts["cases"]
        runner()
        batch += 1
        if counts["cases"] == before:
            break  # nothing left to generate
    counts["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    counts["seconds"] = round(time.monotonic() - started, 1)
    counts["outcomes"] = dict(counts["outcomes"].most_common())
    counts["errors_by_field"] = dict(counts["errors_by_field"].most_common())
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0: a reproducible run)")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args()
    counts = run(args.cases, args.seed, progress=not args.json)
    if args.json:
        print(json.dumps(counts, indent=2))
    else:
        print(
            f"cases: {counts['cases']}  inputs: {counts['inputs']}"
            f"  ({counts['seconds']}s, seed {args.seed}, peak RSS {counts['peak_rss_mib']} MiB)"
        )
        print("outcomes:", ", ".join(f"{k} {v}" for k, v in counts["outcomes"].items()))
        print("typed errors by field:", ", ".join(f"{k} {v}" for k, v in counts["errors_by_field"].items()))
        print(f"replayed logs: {counts['replayed_logs']} ({counts['replayed_lines']} lines)")
        print(f"crashes: {counts['crashes']}")
        print(f"state changes on refusal: {counts['state_changes']}")
        for example in counts["examples"]:
            print(f"\n{example['kind']}: {example['input']}\n{example['trace']}")
    return 1 if counts["crashes"] or counts["state_changes"] else 0


if __name__ == "__main__":
    sys.exit(main())
