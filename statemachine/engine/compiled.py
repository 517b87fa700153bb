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
declarations (`statemachine.spec.semantics`). A function loads only the slots its guards and effects
declare, builds the new `Session` and the `Outcome` directly, and commits through
`ThreadRecord.commit`. Spec values never become source text: each is bound to a name (`k<n>`).

All functions of one spec form one module source, registered with `linecache` so tracebacks
show it; `python -m statemachine export python` prints it. `verify`'s agreement check proves the
result gives the same outcome and session as the `transitions` machine on every reachable state
x every event; `LifecycleMachine` stays the reference engine.
"""

from __future__ import annotations

import itertools
import linecache
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from types import CodeType
from typing import Any

from statemachine.core.event import Event
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.core.record import ThreadRecord
from statemachine.core.session import Session
from statemachine.engine.boundary import StepFn
from statemachine.spec.model import Spec, no_transition_reason
from statemachine.spec.semantics import SLOTS, VOCABULARY, Effect, Vocabulary

__all__ = ["BatchStepFn", "CompiledMachine", "Entry", "Generated", "Plan", "generate", "record_table", "settled"]


# A batch step: (the thread's record, a lifecycle event) -> None when applied (the record already
# updated), else the rejection reason.
BatchStepFn = Callable[[ThreadRecord, Event], "str | None"]


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


def vocabulary_of(spec: Spec) -> Vocabulary:
    """The vocabulary `spec` was checked against (as `machine.vocabulary_of`, without importing
    `transitions`)."""
    return spec.vocabulary if spec.vocabulary is not None else VOCABULARY


def record_table(spec: Spec) -> dict[tuple[str, str], Plan]:
    """(trigger, status) -> Plan, for every pair some transition leaves; the rest are rejected."""
    from statemachine.engine.machine import build_transitions_machine  # imports `transitions`: only when recording

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


def settled(vocabulary: Vocabulary, name: str, tested: Mapping[str, bool]) -> bool | None:
    """A guard's value when the guards already tested on this path settle it (through `negates`
    and `implied_by`, which the agreement check proves), else None. The compiled engine and the
    TypeScript export both test a guard only where this says None."""
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
# A session's fields are read by position in the generated source (`s[3]` is `s.active_turn_id`,
# in `Session._fields` order, the namedtuple's own): an index into a tuple costs a third of the
# attribute lookup, which on a tuple subclass takes the interpreter's generic path.
_FIELD_AT = {name: i for i, name in enumerate(Session._fields)}
_SESSION_FIELD = re.compile(r"\bs\.(" + "|".join(Session._fields) + r")\b")


class _Codegen:
    """Writes the step functions of one spec as one module source."""

    def __init__(self, vocabulary: Vocabulary, *, lean: bool = False) -> None:
        self.vocabulary = vocabulary
        # Lean steps (the batch path) return None when applied and the reason when rejected,
        # instead of an `Outcome`; the decision tree and the effects are the same.
        self.lean = lean
        self.namespace: dict[str, Any] = {
            "new": tuple.__new__,  # skips the NamedTuples' Python-level __new__
            "Session": Session,
            "Outcome": Outcome,
            "APPLIED": OutcomeKind.APPLIED,
            "REJECTED": OutcomeKind.REJECTED,
            "fromisoformat": datetime.fromisoformat,
            "UTC": UTC,
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
            if self.lean:
                return [f"return {self.const(entry.reason)}"]
            return [f"return new(Outcome, (REJECTED, ev, s, s, {self.const(entry.reason)}, None))"]
        effects = [(self.vocabulary.effects[name], params) for name, params in entry.effects]
        slots = dict.fromkeys(slot for e, _ in effects for slot in (*e.reads, *e.writes))
        loads = [line for slot in slots if slot not in _PROLOGUE and SLOTS[slot].load != slot
                 for line in _LOADS.get(slot, (f"{slot} = {SLOTS[slot].load}",))]
        remembers = any(e.remembers for e, _ in effects)
        body = [line for e, params in effects for line in self.effect(e, params)]
        built = {"status": self.const(entry.status)}
        # A field no effect writes is copied from `s` as it is.
        written = [slot for e, _ in effects for slot in e.writes]
        built |= {field: slot for slot in written if (field := SLOTS[slot].session_field) is not None}
        fields = ", ".join(built.get(f, f"s.{f}") for f in Session._fields)
        return [
            *loads,
            *(["remember = rec.remember_turn"] if remembers else []),
            *body,
            f"after = new(Session, ({fields}))",
            # `ThreadRecord.commit` written out (the record derives `updatedAt` parsed when read).
            "rec.session = after",
            "return None" if self.lean else
            f"return new(Outcome, (APPLIED, ev, s, after, None, {self.const(entry.transition)}))",
        ]

    def tree(self, plan: Plan, i: int = 0, bits: int = 0, known: Mapping[str, bool] | None = None) -> list[str]:
        """Test guard i only where its value is not yet settled and changes the code that follows."""
        known = known or {}
        if i == len(plan.guards):
            return self.leaf(plan.entries[bits])
        name = plan.guards[i]
        value = settled(self.vocabulary, name, known)
        if value is not None:
            return self.tree(plan, i + 1, bits | (1 << i if value else 0), {**known, name: value})
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
        kind = "lean" if self.lean else "step"
        name = f"{kind}_{len(self.functions)}_{_IDENTIFIER.sub('_', trigger)}__{_IDENTIFIER.sub('_', status)}"
        lines = [_SESSION_FIELD.sub(lambda m: f"s[{_FIELD_AT[m[1]]}]", line) for line in (*head, *body)]
        source = "\n".join([f"def {name}(rec, ev):", f"    # {trigger!a} in {status!a}",
                            *("    " + line for line in lines)])
        self.functions.append(source)
        return name

    def module(self, spec: Spec) -> str:
        header = [
            f"# Step functions compiled from spec {spec.name!a} (digest {spec.digest[:16] or 'none'}).",
            "# A session's fields are read by position: "
            + ", ".join(f"s[{i}] = s.{name}" for name, i in _FIELD_AT.items()) + ".",
            "# Constants bound by name (spec values never become source text):",
            *(f"#   {name} = {value!a}" for name, value in self.constants),
        ]
        return "\n".join([*header, "", *("\n" + f for f in self.functions)]) + "\n"


# Slots loaded otherwise than by their `Slot.load`, with the same value: `updatedAt` parsed here
# rather than through `ThreadRecord.updated_dt` (a property and a cache that nearly always misses,
# since an applied step moves it), as `parse_timestamp` does: an offset-less time is UTC.
_LOADS: dict[str, tuple[str, ...]] = {
    "upd_dt": ("upd_dt = s.updated_at",
               "if upd_dt is not None:",
               "    upd_dt = fromisoformat(upd_dt)",
               "    if upd_dt.tzinfo is None:",
               "        upd_dt = upd_dt.replace(tzinfo=UTC)"),
}

# Loaded at the top of every function that uses them, in this order (`s`, the session, always):
# what guards read, so that every branch sees them.
_PROLOGUE = {"s": "rec.session", "turn": SLOTS["turn"].load, "t": SLOTS["t"].load, "fin": SLOTS["fin"].load,
             "pend": SLOTS["pend"].load, "req": SLOTS["req"].load}


@dataclass(frozen=True)
class Generated:
    """One spec's step functions as generated: the module source, its code, the constants it
    names, and which function serves each (trigger, status). What the start-up cache stores."""

    source: str
    filename: str
    code: CodeType
    constants: tuple[tuple[str, Any], ...]
    names: Mapping[tuple[str, str], str]  # (trigger, status) -> function name
    functions: tuple[str, ...]  # each function's source, in the order of `names`


_ANONYMOUS = itertools.count(1)


def generate(spec: Spec, table: Mapping[tuple[str, str], Plan], *, lean: bool = False) -> Generated:
    """Write and compile the step functions of `spec` from its recorded `table` (`lean`: the batch
    path's, which return the rejection reason or None and build no `Outcome`)."""
    gen = _Codegen(vocabulary_of(spec), lean=lean)
    names: dict[tuple[str, str], str] = {}
    for status in spec.status_names:
        for trigger in spec.triggers:
            names[(trigger, status)] = gen.function(trigger, status, table.get((trigger, status)))
    source = gen.module(spec)
    kind = "batch " if lean else ""
    filename = f"<statemachine.engine.compiled {kind}{spec.name} {spec.digest[:16] or f'anonymous-{next(_ANONYMOUS)}'}>"
    code = compile(source, filename, "exec")  # source holds only names written here
    return Generated(source, filename, code, tuple(gen.constants), names, tuple(gen.functions))


class CompiledMachine:
    """A step function per (status, trigger), generated from the table recorded from the machine."""

    def __init__(
        self, spec: Spec, table: Mapping[tuple[str, str], Plan] | None = None, *, generated: Generated | None = None,
        batch_generated: Generated | None = None,
    ) -> None:
        """`table` replaces the recorded one (tests use this to show the agreement check failing);
        `generated` and `batch_generated` are what `generate` gave for this spec earlier (the
        start-up cache)."""
        self.spec = spec
        self._table = table
        self.generated = generated if generated is not None else generate(spec, self.table)
        self._batch_generated = batch_generated
        self.source = self.generated.source
        self.filename = self.generated.filename
        self.dispatch: dict[str, dict[str, StepFn]] = self._install(self.generated)
        self.sources: dict[tuple[str, str], str] = {key: self.generated.functions[i]
                                                    for i, key in enumerate(self.generated.names)}

    def _install(self, generated: Generated) -> dict[str, dict[str, Any]]:
        """Run a generated module; its functions, status -> trigger -> function."""
        # Tracebacks and debuggers read the generated source through linecache; the entry goes
        # with this engine (projectors hold their engine), so evicted engines leave nothing behind.
        entry = (len(generated.source), None, generated.source.splitlines(True), generated.filename)
        _LIVE_SOURCES.setdefault(generated.filename, []).append(entry)
        linecache.cache[generated.filename] = entry
        weakref.finalize(self, _forget_source, generated.filename, entry)
        scope = dict(_Codegen(vocabulary_of(self.spec)).namespace)
        scope.update(generated.constants)
        exec(generated.code, scope)  # code compiled from source holding only names written here
        names = generated.names
        return {status: {trigger: scope[names[(trigger, status)]] for trigger in self.spec.triggers}
                for status in self.spec.status_names}

    @property
    def table(self) -> Mapping[tuple[str, str], Plan]:
        """The table recorded from the `transitions` machine (recorded when first read, if this
        engine came from the start-up cache)."""
        if self._table is None:
            self._table = record_table(self.spec)
        return self._table

    @property
    def batch_generated(self) -> Generated:
        """The batch path's module, as generated (what the start-up cache stores beside `generated`)."""
        if self._batch_generated is None:
            self._batch_generated = generate(self.spec, self.table, lean=True)
        return self._batch_generated

    @cached_property
    def batch_dispatch(self) -> dict[str, dict[str, BatchStepFn]]:
        """The batch path's steps (`statemachine.runtime.pipeline`): generated from the same table by the
        same code generator as `dispatch`, returning None when applied and the rejection reason
        otherwise, with no `Outcome`. Built on first use."""
        return self._install(self.batch_generated)

    @property
    def table_size(self) -> int:
        return sum(len(plan.entries) for plan in self.table.values())


# File name -> the linecache entries of the live engines that registered it, oldest first. Builds
# of one spec share the name (a test's engine with a table of its own, a second build): whichever
# is collected first, the others keep their source.
_LIVE_SOURCES: dict[str, list[Any]] = {}


def _forget_source(filename: str, entry: Any) -> None:
    live = [e for e in _LIVE_SOURCES.get(filename, []) if e is not entry]
    _LIVE_SOURCES[filename] = live
    if not live:
        _LIVE_SOURCES.pop(filename, None)
    if linecache.cache.get(filename) is entry:
        if live:
            linecache.cache[filename] = live[-1]
        else:
            del linecache.cache[filename]
