"""The finite universe of events the exhaustive checks draw from, derived from the spec's
declarations and the requirements.

The rule: every event field and session field that a guard, an effect or a requirement reads
takes at least two values; a field nothing reads takes one. What a guard or effect reads comes from
its declaration (`statemachine.spec.semantics`): its slots, the event attributes its code reads
(`ev.provider`, `ev.created_at`, ...) and the payload fields it names; what a requirement reads,
from the paths it names.

Why these values are enough: every guard compares the event's turn only with the active turn,
the pending turn and the thread's finished turns, so what matters about an event's turn is its
class: none, the active one, the pending one, a finished one, or another. Three turn ids realise
every class from every reachable state that uses at most two of them. Code reads the event's turn
only through slot `t` (the semantics refuse `ev.turn_id`), so a trigger none of whose guards and
effects reads `t`, and to which no contract reading `event.turnId` applies, does the same for
every turn id: it appears without one. The provider is only ever copied into providerName and
compared with it for equality, so what matters is whether the event's provider is the session's:
two providers realise both classes (the checkers keep states up to a renaming of providers, as of
turn ids). Effects read only the payload fields their declarations name (`Effect.payload_params`,
`Guard.payload_fields`), and contracts the fields they name; per trigger exactly those fields
appear present and absent (the cost grows with the fields one trigger reads, and a trigger that
reads too many is refused); the variant field takes every value of its enum (and is also omitted
when it has a default). Two timestamps, in both orders, exercise `updatedAt`. One non-lifecycle
type checks that others are ignored.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import product
from math import prod
from typing import Any

from statemachine.core.session import FIELDS, Session
from statemachine.engine.machine import vocabulary_of
from statemachine.spec.model import EventType, Spec, SpecError, Trigger
from statemachine.spec.requirements import DERIVED_SETS, Requirement, Requirements, predicate_paths
from statemachine.spec.semantics import OPENS_REQUEST_CLASS, SLOTS

__all__ = ["CARRIED", "CARRIED_VALUE", "IGNORED_TYPE", "MAX_PAYLOAD_COMBINATIONS", "PAYLOAD_TEXT", "PROVIDER",
           "PROVIDERS", "REQUEST_IDS", "SESSION_WIRE", "TIMES", "TURNS", "EventTemplate", "event_fields_read",
           "event_universe", "field_values", "fields_read", "opened_requests", "paired_envelope",
           "reads_event_provider", "reads_event_turn", "session_fields_read", "unvaried"]

TURNS = ("turn-1", "turn-2", "turn-3")
TIMES = ("2026-01-01T00:00:01.000Z", "2026-01-01T00:00:02.000Z")
# Two providers: the checkers keep states up to a renaming of them, so every state holds the first
# and the events come from both (the session's own provider and another one).
PROVIDERS = ("codex", "claudeAgent")
PROVIDER = PROVIDERS[0]
IGNORED_TYPE = "item.started"
# Session fields the lifecycle carries for the orchestrator and never writes: no event sets them,
# so every thread starts without them; the induction starts its states with this value instead.
CARRIED = tuple(f.attr for f in FIELDS if not f.lifecycle and f.attr != "thread_id")
CARRIED_VALUE = "carried"
# Session attribute -> its wire name (the requirements' paths).
SESSION_WIRE = {f.attr: f.wire for f in FIELDS}


@dataclass(frozen=True)
class EventTemplate:
    """An event without its eventId and threadId, which each use fills in."""

    type: str
    turn_id: str | None
    created_at: str
    payload: tuple[tuple[str, Any], ...]
    provider: str = PROVIDER

    def wire(self, event_id: str, thread_id: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "eventId": event_id,
            "type": self.type,
            "provider": self.provider,
            "threadId": thread_id,
            "createdAt": self.created_at,
        }
        if self.turn_id is not None:
            event["turnId"] = self.turn_id
        event["payload"] = dict(self.payload)
        return event

    def label(self) -> str:
        payload = ",".join(f"{k}={v}" for k, v in self.payload)
        return f"{self.type}({payload}) turn={self.turn_id or '-'} createdAt={self.created_at} from={self.provider}"


# The payload combinations one trigger may need (2 per field read). Beyond this the spec is
# refused: the exhaustive checks would take minutes, and a lifecycle needs no such payloads.
MAX_PAYLOAD_COMBINATIONS = 64


def _effect_refs(spec: Spec, trigger: str) -> list[Any]:
    """The effect uses a `trigger` may run: its transitions' effects, the on-enter hooks of their
    destinations, and on_applied."""
    refs = [e for t in spec.transitions_for(trigger) for e in t.effects]
    refs += [e for t in spec.transitions_for(trigger) if t.dest is not None for e in spec.status(t.dest).on_enter]
    return refs + list(spec.on_applied)


@cache
def _event_attributes(code: str) -> frozenset[str]:
    """The attributes of the event (`ev.<name>`) a declaration's code reads."""
    tree = ast.parse("def _():\n" + "".join("    " + line + "\n" for line in code.splitlines()))
    return frozenset(n.attr for n in ast.walk(tree)
                     if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "ev")


# Event attributes a declaration may read -> the wire field the universe varies for it.
_EVENT_WIRE = {"provider": "provider", "created_at": "createdAt", "created_dt": "createdAt"}


def _declarations(spec: Spec, trigger: str) -> Iterator[tuple[tuple[str, ...], str]]:
    """(slots read, code) of every guard and effect that may run for `trigger`."""
    vocabulary = vocabulary_of(spec)
    for t in spec.transitions_for(trigger):
        for g in t.guards:
            guard = vocabulary.guards[g]
            yield guard.reads, guard.expr
    for e in _effect_refs(spec, trigger):
        effect = vocabulary.effects[e.name]
        yield effect.reads, effect.code


def _contract_fields(spec: Spec, requirements: Requirements | None, trigger: str) -> frozenset[str]:
    """The event fields the contracts that apply to `trigger` read, once what the trigger fixes
    (type, trigger, a variant field without a default) is known."""
    if requirements is None:
        return frozenset()
    parsed = Trigger.parse(trigger)
    known: dict[str, Any] = {"event.type": parsed.type, "event.trigger": trigger}
    event_type = spec.event_type(parsed.type)
    if event_type is not None and event_type.variant_by is not None:
        declared = event_type.field(event_type.variant_by)
        if declared is not None and declared.default is None:  # always present: its value is known
            known[f"event.payload.{event_type.variant_by}"] = parsed.variant
    return frozenset().union(*(r.event_fields_given(known) for r in requirements.of_form("contract")
                               if r.applies_to_trigger(parsed.type, trigger)))


def fields_read(spec: Spec, trigger: str, requirements: Requirements | None = None) -> tuple[str, ...]:
    """The payload fields that can change what `trigger` does, or what a contract on it says: those
    the effects it may run declare they read, those its guards declare they read (a stop
    request's onlyIfSettled), and those the contracts that apply to it name."""
    vocabulary = vocabulary_of(spec)
    fields = [f for e in _effect_refs(spec, trigger) for f in vocabulary.effects[e.name].payload_fields(e.param_map)]
    fields += [f for t in spec.transitions_for(trigger) for g in t.guards for f in vocabulary.guards[g].payload_fields]
    fields += sorted(f.removeprefix("payload.") for f in _contract_fields(spec, requirements, trigger)
                     if f.startswith("payload."))
    return tuple(dict.fromkeys(fields))


def event_fields_read(spec: Spec, trigger: str, requirements: Requirements | None = None) -> frozenset[str]:
    """The envelope fields (`turnId`, `provider`, `createdAt`, `eventId`) and payload fields
    (`payload.<name>`) that a guard or effect `trigger` may run, or a contract on it, reads."""
    read = {f"payload.{f}" for f in fields_read(spec, trigger, requirements)}
    for reads, code in _declarations(spec, trigger):
        if "t" in reads:
            read.add("turnId")
        if "ev" in reads:
            read |= {_EVENT_WIRE[a] for a in _event_attributes(code) if a in _EVENT_WIRE}
    contract = _contract_fields(spec, requirements, trigger)
    read |= {f for f in contract if f in ("turnId", "provider", "createdAt", "eventId")}
    return frozenset(read)


def reads_event_turn(spec: Spec, trigger: str, requirements: Requirements | None = None) -> bool:
    """Whether anything about `trigger` depends on the event's turn: a guard or effect reading slot
    `t`, or a contract that applies to it reading `event.turnId`."""
    return "turnId" in event_fields_read(spec, trigger, requirements)


def reads_event_provider(spec: Spec, trigger: str, requirements: Requirements | None = None) -> bool:
    """Whether anything about `trigger` reads the event's provider (`record_provider` in
    on_applied does, for every trigger; `applied_records_provider` too)."""
    return "provider" in event_fields_read(spec, trigger, requirements)


def session_fields_read(spec: Spec, requirements: Requirements | None = None) -> frozenset[str]:
    """The session fields (attribute names) a guard or effect of the spec reads or writes, or a
    requirement names (a whole session, as in `same: [before, after]`, names them all)."""
    vocabulary = vocabulary_of(spec)
    slots: set[str] = set()
    for t in spec.transitions:
        slots.update(s for g in t.guards for s in vocabulary.guards[g].reads)
    refs = [e for t in spec.transitions for e in t.effects]
    refs += [e for s in spec.statuses for e in s.on_enter] + list(spec.on_applied)
    for e in refs:
        slots.update(vocabulary.effects[e.name].reads)
        slots.update(vocabulary.effects[e.name].writes)
    read = {"status"} | {f for s in slots if (f := SLOTS[s].session_field) is not None}
    wire = {v: k for k, v in SESSION_WIRE.items()}
    for r in requirements.items if requirements is not None else ():
        for p in _requirement_paths(r):
            root, _, rest = p.partition(".")
            if root in ("before", "after") and rest == "":
                read |= set(SESSION_WIRE) - {"thread_id"}
            elif root in ("session", "before", "after") and rest in wire:
                read.add(wire[rest])
            elif root in ("session", "before", "after") and rest in DERIVED_SETS:
                read.add(DERIVED_SETS[rest])
    return frozenset(read)


_ABSENT = object()  # a payload field the event does not carry


def field_values(spec: Spec, requirements: Requirements | None, sessions: Iterable[Session],
                 universe: Iterable[EventTemplate]) -> dict[str, set[Any]]:
    """The values each field that a guard, an effect or a requirement reads takes in a check:
    session fields (`session.<wire name>`) over `sessions`, event fields (`event.<wire name>`) over
    the events of `universe` of the types the spec lists (a payload field: each value, or absent)."""
    session_fields = sorted(session_fields_read(spec, requirements))
    out: dict[str, set[Any]] = {f"session.{SESSION_WIRE[f]}": set() for f in session_fields}
    for session in sessions:
        for f in session_fields:
            out[f"session.{SESSION_WIRE[f]}"].add(getattr(session, f))
    read = set().union(*(event_fields_read(spec, t, requirements) for t in spec.triggers))
    for f in sorted(read):
        out[f"event.{f}"] = set()
    getters = {"turnId": lambda e: e.turn_id, "provider": lambda e: e.provider, "createdAt": lambda e: e.created_at}
    for template in universe:
        if spec.event_type(template.type) is None:
            continue
        payload = dict(template.payload)
        for f in read:
            if f in getters:
                out[f"event.{f}"].add(getters[f](template))
            elif f.startswith("payload."):
                out[f"event.{f}"].add(payload.get(f.removeprefix("payload."), _ABSENT))
    return out


def unvaried(values: dict[str, set[Any]]) -> list[str]:
    """The fields of `field_values` that take a single value (or none)."""
    return sorted(name for name, seen in values.items() if len(seen) < 2)


def _requirement_paths(r: Requirement) -> Iterable[str]:
    for raw in (r.holds, r.when, r.then):
        if raw is not None:
            yield from predicate_paths(raw)


# Every present text field carries the same text. What matters about it is whether lastError
# takes it, and which field it came from shows in the present/absent combinations; a text per
# field only multiplied the error values a state can hold (1,067 reachable states against 747,
# with every mutant caught by the same requirements either way).
PAYLOAD_TEXT = "payload text"
# An `id` field (a request's id) takes two values that differ only in their JSON type, so that a
# rule confusing 1 with "1" shows; two open requests are enough to tell "the only one open" from
# "one of several", which is all a guard reads of them.
REQUEST_IDS: tuple[Any, ...] = (1, "1")


def _present(event_type: EventType, name: str) -> tuple[Any, ...]:
    """The values a present payload field takes."""
    declared = event_type.field(name)
    if declared is not None and declared.type == "boolean":
        return (True,)
    if declared is not None and declared.type == "id":
        return REQUEST_IDS
    return (PAYLOAD_TEXT,)


def _is_id(event_type: EventType, name: str) -> bool:
    declared = event_type.field(name)
    return declared is not None and declared.type == "id"


def _request_kinds(spec: Spec) -> list[str]:
    """Every kind of request the spec's effects open, sorted (the i-th takes REQUEST_IDS[i])."""
    vocabulary = vocabulary_of(spec)
    kinds = {str(ref.param_map[effect.params[0]]) for t in spec.triggers for ref in _effect_refs(spec, t)
             if OPENS_REQUEST_CLASS in (effect := vocabulary.effects[ref.name]).classes
             and effect.params and effect.params[0] in ref.param_map}
    return sorted(kinds)


def opened_requests(spec: Spec) -> tuple[tuple[Any, str], ...]:
    """The (requestId, kind) pairs the universe's events open: each kind with its own id."""
    return tuple((REQUEST_IDS[i % len(REQUEST_IDS)], kind) for i, kind in enumerate(_request_kinds(spec)))


def _opened_id(spec: Spec, trigger: str) -> tuple[Any, ...] | None:
    """The request id an event of `trigger` carries when it opens a request (the id of its kind),
    else None."""
    vocabulary = vocabulary_of(spec)
    kinds = _request_kinds(spec)
    for ref in _effect_refs(spec, trigger):
        effect = vocabulary.effects[ref.name]
        if OPENS_REQUEST_CLASS in effect.classes and effect.params and effect.params[0] in ref.param_map:
            return (REQUEST_IDS[kinds.index(str(ref.param_map[effect.params[0]])) % len(REQUEST_IDS)],)
    return None


def _payloads(spec: Spec, event_type: EventType, trigger: Trigger,
              requirements: Requirements | None) -> list[tuple[tuple[str, Any], ...]]:
    fixed: list[tuple[str, Any]] = []
    # The variant written out; for the default variant also omitted (the parser's defaulting is
    # part of what is checked).
    variant_forms: list[tuple[tuple[str, Any], ...]] = [()]
    for f in event_type.payload:
        if f.name == event_type.variant_by:
            variant_forms = [((f.name, trigger.variant),)]
            if f.default is not None and f.default == trigger.variant:
                variant_forms.append(())
        elif f.required:
            fixed.append((f.name, _present(event_type, f.name)[0]))
    varied = [f for f in fields_read(spec, trigger.name, requirements)
              if f not in dict(fixed) and f != event_type.variant_by]
    opened = _opened_id(spec, trigger.name)
    choices = [[(name, opened[0])] if opened is not None and _is_id(event_type, name)
               else [None, *((name, v) for v in _present(event_type, name))] for name in varied]
    if prod(len(c) for c in choices) > MAX_PAYLOAD_COMBINATIONS:
        raise SpecError(spec.source, f"events.{event_type.type}",
                        f"trigger {trigger.name} reads {len(varied)} payload fields ({', '.join(varied)}); the "
                        f"exhaustive checks vary each present and absent and allow at most "
                        f"{MAX_PAYLOAD_COMBINATIONS} combinations per trigger")
    combos = list(product(*choices))
    return [(*form, *fixed, *(c for c in combo if c is not None)) for form in variant_forms for combo in combos]


# -- independence: which envelope fields may vary together rather than in product -----------------

_CORE = "outcome"  # what decides whether and how an event is taken: the guards, and the outcome


class _Components:
    """Union-find over the names of fields, slots and the core."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, names: Iterable[str]) -> None:
        roots = [self.find(n) for n in names]
        for r in roots[1:]:
            self.parent[r] = roots[0]


def _slot_node(slot: str) -> str:
    if slot == "t":
        return "event.turnId"
    field = SLOTS[slot].session_field
    if slot == "upd_dt":
        field = "updated_at"
    if slot == "fin":
        return "memory.finished"
    return f"session.{field}" if field is not None else f"slot.{slot}"


def _declaration_nodes(reads: tuple[str, ...], writes: tuple[str, ...], code: str,
                       payload: Iterable[str]) -> set[str]:
    nodes = {_slot_node(x) for x in (*reads, *writes) if x != "ev"}
    if "ev" in reads:
        for a in _event_attributes(code):
            if a in _EVENT_WIRE:
                nodes.add(f"event.{_EVENT_WIRE[a]}")
            elif a in ("type", "trigger"):
                nodes.add(_CORE)
    return nodes | {f"event.payload.{f}" for f in payload}


def _path_node(path: str) -> str | None:
    """The node a requirement path reads (None for a whole session, expanded by `_terms`)."""
    root, _, rest = path.partition(".")
    if root == "outcome" or path in ("event.type", "event.trigger"):
        return _CORE
    if root == "event":
        return path
    if rest == "finished":
        return "memory.finished"
    if rest == "seen":
        return "memory.seen"
    wire = {v: k for k, v in SESSION_WIRE.items()} | DERIVED_SETS
    return f"session.{wire[rest]}" if rest in wire else None


def _terms(raw: Any) -> Iterator[Any]:
    """`raw` as a conjunction of terms: `all` split, `implies` distributed over a conjunction in its
    consequent, a whole-session `same` split field by field."""
    ((op, arg),) = raw.items()
    if op == "all":
        for part in arg:
            yield from _terms(part)
    elif op == "implies":
        for term in _terms(arg[1]):
            yield {"implies": [arg[0], term]}
    elif op == "same" and all(p in ("before", "after") for p in arg):
        for f in SESSION_WIRE.values():
            yield {"same": [f"{arg[0]}.{f}", f"{arg[1]}.{f}"]}
    else:
        yield raw


def _components(spec: Spec, requirements: Requirements | None) -> tuple[_Components, list[set[str]]]:
    """The fields joined by the spec's declarations (each joins everything it reads and writes; a
    guard joins it to the core), and the node sets each requirement term reads."""
    vocabulary = vocabulary_of(spec)
    parts = _Components()
    parts.find(_CORE)
    for t in spec.transitions:
        for g in t.guards:
            guard = vocabulary.guards[g]
            parts.join([_CORE, *_declaration_nodes(guard.reads, (), guard.expr, guard.payload_fields)])
    refs = [e for t in spec.transitions for e in t.effects]
    refs += [e for st in spec.statuses for e in st.on_enter] + list(spec.on_applied)
    for e in refs:
        effect = vocabulary.effects[e.name]
        nodes = _declaration_nodes(effect.reads, effect.writes, effect.code, effect.payload_fields(e.param_map))
        if nodes:
            parts.join(nodes)
    terms: list[set[str]] = []
    for r in requirements.items if requirements is not None else ():
        whole = r.holds if r.form == "state" else r.then
        if whole is None:
            continue
        context = {n for p in predicate_paths(r.when) if (n := _path_node(p))} if r.when is not None else set()
        for term in _terms(whole):
            terms.append(context | {n for p in predicate_paths(term) if (n := _path_node(p))})
    return parts, terms


@lru_cache(maxsize=16)  # per (spec, requirements) object: both compare by identity
def _paired_envelope_cached(spec: Spec, requirements: Requirements | None) -> bool:
    parts, terms = _components(spec, requirements)
    core = parts.find(_CORE)
    time, provider = parts.find("event.createdAt"), parts.find("event.provider")
    if core in (time, provider) or time == provider:
        return False
    return not any({time, provider} <= {parts.find(n) for n in term} for term in terms)


def paired_envelope(spec: Spec, requirements: Requirements | None = None) -> bool:
    """Whether the event's createdAt and provider may vary together (each event at the first
    timestamp from the first provider, and at the second from the second) rather than in product.

    They may when they are independent: no guard reads either or anything either flows into (the
    timestamp only into updatedAt, the provider only into providerName), no declaration reads
    both, and no requirement relates them (each conjunct of a requirement reads at most one of
    the two, with what it flows into). Then every state meets every class of each (for the time:
    earlier, equal, later than updatedAt, or updatedAt null; for the provider: the session's own or
    another) with every event shape and turn, which is all a requirement can tell apart; what the
    product adds is the pairs of classes, which nothing reads together."""
    return _paired_envelope_cached(spec, requirements)


def event_universe(spec: Spec, requirements: Requirements | None = None) -> list[EventTemplate]:
    """Every lifecycle event shape x turn class x (timestamp, provider), plus one ignored type; each
    of those varies only for a trigger where something reads it, and the timestamp and the provider
    in pairs when they are independent (`paired_envelope`), else in product. `requirements`: the
    fields their contracts read are varied too."""
    turned: tuple[str | None, ...] = (None, *TURNS)
    paired = paired_envelope(spec, requirements)
    universe = []
    for e in spec.events:
        for trigger in e.trigger_values:
            read = event_fields_read(spec, trigger.name, requirements)
            turns = turned if "turnId" in read else (None,)
            providers = PROVIDERS if "provider" in read else (PROVIDER,)
            times = TIMES if "createdAt" in read else TIMES[:1]
            envelopes: list[tuple[str, str]] = (
                list(zip(times, providers, strict=True)) if paired and len(times) == len(providers)
                else list(product(times, providers)))
            universe += [EventTemplate(e.type, turn, at, payload, provider)
                         for payload in _payloads(spec, e, trigger, requirements)
                         for turn in turns for at, provider in envelopes]
    universe.append(EventTemplate(IGNORED_TYPE, None, TIMES[0], ()))
    return universe
