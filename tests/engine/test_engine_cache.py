"""Memory and cost: engines are cached by spec content and bounded; eviction is O(1) whatever the
cap; and the compiled engine keeps 0.0 and -0.0 apart, as the reference engine does."""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path

from statemachine import SessionProjector
from statemachine.core.record import BoundedSet
from statemachine.spec.load import load_spec, parse_spec

SPEC_FILE = Path(__file__).resolve().parents[2] / "specs" / "session_lifecycle.yaml"


def _retained(build: int, make: object) -> list[int]:
    """Bytes traced after each of `build` calls of `make` (whose results are dropped at once)."""
    assert callable(make)
    sizes = []
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(build):
            make(i)
            gc.collect()
            sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    return sizes


def test_a_projector_per_load_spec_of_one_file_does_not_grow_memory(tmp_path: Path) -> None:
    path = tmp_path / "lifecycle.yaml"
    path.write_text(SPEC_FILE.read_text())
    sizes = _retained(12, lambda _: SessionProjector(load_spec(path)).apply(
        {"eventId": "e", "type": "session.started", "provider": "p", "threadId": "t",
         "createdAt": "2026-11-20T10:00:00Z"}))
    # the first build compiles; every later one reuses it (one compiled engine is ~0.4 MiB)
    assert sizes[-1] - sizes[3] < 64 * 1024, sizes


def test_many_distinct_specs_keep_a_bounded_number_of_engines(tmp_path: Path) -> None:
    text = SPEC_FILE.read_text()
    marker = "description: A session not seen before; nothing has happened yet."
    assert marker in text

    def distinct(i: int) -> None:
        # a different description is different content: a new digest, a new compile
        SessionProjector(parse_spec(text.replace(marker, f"description: A session not seen before ({i}).")))

    sizes = _retained(12, distinct)
    # the cache holds at most 8 engines: past that, each new one replaces the oldest
    assert sizes[-1] - sizes[8] < 256 * 1024, sizes


def test_eviction_cost_does_not_grow_with_the_cap() -> None:
    def per_add(cap: int, adds: int = 50_000) -> float:
        memory = BoundedSet(cap, (f"old{i}" for i in range(cap)))
        keys = [f"new{i}" for i in range(adds)]
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for key in keys:
                memory.add(key)
            best = min(best, time.perf_counter() - started)
            keys = [k + "x" for k in keys]
        return best / adds

    small, large = per_add(1_000), per_add(200_000)
    # O(1): about the same cost per eviction (a large dict misses the CPU caches more); the old
    # scan from the front of the dict cost ~70 us per event at this cap, hundreds of times more
    assert large < 20 * small, (small, large)


def test_0_0_and_minus_0_0_stay_two_constants_in_the_compiled_engine() -> None:
    text = SPEC_FILE.read_text()
    text = text.replace("default: Turn failed", "default: -0.0")
    text = text.replace("default: Provider session error", "default: 0.0")
    spec = parse_spec(text)
    results = {}
    for engine in ("compiled", "transitions"):
        p = SessionProjector(spec, engine=engine)  # type: ignore[arg-type]
        base = {"provider": "codex", "createdAt": "2026-11-20T10:00:00Z"}
        p.apply({**base, "eventId": "1", "type": "session.state.changed", "threadId": "a",
                 "payload": {"state": "error"}})
        p.apply({**base, "eventId": "2", "type": "turn.started", "threadId": "b", "turnId": "T"})
        p.apply({**base, "eventId": "3", "type": "turn.completed", "threadId": "b", "turnId": "T",
                 "payload": {"state": "failed"}})
        results[engine] = (p["a"].last_error, p["b"].last_error)
    assert results["compiled"] == results["transitions"] == ("0.0", "-0.0")
