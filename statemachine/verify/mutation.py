"""`verify --mutate`: how many single-edit mutants of a spec do the requirements catch?

Every mutant `statemachine.verify.mutate.single_edit_mutants` makes of the spec under test is
judged in turn:

- invalid: the spec checker refuses it (a status no longer reachable, say);
- killed by `declarations`, its flags and invariants against the requirements (the cheapest);
- equivalent: on every edge the explorer walks from the spec's reachable states (each state x
  each event of the universe), the mutant gives the same outcome, session and remembered turns,
  so it explores to the same transition system: no requirement over explored behaviour can tell
  them apart, and it is set aside (not counted in the score);
- killed by `explore`: a walk that steps only what the edit can change stops at the mutant's
  first violation of a requirement or spec invariant (on an edge where it differs, or in a state
  only it reaches), which the explorer's full walk would report too;
- killed by `induction`, then by the full `explore`, then (with `--mutate-spin`) by `spin`;
- survived: none of these fails. Its report is the shortest trace, from a new thread, after which
  its outcome differs from the spec's: the rule the requirements leave free.

Mutation score = killed / (killed + survived).

Which edges an edit can change: the steps of a trigger are generated from that trigger's
transitions, the on-enter hooks of their destinations and on_applied alone, and the events come
from the event types; an edit that leaves all of these alone for a trigger leaves its steps alone,
from any state. So the walk steps, from the spec's reachable states, only the events of the
triggers the edit touches (and every event from a state only the mutant reaches).
"""

from __future__ import annotations

import json
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any

from statemachine.core.event import Event
from statemachine.core.outcome import OutcomeKind
from statemachine.core.session import Session
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.invariants import state_violations, step_violations
from statemachine.spec.model import Spec, SpecError
from statemachine.spec.requirements import Requirements, StepContext
from statemachine.verify.declarations import declarations
from statemachine.verify.explore import (
    RENAMINGS,
    Parents,
    SeenView,
    counterexample,
    explore,
    least_form,
    real_template,
    replay_path,
)
from statemachine.verify.induction import induction
from statemachine.verify.mutate import Mutation, apply_edits, single_edit_mutants, spec_from_data
from statemachine.verify.report import CheckResult
from statemachine.verify.universe import EventTemplate, event_universe

__all__ = ["MutantVerdict", "MutationReport", "affected_triggers", "mutate_command", "mutation_report",
           "render_mutation_text", "sample_mutations", "shortest_difference"]

THREAD = "counterexample"  # the explorer's thread: traces replay with its name
State = tuple[Session, frozenset[str]]
# A table entry: the next state's number times this, plus the renaming's number in RENAMINGS.
_CODE = len(RENAMINGS)
KILLING_CHECKS = ("declarations", "explore", "induction", "spin")


@dataclass(frozen=True)
class MutantVerdict:
    mutation: Mutation
    verdict: str  # "invalid", "equivalent", "killed", "survived"
    check: str | None = None  # the check that killed it
    violated: tuple[str, ...] = ()  # what that check found broken
    note: str = ""  # invalid: why; survived: how it differs
    difference: list[dict[str, Any]] | None = None  # survived: the shortest trace where it differs (wire events)

    def to_json(self) -> dict[str, Any]:
        return {"operator": self.mutation.operator, "mutant": self.mutation.label(),
                "edit": self.mutation.edit.to_data(), "verdict": self.verdict, "killed_by": self.check,
                "violated": list(self.violated), "note": self.note, "difference": self.difference}


@dataclass(frozen=True)
class MutationReport:
    spec: str
    requirements: str
    total: int  # every single-edit mutant of the spec
    seed: int | None  # the sample's seed (None: every mutant)
    verdicts: tuple[MutantVerdict, ...]
    seconds: float
    original: tuple[CheckResult, ...] = field(default=())  # the checks on the spec itself

    def of(self, verdict: str) -> list[MutantVerdict]:
        return [v for v in self.verdicts if v.verdict == verdict]

    @property
    def original_ok(self) -> bool:
        return all(r.ok for r in self.original)

    @property
    def score(self) -> float | None:
        killed, survived = len(self.of("killed")), len(self.of("survived"))
        return killed / (killed + survived) if killed + survived else None

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec, "requirements_file": self.requirements, "mutants": self.total,
            "sample": len(self.verdicts), "seed": self.seed, "seconds": round(self.seconds, 2),
            "original_ok": self.original_ok, "original": [r.to_json() for r in self.original],
            "counts": {v: len(self.of(v)) for v in ("invalid", "equivalent", "killed", "survived")},
            "killed_by": {c: sum(1 for v in self.of("killed") if v.check == c) for c in KILLING_CHECKS},
            "score": self.score, "mutants_judged": [v.to_json() for v in self.verdicts],
        }


# -- which triggers an edit can change ----------------------------------------------------------


def affected_triggers(spec: Spec, mutant: Spec) -> frozenset[str]:
    """The triggers whose steps may differ between the two specs (see the module docstring)."""
    if (spec.events, spec.on_applied, spec.status_names, spec.initial, dict(spec.guards), spec.vocabulary) != (
            mutant.events, mutant.on_applied, mutant.status_names, mutant.initial, dict(mutant.guards),
            mutant.vocabulary):
        return frozenset(spec.triggers) | frozenset(mutant.triggers)
    hooks = {s.name for s, m in zip(spec.statuses, mutant.statuses, strict=True) if s.on_enter != m.on_enter}
    out = set()
    for trigger in mutant.triggers:
        mine = [(t.sources, t.dest, t.guards, t.effects) for t in spec.transitions_for(trigger)]
        theirs = [(t.sources, t.dest, t.guards, t.effects) for t in mutant.transitions_for(trigger)]
        if mine != theirs or any(d in hooks for _, d, _, _ in (*mine, *theirs)):
            out.add(trigger)
    return frozenset(out)


# -- the walks ---------------------------------------------------------------------------------


class _Stepper:
    """One spec's projector and parsed universe events, stepping from a stored state (or from a
    new thread, `None`) as the explorer does."""

    def __init__(self, spec: Spec, universe: Sequence[EventTemplate]) -> None:
        self.spec = spec
        self.projector = SessionProjector(spec)
        self.wires = [t.wire("e", THREAD) for t in universe]
        self.events: list[Event] = [self.projector.parse(w) for w in self.wires]
        self.last = self.projector  # the projector of the last step: what its thread remembers

    def step(self, state: State | None, k: int) -> tuple[Any, frozenset[str]]:
        if state is None:  # a projector that never saw the thread
            projector = SessionProjector(self.spec)
            outcome = projector.apply(self.wires[k])
        else:
            projector = self.projector
            projector.seed(state[0], finished_turns=sorted(state[1]))
            outcome = projector.apply(self.events[k])
        self.last = projector
        return outcome, frozenset(projector.finished_turns(THREAD))


def _same(a: tuple[Any, frozenset[str]], b: tuple[Any, frozenset[str]]) -> bool:
    (x, fx), (y, fy) = a, b
    return bool((x.kind, x.reason, x.after, fx) == (y.kind, y.reason, y.after, fy))


class _Canon:
    """Least forms of result states (many edges end in the same one), and each renaming's number."""

    def __init__(self) -> None:
        self.cache: dict[State, tuple[State, int]] = {}
        self.numbers = {tuple(sorted(r.items())): i for i, r in enumerate(RENAMINGS)}

    def __call__(self, state: State) -> tuple[State, int]:
        found = self.cache.get(state)
        if found is None:
            canonical, renaming = least_form(state)
            found = self.cache[state] = (canonical, self.numbers[tuple(sorted(renaming.items()))])
        return found


@dataclass
class _Original:
    """The spec's explored transition system: its reachable states in breadth-first order (None
    first: a new thread), and for each state and event of the universe the state it leads to
    (`table[i][k]`: its number times `_CODE` plus the renaming's)."""

    universe: list[EventTemplate]
    states: list[State | None]
    index: dict[State | None, int]
    table: list[list[int]]

    @classmethod
    def walk(cls, spec: Spec, requirements: Requirements) -> _Original:
        universe = event_universe(spec, requirements)
        stepper = _Stepper(spec, universe)
        canon = _Canon()
        states: list[State | None] = [None]
        index: dict[State | None, int] = {None: 0}
        table: list[list[int]] = []
        for state in states:  # grows as it goes: breadth first
            row = []
            for k in range(len(universe)):
                outcome, finished = stepper.step(state, k)
                nxt, r = canon((outcome.after, finished))
                j = index.get(nxt)
                if j is None:
                    j = index[nxt] = len(states)
                    states.append(nxt)
                row.append(j * _CODE + r)
            table.append(row)
        return cls(universe, states, index, table)


@dataclass
class _Walked:
    differs: bool  # some explored edge gives another outcome than the spec's
    broken: tuple[str, ...]  # the first violation reached (empty: none)
    difference: list[dict[str, Any]] | None  # the shortest trace to a differing edge
    contrast: str  # what differs on it


def _mutant_walk(original: _Original, spec: Spec, mutant: Spec, requirements: Requirements,
                 *, stop_at_violation: bool = True) -> _Walked:
    """The mutant's exploration, breadth first from a new thread, stepping only what the edit
    can change from the spec's reachable states and every event from the states only the mutant
    reaches; requirements and the mutant's invariants are judged wherever it differs."""
    universe = event_universe(mutant, requirements)
    theirs, mine = _Stepper(mutant, universe), _Stepper(spec, universe)
    affected = affected_triggers(spec, mutant)
    at = {t: k for k, t in enumerate(original.universe)}
    # Per event of the mutant's universe: the spec's event number when untouched, else -1.
    same_as = [at[t] if t in at and theirs.events[k].trigger not in affected else -1 for k, t in enumerate(universe)]
    checkers = [requirements.step_checker(e, False) for e in theirs.events]
    first = [requirements.step_checker(e, False, first=True) for e in theirs.events]  # from a new thread
    canon = _Canon()
    parents: Parents = {None: (None, None, {})}
    frontier: deque[State | None] = deque([None])
    walked = _Walked(False, (), None, "")
    while frontier:
        state = frontier.popleft()
        i = original.index.get(state)  # None: a state only the mutant reaches
        for k, template in enumerate(universe):
            if i is not None and same_as[k] >= 0:  # an untouched step: the spec's own
                code = original.table[i][same_as[k]]
                nxt = original.states[code // _CODE]
                if nxt not in parents:
                    parents[nxt] = (state, template, RENAMINGS[code % _CODE])
                    frontier.append(nxt)
                continue
            ours = theirs.step(state, k)
            seen = SeenView(theirs.last)  # read before this projector steps again
            base = mine.step(state, k) if i is not None else None
            canonical, r = canon((ours[0].after, ours[1]))
            new = canonical not in parents
            if new:
                parents[canonical] = (state, template, RENAMINGS[r])
                frontier.append(canonical)
            if base is not None and _same(ours, base):
                continue
            if base is not None and not walked.differs:
                prefix, to_real = replay_path(parents, state)
                walked.differs = True
                walked.difference = counterexample([*prefix, real_template(template, to_real)])
                walked.contrast = _contrast(base, ours)
            outcome, finished = ours
            finished_before = frozenset() if state is None else state[1]
            broken = step_violations(mutant, outcome) + (first if state is None else checkers)[k](
                StepContext(outcome, finished_before, finished, False, seen, state is None))
            if new and canonical not in original.index:
                broken += state_violations(mutant, *canonical) + requirements.state_violations(*canonical)
            if broken and not walked.broken:
                walked.broken = tuple(sorted(set(broken)))
                if stop_at_violation:
                    return walked
    return walked


def _contrast(base: tuple[Any, frozenset[str]], ours: tuple[Any, frozenset[str]]) -> str:
    def say(result: tuple[Any, frozenset[str]]) -> str:
        outcome, finished = result
        kind = outcome.kind.value + (f" ({outcome.reason})" if outcome.reason else "")
        s = outcome.after
        shown = f"{kind} -> {s.status}, turn {s.active_turn_id}, lastError {s.last_error!r}"
        if s.pending_turn is not None or s.awaiting is not None:
            shown += f", pendingTurn {s.pending_turn!r}, awaiting {s.awaiting}"
        return shown + (f", finished {sorted(finished)}" if outcome.kind is not OutcomeKind.REJECTED else "")
    return f"the spec: {say(base)}; the mutant: {say(ours)}"


# -- judging every mutant ------------------------------------------------------------------------


def sample_mutations(mutations: Sequence[Mutation], size: int | None, seed: int) -> list[Mutation]:
    """`size` of them, drawn with `seed` (every one, in order, when `size` is None or not smaller)."""
    if size is None or size >= len(mutations):
        return list(mutations)
    chosen = sorted(random.Random(seed).sample(range(len(mutations)), size))
    return [mutations[i] for i in chosen]


def shortest_difference(
    spec: Spec, mutant: Spec, requirements: Requirements
) -> tuple[list[dict[str, Any]], str] | None:
    """The shortest trace from a new thread after which the mutant's outcome differs from the
    spec's (wire events, replayable), and what differs; None when they explore alike."""
    walked = _mutant_walk(_Original.walk(spec, requirements), spec, mutant, replace(requirements, spec=mutant),
                          stop_at_violation=False)
    return (walked.difference, walked.contrast) if walked.difference is not None else None


def _judge(original: _Original, spec: Spec, data: dict[str, Any], requirements: Requirements, mutation: Mutation,
           spin: bool) -> MutantVerdict:
    name = f"<mutant: {mutation.label()}>"
    try:
        mutant = spec_from_data(apply_edits(data, [mutation.edit], name), name)
    except SpecError as exc:
        return MutantVerdict(mutation, "invalid", note=exc.message)
    reqs = replace(requirements, spec=mutant)  # the same requirements, judging the mutant's declarations
    declared = declarations(mutant, reqs)
    if not declared.ok:
        return MutantVerdict(mutation, "killed", "declarations", declared.violated)
    walked = _mutant_walk(original, spec, mutant, reqs)
    if walked.broken:
        return MutantVerdict(mutation, "killed", "explore", walked.broken)
    if not walked.differs:
        return MutantVerdict(mutation, "equivalent")
    checks: list[tuple[str, Callable[[], CheckResult]]] = [
        ("induction", lambda: induction(mutant, reqs)), ("explore", lambda: explore(mutant, reqs))]
    if spin:
        from statemachine.verify.spin import check_spin

        checks.append(("spin", lambda: check_spin(mutant, reqs)))
    for check, run in checks:
        result = run()
        if not result.ok:
            return MutantVerdict(mutation, "killed", check, result.violated, result.detail if result.skipped else "")
    return MutantVerdict(mutation, "survived", note=walked.contrast, difference=walked.difference)


def mutation_report(
    spec: Spec, data: dict[str, Any], requirements: Requirements, *, sample: int | None = None, seed: int = 0,
    spin: bool = False, progress: Callable[[int, int, MutantVerdict], None] | None = None,
) -> MutationReport:
    """Judge every single-edit mutant of `spec` (whose file data is `data`), or a sample of them.

    The spec itself must pass `declarations`, `explore` and `induction` first (a mutant of a broken
    spec says nothing about the requirements); when it does not, no mutant is judged."""
    started = time.perf_counter()
    original = (declarations(spec, requirements), explore(spec, requirements), induction(spec, requirements))
    mutations = single_edit_mutants(data)
    chosen = sample_mutations(mutations, sample, seed)
    verdicts: list[MutantVerdict] = []
    if all(r.ok for r in original):
        system = _Original.walk(spec, requirements)
        for i, mutation in enumerate(chosen):
            verdict = _judge(system, spec, data, requirements, mutation, spin)
            verdicts.append(verdict)
            if progress is not None:
                progress(i + 1, len(chosen), verdict)
    return MutationReport(spec.source, requirements.source, len(mutations),
                          seed if sample is not None and sample < len(mutations) else None, tuple(verdicts),
                          time.perf_counter() - started, original)


def render_mutation_text(report: MutationReport) -> str:
    lines = [f"mutation: {report.total} single-edit mutants of {report.spec}, judged against {report.requirements}"]
    if report.seed is not None:
        lines[0] += f"; a sample of {len(report.verdicts)} (seed {report.seed})"
    if not report.original_ok:
        failed = ", ".join(r.name for r in report.original if not r.ok)
        lines.append(f"NOT RUN: the spec itself fails {failed}; run `verify` and fix it first (a mutant of a "
                     "broken spec says nothing about the requirements)")
        return "\n".join(lines) + "\n"
    killed = report.of("killed")
    by = ", ".join(f"{c} {n}" for c in KILLING_CHECKS if (n := sum(1 for v in killed if v.check == c)))
    lines += [
        f"  invalid (the spec checker refuses them): {len(report.of('invalid'))}",
        f"  equivalent (the same outcome on every explored edge; set aside): {len(report.of('equivalent'))}",
        f"  killed: {len(killed)}" + (f" ({by})" if by else ""),
        f"  survived: {len(report.of('survived'))}",
    ]
    score = report.score
    lines.append("mutation score: " + ("n/a (no mutant to judge)" if score is None else
                                       f"{len(killed)}/{len(killed) + len(report.of('survived'))} = {score:.1%}")
                 + f"  ({report.seconds:.1f}s)")
    survivors = report.of("survived")
    if survivors:
        lines.append("survivors, each with the shortest trace from a new thread after which it differs from the spec "
                     "(a rule the requirements leave free); the trace replays with `replay`:")
    for v in survivors:
        lines.append(f"SURVIVED  {v.mutation.label()}")
        lines.append(f"  {v.note}")
        lines.extend(json.dumps(e) for e in v.difference or [])
    return "\n".join(lines) + "\n"


def operators_of(verdicts: Iterable[MutantVerdict]) -> dict[str, dict[str, int]]:
    """Per operator, how many mutants got each verdict (for the docs)."""
    out: dict[str, dict[str, int]] = {}
    for v in verdicts:
        counts = out.setdefault(v.mutation.operator, {})
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    return out


def mutate_command(spec: Spec, requirements: Requirements, *, sample: int | None, seed: int, spin: bool,
                   as_json: bool, out: IO[str], err: IO[str]) -> int:
    """`verify --mutate`: judge the mutants of `spec` (read again from its file), print the report.
    Exit 0 when every mutant that is not equivalent is killed, 1 when one survives (or the spec
    itself fails), 2 when the spec's file cannot be read back as it was loaded."""
    from statemachine.spec.check import content_digest
    from statemachine.spec.loader import read_spec_file

    try:
        data, _ = read_spec_file(spec.source)
    except SpecError as exc:
        print(f"verify --mutate: cannot read the spec again: {exc}", file=err)
        return 2
    if content_digest(data) != spec.digest:
        print(f"verify --mutate: {spec.source} changed while it was read", file=err)
        return 2
    tell = err.isatty()

    def progress(i: int, total: int, verdict: MutantVerdict) -> None:
        if tell:
            print(f"\rmutate: {i}/{total} judged", end="" if i < total else "\n", file=err, flush=True)

    report = mutation_report(spec, data, requirements, sample=sample, seed=seed, spin=spin, progress=progress)
    if as_json:
        json.dump(report.to_json(), out)
        out.write("\n")
    else:
        out.write(render_mutation_text(report))
    return 0 if report.original_ok and not report.of("survived") else 1
