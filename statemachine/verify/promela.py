"""Export the spec as a Promela model for the spin model checker.

The model is generated from the `Spec` object alone; no transition table is written here. What
this module does write is its own meaning for each guard and effect *name* (`GUARDS`, `EFFECTS`
below), written from the names' descriptions and not from the declarations' code in
`statemachine.spec.semantics`, so that spin checks the spec against an independent implementation
of its vocabulary.

Abstraction (one session):
- `status`: the spec's statuses, as an mtype;
- `turn`: the active turn, 0 for none or a turn id 1..N;
- `fin[t]`: turn t has completed, aborted or been cleared (the thread's remembered turns);
- `pend`: the pending turn start, 0 for none, 255 for one whose turn id is unknown, else the
  expected turn;
- the open requests, exactly: request ids are 0 (an event carrying none) and 1..K, one per kind of
  request the spec's effects open (`request_kinds`; as in the verification universe, a request
  of a kind is always opened with its kind's id, so two requests of one kind are never open at
  once); `rq[i]` is what the open request with id i asks (`AW_none`: not open), `ro[i]` its place
  among the open ones (1 = oldest), `nrq` how many are open. At most K are open: with fewer
  kinds than the bound of open requests (32), `request_room` never refuses one here;
- `aw`: what the provider awaits (what the newest open request asks), `AW_none` or one `AW_`
  name per value the spec's effects set. The temporal model leaves `aw` and the open requests
  out (no claim reads them); a guard that reads the requests (a request's room; a resolution
  settling a session that ran only for requests) is a guess there, `nd`, made per event both
  ways: the model then has every run of the spec and more, so a claim proven on it holds on the
  spec (a violation it reports may lie in the extra runs: its trail names the guesses' events);
- each event: one trigger of the spec x a turn (0 = untargeted, 1..N); x `rid`, its request id:
  the id of its kind for a trigger that opens a request, 0..K for one whose guards or effects
  read the request id (a resolution: none, an open one, one not open), else 0; and for a
  trigger whose guards read another payload field (the stop request's onlyIfSettled) x `opt` 0
  and 1. `@event` lines carry `rid` and `opt`, so a trail replays with both.
lastError, updatedAt and providerName are not modelled: no guard reads them, so they cannot
change which transition is taken; the effects that only write them render as `skip`. Payload
fields other than the variant, the request id and `opt`'s are therefore irrelevant too. The
thread's memory of finished turns is unbounded here (the projector's is capped), and event ids
(de-duplication) are not modelled: a duplicate changes nothing by construction of the
projector, not of the spec.

State invariants are asserted in the initial state and after every event; step invariants
(`updated_at_monotonic`, `unapplied_is_noop`) read fields or outcomes outside the model and are
not checked by spin.

Each event prints one line `@event <trigger index> <turn> <rid> <opt> <label>` and, when an
invariant breaks, one line `@violated <number>` per broken invariant or requirement (its place in
`violation_names`), so that replaying a trail (`spin -t`) yields the path as data.

No string of the spec or the requirements is ever written into the model as text: spin runs the
C preprocessor over it and compiles the verifier from it, so a string that ended a comment (the
preprocessor splices `*`, backslash, newline or CR, `/` into `*/`) would become model code, and a
`c_decl` or `c_code` block runs when the verifier does. Names that are identifiers by the schema
(statuses, guards, effects) appear only as identifiers this module derives and checks; every
other string (variant values, so trigger names; parameters; descriptions; file names;
requirement names) appears as a number, as a label of checked characters, or not at all.

What is a copy of a declaration is derived from it (`statemachine.spec.semantics`): which guards
read the payload, which payload field names a request (what the effects that open requests read)
and which kind each opens, which effects write only what the provider awaits and its open
requests, which guards read those, which effects write nothing the model keeps (rendered
`skip`), and the awaiting values. The meaning of each guard and effect over the model's
variables (`GUARDS`, `EFFECTS`) is written here on purpose, independently, and
tests/verify/test_promela.py runs both renderings on every input of the model's domain with spin.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from statemachine.core.session import FIELDS, MAX_OPEN_REQUESTS
from statemachine.engine.machine import vocabulary_of
from statemachine.spec.model import EffectRef, Spec, TransitionSpec
from statemachine.spec.requirements import Requirements
from statemachine.spec.semantics import OPENS_REQUEST_CLASS, VOCABULARY, Effect, Vocabulary
from statemachine.verify.promela_requirements import (
    MODELLED_FIELDS,
    Expr,
    RequestIds,
    render_contract,
    render_state,
    render_temporal,
)
from statemachine.verify.universe import REQUEST_IDS

__all__ = [
    "DEFAULT_TURN_IDS",
    "EFFECTS",
    "GUARDS",
    "INVARIANTS",
    "MODELLED_SLOTS",
    "PromelaError",
    "awaiting_names",
    "claim_name",
    "export_promela",
    "option_field",
    "payload_guards",
    "request_id",
    "request_id_field",
    "request_kinds",
    "unmodelled_effects",
    "unmodelled_fields",
    "violation_names",
]

# Three ids: with one turn active and another finished, a third is still fresh, so every class of
# event turn (none, the active one, a finished one, a fresh one) occurs from every such state.
DEFAULT_TURN_IDS = 3


class PromelaError(ValueError):
    """The spec uses a name this exporter has no Promela rendering for."""


# Guard name -> a side-effect-free Promela expression over `status`, `turn` (the active one), `fin[]`, `pend`,
# the open requests (`rq[]`, `nrq`) and the event: `ev` (its turn, 0 when it names none), `rid` (its
# requestId, 0 when it carries none) and `opt` (its one other payload field the guards read).
GUARDS: Mapping[str, str] = {
    # The session holds an active turn.
    "has_active_turn": "(turn != 0)",
    # The session holds no active turn.
    "no_active_turn": "(turn == 0)",
    # The event names a turn.
    "targeted": "(ev != 0)",
    # The event names no turn.
    "untargeted": "(ev == 0)",
    # Names no turn, or no turn is active, or names the active one.
    "turn_matches": "(ev == 0 || turn == 0 || ev == turn)",
    # The named turn (if any) has not completed, aborted or been cleared.
    "turn_not_finished": "(ev == 0 || !fin[ev])",
    # A requested turn has not started (`pend`: 0 none, 255 id unknown, else the expected turn).
    "turn_pending": "(pend != 0)",
    "no_turn_pending": "(pend == 0)",
    # The event names the turn the pending request expects.
    "turn_expected": "(ev != 0 && pend == ev)",
    "turn_not_expected": "(ev == 0 || pend != ev)",
    # The stop request is not limited to settled sessions (`opt`: the event's onlyIfSettled).
    "stop_unconditional": "(opt == 0)",
    # Fewer than the bound are open, or the event's requestId is open already (asked again).
    "request_room": f"(nrq < {MAX_OPEN_REQUESTS} || rq[rid] != AW_none)",
    # Requests are open, and the resolution names none (it ends them all) or the only open one.
    "closes_last_request": "(nrq > 0 && (rid == 0 || (nrq == 1 && rq[rid] != AW_none)))",
}


def request_id_field(vocabulary: Vocabulary) -> str | None:
    """The payload field that names a request (what the effects that open one read), kept as `rid`;
    None when no effect opens requests."""
    fields = {f for e in vocabulary.effects.values() if OPENS_REQUEST_CLASS in e.classes for f in e.payload_reads}
    if len(fields) > 1:
        raise PromelaError(f"effects open requests named by the payload fields {sorted(fields)}; the model keeps one"
                           " (`rid`)")
    return next(iter(fields), None)


def payload_guards(vocabulary: Vocabulary) -> frozenset[str]:
    """The guards whose declaration reads a payload field other than the request id (`rid`): their
    triggers are sent with `opt` 0 and 1 (the model keeps one such field: more is refused)."""
    ids = {request_id_field(vocabulary)}
    guards = {n: g for n, g in vocabulary.guards.items() if set(g.payload_fields) - ids}
    fields = {f for g in guards.values() for f in g.payload_fields} - ids
    if len(fields) > 1:
        raise PromelaError(f"guards read the payload fields {sorted(fields)}; the model keeps one (`opt`)")
    return frozenset(guards)


def _effect_refs(spec: Spec, trigger: str) -> list[EffectRef]:
    """The effect uses an event of `trigger` may run (transitions, on-enter hooks, on_applied)."""
    refs = [e for t in spec.transitions_for(trigger) for e in t.effects]
    refs += [e for t in spec.transitions_for(trigger) if t.dest is not None for e in spec.status(t.dest).on_enter]
    return refs + list(spec.on_applied)


def _opened_kind(vocabulary: Vocabulary, ref: EffectRef) -> str | None:
    """The kind of request this effect use opens (its one parameter), else None."""
    effect = vocabulary.effects.get(ref.name)
    if effect is None or OPENS_REQUEST_CLASS not in effect.classes or not effect.params:
        return None
    return str(ref.param_map[effect.params[0]]) if effect.params[0] in ref.param_map else None


def request_kinds(spec: Spec) -> list[str]:
    """Every kind of request the spec's effects open, sorted: the i-th (from 1) is opened with
    `rid` i, one id per kind as in the verification universe."""
    vocabulary = vocabulary_of(spec)
    return sorted({k for ref in _awaiting_refs(spec) if (k := _opened_kind(vocabulary, ref)) is not None})


def request_id(rid: int) -> Any:
    """The requestId a model's `rid` stands for: None for 0, else the verification universe's ids
    (1 and "1": equal only by a rule that confuses their types), then whole numbers."""
    if rid == 0:
        return None
    return REQUEST_IDS[rid - 1] if rid <= len(REQUEST_IDS) else rid


def _rid_options(spec: Spec, vocabulary: Vocabulary, kinds: list[str], trigger: str) -> tuple[int, ...]:
    """The `rid` values an event of `trigger` is sent with: the id of its kind when it opens a
    request, every id and none when a guard or effect reads the request id, else none."""
    field = request_id_field(vocabulary)
    refs = _effect_refs(spec, trigger)
    for ref in refs:
        kind = _opened_kind(vocabulary, ref)
        if kind is not None:
            return (kinds.index(kind) + 1,)
    reads = any(field in vocabulary.effects[r.name].payload_fields(r.param_map) for r in refs
                if r.name in vocabulary.effects)
    reads = reads or any(field in vocabulary.guards[g].payload_fields
                         for t in spec.transitions_for(trigger) for g in t.guards if g in vocabulary.guards)
    return tuple(range(len(kinds) + 1)) if field is not None and reads else (0,)


# The slots the model keeps (`turn`, `fin[]` through remembering, `pend`, `aw`, the open requests
# `req` as `rq[]`, `ro[]` and `nrq`); what an effect writes of the others (lastError, updatedAt,
# providerName) is left out.
MODELLED_SLOTS = frozenset({"turn", "pend", "aw", "req"})
# What the provider awaits and its open requests: no temporal claim reads them.
REQUEST_SLOTS = frozenset({"aw", "req"})


def option_field(vocabulary: Vocabulary) -> str | None:
    """The payload field `opt` stands for (what the guards of `payload_guards` read), or None."""
    ids = {request_id_field(vocabulary)}
    return next((f for g in sorted(payload_guards(vocabulary)) for f in vocabulary.guards[g].payload_fields
                 if f not in ids), None)


def unmodelled_fields() -> tuple[str, ...]:
    """The lifecycle's session fields (wire names, `statemachine.core.session.FIELDS`) the model
    leaves out: no guard reads them."""
    return tuple(f.wire for f in FIELDS if f.lifecycle and f.wire not in MODELLED_FIELDS)


def unmodelled_effects(vocabulary: Vocabulary) -> frozenset[str]:
    """The effects whose declaration writes nothing the model keeps: rendered `skip`."""
    return frozenset(n for n, e in vocabulary.effects.items()
                     if not set(e.writes) & MODELLED_SLOTS and not e.remembers)


def _requests_only(vocabulary: Vocabulary, slots: frozenset[str]) -> frozenset[str]:
    """The effects that write nothing but `slots` (what the provider awaits, its open requests):
    a temporal model that leaves those slots out renders them `skip`."""
    return frozenset(n for n, e in vocabulary.effects.items()
                     if e.writes and set(e.writes) <= slots and not e.remembers)


def _awaiting_setters(vocabulary: Vocabulary) -> dict[str, Effect]:
    """The effects that set `aw` to a parameter's value (their one parameter)."""
    return {n: e for n, e in vocabulary.effects.items() if "aw" in e.writes and len(e.params) == 1}


EffectRenderer = Callable[[Mapping[str, Any]], str]


def _skip(_: Mapping[str, Any]) -> str:
    return "skip"


def _each_id(params: Mapping[str, Any], statement: str) -> str:
    """`statement` for each request id slot `i` (0 .. IDS - 1), written out: a d_step holds no loop
    variable, and the model's states differ only by the session."""
    return "; ".join(statement.format(i=i) for i in range(int(params["IDS"])))


def _drop_request(params: Mapping[str, Any]) -> str:
    """The open request `rid` leaves the list: those opened after it move up one place."""
    return (f"{_each_id(params, 'if :: ro[{i}] > ro[rid] -> ro[{i}] = ro[{i}] - 1 :: else -> skip fi')}; "
            "rq[rid] = AW_none; ro[rid] = 0; nrq = nrq - 1")


def _open_request(params: Mapping[str, Any]) -> str:
    return (f"if :: rq[rid] != AW_none -> {_drop_request(params)} :: else -> skip fi; "
            f"nrq = nrq + 1; rq[rid] = {params['AW']}; ro[rid] = nrq; aw = {params['AW']}")


def _close_request(params: Mapping[str, Any]) -> str:
    newest = _each_id(params, "if :: ro[{i}] != 0 && ro[{i}] == nrq -> aw = rq[{i}] :: else -> skip fi")
    return (f"if :: rid == 0 -> {_clear_requests(params)} "
            f":: rid != 0 && rq[rid] != AW_none -> {_drop_request(params)} "
            ":: else -> skip fi; "
            f"aw = {AWAITING_NONE}; {newest}")


def _clear_requests(params: Mapping[str, Any]) -> str:
    return f"{_each_id(params, 'rq[{i}] = AW_none; ro[{i}] = 0')}; nrq = 0"


# Effect name -> Promela statements, given the effect's parameters from the spec and the exporter's
# `AW` (the Promela name of the awaiting value the effect's parameter gives) and `IDS` (how many
# request id slots the model has: 0 for a request without id, then one per kind).
_MODELLED_EFFECTS: Mapping[str, EffectRenderer] = {
    # Remember the active turn as finished, then no turn is active.
    "clear_turn": lambda _: "if :: turn != 0 -> fin[turn] = 1; turn = 0 :: else -> skip fi",
    # The event's turn becomes the active one (none if the event names none).
    "set_turn": lambda _: "turn = ev",
    # Remember the event's turn (if any) as finished.
    "remember_event_turn": lambda _: "if :: ev != 0 -> fin[ev] = 1 :: else -> skip fi",
    # A pending turn start: the turn the request names, else one of unknown id (255).
    "set_pending_turn": lambda _: "if :: ev != 0 -> pend = ev :: else -> pend = 255 fi",
    "clear_pending_turn": lambda _: "pend = 0",
    "consume_pending_turn": lambda _: "if :: pend != 0 && (pend == 255 || pend == ev) -> pend = 0 :: else -> skip fi",
    # The request the event names (`rid`) is open, asking the value the spec gives (`AW`), and is
    # the newest: asked again, it moves to the end. The session awaits what it asks.
    "open_request": _open_request,
    # The request the resolution names is no longer open, or none is when it names none; the
    # session awaits what the newest still open asks, or nothing.
    "close_request": _close_request,
    # No request is open and nothing is awaited.
    "clear_awaiting": lambda params: f"aw = {AWAITING_NONE}; {_clear_requests(params)}",
}
# Every name of the built-in vocabulary: its rendering, or `skip` where it writes nothing modelled.
EFFECTS: Mapping[str, EffectRenderer] = {
    **{n: _skip for n in sorted(unmodelled_effects(VOCABULARY))}, **_MODELLED_EFFECTS}
AWAITING_NONE = "AW_none"
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def _awaiting_refs(spec: Spec) -> list[EffectRef]:
    refs = [e for t in spec.transitions for e in t.effects]
    return refs + [e for st in spec.statuses for e in st.on_enter] + list(spec.on_applied)


def awaiting_names(spec: Spec) -> dict[str, str]:
    """Each value the spec's awaiting effects set -> its Promela name: `AW_` and the value when it
    is a plain word, else `AW_` and its number (the value never reaches the model as text)."""
    setters = _awaiting_setters(vocabulary_of(spec))
    values = sorted({str(e.param_map[setters[e.name].params[0]]) for e in _awaiting_refs(spec)
                     if e.name in setters and setters[e.name].params[0] in e.param_map})
    names = {v: "AW_" + (v.replace("-", "_") if _WORD.fullmatch(v) else str(i)) for i, v in enumerate(values, 1)}
    if len(set(names.values()) | {AWAITING_NONE}) != len(names) + 1:
        raise PromelaError("two awaiting values map to the same Promela identifier")
    return names


def _no_turn_unless_holds_turn(spec: Spec, status: Mapping[str, str]) -> str:
    holding = [f"status == {status[s.name]}" for s in spec.statuses if s.holds_turn]
    return "(" + " || ".join(["turn == 0", *holding]) + ")"


def _active_turn_not_remembered(_: Spec, __: Mapping[str, str]) -> str:
    return "(turn == 0 || !fin[turn])"


# State invariant kind -> a Promela expression that must hold in every reachable state.
INVARIANTS: Mapping[str, Callable[[Spec, Mapping[str, str]], str]] = {
    "no_turn_unless_holds_turn": _no_turn_unless_holds_turn,
    "active_turn_not_remembered": _active_turn_not_remembered,
}
# Kinds that judge a step (before/after fields or the outcome), outside this model.
NOT_MODELLED_INVARIANTS = frozenset({"updated_at_monotonic", "unapplied_is_noop"})


def _identifier(prefix: str, name: str, what: str) -> str:
    """A Promela identifier for a name the schema makes an identifier; anything else is refused
    (the schema's `$` lets a trailing newline through)."""
    if not _WORD.fullmatch(name):
        raise PromelaError(f"{what} {name!r} is not an identifier")
    return prefix + name.replace("-", "_")


def _trigger_label(k: int, trigger: str) -> str:
    """A trigger as the model shows it (comments, printf): its name when made of plain words, else
    its number. Variant values are free text in a spec."""
    type_, _, variant = trigger.partition("[")
    words = [w for part in (type_, variant.removesuffix("]")) for w in part.split(".") if part]
    if words and all(_WORD.fullmatch(w) for w in words) and trigger.count("[") <= 1:
        return trigger
    return f"trigger_{k}"


def violation_names(spec: Spec, requirements: Requirements | None) -> list[str]:
    """What `@violated N` in the model's output names: the spec's invariants, then the requirements."""
    return [i.name for i in spec.invariants] + ([r.name for r in requirements.items] if requirements else [])


def claim_name(index: int) -> str:
    """The model's name for the LTL claim of the requirement at `index` of the requirements."""
    return f"claim_{index}"


def _guard(name: str, where: str) -> str:
    try:
        return GUARDS[name]
    except KeyError:
        raise PromelaError(f"{where}: no Promela rendering for guard {name!r} (known: {sorted(GUARDS)})") from None


class _Effects:
    """Renders effect uses for one spec: its vocabulary decides what is `skip` and which effects
    set `aw`; `skipped` (the temporal model's effects on what it leaves out) render `skip` too."""

    def __init__(self, spec: Spec, awaiting: Mapping[str, str], skipped: frozenset[str] = frozenset()) -> None:
        vocabulary = vocabulary_of(spec)
        self.skip = unmodelled_effects(vocabulary) | skipped
        self.setters = _awaiting_setters(vocabulary)
        self.awaiting = awaiting
        self.ids = len(request_kinds(spec)) + 1

    def one(self, ref: EffectRef, where: str) -> str:
        if ref.name in self.skip:
            return "skip"
        render = _MODELLED_EFFECTS.get(ref.name)
        if render is None:
            raise PromelaError(f"{where}: no Promela rendering for effect {ref.name!r} "
                               f"(known: {sorted(_MODELLED_EFFECTS)}, and those that write only unmodelled fields)")
        params = {**ref.param_map, "IDS": self.ids}
        setter = self.setters.get(ref.name)
        if setter is not None:
            params = {**params, "AW": self.awaiting[str(params[setter.params[0]])]}
        return render(params)

    def all(self, refs: tuple[EffectRef, ...], where: str) -> list[str]:
        # The comment names the effect only (an identifier of the vocabulary), never its parameters.
        return [f"{self.one(ref, f'{where}[{i}]')}; /* {_identifier('', ref.name, 'effect')} */"
                for i, ref in enumerate(refs)]


def _transition(spec: Spec, t: TransitionSpec, status: Mapping[str, str], on_enter: Mapping[str, list[str]],
                effects: _Effects, guessed: frozenset[str] = frozenset()) -> str:
    where = f"transitions[{t.index}]"
    sources = " || ".join(f"status == {status[s]}" for s in t.sources)
    # A guess (`nd`, chosen per event) stands for a guard over what the model leaves out.
    condition = " && ".join([f"({sources})", *("(nd == 1)" if g in guessed else _guard(g, f"{where}.guards")
                                               for g in t.guards)])
    body = [f"taken = {t.index + 1};"]
    if t.dest is not None:  # internal transitions keep the status and run no on-enter hook
        body.append(f"status = {status[t.dest]};")
        body += on_enter[t.dest]
    body += effects.all(t.effects, f"{where}.effects")
    body += effects.all(spec.on_applied, "on_applied")
    dest = status[t.dest] if t.dest is not None else "(internal)"
    lines = [
        f"  /* transitions[{t.index}]: {' '.join(status[s] for s in t.sources)} -> {dest} */",
        "  if",
        f"  :: taken == 0 && {condition} ->",
        *(f"       {b}" for b in body),
        "  :: else -> skip",
        "  fi;",
    ]
    return "\n".join(lines)


def _status_names(spec: Spec) -> dict[str, str]:
    status = {s.name: _identifier("S_", s.name, "status") for s in spec.statuses}
    if len(set(status.values())) != len(status):
        raise PromelaError("two status names map to the same Promela identifier")
    return status


def _request_ids(spec: Spec) -> RequestIds | None:
    """The model's request ids, for the requirements' `requestIds` and the event's request id."""
    field = request_id_field(vocabulary_of(spec))
    return None if field is None else RequestIds(field, len(request_kinds(spec)) + 1)


def requirement_coverage(spec: Spec, requirements: Requirements) -> tuple[list[str], list[str]]:
    """(requirements the model checks, requirements it leaves out because they read unmodelled fields)."""
    status = _status_names(spec)
    awaiting = awaiting_names(spec)
    requests = _request_ids(spec)
    modelled: list[str] = []
    left_out: list[str] = []
    for req in requirements.items:
        if req.form == "state":
            ok = render_state(spec, status, req, awaiting, requests) is not None
        elif req.form == "contract":
            ok = render_contract(spec, status, req, awaiting, requests) is not None
        else:
            ok = True
        (modelled if ok else left_out).append(req.name)
    return modelled, left_out


def _assertions(checks: list[tuple[int, Expr]]) -> list[str]:
    """One printf per broken name (its number in `violation_names`, to name it in the trail), then
    a single assertion."""
    live = [(n, "false" if e is False else e) for n, e in checks if e is not True]
    out = [f"  if :: !{expr} -> printf(\"@violated {n}\\n\") :: else -> skip fi;" for n, expr in live]
    out.append("  assert(" + " && ".join(str(e) for _, e in live) + ")" if live else "  skip")
    return out


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


def export_promela(
    spec: Spec, requirements: Requirements | None = None, *, turn_ids: int = DEFAULT_TURN_IDS, temporal: bool = False
) -> str:
    """The spec as a Promela model: one session, any sequence of events.

    The safety model (the default) asserts the spec's state invariants and the requirements'
    state invariants and contracts after every event. With `temporal=True` it asserts nothing and
    carries one `ltl` claim per temporal requirement instead, with the environment of the
    temporal requirements: the provider may go quiet (`quiet`) and the stale-turn expiry is an
    event enabled whenever a turn is active.
    """
    if not 1 <= turn_ids <= 100:
        raise ValueError("turn_ids must be between 1 and 100")
    status = _status_names(spec)
    awaiting = awaiting_names(spec)
    vocabulary = vocabulary_of(spec)
    kinds = request_kinds(spec)
    # The temporal model leaves out what the provider awaits and the open requests (no claim reads
    # them). A guard that reads the requests is then a guess made per event (`nd`, 0 and 1): the
    # model has every run the spec has and more, so a claim that holds on it holds on the spec, and
    # the state space stays that of the turns (keeping the requests exactly multiplied it by 4.4).
    left_out = REQUEST_SLOTS if temporal else frozenset()
    guessed = (frozenset(g for t in spec.transitions for g in t.guards
                         if g in vocabulary.guards and "req" in vocabulary.guards[g].reads)
               if temporal else frozenset())
    effects = _Effects(spec, awaiting, _requests_only(vocabulary, left_out) if left_out else frozenset())
    on_enter = {s.name: effects.all(s.on_enter, f"statuses[{i}].on_enter") for i, s in enumerate(spec.statuses)}
    triggers = spec.triggers
    labels = [_trigger_label(k, t) for k, t in enumerate(triggers)]
    names = violation_names(spec, requirements)
    number = {n: i for i, n in reversed(list(enumerate(names)))}  # a name's first place

    def shown(name: str) -> str:  # in comments: a plain word, else its number
        return name if _WORD.fullmatch(name) else f"#{number[name]}"

    checks: list[tuple[int, Expr]] = []
    skipped: list[str] = []
    for inv in spec.invariants:
        if inv.kind in INVARIANTS:
            checks.append((number[inv.name], INVARIANTS[inv.kind](spec, status)))
        elif inv.kind in NOT_MODELLED_INVARIANTS:
            skipped.append(inv.name)
        else:
            raise PromelaError(f"invariant {inv.name!r}: no Promela rendering for kind {inv.kind!r}")
    contracts: dict[str, list[tuple[int, Expr]]] = {t: [] for t in triggers}
    claims: list[tuple[int, str]] = []
    stale: int | None = None
    stale_pending: int | None = None  # the expiry of a requested turn that never started
    if requirements is not None:
        requests = _request_ids(spec)
        for req in requirements.items:
            if req.form == "state":
                expr = render_state(spec, status, req, awaiting, requests)
                if expr is not None:
                    checks.append((number[req.name], expr))
            elif req.form == "contract":
                rendered = render_contract(spec, status, req, awaiting, requests)
                for trigger, e in (rendered or {}).items():
                    contracts[trigger].append((number[req.name], e))
            elif req.ltl is not None:
                claims.append((req.index, render_temporal(req.ltl, status, triggers.index)))
        if requirements.stale_expiry is not None:
            stale = triggers.index(requirements.stale_expiry.trigger)
            if requirements.stale_expiry.pending_trigger is not None:
                stale_pending = triggers.index(requirements.stale_expiry.pending_trigger)
    if temporal:
        if stale is None:
            raise PromelaError("the temporal model needs requirements with a stale_expiry trigger")
        checks, contracts = [], {t: [] for t in triggers}
    snapshots = any(contracts.values())
    fins = range(1, turn_ids + 1)
    reading = payload_guards(vocabulary)  # their triggers are sent with `opt` 0 and 1
    # The declarations' own field names (code of this package, not spec text).
    field_read = option_field(vocabulary) or "payload field (none)"
    id_field = request_id_field(vocabulary) or "request id (none)"
    ids = len(kinds) + 1

    out: list[str] = [
        "/* Generated from the spec by statemachine.verify.promela; do not edit: export it again.",
        f"   One session; {_listed(unmodelled_fields())} are not modelled (no guard reads them)"
        + ("; nor are awaiting and the open requests (no claim or guard reads them)." if left_out else "."),
        f"   Turn ids 1..{turn_ids}; 0 means no turn / an untargeted event.",
        (f"   Request ids 1..{len(kinds)}, one per kind of request (the id a request of that kind is opened with);"
         " 0 means none." if kinds else "   No effect opens a request: every event's request id is 0 (none)."),
        f"   Asserted after every event: {', '.join(shown(names[n]) for n, _ in checks) or 'nothing'}.",
        f"   Step invariants not modelled: {', '.join(shown(n) for n in skipped) or 'none'}.",
    ]
    if any(contracts.values()):
        asserted = sorted({names[n] for items in contracts.values() for n, _ in items})
        out.append(f"   Contracts asserted on each event: {', '.join(shown(n) for n in asserted)}.")
    if temporal:
        out.append(f"   Temporal model: LTL claims {', '.join(claim_name(i) for i, _ in claims)}; the provider may")
        out.append(f"   go quiet, and the stale-turn expiry ({labels[stale or 0]} for the active turn) is")
        pending = " (or a requested turn is pending)" if stale_pending is not None else ""
        out.append(f"   enabled whenever a turn is active{pending}.")
    out[-1] += " */"
    out += [
        "",
        "mtype = { " + ", ".join([*status.values(), AWAITING_NONE, *awaiting.values()]) + " };",
        f"mtype status = {status[spec.initial]};",
        "byte turn = 0;            /* the active turn, 0 = none */",
        f"{f'bool fin[{turn_ids + 1}];':<26}/* fin[t]: turn t completed, aborted or cleared; fin[0] unused */",
        # Scratch for one event, back to 0 when it ends so that states differ only by the session.
        "byte pend = 0;            /* the pending turn start: 0 none, 255 id unknown, else its turn */",
        f"mtype aw = {AWAITING_NONE};       /* what the provider awaits */",
        f"{f'mtype rq[{ids}] = {AWAITING_NONE};':<26}/* rq[i]: what the open request with id i asks, else "
        f"{AWAITING_NONE} */",
        f"{f'byte ro[{ids}];':<26}/* ro[i]: its place among the open ones, 1 = oldest, 0 = not open */",
        "byte nrq = 0;             /* how many requests are open */",
        "byte ev = 0;              /* the current event's turn, 0 = untargeted */",
        f"byte rid = 0;             /* the current event's {id_field}: 0 none, else an id 1..{len(kinds)} */",
        f"bit opt = 0;              /* the current event's {field_read} */",
        *(["bit nd = 0;               /* the guess for a guard over what the model leaves out */"] if guessed else []),
        "short taken = 0;          /* 1 + index of the spec transition taken, 0 = rejected */",
    ]
    if snapshots:
        out += [
            f"mtype pstatus = {status[spec.initial]};   /* before the current event (contracts) */",
            "byte pturn = 0;",
            f"bool pfin[{turn_ids + 1}];",
            "byte ppend = 0;",
            f"mtype paw = {AWAITING_NONE};",
            f"mtype prq[{ids}] = {AWAITING_NONE};",
            "byte pnrq = 0;",
        ]
    if temporal:
        out += [
            "bool quiet = 0;           /* the provider sends no more events */",
            "byte last = 0;            /* 1 + trigger index of the last event, 0 = none yet */",
        ]
    out += ["", "inline check_invariants() {", *_assertions(checks), "}"]

    for k, trigger in enumerate(triggers):
        out += ["", f"/* {labels[k]}: its transitions in file order, the first that applies is taken */"]
        out.append(f"inline step_{k}() {{")
        out.append("  taken = 0;")
        for t in spec.transitions_for(trigger):
            out.append(_transition(spec, t, status, on_enter, effects, guessed))
        out.append("  printf(\"@taken %d\\n\", taken)")
        out.append("}")
        if contracts[trigger]:
            out += [f"inline contracts_{k}() {{", *_assertions(contracts[trigger]), "}"]


    def options(k: int) -> list[tuple[int, int, int]]:
        # (rid, opt, nd): a trigger whose guards read the payload is sent with `opt` 0 and 1, with
        # each request id it may carry (`_rid_options`; none where the requests are left out), and
        # with both guesses where a guard is guessed.
        guards = {g for t in spec.transitions_for(triggers[k]) for g in t.guards}
        opts = (0, 1) if guards & reading else (0,)
        rids = (0,) if left_out else _rid_options(spec, vocabulary, kinds, triggers[k])
        guesses = (0, 1) if guards & guessed else (0,)
        return [(r, o, n) for r in rids for o in opts for n in guesses]

    def event(k: int, turn: str, label: str, rid: int = 0, opt: int = 0, nd: int = 0) -> str:
        save = (["pstatus = status", "pturn = turn", *(f"pfin[{i}] = fin[{i}]" for i in fins), "ppend = pend",
                 "paw = aw", *(f"prq[{i}] = rq[{i}]" for i in range(ids)), "pnrq = nrq"]
                if contracts[triggers[k]] else [])
        reset = ([f"pstatus = {status[spec.initial]}", "pturn = 0", *(f"pfin[{i}] = 0" for i in fins), "ppend = 0",
                  f"paw = {AWAITING_NONE}", *(f"prq[{i}] = {AWAITING_NONE}" for i in range(ids)), "pnrq = 0"]
                 if contracts[triggers[k]] else [])
        body = [f"ev = {turn}", *([f"rid = {rid}"] if rid else []), *([f"opt = {opt}"] if opt else []),
                *([f"nd = {nd}"] if nd else []),
                f"printf(\"@event {k} %d %d %d {label}\\n\", ev, rid, opt)", *save, f"step_{k}()"]
        if contracts[triggers[k]]:
            body.append(f"contracts_{k}()")
        body += ["taken = 0", "ev = 0", *(["rid = 0"] if rid else []), *(["opt = 0"] if opt else []),
                 *(["nd = 0"] if nd else []), *reset]
        body.append(f"last = {k + 1}" if temporal else "check_invariants()")
        return "d_step { " + "; ".join(body) + " }"

    out += ["", "active proctype session() {", "  check_invariants();"]
    if temporal:
        # `end`: once the provider is quiet and no turn is active, nothing is left to happen.
        out += ["end:", "  do"]
        for k in range(len(triggers)):
            for turn in range(turn_ids + 1):
                for rid, opt, nd in options(k):
                    out.append(f"  :: !quiet -> {event(k, str(turn), labels[k], rid, opt, nd)}")
        out.append("  :: !quiet -> printf(\"@quiet\\n\"); quiet = 1")
        if stale_pending is None:
            out.append(f"  :: turn != 0 -> {event(stale or 0, 'turn', 'stale_expiry')}")
        else:
            # As expire_stale_turns: a session with a pending turn is settled by its own event.
            out.append(f"  :: turn != 0 && pend == 0 -> {event(stale or 0, 'turn', 'stale_expiry')}")
            out.append(f"  :: pend != 0 -> {event(stale_pending, '0', 'stale_expiry_of_a_pending_turn')}")
        out += ["  od", "}", ""]
        for index, formula in claims:
            out.append(f"ltl {claim_name(index)} {{ {formula} }}")
        out.append("")
    else:
        out.append("  do")
        for k in range(len(triggers)):
            for turn in range(turn_ids + 1):
                for rid, opt, nd in options(k):
                    out.append(f"  :: {event(k, str(turn), labels[k], rid, opt, nd)}")
        out += ["  od", "}", ""]
    return "\n".join(out)
