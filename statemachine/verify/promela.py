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
- `aw`: what the provider awaits, `AW_none` or one `AW_` name per value the spec's effects set
  (the safety model only: no temporal requirement reads it, so the temporal model leaves it out
  and keeps its state space);
- each event: one trigger of the spec x a turn (0 = untargeted, 1..N), and for a trigger whose
  guards read the payload (the stop request's onlyIfSettled) x `opt` 0 and 1. A trail replayed
  as a log (`spin -t`) does not carry `opt`: such a counterexample replays as a stop without it.
lastError, updatedAt and providerName are not modelled: no guard reads them, so they cannot
change which transition is taken; the effects that only write them render as `skip`. Payload
fields other than the variant are therefore irrelevant too. The thread's memory of finished turns
is unbounded here (the projector's is capped), and event ids (de-duplication) are not modelled:
a duplicate changes nothing by construction of the projector, not of the spec.

State invariants are asserted in the initial state and after every event; step invariants
(`updated_at_monotonic`, `unapplied_is_noop`) read fields or outcomes outside the model and are
not checked by spin.

Each event prints one line `@event <trigger index> <turn> <label>` and, when an invariant
breaks, one line `@violated <number>` per broken invariant or requirement (its place in
`violation_names`), so that replaying a trail (`spin -t`) yields the path as data.

No string of the spec or the requirements is ever written into the model as text: spin runs the
C preprocessor over it and compiles the verifier from it, so a string that ended a comment (the
preprocessor splices `*`, backslash, newline or CR, `/` into `*/`) would become model code, and a
`c_decl` or `c_code` block runs when the verifier does. Names that are identifiers by the schema
(statuses, guards, effects) appear only as identifiers this module derives and checks; every
other string (variant values, so trigger names; parameters; descriptions; file names;
requirement names) appears as a number, as a label of checked characters, or not at all.

What is a copy of a declaration is derived from it (`statemachine.spec.semantics`): which guards
read the payload, which effects write only what the provider awaits, which effects write nothing
the model keeps (rendered `skip`), and the awaiting values. The meaning of each guard and effect
over the model's variables (`GUARDS`, `EFFECTS`) is written here on purpose, independently, and
tests/verify/test_promela.py runs both renderings on every input of the model's domain with spin.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from statemachine.core.session import FIELDS
from statemachine.engine.machine import vocabulary_of
from statemachine.spec.model import EffectRef, Spec, TransitionSpec
from statemachine.spec.requirements import Requirements
from statemachine.spec.semantics import VOCABULARY, Effect, Vocabulary
from statemachine.verify.promela_requirements import (
    MODELLED_FIELDS,
    Expr,
    render_contract,
    render_state,
    render_temporal,
)

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
    "payload_guards",
    "unmodelled_effects",
    "unmodelled_fields",
    "violation_names",
]

# Three ids: with one turn active and another finished, a third is still fresh, so every class of
# event turn (none, the active one, a finished one, a fresh one) occurs from every such state.
DEFAULT_TURN_IDS = 3


class PromelaError(ValueError):
    """The spec uses a name this exporter has no Promela rendering for."""


# Guard name -> a side-effect-free Promela expression over `status`, `turn` (the active one), `fin[]` and `ev`
# (the event's turn, 0 when the event names none).
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
}


def payload_guards(vocabulary: Vocabulary) -> frozenset[str]:
    """The guards whose declaration reads a payload field: their triggers are sent with `opt` 0
    and 1 (the model keeps one such field: more is refused)."""
    guards = {n: g for n, g in vocabulary.guards.items() if g.payload_fields}
    fields = {f for g in guards.values() for f in g.payload_fields}
    if len(fields) > 1:
        raise PromelaError(f"guards read the payload fields {sorted(fields)}; the model keeps one (`opt`)")
    return frozenset(guards)


# The slots the model keeps (`turn`, `fin[]` through remembering, `pend`, `aw`); what an effect
# writes of the others (lastError, updatedAt, providerName) is left out.
MODELLED_SLOTS = frozenset({"turn", "pend", "aw"})


def unmodelled_fields() -> tuple[str, ...]:
    """The lifecycle's session fields (wire names, `statemachine.core.session.FIELDS`) the model
    leaves out: no guard reads them."""
    return tuple(f.wire for f in FIELDS if f.lifecycle and f.wire not in MODELLED_FIELDS)


def unmodelled_effects(vocabulary: Vocabulary) -> frozenset[str]:
    """The effects whose declaration writes nothing the model keeps: rendered `skip`."""
    return frozenset(n for n, e in vocabulary.effects.items()
                     if not set(e.writes) & MODELLED_SLOTS and not e.remembers)


def _awaiting_only(vocabulary: Vocabulary) -> frozenset[str]:
    """The effects that write only what the provider awaits: the temporal model (which reads no
    `aw`) renders them `skip`."""
    return frozenset(n for n, e in vocabulary.effects.items() if set(e.writes) == {"aw"} and not e.remembers)


def _awaiting_setters(vocabulary: Vocabulary) -> dict[str, Effect]:
    """The effects that set `aw` to a parameter's value (their one parameter)."""
    return {n: e for n, e in vocabulary.effects.items() if "aw" in e.writes and len(e.params) == 1}


EffectRenderer = Callable[[Mapping[str, Any]], str]


def _skip(_: Mapping[str, Any]) -> str:
    return "skip"


# Effect name -> Promela statements, given the effect's parameters from the spec (`AW` stands for
# the awaiting value's Promela name, filled in by the exporter).
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
    # What the provider awaits: the value the spec gives (its Promela name, `AW`), or nothing.
    "set_awaiting": lambda params: f"aw = {params['AW']}",
    "clear_awaiting": lambda _: f"aw = {AWAITING_NONE}",
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
    set `aw`; `skipped` (the temporal model's awaiting-only effects) render `skip` too."""

    def __init__(self, spec: Spec, awaiting: Mapping[str, str], skipped: frozenset[str] = frozenset()) -> None:
        vocabulary = vocabulary_of(spec)
        self.skip = unmodelled_effects(vocabulary) | skipped
        self.setters = _awaiting_setters(vocabulary)
        self.awaiting = awaiting

    def one(self, ref: EffectRef, where: str) -> str:
        if ref.name in self.skip:
            return "skip"
        render = _MODELLED_EFFECTS.get(ref.name)
        if render is None:
            raise PromelaError(f"{where}: no Promela rendering for effect {ref.name!r} "
                               f"(known: {sorted(_MODELLED_EFFECTS)}, and those that write only unmodelled fields)")
        params = ref.param_map
        setter = self.setters.get(ref.name)
        if setter is not None:
            params = {**params, "AW": self.awaiting[str(params[setter.params[0]])]}
        return render(params)

    def all(self, refs: tuple[EffectRef, ...], where: str) -> list[str]:
        # The comment names the effect only (an identifier of the vocabulary), never its parameters.
        return [f"{self.one(ref, f'{where}[{i}]')}; /* {_identifier('', ref.name, 'effect')} */"
                for i, ref in enumerate(refs)]


def _transition(spec: Spec, t: TransitionSpec, status: Mapping[str, str], on_enter: Mapping[str, list[str]],
                effects: _Effects) -> str:
    where = f"transitions[{t.index}]"
    sources = " || ".join(f"status == {status[s]}" for s in t.sources)
    condition = " && ".join([f"({sources})", *(_guard(g, f"{where}.guards") for g in t.guards)])
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


def requirement_coverage(spec: Spec, requirements: Requirements) -> tuple[list[str], list[str]]:
    """(requirements the model checks, requirements it leaves out because they read unmodelled fields)."""
    status = _status_names(spec)
    awaiting = awaiting_names(spec)
    modelled: list[str] = []
    left_out: list[str] = []
    for req in requirements.items:
        if req.form == "state":
            ok = render_state(spec, status, req, awaiting) is not None
        elif req.form == "contract":
            ok = render_contract(spec, status, req, awaiting) is not None
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
    effects = _Effects(spec, awaiting, _awaiting_only(vocabulary) if temporal else frozenset())
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
        for req in requirements.items:
            if req.form == "state":
                expr = render_state(spec, status, req, awaiting)
                if expr is not None:
                    checks.append((number[req.name], expr))
            elif req.form == "contract":
                rendered = render_contract(spec, status, req, awaiting)
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
    # The declarations' own field name (code of this package, not spec text).
    field_read = next((f for g in sorted(reading) for f in vocabulary.guards[g].payload_fields), "payload field (none)")

    out: list[str] = [
        "/* Generated from the spec by statemachine.verify.promela; do not edit: export it again.",
        f"   One session; {_listed(unmodelled_fields())} are not modelled (no guard reads them)"
        + ("; nor is awaiting (no claim reads it)." if temporal else "."),
        f"   Turn ids 1..{turn_ids}; 0 means no turn / an untargeted event.",
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
        "byte ev = 0;              /* the current event's turn, 0 = untargeted */",
        f"bit opt = 0;              /* the current event's {field_read} */",
        "short taken = 0;          /* 1 + index of the spec transition taken, 0 = rejected */",
    ]
    if snapshots:
        out += [
            f"mtype pstatus = {status[spec.initial]};   /* before the current event (contracts) */",
            "byte pturn = 0;",
            f"bool pfin[{turn_ids + 1}];",
            "byte ppend = 0;",
            f"mtype paw = {AWAITING_NONE};",
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
            out.append(_transition(spec, t, status, on_enter, effects))
        out.append("  printf(\"@taken %d\\n\", taken)")
        out.append("}")
        if contracts[trigger]:
            out += [f"inline contracts_{k}() {{", *_assertions(contracts[trigger]), "}"]


    def options(k: int) -> tuple[int, ...]:
        # A trigger whose guards read the payload is sent with `opt` 0 and 1.
        return (0, 1) if any(g in reading for t in spec.transitions_for(triggers[k]) for g in t.guards) else (0,)

    def event(k: int, turn: str, label: str, opt: int = 0) -> str:
        save = (["pstatus = status", "pturn = turn", *(f"pfin[{i}] = fin[{i}]" for i in fins), "ppend = pend",
                 "paw = aw"] if contracts[triggers[k]] else [])
        reset = ([f"pstatus = {status[spec.initial]}", "pturn = 0", *(f"pfin[{i}] = 0" for i in fins), "ppend = 0",
                  f"paw = {AWAITING_NONE}"] if contracts[triggers[k]] else [])
        body = [f"ev = {turn}", *([f"opt = {opt}"] if opt else []),
                f"printf(\"@event {k} %d {label}\\n\", ev)", *save, f"step_{k}()"]
        if contracts[triggers[k]]:
            body.append(f"contracts_{k}()")
        body += ["taken = 0", "ev = 0", *(["opt = 0"] if opt else []), *reset]
        body.append(f"last = {k + 1}" if temporal else "check_invariants()")
        return "d_step { " + "; ".join(body) + " }"

    out += ["", "active proctype session() {", "  check_invariants();"]
    if temporal:
        # `end`: once the provider is quiet and no turn is active, nothing is left to happen.
        out += ["end:", "  do"]
        for k in range(len(triggers)):
            for turn in range(turn_ids + 1):
                for opt in options(k):
                    out.append(f"  :: !quiet -> {event(k, str(turn), labels[k], opt)}")
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
                for opt in options(k):
                    out.append(f"  :: {event(k, str(turn), labels[k], opt)}")
        out += ["  od", "}", ""]
    return "\n".join(out)
