"""The fast engine: the spec's `transitions` machine, recorded once into a table, then compiled.

Recording. For each (trigger, status), the table holds one entry per combination of values of the
guards that trigger's transitions read: what the `transitions` machine did in that case (the
status it entered, the effects it ran in order: on-enter, the transition's, on_applied; the spec
transition taken; or the rejection reason). Recording drives the real machine with a probe whose
guards return forced values and whose effects are only written down; so the table cannot differ
from the machine unless a guard were impure.

Compiling. Each (trigger, status) then becomes one generated Python function: a decision tree
over the guards it needs, with each entry's effects written out in a row (from
`semantics.EFFECT_SOURCE`), building the new `Session` and the `Outcome` directly. That removes
the scratch cursor, the per-guard and per-effect calls and the intermediate `Step` from every
event. Spec values never become source text: each is bound to a name in the functions' globals.

`verify`'s agreement check proves the result gives the same outcome and session as the
`transitions` machine on every reachable state x every event; `LifecycleMachine` stays the
reference engine (`SessionProjector(engine="transitions")`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from .events import Event
from .machine import build_transitions_machine
from .outcome import Outcome, OutcomeKind
from .record import ThreadRecord
from .semantics import EFFECT_SOURCE, EFFECTS, GUARD_SOURCE, GUARDS, EffectFn, GuardFn
from .session import Session
from .spec import Spec

__all__ = ["CompiledMachine", "Entry", "Plan", "StepFn", "compiled_for", "record_table"]

# One step of one lifecycle event: (the thread's record, the event, the finished-turn cap) ->
# its outcome, with the record already updated when applied.
StepFn = Callable[[ThreadRecord, Event, int], Outcome]


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


def _forced_guard(name: str) -> GuardFn:
    return lambda probe: bool(probe.forced[name])  # type: ignore[attr-defined]


def _recording_effect(name: str) -> EffectFn:
    return lambda probe, params: probe.log.append((name, params))  # type: ignore[attr-defined]


def record_table(spec: Spec) -> dict[tuple[str, str], Plan]:
    """(trigger, status) -> Plan, for every pair some transition leaves; the rest are rejected."""
    probe_machine = build_transitions_machine(
        spec,
        guards={name: _forced_guard(name) for name in GUARDS},
        effects={name: _recording_effect(name) for name in EFFECTS},
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
                    entries.append(Entry(False, status, (), probe.reason or f"invalid_in_{status}"))
            table[(trigger, status)] = Plan(names, tuple(entries))
    return table


_REMEMBER = re.compile(r"^(\s*)remember\((\w+)\)$")


class _Codegen:
    """Writes step functions; every spec value they use is a global `k<n>`, never source text."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "new": tuple.__new__,  # skips the NamedTuples' Python-level __new__
            "Session": Session,
            "Outcome": Outcome,
            "APPLIED": OutcomeKind.APPLIED,
            "REJECTED": OutcomeKind.REJECTED,
        }
        self._names: dict[tuple[type, Any], str] = {}

    def const(self, value: Any) -> str:
        # The same value gets the same name, so equal entries give equal code (see `tree`).
        try:
            return self._names[(type(value), value)]
        except TypeError:  # unhashable: a name of its own
            key = None
        except KeyError:
            key = (type(value), value)
        name = f"k{len(self.namespace)}"
        self.namespace[name] = value
        if key is not None:
            self._names[key] = name
        return name

    def effect(self, name: str, params: Mapping[str, Any]) -> list[str]:
        source = EFFECT_SOURCE[name].format_map({p: self.const(v) for p, v in params.items()})
        lines = []
        for line in source.splitlines():
            m = _REMEMBER.match(line)
            if m is None:
                lines.append(line)
            else:  # the projector's bounded FIFO memory, inline (`record.remember`)
                pad, key = m.groups()
                lines += [f"{pad}fin[{key}] = None", f"{pad}if len(fin) > cap:", f"{pad}    del fin[next(iter(fin))]"]
        return lines

    def leaf(self, entry: Entry) -> list[str]:
        if not entry.applied:
            return [f"return new(Outcome, (REJECTED, ev, s, s, {self.const(entry.reason)}, None))"]
        effects = [line for name, params in entry.effects for line in self.effect(name, params)]
        # A field no effect touches is copied from `s` as it is; one an effect reads is loaded first.
        used = _names_in(effects)
        loads = [f"{local} = {source}" for local, source in _FIELD_LOCALS.items() if _read_first(local, effects)]
        built = {"status": self.const(entry.status), "active_turn_id": "turn"}
        built |= {field: local for local, field in _SESSION_FIELD.items() if local in used}
        fields = ", ".join(built.get(f, f"s.{f}") for f in Session._fields)
        return [
            *loads,
            *effects,
            f"after = new(Session, ({fields}))",
            "rec.session = after",
            *(["rec.updated_dt = upd_dt"] if "upd_dt" in used else []),
            f"return new(Outcome, (APPLIED, ev, s, after, None, {self.const(entry.transition)}))",
        ]

    def tree(self, plan: Plan, i: int = 0, bits: int = 0) -> list[str]:
        """Test guard i only where its value changes the code that follows."""
        if i == len(plan.guards):
            return self.leaf(plan.entries[bits])
        if_true, if_false = self.tree(plan, i + 1, bits | 1 << i), self.tree(plan, i + 1, bits)
        if if_true == if_false:
            return if_true
        indent = ["    " + line for line in if_true]
        return [f"if {GUARD_SOURCE[plan.guards[i]]}:", *indent, "else:", *("    " + line for line in if_false)]

    def function(self, label: str, body: list[str]) -> tuple[StepFn, str]:
        used = _names_in(body)
        head = [f"    {local} = {source}" for local, source in _STEP_LOCALS.items() if local in used]
        source = "\n".join(["def step(rec, ev, cap):", *head, *("    " + line for line in body)]) + "\n"
        scope: dict[str, Any] = {}
        # Safe: the source holds only names written here; spec values are bound in the namespace.
        exec(compile(source, f"<compiled {label}>", "exec"), self.namespace, scope)
        fn: StepFn = scope["step"]
        return fn, source


# The local names of EFFECT_SOURCE and GUARD_SOURCE, and where each starts from. Only those a
# function uses are loaded.
_STEP_LOCALS = {
    "s": "rec.session",
    "turn": "s.active_turn_id",
    "t": "ev.turn_id",
    "fin": "rec.finished",
}
_FIELD_LOCALS = {
    "err": "s.last_error",
    "upd": "s.updated_at",
    "upd_dt": "rec.updated_dt",
    "prov": "s.provider_name",
}
_SESSION_FIELD = {"err": "last_error", "upd": "updated_at", "prov": "provider_name"}
_NAME = re.compile(r"[A-Za-z_]\w*")


def _names_in(lines: list[str]) -> set[str]:
    return {m.group() for line in lines for m in _NAME.finditer(line)}


def _read_first(local: str, lines: list[str]) -> bool:
    """Whether `lines` may read `local` before setting it: false only when its first mention is
    an unconditional `local = <expression without it>`."""
    for line in lines:
        if local in _names_in([line]):
            target, _, value = line.partition(" = ")
            return not (target == local and local not in _names_in([value]))
    return False


class CompiledMachine:
    """A step function per (status, trigger), generated from the table recorded from the machine."""

    def __init__(self, spec: Spec, table: Mapping[tuple[str, str], Plan] | None = None) -> None:
        """`table` replaces the recorded one (tests use this to show the agreement check failing)."""
        self.spec = spec
        self.table: Mapping[tuple[str, str], Plan] = record_table(spec) if table is None else table
        gen = _Codegen()
        self.sources: dict[tuple[str, str], str] = {}
        self.dispatch: dict[str, dict[str, StepFn]] = {}
        for status in spec.status_names:
            steps = self.dispatch[status] = {}
            for trigger in spec.triggers:
                plan = self.table.get((trigger, status))
                nothing_leaves = Entry(False, status, (), f"invalid_in_{status}")
                body = gen.tree(plan) if plan is not None else gen.leaf(nothing_leaves)
                steps[trigger], self.sources[(trigger, status)] = gen.function(f"{trigger} @ {status}", body)

    @property
    def table_size(self) -> int:
        return sum(len(plan.entries) for plan in self.table.values())


@cache
def compiled_for(spec: Spec) -> CompiledMachine:
    """One compiled machine per spec per process."""
    return CompiledMachine(spec)
