"""The fast engine: the spec's `transitions` machine, recorded once into a lookup table.

For each (trigger, status), the table holds one entry per combination of values of the guards
that trigger's transitions read: what the `transitions` machine did in that case (the status it
entered, the effects it ran in order: on-enter, the transition's effects, on_applied; the spec
transition taken; or the rejection reason). Recording drives the real machine with a probe whose
guards return forced values and whose effects are only written down; so the table cannot differ
from the machine unless a guard were impure. `verify`'s agreement check proves they give the same
outcome and session on every reachable state x every event. `LifecycleMachine` stays the
reference engine (`SessionProjector(engine="transitions")`).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from .events import Event
from .machine import Step, build_transitions_machine
from .semantics import EFFECTS, GUARDS, Cursor, EffectFn, GuardFn
from .session import Session
from .spec import Spec

__all__ = ["CompiledMachine", "compiled_for"]


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


@dataclass(frozen=True, slots=True)
class _Entry:
    applied: bool
    status: str
    effects: tuple[tuple[EffectFn, Mapping[str, Any]], ...] = ()
    reason: str | None = None
    transition: int | None = None


def _forced_guard(name: str) -> GuardFn:
    return lambda probe: bool(probe.forced[name])  # type: ignore[attr-defined]


def _recording_effect(name: str) -> EffectFn:
    return lambda probe, params: probe.log.append((name, params))  # type: ignore[attr-defined]


_Plan = tuple[tuple[GuardFn, ...], tuple[_Entry, ...]]


class CompiledMachine:
    """Same `step()` as `LifecycleMachine`, answered from the recorded table."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        probe_machine = build_transitions_machine(
            spec,
            guards={name: _forced_guard(name) for name in GUARDS},
            effects={name: _recording_effect(name) for name in EFFECTS},
        )
        self._plans: dict[tuple[str, str], _Plan] = {}
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
                        effects = tuple((EFFECTS[n], params) for n, params in probe.log)
                        entries.append(_Entry(True, probe.status, effects, None, probe.taken))
                    else:
                        entries.append(_Entry(False, status, (), probe.reason or f"invalid_in_{status}"))
                self._plans[(trigger, status)] = (tuple(GUARDS[n] for n in names), tuple(entries))

    @property
    def table_size(self) -> int:
        return sum(len(entries) for _, entries in self._plans.values())

    def step(self, session: Session, finished: Container[str], event: Event) -> Step:
        plan = self._plans.get((event.trigger or "", session.status))
        if plan is None:
            return Step(False, session, f"invalid_in_{session.status}")
        guards, entries = plan
        cursor = Cursor.load(session, finished, event)
        index = 0
        for bit, guard in enumerate(guards):
            if guard(cursor):
                index |= 1 << bit
        entry = entries[index]
        if not entry.applied:
            return Step(False, session, entry.reason)
        cursor.status = entry.status
        for effect, params in entry.effects:
            effect(cursor, params)
        return Step(True, cursor.session_after(session), None, tuple(cursor.newly_finished), entry.transition)


@cache
def compiled_for(spec: Spec) -> CompiledMachine:
    """One compiled table per spec per process."""
    return CompiledMachine(spec)

