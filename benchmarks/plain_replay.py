"""A plain stdlib replay with the package's semantics: the yardstick for whole-process replay.

`python benchmarks/plain_replay.py LOG.jsonl` reads the log with `json.loads`, keeps only the
fields it reads (`handwritten.from_wire`), projects with the hand-written reducer (b), and prints
what `python -m statemachine replay --json LOG.jsonl` prints for a well-formed log (sessions,
outcome counts, the first 1000 rejections). It validates nothing beyond what it needs, so a
malformed line is only counted. `run.py` times both as child processes and compares their output.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from handwritten import APPLIED, DUPLICATE, IGNORED, HandwrittenProjector, from_wire

MAX_LISTED = 1000


def replay(path: str) -> dict[str, Any]:
    projector = HandwrittenProjector()
    # The same keys as `replay --json`: a provider stream has no forgotten outcomes (no commands).
    counts = {APPLIED: 0, IGNORED: 0, DUPLICATE: 0, "rejected": 0, "forgotten": 0, "malformed": 0}
    rejected: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                ev = from_wire(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                counts["malformed"] += 1
                if len(errors) < MAX_LISTED:
                    errors.append({"line": number, "error": str(exc)})
                continue
            result = projector.apply(ev)
            if result in counts:
                counts[result] += 1
            else:
                counts["rejected"] += 1
                if len(rejected) < MAX_LISTED:
                    rejected.append({"line": number, "eventId": ev[0], "reason": result})
    return {
        "sessions": {tid: rec.wire() for tid, rec in projector.records.items()},
        "outcomes": counts,
        "rejected": rejected,
        "errors": errors,
    }


if __name__ == "__main__":
    json.dump(replay(sys.argv[1]), sys.stdout)
    sys.stdout.write("\n")
