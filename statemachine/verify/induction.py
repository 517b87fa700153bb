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

Each dimension varies only when a guard, an effect or a requirement reads that field
(`statemachine.verify.universe.session_fields_read`); one nothing reads keeps its initial value.
The provider varies through the events: every state holds the first provider, and the universe
sends each event from both (the session's own and another one), which is every case up to a
renaming of providers. providerInstanceId and runtimeMode, which no event writes (explore only
ever sees them null), are set in every abstract state, so that a step that drops them shows.
"""

from __future__ import annotations

import time
from itertools import chain, combinations, permutations, product
from typing import Any

from statemachine.core.outcome import OutcomeKind
from statemachine.core.session import PENDING_UNKNOWN, Session
from statemachine.engine.machine import vocabulary_of
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.invariants import state_violations, step_violations
from statemachine.spec.model import Spec
from statemachine.spec.requirements import Requirements, StepContext
from statemachine.verify.explore import THREAD, SeenView, counterexample, least_form
from statemachine.verify.report import CheckResult
from statemachine.verify.universe import (
    CARRIED,
    CARRIED_VALUE,
    PROVIDER,
    TIMES,
    TURNS,
    event_universe,
    field_values,
    opened_requests,
    session_fields_read,
    unvaried,
)

__all__ = ["abstract_states", "covers", "induction"]

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
    state has the renamed steps). A session field that nothing reads keeps its initial value."""
    read = session_fields_read(spec, requirements)

    def values(name: str, varied: tuple[Any, ...]) -> tuple[Any, ...]:
        return varied if name in read else (None,)

    subsets = list(chain.from_iterable(combinations(TURNS, n) for n in range(len(TURNS) + 1)))
    carried: dict[str, Any] = {f: CARRIED_VALUE for f in CARRIED if f in read}
    states: dict[tuple[Session, frozenset[str]], None] = {}
    # Open requests: every list the universe's requests can make (each id asked once, by its kind's
    # event, in either order); `awaiting` is then what the newest asks, as the effects keep it.
    if "open_requests" in read:
        asked = opened_requests(spec)
        lists: tuple[tuple[Any, ...], ...] = tuple(
            p for n in range(len(asked) + 1) for p in permutations(asked, n))
        requests = tuple((r[-1][1] if r else None, r) for r in lists)
    else:
        requests = tuple((aw, ()) for aw in values("awaiting", _awaiting_values(spec)))
    for status, turn, finished, error, updated, pending, (awaiting, open_requests) in product(
        spec.status_names, values("active_turn_id", (None, *TURNS)), subsets, values("last_error", ERRORS),
        values("updated_at", (None, *TIMES)), values("pending_turn", (None, PENDING_UNKNOWN, *TURNS)), requests,
    ):
        session = Session(THREAD, status, PROVIDER, turn, error, updated, None, None, pending, awaiting,
                          open_requests)._replace(**carried)
        if state_violations(spec, session, finished):
            continue
        if requirements is not None and requirements.state_violations(session, finished):
            continue
        states.setdefault(least_form((session, frozenset(finished)))[0])
    return list(states)


def _where(session: Session, finished: frozenset[str]) -> str:
    return (f"from {session.status}/provider={session.provider_name}/turn={session.active_turn_id}"
            f"/lastError={session.last_error}"
            f"/updatedAt={session.updated_at}/finished={sorted(finished)}/pendingTurn={session.pending_turn!r}"
            f"/awaiting={session.awaiting}/openRequests={list(session.open_requests)}")


def covers(requirements: Requirements) -> tuple[str, ...]:
    """The requirements the induction evaluates. Each step is a first delivery to a thread that
    exists: contracts about redeliveries are the explorer's, and so are those about the delivery
    that creates a thread (the initial state is checked too)."""
    return tuple(r.name for r in requirements.items if r.form != "temporal" and r.applies_to in ("fresh", "every"))


def induction(spec: Spec, requirements: Requirements | None = None) -> CheckResult:
    started = time.perf_counter()
    checked = covers(requirements) if requirements else ()
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
    seen = SeenView(projector)
    # Parsed once, each with its own eventId: from one state the events follow one another on one
    # seeded thread, seeded again only after a step that changed it.
    events = [projector.parse(t.wire(f"e{k}", THREAD)) for k, t in enumerate(universe)]
    checkers = [requirements.step_checker(e) for e in events] if requirements is not None else []
    changed = (OutcomeKind.APPLIED, OutcomeKind.FORGOTTEN)
    steps = 0
    found: dict[str, tuple[list[dict[str, Any]], str]] = {}
    judged: dict[tuple[Session, frozenset[str]], list[str]] = {}
    for session, finished in states:
        ordered = sorted(finished)
        ordered_t = tuple(ordered)
        at_state = False
        for k, (template, event) in enumerate(zip(universe, events, strict=True)):
            steps += 1
            if not at_state:
                projector.seed(session, finished_turns=ordered)
            outcome = projector.apply(event)
            finished_turns = projector.finished_turns(THREAD)
            at_state = (outcome.kind not in changed and projector.get(THREAD) is session
                        and finished_turns == ordered_t)
            if at_state:
                continue_key: tuple[Session, frozenset[str]] = (session, finished)
            else:
                continue_key = (outcome.after, frozenset(finished_turns))
            violated = step_violations(spec, outcome)
            if requirements is not None:
                violated += checkers[k](StepContext(outcome, finished, continue_key[1], False, seen))
            if continue_key not in judged:  # many steps end in the same state: judge each state once
                judged[continue_key] = state_violations(spec, *continue_key) + (
                    requirements.state_violations(*continue_key) if requirements is not None else [])
            violated += judged[continue_key]
            for name in violated:
                if name not in found:
                    # The start state may be unreachable: this is one step, not a replayable log.
                    found[name] = (counterexample([template]), f"{template.label()} {_where(session, finished)}")
    values = field_values(spec, requirements, (s for s, _ in judged), universe)
    covered = {"states": len(states), "events": len(universe), "steps": steps, "fields_read": len(values),
               "fields_varied": sum(len(v) >= 2 for v in values.values())}
    if found:
        first = min(found)
        return CheckResult(
            "induction", False, time.perf_counter() - started, covered,
            f"{len(found)} violated; {first} broken by {found[first][1]}",
            tuple(sorted(found)), found[first][0], {n: cx for n, (cx, _) in sorted(found.items())},
            checked=checked,
        )
    single = unvaried(values)
    return CheckResult(
        "induction", True, time.perf_counter() - started, covered,
        f"every state ({len(states)}) satisfying the state invariants and requirements stays so under every "
        "event, and every contract holds on each step"
        + (f"; read but never varied here: {', '.join(single)}" if single else ""),
        checked=checked,
    )
