"""Exhaustive breadth-first exploration of the real projector over the finite event universe.

Each state is a session plus its remembered turns; each edge applies one event of the universe
to a projector seeded with that state (so its eventId is new there), then redelivers it (it
must be a duplicate that changes nothing). Every invariant of the spec is checked in every state
and on every step. Breadth-first order makes the first counterexample a shortest one.

With `reference="transitions"` the same walk also steps a projector on the `transitions` engine
and requires the same outcome, session and remembered turns on every edge: that is how the
compiled table is proven equal to the machine it was recorded from.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Literal

from ..invariants import state_violations, step_violations
from ..outcome import OutcomeKind
from ..projector import SessionProjector
from ..session import Session
from ..spec import Spec
from .report import CheckResult
from .universe import EventTemplate, event_universe

__all__ = ["THREAD", "explore"]

THREAD = "counterexample"
State = tuple[Session, frozenset[str]]


def _path(parents: dict[State, tuple[State | None, EventTemplate | None]], last: State) -> list[EventTemplate]:
    path: list[EventTemplate] = []
    state: State | None = last
    while state is not None:
        parent, template = parents[state]
        if template is not None:
            path.append(template)
        state = parent
    return path[::-1]


def counterexample(templates: list[EventTemplate]) -> list[dict[str, Any]]:
    return [t.wire(f"cx-{i}", THREAD) for i, t in enumerate(templates, 1)]


def explore(
    spec: Spec,
    *,
    max_states: int = 1_000_000,
    engine: Literal["compiled", "transitions"] = "compiled",
    reference: Literal["compiled", "transitions"] | None = None,
    name: str = "explore",
    check_invariants: bool = True,
) -> CheckResult:
    started = time.perf_counter()
    universe = event_universe(spec)
    projector = SessionProjector(spec, engine=engine)
    # Parsed once: a freshly seeded projector has seen no eventId, so one id serves every edge.
    events = [projector.parse(t.wire("e", THREAD)) for t in universe]
    other = SessionProjector(spec, engine=reference) if reference is not None else None
    parents: dict[State, tuple[State | None, EventTemplate | None]] = {}
    frontier: deque[State | None] = deque([None])  # None: the thread before its first event
    edges = applied = 0
    taken: set[int] = set()

    def fail(violated: list[str], path: list[EventTemplate], what: str) -> CheckResult:
        return CheckResult(
            name,
            False,
            time.perf_counter() - started,
            {"states": len(parents), "edges": edges, "events": len(universe)},
            f"{', '.join(violated)} violated after {len(path)} event(s): {what}",
            tuple(violated),
            counterexample(path),
        )

    while frontier:
        state = frontier.popleft()
        prefix = _path(parents, state) if state is not None else []
        finished_before = sorted(state[1]) if state is not None else []
        for template, event in zip(universe, events, strict=True):
            if state is None:
                projector = SessionProjector(spec, engine=engine)  # the creation path of a new thread
            else:
                projector.seed(state[0], finished_turns=finished_before)
            outcome = projector.apply(event)
            edges += 1
            finished = frozenset(projector.finished_turns(THREAD))
            violated = []
            if check_invariants:
                violated += step_violations(spec, outcome) + state_violations(spec, outcome.after, finished)
                redelivery = projector.apply(event)
                # A forgotten thread forgot the eventId too: the redelivery forgets a new thread.
                if redelivery.kind is not (OutcomeKind.FORGOTTEN if outcome.kind is OutcomeKind.FORGOTTEN
                                           else OutcomeKind.DUPLICATE):
                    violated.append("redelivery_is_duplicate")
                violated += step_violations(spec, redelivery)
            if other is not None:
                if state is None:
                    other = SessionProjector(spec, engine=other.engine)
                else:
                    other.seed(state[0], finished_turns=finished_before)
                theirs = other.apply(event)
                if (theirs.kind, theirs.reason, theirs.after, theirs.transition) != (
                    outcome.kind, outcome.reason, outcome.after, outcome.transition
                ) or frozenset(other.finished_turns(THREAD)) != finished:
                    violated.append(f"{engine}_equals_{reference}")
            if violated:
                return fail(sorted(set(violated)), [*prefix, template], template.label())
            if outcome.kind in (OutcomeKind.APPLIED, OutcomeKind.FORGOTTEN):
                applied += 1
                if outcome.transition is not None:
                    taken.add(outcome.transition)
            nxt: State = (outcome.after, finished)
            if nxt not in parents:
                if len(parents) >= max_states:
                    return CheckResult(name, False, time.perf_counter() - started,
                                       {"states": len(parents), "edges": edges},
                                       f"state bound {max_states} reached before a fixpoint")
                parents[nxt] = (state, template)
                frontier.append(nxt)

    untaken = [t.index for t in spec.transitions if t.index not in taken]
    detail = f"fixpoint: {len(parents)} reachable states, every invariant holds in each"
    if other is not None:
        detail = f"{engine} and {reference} engines agree on {edges} edges from {len(parents)} reachable states"
    if untaken:
        detail += f"; spec transitions never taken: {untaken}"
    return CheckResult(
        name,
        True,
        time.perf_counter() - started,
        {
            "states": len(parents),
            "edges": edges,
            "applied_edges": applied,
            "events": len(universe),
            "spec_transitions_taken": len(taken),
            "spec_transitions": len(spec.transitions),
        },
        detail,
    )
