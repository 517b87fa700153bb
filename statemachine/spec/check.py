"""Build a `Spec` from checked spec data, against a vocabulary of guard and effect implementations.

The checks, in order: every guard and effect the spec declares has an implementation in the
vocabulary, with the parameters the implementation takes; every reference (status, event,
trigger, guard, effect, invariant kind) resolves; every status is reachable from the initial one.
A spec that passes runs on both engines; proving it *right* is `statemachine.verify`'s job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from statemachine.spec.invariants import INVARIANT_KINDS
from statemachine.spec.model import (
    EffectRef,
    EffectSpec,
    EventType,
    GuardSpec,
    Invariant,
    PayloadField,
    Spec,
    SpecError,
    Status,
    TransitionSpec,
)
from statemachine.spec.semantics import VOCABULARY, Vocabulary

__all__ = ["build_spec", "content_digest", "unreachable_statuses"]


def content_digest(raw: Mapping[str, Any]) -> str:
    """What identifies a spec's content: the same data gives the same digest, whatever its layout."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _effect_ref(raw: str | Mapping[str, Mapping[str, Any]]) -> EffectRef:
    if isinstance(raw, str):
        return EffectRef(raw)
    ((name, params),) = raw.items()
    return EffectRef(name, tuple(sorted(params.items())))


def unreachable_statuses(initial: str, statuses: Iterable[str], transitions: Iterable[TransitionSpec]) -> list[str]:
    """Statuses no path of transitions leads to from `initial` (guards ignored: a graph property)."""
    edges = list(transitions)
    reached, frontier = {initial}, [initial]
    while frontier:
        here = frontier.pop()
        for t in edges:
            if here in t.sources and t.dest is not None and t.dest not in reached:
                reached.add(t.dest)
                frontier.append(t.dest)
    return [s for s in statuses if s not in reached]


class _Builder:
    def __init__(self, raw: dict[str, Any], source: str, vocabulary: Vocabulary) -> None:
        self.raw = raw
        self.source = source
        self.vocabulary = vocabulary

    def fail(self, path: str, message: str) -> SpecError:
        return SpecError(self.source, path, message)

    def guards(self) -> dict[str, GuardSpec]:
        guards = {}
        for n, g in self.raw["guards"].items():
            implementation = self.vocabulary.guards.get(n)
            if implementation is None:
                raise self.fail(f"guards.{n}", f"no implementation for guard {n!r} "
                                f"(known: {sorted(self.vocabulary.guards)})")
            # What a name means is said by its declaration, description included; the spec says
            # where it applies and how a failure is reported.
            guards[n] = GuardSpec(n, g["rejects_as"], implementation.description)
        return guards

    def effects(self) -> dict[str, EffectSpec]:
        effects = {}
        for n, e in self.raw["effects"].items():
            implementation = self.vocabulary.effects.get(n)
            if implementation is None:
                raise self.fail(f"effects.{n}", f"no implementation for effect {n!r} "
                                f"(known: {sorted(self.vocabulary.effects)})")
            declared = tuple(e.get("params", ()))
            if set(declared) != set(implementation.params):
                raise self.fail(f"effects.{n}.params", f"effect {n!r} takes {sorted(implementation.params)}, "
                                f"the spec declares {sorted(declared)}")
            effects[n] = EffectSpec(n, declared, implementation.description)
        return effects

    def effect_refs(self, items: list[Any], path: str, effects: Mapping[str, EffectSpec]) -> tuple[EffectRef, ...]:
        refs = tuple(_effect_ref(i) for i in items)
        for k, ref in enumerate(refs):
            if ref.name not in effects:
                raise self.fail(f"{path}[{k}]", f"unknown effect {ref.name!r}")
            given, wanted = {p for p, _ in ref.params}, set(effects[ref.name].params)
            if given != wanted:
                raise self.fail(f"{path}[{k}]", f"effect {ref.name!r} takes {sorted(wanted)}, got {sorted(given)}")
            for p in self.vocabulary.effects[ref.name].payload_params:
                if not isinstance(ref.param_map[p], str):
                    raise self.fail(f"{path}[{k}].{ref.name}.{p}", "must name a payload field (a string)")
        return refs

    def statuses(self, effects: Mapping[str, EffectSpec]) -> list[Status]:
        statuses: list[Status] = []
        for i, s in enumerate(self.raw["statuses"]):
            if any(s["name"] == t.name for t in statuses):
                raise self.fail(f"statuses[{i}].name", f"duplicate status {s['name']!r}")
            on_enter = self.effect_refs(s["on_enter"], f"statuses[{i}].on_enter", effects)
            statuses.append(Status(s["name"], s["holds_turn"], on_enter, s.get("description", ""), s["reapable"]))
        return statuses

    def events(self) -> list[EventType]:
        events: list[EventType] = []
        for i, e in enumerate(self.raw["events"]):
            if any(e["type"] == t.type for t in events):
                raise self.fail(f"events[{i}].type", f"duplicate event type {e['type']!r}")
            payload = tuple(
                PayloadField(n, f["type"], f.get("required", False), f.get("default"),
                             tuple(f["enum"]) if "enum" in f else None)
                for n, f in e["payload"].items()
            )
            for f in payload:
                if f.default is not None and f.enum is not None and f.default not in f.enum:
                    raise self.fail(f"events[{i}].payload.{f.name}.default", f"{f.default!r} is not in its enum")
            variant_by = e.get("variant_by")
            if variant_by is not None:
                selector = next((f for f in payload if f.name == variant_by), None)
                if selector is None or selector.enum is None:
                    raise self.fail(f"events[{i}].variant_by", f"{variant_by!r} must name a payload field with an enum")
                if not (selector.required or selector.default is not None):
                    raise self.fail(f"events[{i}].variant_by", f"{variant_by!r} must be required or have a default")
            events.append(EventType(e["type"], payload, variant_by, e.get("source", "provider"),
                                    bool(e.get("forgets_thread", False))))
        return events

    def transitions(
        self, statuses: Mapping[str, Status], triggers: set[str], guards: Mapping[str, GuardSpec],
        effects: Mapping[str, EffectSpec],
    ) -> list[TransitionSpec]:
        transitions: list[TransitionSpec] = []
        for i, t in enumerate(self.raw["transitions"]):
            path = f"transitions[{i}]"
            if t["trigger"] not in triggers:
                raise self.fail(f"{path}.trigger", f"unknown trigger {t['trigger']!r} (known: {sorted(triggers)})")
            sources = tuple(statuses) if t["sources"] == "*" else tuple(t["sources"])
            for k, s in enumerate(sources):
                if s not in statuses:
                    raise self.fail(f"{path}.sources[{k}]", f"unknown status {s!r}")
            dest = t.get("dest")
            if dest is not None and dest not in statuses:
                raise self.fail(f"{path}.dest", f"unknown status {dest!r}")
            for k, g in enumerate(t.get("guards", ())):
                if g not in guards:
                    raise self.fail(f"{path}.guards[{k}]", f"unknown guard {g!r}")
            effect_refs = self.effect_refs(t.get("effects", []), f"{path}.effects", effects)
            transitions.append(TransitionSpec(i, t["trigger"], sources, dest, tuple(t.get("guards", ())), effect_refs))
        return transitions

    def invariants(self) -> list[Invariant]:
        invariants = []
        for i, inv in enumerate(self.raw["invariants"]):
            if inv["kind"] not in INVARIANT_KINDS:
                known = sorted(INVARIANT_KINDS)
                raise self.fail(f"invariants[{i}].kind", f"unknown invariant kind {inv['kind']!r} (known: {known})")
            invariants.append(Invariant(inv["name"], inv["kind"], inv.get("description", "")))
        return invariants


def build_spec(raw: dict[str, Any], source: str = "<memory>", vocabulary: Vocabulary | None = None) -> Spec:
    """Spec data (already checked against the JSON Schema) -> a `Spec`, or a `SpecError` naming where."""
    vocab = VOCABULARY if vocabulary is None else vocabulary
    b = _Builder(raw, source, vocab)
    guards, effects = b.guards(), b.effects()
    statuses = b.statuses(effects)
    status_index = {s.name: s for s in statuses}
    if raw["initial"] not in status_index:
        raise b.fail("initial", f"unknown status {raw['initial']!r}")
    events = b.events()
    triggers = {t for e in events for t in e.triggers}
    transitions = b.transitions(status_index, triggers, guards, effects)
    invariants = b.invariants()
    names = [s.name for s in statuses]
    for name in unreachable_statuses(raw["initial"], names, transitions):
        raise b.fail(f"statuses[{names.index(name)}]", f"status {name!r} is unreachable from {raw['initial']!r}")
    return Spec(
        name=raw["name"],
        initial=raw["initial"],
        statuses=tuple(statuses),
        events=tuple(events),
        guards=guards,
        effects=effects,
        on_applied=b.effect_refs(raw["on_applied"], "on_applied", effects),
        transitions=tuple(transitions),
        invariants=tuple(invariants),
        source=source,
        digest=content_digest(raw),
        vocabulary=vocab,
        _status_index=status_index,
        _event_index={e.type: e for e in events},
    )
