"""Inductive check: invariants are preserved by every event from every state that satisfies them.

The explorer covers what is reachable from `idle` within the event universe. This check drops
reachability: it enumerates every abstract state (status x active turn x finished turns x
lastError x updatedAt) that satisfies the state invariants, reachable or not, applies every event
of the universe to it through the real projector, and checks the invariants again. If that
holds, no history of any length can break them: each step preserves them, and the initial state
satisfies them (checked too).
"""

from __future__ import annotations

import time
from itertools import chain, combinations, product

from ..invariants import state_violations, step_violations
from ..projector import SessionProjector
from ..session import Session
from ..spec import Spec
from .explore import THREAD, counterexample
from .report import CheckResult
from .universe import PROVIDER, TIMES, TURNS, event_universe

__all__ = ["abstract_states", "induction"]

ERRORS = (None, "earlier error")


def abstract_states(spec: Spec) -> list[tuple[Session, frozenset[str]]]:
    """Every abstract state that satisfies the spec's state invariants."""
    subsets = list(chain.from_iterable(combinations(TURNS, n) for n in range(len(TURNS) + 1)))
    states = []
    for status, turn, finished, error, updated in product(
        spec.status_names, (None, *TURNS), subsets, ERRORS, (None, *TIMES)
    ):
        session = Session(THREAD, status, PROVIDER, turn, error, updated)
        if not state_violations(spec, session, finished):
            states.append((session, frozenset(finished)))
    return states


def induction(spec: Spec) -> CheckResult:
    started = time.perf_counter()
    initial = Session(THREAD, spec.initial, PROVIDER)
    base = state_violations(spec, initial, ())
    if base:
        return CheckResult("induction", False, time.perf_counter() - started, {}, "the initial state breaks "
                           + ", ".join(base), tuple(base), [])
    universe = event_universe(spec)
    states = abstract_states(spec)
    projector = SessionProjector(spec)
    # Parsed once: each step seeds a fresh thread record, so one eventId serves every step.
    events = [projector.parse(t.wire("e", THREAD)) for t in universe]
    steps = 0
    for session, finished in states:
        ordered = sorted(finished)
        for template, event in zip(universe, events, strict=True):
            steps += 1
            projector.seed(session, finished_turns=ordered)
            outcome = projector.apply(event)
            after_finished = projector.finished_turns(THREAD)
            violated = step_violations(spec, outcome) + state_violations(spec, outcome.after, after_finished)
            if violated:
                return CheckResult(
                    "induction",
                    False,
                    time.perf_counter() - started,
                    {"states": len(states), "steps": steps},
                    f"{', '.join(violated)} broken by {template.label()} from {session.status}"
                    f"/turn={session.active_turn_id}/finished={sorted(finished)}",
                    tuple(violated),
                    # The start state may be unreachable: this is one step, not a replayable log.
                    counterexample([template]),
                )
    return CheckResult(
        "induction",
        True,
        time.perf_counter() - started,
        {"states": len(states), "events": len(universe), "steps": steps},
        f"every invariant-satisfying state ({len(states)}) stays satisfying under every event",
    )
