"""Vacuity: is every requirement exercised by the explored states and edges?

A contract whose `when` holds on no reachable edge, or a state requirement `implies: [A, B]`
whose A holds in no reachable state, is proven by `explore` without ever being tested: it names
an impossible combination, or the universe never reaches what it speaks of. This check counts,
per requirement, the explored edges (a state and an event of the universe) on which its `when`
holds and the states from which they leave; for a state requirement `implies: [A, B]`, the states
in which A holds (any other state requirement is exercised in every state). It fails on a
requirement exercised nowhere.

The states are those the explorer walks (its walk reports each new state to the requirements'
`state_violations`, which `StateTap` records), and its edges are every such state with every
event of the universe, as it walks them; the count is checked against the explorer's own count
of edges. `when` is evaluated by the requirements' own compiled code (`Requirement.when_check`
and the event-only conjuncts `contracts_for` decides); a state requirement's antecedent is
compiled by the requirements parser like any predicate. A contract that applies only to
redeliveries is counted on every explored state with every event, a superset of the states a
redelivery meets (so "never exercised" is still sound for it). Temporal requirements are spin's:
not counted here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any, cast

from statemachine.core.event import Event
from statemachine.core.session import Session
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.model import Spec
from statemachine.spec.requirements import Requirements, parse_requirements
from statemachine.verify.report import CheckResult
from statemachine.verify.universe import EventTemplate, event_universe

__all__ = ["Exercise", "StateTap", "VacuityResult", "exercises", "vacuity", "vacuity_result"]

NAME = "vacuity"
THREAD = "counterexample"  # the explorer's thread
State = tuple[Session, frozenset[str]]


@dataclass(frozen=True)
class Exercise:
    """How often one requirement's condition held in the explored transition system."""

    name: str
    form: str
    condition: str  # "when", "antecedent", "every state", "every edge", or "spin" (not counted here)
    states: int  # states where it held (contract: states an edge where it held leaves from)
    edges: int  # contract: edges where `when` held
    of_states: int
    of_edges: int

    @property
    def vacuous(self) -> bool:
        return self.condition != "spin" and self.states == 0

    def label(self) -> str:
        if self.condition == "spin":
            return "temporal: not counted"
        if self.condition == "every state":
            return f"no condition: every state ({self.states})"
        if self.condition == "every edge":
            return f"no condition: every edge ({self.edges})"
        if self.form == "contract":
            return f"{self.condition} on {self.edges} of {self.of_edges} edges, from {self.states} states"
        return f"{self.condition} in {self.states} of {self.of_states} states"

    def to_json(self) -> dict[str, Any]:
        return {"condition": self.condition, "states": self.states, "edges": self.edges,
                "of_states": self.of_states, "of_edges": self.of_edges, "vacuous": self.vacuous}


@dataclass(frozen=True)
class VacuityResult(CheckResult):
    exercises: tuple[Exercise, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "exercised": {e.name: e.to_json() for e in self.exercises}}


class StateTap:
    """Stands for a `Requirements` in the explorer's walk, recording every state it is asked about
    (the first state, then each new one, once). Everything else is the requirements' own."""

    def __init__(self, requirements: Requirements) -> None:
        self.inner = requirements
        self.states: list[State] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def state_violations(self, session: Session, finished: Sequence[str] | frozenset[str]) -> list[str]:
        self.states.append((session, frozenset(finished)))
        return self.inner.state_violations(session, finished)

    def as_requirements(self) -> Requirements:
        return cast(Requirements, self)


class _Before:
    """What `when` reads of a step: `outcome.before` per state; `outcome.event`, one class
    attribute set once per event (a view per state and event would cost more than the counting)."""

    __slots__ = ("before",)
    event: Event | None = None

    def __init__(self, before: Session) -> None:
        self.before = before


class _When:
    __slots__ = ("finished_before", "outcome")

    def __init__(self, outcome: _Before, finished: frozenset[str]) -> None:
        self.outcome = outcome
        self.finished_before = finished


def _antecedents(spec: Spec, requirements: Requirements) -> tuple[Requirements | None, dict[str, str]]:
    """Each state requirement `implies: [A, B]` -> A, compiled by the requirements parser as a
    state requirement of its own; and the name of each -> the requirement it comes from."""
    import yaml

    items: list[dict[str, Any]] = []
    origin: dict[str, str] = {}
    for r in requirements.of_form("state"):
        holds = r.holds
        if isinstance(holds, dict) and set(holds) == {"implies"}:
            name = f"a{len(items)}"
            items.append({"name": name, "form": "state", "description": r.name, "holds": holds["implies"][0]})
            origin[name] = r.name
    if not items:
        return None, {}
    text = yaml.safe_dump({"requirements_version": 1, "requirements": items})
    return parse_requirements(text, spec, f"{requirements.source} (antecedents)"), origin


def exercises(spec: Spec, requirements: Requirements, states: Sequence[State],
              universe: Sequence[EventTemplate] | None = None) -> list[Exercise]:
    """Per requirement, where its condition held among `states` and each of them x each event."""
    templates = event_universe(spec, requirements) if universe is None else universe
    projector = SessionProjector(spec)
    events = [projector.parse(t.wire("e", THREAD)) for t in templates]
    n_states, n_edges = len(states), len(states) * len(events)
    counts: dict[str, list[Any]] = {}  # name -> [edges, set of state indices]
    order = range(n_states)
    view: type[_Before] = type("_BeforeEvent", (_Before,), {"__slots__": ()})  # its own `event`
    views = [_When(view(session), finished) for session, finished in states]
    for redelivered in (False, True):
        for event in events:
            chosen = [r for r in requirements.contracts_for(event, redelivered)
                      if (r.applies_to == "redelivered") == redelivered]
            if not chosen:
                continue
            view.event = event
            for r in chosen:
                check = r.when_check
                hits = list(compress(order, map(check, views))) if check is not None else list(order)
                entry = counts.setdefault(r.name, [0, set()])
                entry[0] += len(hits)
                entry[1].update(hits)
    # A thread's first event meets no explored state: the fresh session, with every event.
    first_view = _When(view(Session(THREAD, spec.initial)), frozenset())
    for event in events:
        view.event = event
        for r in requirements.contracts_for(event, first=True):
            if r.applies_to != "first":
                continue
            entry = counts.setdefault(r.name, [0, set()])
            if r.when_check is None or r.when_check(first_view):
                entry[0] += 1
                entry[1].add(-1)  # the state before any event
    antecedents, origin = _antecedents(spec, requirements)
    held_in: dict[str, int] = dict.fromkeys(origin.values(), n_states)
    if antecedents is not None:
        for session, finished in states:
            for name in antecedents.state_violations(session, finished):  # the antecedent is false here
                held_in[origin[name]] -= 1
    out = []
    for r in requirements.items:
        if r.form == "temporal":
            out.append(Exercise(r.name, r.form, "spin", 0, 0, n_states, n_edges))
        elif r.form == "state":
            if r.name in held_in:
                out.append(Exercise(r.name, r.form, "antecedent", held_in[r.name], 0, n_states, n_edges))
            else:
                out.append(Exercise(r.name, r.form, "every state", n_states, 0, n_states, n_edges))
        else:
            edges, hit_states = counts.get(r.name, (0, set()))
            condition = "when" if r.when is not None else "every edge"
            out.append(Exercise(r.name, r.form, condition, len(hit_states), edges, n_states, n_edges))
    return out


def vacuity_result(spec: Spec, requirements: Requirements, states: Sequence[State], explored_edges: int,
                   seconds: float = 0.0) -> VacuityResult:
    """The check's result from the explorer's states (`StateTap.states`) and its count of edges."""
    started = time.perf_counter()
    universe = event_universe(spec, requirements)
    if len(states) * len(universe) != explored_edges:
        # The explorer walked something else than its states x the universe: counts would lie.
        return VacuityResult(NAME, False, seconds + time.perf_counter() - started, {},
                             f"cannot count: the explorer reported {len(states)} states x {len(universe)} events, "
                             f"but walked {explored_edges} edges")
    found = exercises(spec, requirements, states, universe)
    vacuous = tuple(e.name for e in found if e.vacuous)
    counted = [e for e in found if e.condition != "spin"]
    covered = {"requirements": len(counted), "exercised": len(counted) - len(vacuous), "states": len(states),
               "edges": explored_edges}
    elapsed = seconds + time.perf_counter() - started
    if vacuous:
        detail = (f"{len(vacuous)} never exercised (their condition holds on no explored state or edge): "
                  + ", ".join(vacuous))
        return VacuityResult(NAME, False, elapsed, covered, detail, vacuous, exercises=tuple(found))
    least = min((e for e in counted if e.condition in ("when", "antecedent")),
                key=lambda e: e.edges if e.form == "contract" else e.states, default=None)
    detail = f"every one of {len(counted)} state and contract requirements is exercised"
    if least is not None:
        detail += f"; the least: {least.name} ({least.label()})"
    return VacuityResult(NAME, True, elapsed, covered, detail, exercises=tuple(found))


def vacuity(spec: Spec, requirements: Requirements) -> VacuityResult:
    """The check on its own: the explorer's walk (for its states), then the counts."""
    from statemachine.verify.explore import explore

    started = time.perf_counter()
    tap = StateTap(requirements)
    walked = explore(spec, tap.as_requirements())
    return vacuity_result(spec, requirements, tap.states, walked.covered.get("edges", -1),
                          time.perf_counter() - started)
