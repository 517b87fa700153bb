"""The fast engine: the spec's `transitions` machine, recorded once into a table, then compiled.

Recording. For each (trigger, status), the table holds one entry per combination of values of the
guards that trigger's transitions read: what the `transitions` machine did in that case (the
status it entered, the effects it ran in order: on-enter, the transition's, on_applied; the spec
transition taken; or the rejection reason). Recording drives the real machine with a probe whose
guards return forced values and whose effects are only written down; so the table cannot differ
from the machine unless a guard were impure.

Compiling. Each (trigger, status) then becomes one generated Python function: a decision tree
that tests a guard only where its value can still differ (the declarations' `negates` and
`implied_by` settle the rest), with each entry's effects written out in a row from their
declarations (`statemachine.semantics`). A function loads only the slots its guards and effects
declare, builds the new `Session` and the `Outcome` directly, and commits through
`ThreadRecord.commit`. Spec values never become source text: each is bound to a name (`k<n>`).

All functions of one spec form one module source, registered with `linecache` so tracebacks
show it; `python -m statemachine export python` prints it. `verify`'s agreement check proves the
result gives the same outcome and session as the `transitions` machine on every reachable state
x every event; `LifecycleMachine` stays the reference engine.
"""

from __future__ import annotations

import linecache
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .engine import StepFn
from .machine import build_transitions_machine, vocabulary_of
from .outcome import Outcome, OutcomeKind
from .semantics import SLOTS, Effect, Vocabulary
from .session import Session
from .spec_cache import SpecCache
from .spec_model import Spec, no_transition_reason

__all__ = ["CompiledMachine", "Entry", "Plan", "compiled_for", "record_table"]


@dataclass(frozen=True, slots=True)
class Entry:
    """What the machine did for one combination of guard values."""

    applied: bool
    status: str
    effects: tuple[tuple[str, Mapping[str, Any]], ...] = ()  # (effect name, its parameters), in order
    reason: str | None = None
    transition: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """One (trigger, status): the guards read, and an entry per combination (bit i = guards[i])."""

    guards: tuple[str, ...]
    entries: tuple[Entry, ...]


class _Probe:
    """Stands in for a `Cursor` while recording: the machine's callbacks only touch these."""

    __slots__ = ("depth", "forced", "log", "reason", "status", "taken")

    def __init__(self, status: str, forced: Mapping[str, bool]) -> None:
        self.status = status
        self.forced = forced
        self.log: list[tuple[str, Mapping[str, Any]]] = []
        self.depth = -1
        self.reason: str | None = None
        self.taken: int | None = None


def _forced_guard(name: str) -> Any:
    return lambda probe: bool(probe.forced[name])


def _recording_effect(name: str) -> Any:
    return lambda probe, params: probe.log.append((name, params))


def record_table(spec: Spec) -> dict[tuple[str, str], Plan]:
    """(trigger, status) -> Plan, for every pair some transition leaves; the rest are rejected."""
    vocabulary = vocabulary_of(spec)
    probe_machine = build_transitions_machine(
        spec,
        guards={name: _forced_guard(name) for name in vocabulary.guards},
        effects={name: _recording_effect(name) for name in vocabulary.effects},
    )
    table: dict[tuple[str, str], Plan] = {}
    for trigger in spec.triggers:
        names = tuple(dict.fromkeys(g for t in spec.transitions_for(trigger) for g in t.guards))
        event = probe_machine.events.get(trigger)
        for status in spec.status_names:
            if event is None or status not in event.transitions:
                continue  # no transition leaves this status: rejected, as by the reference
            entries = []
            for bits in range(1 << len(names)):
                probe = _Probe(status, {n: bool(bits >> i & 1) for i, n in enumerate(names)})
                if event.trigger(probe):
                    entries.append(Entry(True, probe.status, tuple(probe.log), None, probe.taken))
                else:
                    entries.append(Entry(False, status, (), probe.reason or no_transition_reason(status)))
            table[(trigger, status)] = Plan(names, tuple(entries))
    return table


def _settled(vocabulary: Vocabulary, name: str, tested: Mapping[str, bool]) -> bool | None:
    """A guard's value when the guards already tested on this path settle it, else None."""
    known = dict(tested)
    for other, value in tested.items():  # close over negation, both ways
        negated = vocabulary.guards[other].negates
        if negated is not None:
            known.setdefault(negated, not value)
        for g in vocabulary.guards.values():
            if g.negates == other:
                known.setdefault(g.name, not value)
    if name in known:
        return known[name]
    guard = vocabulary.guards[name]
    if any(known.get(g) for g in guard.implied_by):
        return True
    for other, value in known.items():  # `name` implies `other`, and `other` is false
        if not value and name in vocabulary.guards[other].implied_by:
            return False
    return None


_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")


class _Codegen:
    """Writes the step functions of one spec as one module source."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.namespace: dict[str, Any] = {
            "new": tuple.__new__,  # skips the NamedTuples' Python-level __new__
            "Session": Session,
            "Outcome": Outcome,
            "APPLIED": OutcomeKind.APPLIED,
            "REJECTED": OutcomeKind.REJECTED,
        }
        self.constants: list[tuple[str, Any]] = []
        self._names: dict[tuple[type, Any], str] = {}
        self.functions: list[str] = []

    def const(self, value: Any) -> str:
        # The same value gets the same name, so equal entries give equal code (see `tree`). The
        # key holds the type and, for floats, the sign: 0.0 == -0.0, but they are not one value.
        key: tuple[type, Any] | None
        try:
            key = (type(value), (value, str(value)) if isinstance(value, float) else value)
            hash(key)
        except TypeError:  # unhashable: a name of its own
            key = None
        if key is not None and key in self._names:
            return self._names[key]
        name = f"k{len(self.constants)}"
        self.namespace[name] = value
        self.constants.append((name, value))
        if key is not None:
            self._names[key] = name
        return name

    def effect(self, effect: Effect, params: Mapping[str, Any]) -> list[str]:
        binds = [f"{p} = {self.const(params[p])}" for p in effect.params]
        return [*binds, *effect.code.splitlines()]

    def leaf(self, entry: Entry) -> list[str]:
        if not entry.applied:
            return [f"return new(Outcome, (REJECTED, ev, s, s, {self.const(entry.reason)}, None))"]
        effects = [(self.vocabulary.effects[name], params) for name, params in entry.effects]
        slots = dict.fromkeys(slot for e, _ in effects for slot in (*e.reads, *e.writes))
        loads = [f"{slot} = {SLOTS[slot].load}" for slot in slots if slot not in _PROLOGUE and SLOTS[slot].load != slot]
        remembers = any(e.remembers for e, _ in effects)
        body = [line for e, params in effects for line in self.effect(e, params)]
        built = {"status": self.const(entry.status)}
        # A field no effect writes is copied from `s` as it is.
        written = [slot for e, _ in effects for slot in e.writes]
        built |= {field: slot for slot in written if (field := SLOTS[slot].session_field) is not None}
        fields = ", ".join(built.get(f, f"s.{f}") for f in Session._fields)
        updated_dt = "upd_dt" if "upd_dt" in slots else "rec.updated_dt"
        return [
            *loads,
            *(["remember = rec.remember_turn"] if remembers else []),
            *body,
            f"after = new(Session, ({fields}))",
            f"rec.commit(after, {updated_dt})",
            f"return new(Outcome, (APPLIED, ev, s, after, None, {self.const(entry.transition)}))",
        ]

    def tree(self, plan: Plan, i: int = 0, bits: int = 0, known: Mapping[str, bool] | None = None) -> list[str]:
        """Test guard i only where its value is not yet settled and changes the code that follows."""
        known = known or {}
        if i == len(plan.guards):
            return self.leaf(plan.entries[bits])
        name = plan.guards[i]
        settled = _settled(self.vocabulary, name, known)
        if settled is not None:
            return self.tree(plan, i + 1, bits | (1 << i if settled else 0), {**known, name: settled})
        if_true = self.tree(plan, i + 1, bits | 1 << i, {**known, name: True})
        if_false = self.tree(plan, i + 1, bits, {**known, name: False})
        if if_true == if_false:
            return if_true
        return [f"if {self.vocabulary.guards[name].expr}:", *("    " + line for line in if_true),
                "else:", *("    " + line for line in if_false)]

    def function(self, trigger: str, status: str, plan: Plan | None) -> str:
        if plan is None:
            body = self.leaf(Entry(False, status, (), no_transition_reason(status)))
            guards: tuple[str, ...] = ()
        else:
            body = self.tree(plan)
            guards = plan.guards
        effects = {n for e in (plan.entries if plan else ()) for n, _ in e.effects}
        used = {slot for g in guards for slot in self.vocabulary.guards[g].reads}
        used |= {slot for n in effects for e in (self.vocabulary.effects[n],) for slot in (*e.reads, *e.writes)}
        head = [f"{slot} = {load}" for slot, load in _PROLOGUE.items() if slot in used or slot == "s"]
        name = f"step_{len(self.functions)}_{_IDENTIFIER.sub('_', trigger)}__{_IDENTIFIER.sub('_', status)}"
        source = "\n".join([f"def {name}(rec, ev):", f"    # {trigger!a} in {status!a}",
                            *("    " + line for line in (*head, *body))])
        self.functions.append(source)
        return name

    def module(self, spec: Spec) -> str:
        header = [
            f"# Step functions compiled from spec {spec.name!a} (digest {spec.digest[:16] or 'none'}).",
            "# Constants bound by name (spec values never become source text):",
            *(f"#   {name} = {value!a}" for name, value in self.constants),
        ]
        return "\n".join([*header, "", *("\n" + f for f in self.functions)]) + "\n"


# Loaded at the top of every function that uses them, in this order (`s`, the session, always):
# what guards read, so that every branch sees them.
_PROLOGUE = {"s": "rec.session", "turn": SLOTS["turn"].load, "t": SLOTS["t"].load, "fin": SLOTS["fin"].load,
             "pend": SLOTS["pend"].load}


class CompiledMachine:
    """A step function per (status, trigger), generated from the table recorded from the machine."""

    def __init__(self, spec: Spec, table: Mapping[tuple[str, str], Plan] | None = None) -> None:
        """`table` replaces the recorded one (tests use this to show the agreement check failing)."""
        self.spec = spec
        self.table: Mapping[tuple[str, str], Plan] = record_table(spec) if table is None else table
        gen = _Codegen(vocabulary_of(spec))
        names: dict[tuple[str, str], str] = {}
        for status in spec.status_names:
            for trigger in spec.triggers:
                names[(trigger, status)] = gen.function(trigger, status, self.table.get((trigger, status)))
        self.source = gen.module(spec)
        self.filename = f"<statemachine.compiled {spec.name} {spec.digest[:16] or hex(id(self))}>"
        # Tracebacks and debuggers read the generated source through linecache; the entry goes
        # with this engine (projectors hold their engine), so evicted engines leave nothing behind.
        entry = (len(self.source), None, self.source.splitlines(True), self.filename)
        linecache.cache[self.filename] = entry
        weakref.finalize(self, _forget_source, self.filename, entry)
        scope = dict(gen.namespace)
        exec(compile(self.source, self.filename, "exec"), scope)  # source holds only names written here
        self.dispatch: dict[str, dict[str, StepFn]] = {
            status: {trigger: scope[names[(trigger, status)]] for trigger in spec.triggers}
            for status in spec.status_names
        }
        self.sources: dict[tuple[str, str], str] = {key: gen.functions[i] for i, key in enumerate(names)}

    @property
    def table_size(self) -> int:
        return sum(len(plan.entries) for plan in self.table.values())


def _forget_source(filename: str, entry: Any) -> None:
    # Only our own entry: a later build of the same spec registers the same file name.
    if linecache.cache.get(filename) is entry:
        del linecache.cache[filename]


_COMPILED: SpecCache[CompiledMachine] = SpecCache(CompiledMachine)


def compiled_for(spec: Spec) -> CompiledMachine:
    """One compiled machine per spec content per process (a bounded cache)."""
    return _COMPILED.get(spec)
