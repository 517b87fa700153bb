"""Exhaustive breadth-first exploration of the real projector over the finite event universe.

Each state is a session plus its remembered turns; each edge applies one event of the universe
to a projector seeded with that state (so its eventId is new there), then redelivers it (it
must be a duplicate that changes nothing; once per distinct state it leads to, since the
redelivery depends on nothing else). In every state and on every step the check evaluates
the spec's own invariants and every requirement of the requirements file (state requirements on
each state, contracts on each delivery). Breadth-first order makes the first counterexample of
each violated name a shortest one; the walk goes on to the fixpoint so that every violated
requirement gets its own.

States are kept up to a renaming of turn ids and of providers: the universe holds every event
for every turn id and both providers, and the lifecycle only compares turn ids, and providers, for
equality (a provider is only ever copied into providerName), so two states that differ by a
permutation of `TURNS` or of `PROVIDERS` have the same futures up to that permutation. Each state
is stored in its least form (its providerName the first provider, its turn ids the least
permutation), with the renaming that produced it, so a counterexample is still replayed with the
turn ids and providers it really needs.

Every event of the universe has its own eventId, so from one state the events follow one another
on one seeded projector: a step that changed nothing (ignored, rejected, duplicate) leaves the
thread as seeded but for the eventIds it remembers, none of which the next event reuses; only a
step that changed the thread is followed by seeding the state again.

With `reference="transitions"` the same walk also steps a projector on the `transitions` engine
and requires the same outcome, session and remembered turns on every edge: that is how the
compiled table is proven equal to the machine it was recorded from. On every edge an engine steps,
it also runs the batch path's lean step (`CompiledMachine.batch_dispatch`) from the same state and
requires `apply`'s outcome kind, rejection reason, session and remembered turns
(`batch_equals_apply`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import replace
from itertools import permutations
from typing import Any, Literal

from statemachine.core.clock import CREATED_IN_FUTURE
from statemachine.core.event import Event
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.core.record import ThreadRecord
from statemachine.core.session import Session
from statemachine.engine.compiled import BatchStepFn
from statemachine.engine.registry import compiled_for
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.invariants import state_violations, step_violations
from statemachine.spec.model import Spec
from statemachine.spec.requirements import Requirements, StepContext
from statemachine.verify.report import CheckResult
from statemachine.verify.universe import (
    PROVIDERS,
    TURNS,
    EventTemplate,
    event_universe,
    field_values,
    unvaried,
)

__all__ = ["RENAMINGS", "THREAD", "SeenView", "counterexample", "covers", "explore", "explore_and_agree", "least_form",
           "real_template", "replay_path"]

THREAD = "counterexample"
State = tuple[Session, frozenset[str]]
Renaming = dict[str, str]
Parents = dict[State | None, tuple[State | None, EventTemplate | None, Renaming]]
# What a renaming maps: turn ids and providers (disjoint names).
_SYMMETRIC = (*TURNS, *PROVIDERS)
_TURN_RENAMINGS: list[Renaming] = [dict(zip(TURNS, p, strict=True)) for p in permutations(TURNS)]
_PROVIDER_SWAP: Renaming = dict(zip(PROVIDERS, reversed(PROVIDERS), strict=True))
# Every renaming `least_form` may give, each once: the turn permutations, with and without the swap.
RENAMINGS: tuple[Renaming, ...] = (*_TURN_RENAMINGS, *({**t, **_PROVIDER_SWAP} for t in _TURN_RENAMINGS))


def _renamed(state: State, renaming: Renaming) -> State:
    session, finished = state
    turn, pending, provider = session.active_turn_id, session.pending_turn, session.provider_name
    return (
        session._replace(active_turn_id=renaming.get(turn, turn) if turn is not None else None,
                         pending_turn=renaming.get(pending, pending) if pending is not None else None,
                         provider_name=renaming.get(provider, provider) if provider is not None else None),
        frozenset(renaming.get(t, t) for t in finished),
    )


def least_form(state: State) -> tuple[State, Renaming]:
    """The state's least form under renamings of turn ids and providers (its providerName the
    first provider), and the renaming that gives it."""
    def key(candidate: State) -> tuple[str, str, tuple[str, ...]]:
        session, finished = candidate
        return (session.active_turn_id or "", "-" if session.pending_turn is None else session.pending_turn,
                tuple(sorted(finished)))
    provider = state[0].provider_name
    swap = _PROVIDER_SWAP if provider in PROVIDERS and provider != PROVIDERS[0] else {}
    return min(((_renamed(state, r), r) for r in ({**t, **swap} for t in _TURN_RENAMINGS)),
               key=lambda pair: key(pair[0]))


def covers(requirements: Requirements) -> tuple[str, ...]:
    """The requirements the walk evaluates: every state requirement and contract (spin has the temporal ones)."""
    return tuple(r.name for r in requirements.items if r.form != "temporal")


class SeenView:
    """The eventIds a projector's thread remembers, as the contracts that read `after.seen` see
    them; it reads the projector when asked, so one view serves every step."""

    __slots__ = ("projector", "thread")

    def __init__(self, projector: SessionProjector, thread: str = THREAD) -> None:
        self.projector = projector
        self.thread = thread

    def __contains__(self, event_id: object) -> bool:
        return isinstance(event_id, str) and self.projector.has_seen(self.thread, event_id)

    def __len__(self) -> int:
        return self.projector.seen_count(self.thread)


def replay_path(parents: Parents, last: State | None) -> tuple[list[EventTemplate], Renaming]:
    """The events from a new thread to `last`, with the turn ids a real replay needs (stored
    states are renamed forms of the states a replay reaches), and the renaming that turns an
    event from the stored `last` into the one the replay sends next (see `real_template`)."""
    links: list[tuple[EventTemplate, Renaming]] = []
    state: State | None = last
    while state is not None:
        parent, template, renaming = parents[state]
        if template is not None:
            links.append((template, renaming))
        state = parent
    links.reverse()
    # real = outer(stored); a link stored renaming(result), so after it outer = outer . renaming^-1.
    path: list[EventTemplate] = []
    outer: Renaming = {}
    for template, renaming in links:
        path.append(real_template(template, outer))
        inverse = {v: k for k, v in renaming.items()}
        outer = {t: outer.get(inverse.get(t, t), inverse.get(t, t)) for t in _SYMMETRIC}
    return path, outer


def real_template(template: EventTemplate, outer: Renaming) -> EventTemplate:
    turn, provider = template.turn_id, template.provider
    real_turn = outer.get(turn, turn) if turn is not None else None
    real_provider = outer.get(provider, provider)
    if real_turn == turn and real_provider == provider:
        return template
    return EventTemplate(template.type, real_turn, template.created_at, template.payload, real_provider)


_NOT_STEPPED = (OutcomeKind.DUPLICATE, OutcomeKind.IGNORED)


class _BatchCheck:
    """The batch path's lean steps (`statemachine.runtime.pipeline`) on the walk's edges: from the state an
    edge leaves, the step must give `apply`'s outcome kind, rejection reason, session and
    remembered turns. One record per state, put back after each step (a step changes it only
    through `ThreadRecord.commit` and its finished turns)."""

    def __init__(
        self, projector: SessionProjector, lean: Mapping[str, Mapping[str, BatchStepFn]] | None = None
    ) -> None:
        """`lean` replaces the generated steps (tests use this to show the check failing)."""
        spec = projector.spec
        self.projector = projector
        self.lean = compiled_for(spec).batch_dispatch if lean is None else lean
        self.forgetting = frozenset(t.name for e in spec.events if e.forgets_thread for t in e.trigger_values)
        self.steps = 0
        self._record: ThreadRecord | None = None  # the record in the state below, ready for a step
        self._state: State | None = None

    def differs(self, state: State | None, finished: tuple[str, ...], event: Event, outcome: Outcome,
                finished_after: tuple[str, ...]) -> bool:
        if event.trigger is None or outcome.kind in _NOT_STEPPED or outcome.reason == CREATED_IN_FUTURE:
            return False  # no step: de-duplication, the type, or the clock bound decided
        self.steps += 1
        record = self._record
        if state is None or record is None or state is not self._state:
            before = Session(THREAD, self.projector.spec.initial, event.provider) if state is None else state[0]
            record = ThreadRecord(before, self.projector.max_event_ids, self.projector.max_finished_turns)
            for turn in finished:
                record.remember_turn(turn)
            self._record, self._state = record, state
        before, updated_dt = record.session, record.updated_dt
        reason = self.lean[before.status][event.trigger](record, event)
        if reason is not None:
            return (outcome.kind, outcome.reason, outcome.after) != (OutcomeKind.REJECTED, reason, before)
        after = record.session
        record.commit(before, updated_dt)  # put back for the next event from this state
        # Turns are only ever added: an unchanged count (below the cap) is an unchanged memory.
        finished_now = finished
        if len(record.finished) != len(finished) or len(finished) >= self.projector.max_finished_turns:
            finished_now = tuple(record.finished)
            self._record = None  # its finished turns changed: a fresh one next time
        if event.trigger in self.forgetting:  # the batch path drops the thread, as apply does
            return outcome.kind is not OutcomeKind.FORGOTTEN
        return outcome.kind is not OutcomeKind.APPLIED or after != outcome.after or finished_now != finished_after


def counterexample(templates: list[EventTemplate]) -> list[dict[str, Any]]:
    return [t.wire(f"cx-{i}", THREAD) for i, t in enumerate(templates, 1)]


def explore(
    spec: Spec,
    requirements: Requirements | None = None,
    *,
    max_states: int = 1_000_000,
    engine: Literal["compiled", "transitions"] = "compiled",
    reference: Literal["compiled", "transitions"] | None = None,
    name: str = "explore",
    check_invariants: bool = True,
) -> CheckResult:
    """One walk; with `reference`, a disagreement between the engines fails it (and ends it)."""
    return _walk(spec, requirements, max_states, engine, reference, name, check_invariants, split=False)[0]


def explore_and_agree(spec: Spec, requirements: Requirements | None = None) -> tuple[CheckResult, CheckResult]:
    """`explore` and the engine agreement (compiled vs transitions) from one walk, as two results.

    The walk is the expensive part of both; sharing it keeps `verify` within its CPU budget. The
    agreement's time is what the `transitions` engine took; the explorer's, the rest.
    """
    explored, agreed = _walk(spec, requirements, 1_000_000, "compiled", "transitions", "explore", True, split=True)
    assert agreed is not None
    return explored, agreed


def _walk(
    spec: Spec,
    requirements: Requirements | None,
    max_states: int,
    engine: Literal["compiled", "transitions"],
    reference: Literal["compiled", "transitions"] | None,
    name: str,
    check_invariants: bool,
    *,
    split: bool,
) -> tuple[CheckResult, CheckResult | None]:
    started = time.perf_counter()
    reference_seconds = 0.0
    disagreement: tuple[list[EventTemplate], str, str] | None = None
    universe = event_universe(spec, requirements)
    projector = SessionProjector(spec, engine=engine)
    seeded = projector
    seen = SeenView(seeded)
    # Parsed once, by the projector that applies them (a projector trusts only Events its own
    # parser returned). Each has its own eventId, new to a freshly seeded thread.
    wires = [t.wire(f"e{k}", THREAD) for k, t in enumerate(universe)]
    events = [seeded.parse(w) for w in wires]
    reqs = requirements if check_invariants else None
    fresh = [reqs.step_checker(e, False) for e in events] if reqs is not None else []
    first = [reqs.step_checker(e, False, first=True) for e in events] if reqs is not None else []
    again = [reqs.step_checker(e, True) for e in events] if reqs is not None else []
    other_seeded = SessionProjector(spec, engine=reference) if reference is not None else None
    other_events = [other_seeded.parse(w) for w in wires] if other_seeded is not None else []
    # The batch path's lean steps, checked on the same edges as the engines.
    batch = _BatchCheck(projector) if other_seeded is not None else None
    parents: Parents = {}
    least: dict[State, tuple[State, Renaming]] = {}  # each result state's least form, computed once
    frontier: deque[State | None] = deque([None])  # None: the thread before its first event
    edges = applied = 0
    taken: set[int] = set()
    # Violated name -> (its shortest path, what happened on the last step)
    found: dict[str, tuple[list[EventTemplate], str]] = {}
    checked = covers(reqs) if reqs is not None else ()
    redelivered: set[tuple[Session, frozenset[str], int]] = set()
    changed = (OutcomeKind.APPLIED, OutcomeKind.FORGOTTEN)

    def record(names: list[str], path: list[EventTemplate], what: str) -> None:
        for n in names:
            if n not in found:
                found[n] = (path, what)

    def result(ok: bool, detail: str) -> CheckResult:
        covered = {"states": len(parents), "edges": edges, "applied_edges": applied, "events": len(universe),
                   "spec_transitions_taken": len(taken), "spec_transitions": len(spec.transitions),
                   **_coverage(spec, requirements, (s for s, _ in least), universe)}
        if not found:
            return CheckResult(name, ok, time.perf_counter() - started, covered, detail, checked=checked)
        order = sorted(found, key=lambda n: (len(found[n][0]), n))
        first_name = order[0]
        path, what = found[first_name]
        return CheckResult(
            name, False, time.perf_counter() - started, covered,
            f"{len(found)} violated; first: {first_name} after {len(path)} event(s): {what}",
            tuple(order), counterexample(path),
            {n: counterexample(found[n][0]) for n in order},
            checked=checked,
        )

    if reqs is not None:
        record(reqs.state_violations(Session(THREAD, spec.initial), ()), [], "the initial state")
    while frontier:
        state = frontier.popleft()
        prefix, outer = replay_path(parents, state)
        finished_before = frozenset() if state is None else state[1]
        ordered = sorted(finished_before)
        ordered_t = tuple(ordered)
        at_state = other_at_state = False  # does the seeded thread hold `state` as seeded (ids aside)?
        for k, (template, event) in enumerate(zip(universe, events, strict=True)):
            if state is None:  # the creation path of a new thread: a projector that never saw it
                projector = SessionProjector(spec, engine=engine)
                step_seen: SeenView = SeenView(projector)
                outcome = projector.apply(wires[k])
            else:
                projector, step_seen = seeded, seen
                if not at_state:
                    projector.seed(state[0], finished_turns=ordered)
                outcome = projector.apply(event)
            edges += 1
            finished_turns = projector.finished_turns(THREAD)
            finished = frozenset(finished_turns)
            violated: list[str] = []
            if check_invariants:
                violated += step_violations(spec, outcome)  # state invariants: once per new state, below
                if reqs is not None:
                    checker = first[k] if state is None else fresh[k]
                    violated += checker(StepContext(outcome, finished_before, finished, False, step_seen,
                                                    state is None))
                # A redelivery depends only on the state it meets and the event: many edges end in
                # the same state, and the same check on the same input is done once.
                if (outcome.after, finished, k) not in redelivered:
                    redelivered.add((outcome.after, finished, k))
                    redelivery = projector.apply(event)
                    # A forgotten thread's tombstone still remembers the eventId: a duplicate too.
                    if redelivery.kind is not OutcomeKind.DUPLICATE:
                        violated.append("redelivery_is_duplicate")
                    violated += step_violations(spec, redelivery)
                    if reqs is not None:
                        finished_again = frozenset(projector.finished_turns(THREAD))
                        violated += again[k](StepContext(redelivery, finished, finished_again, True, step_seen))
            if state is not None:
                # The next event may follow on this thread only if nothing here changed it.
                at_state = (outcome.kind not in changed and projector.get(THREAD) is state[0]
                            and projector.finished_turns(THREAD) == ordered_t)
            if other_seeded is not None and disagreement is None:
                clock = time.perf_counter()
                if state is None:
                    other = SessionProjector(spec, engine=other_seeded.engine)
                    theirs = other.apply(wires[k])
                else:
                    other = other_seeded
                    if not other_at_state:
                        other.seed(state[0], finished_turns=ordered)
                    theirs = other.apply(other_events[k])
                theirs_finished = other.finished_turns(THREAD)
                differ = (theirs.kind, theirs.reason, theirs.after, theirs.transition) != (
                    outcome.kind, outcome.reason, outcome.after, outcome.transition
                ) or theirs_finished != finished_turns
                if state is not None:
                    other_at_state = (theirs.kind not in changed and other.get(THREAD) is state[0]
                                      and theirs_finished == ordered_t)
                equality = f"{engine}_equals_{reference}"
                if not differ and batch is not None and batch.differs(state, ordered_t, event, outcome, finished_turns):
                    differ, equality = True, "batch_equals_apply"
                reference_seconds += time.perf_counter() - clock
                if differ and split:
                    # compare no further
                    disagreement = ([*prefix, real_template(template, outer)], template.label(), equality)
                elif differ:
                    violated.append(equality)
                    record(violated, [*prefix, real_template(template, outer)], template.label())
                    return result(False, ""), None  # the engines disagree: nothing further is meaningful
            if violated:
                record(sorted(set(violated)), [*prefix, real_template(template, outer)], template.label())
            if outcome.kind in changed:
                applied += 1
                if outcome.transition is not None:
                    taken.add(outcome.transition)
            elif state is not None and outcome.after is state[0] and finished == finished_before:
                continue  # back where it started: a state known already
            canonical = least.get((outcome.after, finished))
            if canonical is None:
                canonical = least[(outcome.after, finished)] = least_form((outcome.after, finished))
            nxt, renaming = canonical
            if nxt not in parents:
                if len(parents) >= max_states:
                    bound = CheckResult(name, False, time.perf_counter() - started,
                                        {"states": len(parents), "edges": edges},
                                        f"state bound {max_states} reached before a fixpoint")
                    return bound, (replace(bound, name="agreement") if split else None)
                parents[nxt] = (state, template, renaming)
                frontier.append(nxt)
                if check_invariants:
                    # A state's invariants depend on the state alone; breadth-first, its first path is a shortest.
                    bad = state_violations(spec, *nxt) + (reqs.state_violations(*nxt) if reqs is not None else [])
                    record(bad, [*prefix, real_template(template, outer)], template.label())

    untaken = [t.index for t in spec.transitions if t.index not in taken]
    detail = (f"fixpoint: {len(parents)} reachable states; {len(spec.invariants)} spec invariants and "
              f"{len(checked)} requirements hold on every one")
    detail += _unvaried_note(spec, requirements, (s for s, _ in least), universe)
    agreement = (f"{engine} and {reference} engines agree on {edges} edges from {len(parents)} reachable states, "
                 f"and the batch path's steps with apply on the {batch.steps if batch else 0} edges an engine steps")
    if other_seeded is not None and not split:
        detail = agreement
    if untaken:
        detail += f"; spec transitions never taken: {untaken}"
    if not split:
        return result(True, detail), None
    explored = result(True, detail)
    explored = replace(explored, seconds=explored.seconds - reference_seconds)
    covered = {"states": len(parents), "edges": edges}
    if disagreement is None:
        return explored, CheckResult("agreement", True, reference_seconds, covered,
                                     agreement + " (walked together with explore)")
    path, what, equality = disagreement
    return explored, CheckResult("agreement", False, reference_seconds, covered,
                                 f"{equality} violated after {len(path)} event(s): {what}", (equality,),
                                 counterexample(path), {equality: counterexample(path)})


def _coverage(spec: Spec, requirements: Requirements | None, sessions: Iterable[Session],
              universe: list[EventTemplate]) -> dict[str, int]:
    values = field_values(spec, requirements, sessions, universe)
    return {"fields_read": len(values), "fields_varied": sum(len(v) >= 2 for v in values.values())}


def _unvaried_note(spec: Spec, requirements: Requirements | None, sessions: Iterable[Session],
                   universe: list[EventTemplate]) -> str:
    single = unvaried(field_values(spec, requirements, sessions, universe))
    return f"; read but never varied here: {', '.join(single)}" if single else ""
