"""Inductive check: every event, from every state that satisfies the state invariants and state
requirements, keeps them satisfied and keeps every contract.

The explorer covers what is reachable from `idle` within the event universe. This check drops
reachability: it enumerates every abstract state (status x active turn x finished turns x
lastError x updatedAt x pending turn x awaiting, one per class of states equal up to a renaming
of turn ids) that satisfies the spec's state invariants and the requirements' state invariants,
reachable or not, applies every event of the universe to it through the real projector, and
checks the invariants, the state requirements and the contracts. If that holds, no history of
any length can break them: each step preserves them, and the initial state satisfies them
(checked too).
"""

from __future__ import annotations

import time
from itertools import chain, combinations, product
from typing import Any

from statemachine.core.session import PENDING_UNKNOWN, Session
from statemachine.engine.machine import vocabulary_of
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.invariants import state_violations, step_violations
from statemachine.spec.model import Spec
from statemachine.spec.requirements import Requirements, StepContext
from statemachine.verify.explore import THREAD, counterexample, least_form
from statemachine.verify.report import CheckResult
from statemachine.verify.universe import PROVIDER, TIMES, TURNS, event_universe

__all__ = ["abstract_states", "induction"]

ERRORS = (None, "earlier error")


def _awaiting_values(spec: Spec) -> tuple[str | None, ...]:
    """What `awaiting` can hold: null, or a value some effect use in the spec writes to it (the
    parameters of the effects that write slot `aw`)."""
    vocabulary = vocabulary_of(spec)
    refs = [e for t in spec.transitions for e in t.effects]
    refs += [e for s in spec.statuses for e in s.on_enter] + list(spec.on_applied)
    values = {str(v) for e in refs if "aw" in vocabulary.effects[e.name].writes for _, v in e.params}
    return (None, *sorted(values))


def abstract_states(spec: Spec, requirements: Requirements | None = None) -> list[tuple[Session, frozenset[str]]]:
    """Every abstract state that satisfies the spec's state invariants and the state requirements,
    one per class of states that differ only by a renaming of turn ids (every event of the
    universe exists for every turn id and guards compare ids only for equality, so a renamed
    state has the renamed steps)."""
    subsets = list(chain.from_iterable(combinations(TURNS, n) for n in range(len(TURNS) + 1)))
    states: dict[tuple[Session, frozenset[str]], None] = {}
    for status, turn, finished, error, updated, pending, awaiting in product(
        spec.status_names, (None, *TURNS), subsets, ERRORS, (None, *TIMES), (None, PENDING_UNKNOWN, *TURNS),
        _awaiting_values(spec),
    ):
        session = Session(THREAD, status, PROVIDER, turn, error, updated, None, None, pending, awaiting)
        if state_violations(spec, session, finished):
            continue
        if requirements is not None and requirements.state_violations(session, finished):
            continue
        states.setdefault(least_form((session, frozenset(finished)))[0])
    return list(states)


def _where(session: Session, finished: frozenset[str]) -> str:
    return (f"from {session.status}/turn={session.active_turn_id}/lastError={session.last_error}"
            f"/updatedAt={session.updated_at}/finished={sorted(finished)}/pendingTurn={session.pending_turn!r}"
            f"/awaiting={session.awaiting}")


def induction(spec: Spec, requirements: Requirements | None = None) -> CheckResult:
    started = time.perf_counter()
    # Each step is a first delivery: contracts about redeliveries are the explorer's.
    checked = tuple(
        r.name for r in requirements.items if r.form != "temporal" and r.applies_to != "redelivered"
    ) if requirements else ()
    initial = Session(THREAD, spec.initial, PROVIDER)
    base = state_violations(spec, initial, ())
    if requirements is not None:
        base += requirements.state_violations(initial, ())
    if base:
        return CheckResult("induction", False, time.perf_counter() - started, {},
                           "the initial state breaks " + ", ".join(base), tuple(base), [],
                           {n: [] for n in base}, checked=checked)
    universe = event_universe(spec, requirements)
    states = abstract_states(spec, requirements)
    projector = SessionProjector(spec)
    # Parsed once: each step seeds a fresh thread record, so one eventId serves every step.
    events = [projector.parse(t.wire("e", THREAD)) for t in universe]
    checkers = [requirements.step_checker(e) for e in events] if requirements is not None else []
    steps = 0
    found: dict[str, tuple[list[dict[str, Any]], str]] = {}
    judged: dict[tuple[Session, frozenset[str]], list[str]] = {}
    for session, finished in states:
        ordered = sorted(finished)
        for k, (template, event) in enumerate(zip(universe, events, strict=True)):
            steps += 1
            projector.seed(session, finished_turns=ordered)
            outcome = projector.apply(event)
            after_finished = frozenset(projector.finished_turns(THREAD))
            violated = step_violations(spec, outcome)
            if requirements is not None:
                violated += checkers[k](StepContext(outcome, finished, after_finished, False))
            key = (outcome.after, after_finished)
            if key not in judged:  # many steps end in the same state: judge each state once
                judged[key] = state_violations(spec, *key) + (
                    requirements.state_violations(*key) if requirements is not None else [])
            violated += judged[key]
            for name in violated:
                if name not in found:
                    # The start state may be unreachable: this is one step, not a replayable log.
                    found[name] = (counterexample([template]), f"{template.label()} {_where(session, finished)}")
    covered = {"states": len(states), "events": len(universe), "steps": steps}
    if found:
        first = min(found)
        return CheckResult(
            "induction", False, time.perf_counter() - started, covered,
            f"{len(found)} violated; {first} broken by {found[first][1]}",
            tuple(sorted(found)), found[first][0], {n: cx for n, (cx, _) in sorted(found.items())},
            checked=checked,
        )
    return CheckResult(
        "induction", True, time.perf_counter() - started, covered,
        f"every state ({len(states)}) satisfying the state invariants and requirements stays so under every "
        "event, and every contract holds on each step",
        checked=checked,
    )
