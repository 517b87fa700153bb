"""Exhaustive breadth-first exploration of the real projector over the finite event universe.

Each state is a session plus its remembered turns; each edge applies one event of the universe
to a projector seeded with that state (so its eventId is new there), then redelivers it (it
must be a duplicate that changes nothing). Every invariant of the spec is checked in every state
and on every step. Breadth-first order makes the first counterexample a shortest one.

States are kept up to a renaming of turn ids: the universe holds every event for every turn id,
and guards only compare turn ids for equality, so two states that differ by a permutation of
`TURNS` have the same futures up to that permutation. Each state is stored in its least form
among the permutations, with the renaming that produced it, so a counterexample is still replayed
with the turn ids it really needs.

With `reference="transitions"` the same walk also steps a projector on the `transitions` engine
and requires the same outcome, session and remembered turns on every edge: that is how the
compiled table is proven equal to the machine it was recorded from.
"""

from __future__ import annotations

import time
from collections import deque
from itertools import permutations
from typing import Any, Literal

from ..invariants import state_violations, step_violations
from ..outcome import OutcomeKind
from ..projector import SessionProjector
from ..session import Session
from ..spec import Spec
from .report import CheckResult
from .universe import TURNS, EventTemplate, event_universe

__all__ = ["THREAD", "explore"]

THREAD = "counterexample"
State = tuple[Session, frozenset[str]]
Renaming = dict[str, str]
Parents = dict[State, tuple[State | None, EventTemplate | None, Renaming]]
_RENAMINGS: list[Renaming] = [dict(zip(TURNS, p, strict=True)) for p in permutations(TURNS)]


def _renamed(state: State, renaming: Renaming) -> State:
    session, finished = state
    turn, pending = session.active_turn_id, session.pending_turn
    return (
        session._replace(active_turn_id=renaming.get(turn, turn) if turn is not None else None,
                         pending_turn=renaming.get(pending, pending) if pending is not None else None),
        frozenset(renaming.get(t, t) for t in finished),
    )


def _least(state: State) -> tuple[State, Renaming]:
    """The state's least form under renamings of turn ids, and the renaming that gives it."""
    def key(candidate: State) -> tuple[str, str, tuple[str, ...]]:
        session, finished = candidate
        return (session.active_turn_id or "", "-" if session.pending_turn is None else session.pending_turn,
                tuple(sorted(finished)))
    return min(((_renamed(state, r), r) for r in _RENAMINGS), key=lambda pair: key(pair[0]))


def _path(parents: Parents, last: State | None, then: EventTemplate) -> list[EventTemplate]:
    """The events from a new thread to `last` and then `then`, with the turn ids a real replay
    needs (stored states are renamed forms of the states a replay reaches)."""
    links: list[tuple[EventTemplate, Renaming]] = []
    state: State | None = last
    while state is not None:
        parent, template, renaming = parents[state]
        if template is not None:
            links.append((template, renaming))
        state = parent
    links.reverse()
    links.append((then, {}))
    # real = outer(stored); a link stored renaming(result), so after it outer = outer . renaming^-1.
    path: list[EventTemplate] = []
    outer: Renaming = {}
    for template, renaming in links:
        turn = template.turn_id
        path.append(EventTemplate(template.type, outer.get(turn, turn) if turn is not None else None,
                                  template.created_at, template.payload))
        inverse = {v: k for k, v in renaming.items()}
        outer = {t: outer.get(inverse.get(t, t), inverse.get(t, t)) for t in TURNS}
    return path


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
    parents: Parents = {}
    least: dict[State, tuple[State, Renaming]] = {}  # each result state's least form, computed once
    frontier: deque[State | None] = deque([None])  # None: the thread before its first event
    edges = applied = 0
    taken: set[int] = set()

    def fail(violated: list[str], state: State | None, template: EventTemplate) -> CheckResult:
        path = _path(parents, state, template)
        what = path[-1].label()
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
                return fail(sorted(set(violated)), state, template)
            if outcome.kind in (OutcomeKind.APPLIED, OutcomeKind.FORGOTTEN):
                applied += 1
                if outcome.transition is not None:
                    taken.add(outcome.transition)
            found = least.get((outcome.after, finished))
            if found is None:
                found = least[(outcome.after, finished)] = _least((outcome.after, finished))
            nxt, renaming = found
            if nxt not in parents:
                if len(parents) >= max_states:
                    return CheckResult(name, False, time.perf_counter() - started,
                                       {"states": len(parents), "edges": edges},
                                       f"state bound {max_states} reached before a fixpoint")
                parents[nxt] = (state, template, renaming)
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
