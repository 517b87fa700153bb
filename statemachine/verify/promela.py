"""Export the spec as a Promela model for the spin model checker.

The model is generated from the `Spec` object alone; no transition table is written here. What
this module does write is its own meaning for each guard and effect *name* (`GUARDS`, `EFFECTS`
below), made from the names' descriptions in the spec and not from `statemachine.spec.semantics`, so
that spin checks the spec against an independent implementation of its vocabulary.

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

Each event prints one line `@event <trigger index> <turn> <trigger>` and, when an invariant
breaks, one line `@violated <name>` per broken invariant, so that replaying a trail (`spin -t`)
yields the path as data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from statemachine.spec.model import EffectRef, Spec, TransitionSpec
from statemachine.spec.requirements import Requirements
from statemachine.verify.promela_requirements import Expr, render_contract, render_state, render_temporal

__all__ = ["DEFAULT_TURN_IDS", "EFFECTS", "GUARDS", "INVARIANTS", "PromelaError", "awaiting_names", "export_promela"]

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
# Guards that read the event's payload: their triggers are sent with `opt` 0 and 1.
PAYLOAD_GUARDS = frozenset({"stop_unconditional"})

EffectRenderer = Callable[[Mapping[str, Any]], str]


def _unmodelled(_: Mapping[str, Any]) -> str:
    return "skip"


# Effect name -> Promela statements, given the effect's parameters from the spec.
EFFECTS: Mapping[str, EffectRenderer] = {
    # Remember the active turn as finished, then no turn is active.
    "clear_turn": lambda _: "if :: turn != 0 -> fin[turn] = 1; turn = 0 :: else -> skip fi",
    # The event's turn becomes the active one (none if the event names none).
    "set_turn": lambda _: "turn = ev",
    # Remember the event's turn (if any) as finished.
    "remember_event_turn": lambda _: "if :: ev != 0 -> fin[ev] = 1 :: else -> skip fi",
    # These write lastError, updatedAt or providerName, which the model leaves out.
    "clear_error": _unmodelled,
    "set_error": _unmodelled,
    "advance_updated_at": _unmodelled,
    "record_provider": _unmodelled,
    # A pending turn start: the turn the request names, else one of unknown id (255).
    "set_pending_turn": lambda _: "if :: ev != 0 -> pend = ev :: else -> pend = 255 fi",
    "clear_pending_turn": lambda _: "pend = 0",
    "consume_pending_turn": lambda _: "if :: pend != 0 && (pend == 255 || pend == ev) -> pend = 0 :: else -> skip fi",
    # What the provider awaits: the value the spec gives (`what`), or nothing.
    "set_awaiting": lambda params: f"aw = {_awaiting_name(str(params['what']))}",
    "clear_awaiting": lambda _: f"aw = {AWAITING_NONE}",
}
# Effects that write only `aw`: the temporal model, which reads no `aw`, renders them as `skip`.
AWAITING_EFFECTS = frozenset({"set_awaiting", "clear_awaiting"})
AWAITING_NONE = "AW_none"


def _awaiting_name(value: str) -> str:
    return "AW_" + re.sub(r"[^A-Za-z0-9_]", "_", value)


def awaiting_names(spec: Spec) -> dict[str, str]:
    """Each value the spec's `set_awaiting` uses -> its Promela name."""
    refs = [e for t in spec.transitions for e in t.effects]
    refs += [e for st in spec.statuses for e in st.on_enter] + list(spec.on_applied)
    values = sorted({str(e.param_map["what"]) for e in refs if e.name == "set_awaiting" and "what" in e.param_map})
    names = {v: _awaiting_name(v) for v in values}
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


def _identifier(prefix: str, name: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _comment(text: str) -> str:
    """Spec text (names, parameters) safe inside a Promela comment."""
    return text.replace("*/", "* /").replace("\n", " ")


def _label(text: str) -> str:
    """Text safe inside a Promela printf format string (no quotes, escapes or conversions)."""
    return re.sub(r"[^A-Za-z0-9_.\[\]:=-]", "?", text)


def _guard(name: str, where: str) -> str:
    try:
        return GUARDS[name]
    except KeyError:
        raise PromelaError(f"{where}: no Promela rendering for guard {name!r} (known: {sorted(GUARDS)})") from None


def _effect(ref: EffectRef, where: str, skipped: frozenset[str] = frozenset()) -> str:
    if ref.name in skipped:
        return "skip"
    try:
        render = EFFECTS[ref.name]
    except KeyError:
        raise PromelaError(
            f"{where}: no Promela rendering for effect {ref.name!r} (known: {sorted(EFFECTS)})"
        ) from None
    return render(ref.param_map)


def _effects(refs: tuple[EffectRef, ...], where: str, skipped: frozenset[str] = frozenset()) -> list[str]:
    return [f"{_effect(ref, where, skipped)}; /* {_comment(ref.label())} */" for ref in refs]


def _transition(spec: Spec, t: TransitionSpec, status: Mapping[str, str], on_enter: Mapping[str, list[str]],
                skipped: frozenset[str] = frozenset()) -> str:
    where = f"transitions[{t.index}]"
    sources = " || ".join(f"status == {status[s]}" for s in t.sources)
    condition = " && ".join([f"({sources})", *(_guard(g, f"{where}.guards") for g in t.guards)])
    body = [f"taken = {t.index + 1};"]
    if t.dest is not None:  # internal transitions keep the status and run no on-enter hook
        body.append(f"status = {status[t.dest]};")
        body += on_enter[t.dest]
    body += _effects(t.effects, f"{where}.effects", skipped)
    body += _effects(spec.on_applied, "on_applied", skipped)
    dest = t.dest if t.dest is not None else "(internal)"
    lines = [
        f"  /* transitions[{t.index}]: {_comment(' '.join(t.sources))} -> {_comment(dest)} */",
        "  if",
        f"  :: taken == 0 && {condition} ->",
        *(f"       {b}" for b in body),
        "  :: else -> skip",
        "  fi;",
    ]
    return "\n".join(lines)


def _status_names(spec: Spec) -> dict[str, str]:
    status = {s.name: _identifier("S_", s.name) for s in spec.statuses}
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


def _assertions(checks: list[tuple[str, Expr]]) -> list[str]:
    """One printf per broken name (to name it in the trail), then a single assertion."""
    live = [(n, "false" if e is False else e) for n, e in checks if e is not True]
    out = [f"  if :: !{expr} -> printf(\"@violated {_label(name)}\\n\") :: else -> skip fi;" for name, expr in live]
    out.append("  assert(" + " && ".join(str(e) for _, e in live) + ")" if live else "  skip")
    return out


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
    skipped_effects = AWAITING_EFFECTS if temporal else frozenset()
    on_enter = {s.name: _effects(s.on_enter, f"statuses[{i}].on_enter", skipped_effects)
                for i, s in enumerate(spec.statuses)}
    triggers = spec.triggers

    checks: list[tuple[str, Expr]] = []
    skipped: list[str] = []
    for inv in spec.invariants:
        if inv.kind in INVARIANTS:
            checks.append((inv.name, INVARIANTS[inv.kind](spec, status)))
        elif inv.kind in NOT_MODELLED_INVARIANTS:
            skipped.append(inv.name)
        else:
            raise PromelaError(f"invariant {inv.name!r}: no Promela rendering for kind {inv.kind!r}")
    contracts: dict[str, list[tuple[str, Expr]]] = {t: [] for t in triggers}
    claims: list[tuple[str, str]] = []
    stale: int | None = None
    stale_pending: int | None = None  # the expiry of a requested turn that never started
    if requirements is not None:
        for req in requirements.items:
            if req.form == "state":
                expr = render_state(spec, status, req, awaiting)
                if expr is not None:
                    checks.append((req.name, expr))
            elif req.form == "contract":
                rendered = render_contract(spec, status, req, awaiting)
                for trigger, e in (rendered or {}).items():
                    contracts[trigger].append((req.name, e))
            elif req.ltl is not None:
                claims.append((req.name, render_temporal(req.ltl, status, triggers.index)))
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

    out: list[str] = [
        f"/* Generated from {_comment(Path(spec.source).name)} ({_comment(spec.name)}) by statemachine.verify.promela;",
        "   do not edit: export it again from the spec.",
        "   One session; lastError, updatedAt and providerName are not modelled (no guard reads them)"
        + ("; nor is awaiting (no claim reads it)." if temporal else "."),
        f"   Turn ids 1..{turn_ids}; 0 means no turn / an untargeted event.",
        f"   Asserted after every event: {_comment(', '.join(n for n, _ in checks) or 'nothing')}.",
        f"   Step invariants not modelled: {_comment(', '.join(skipped) or 'none')}.",
    ]
    if any(contracts.values()):
        names = sorted({n for items in contracts.values() for n, _ in items})
        out.append(f"   Contracts asserted on each event: {_comment(', '.join(names))}.")
    if temporal:
        out.append(f"   Temporal model: LTL claims {_comment(', '.join(n for n, _ in claims))}; the provider may")
        out.append(f"   go quiet, and the stale-turn expiry ({_comment(triggers[stale or 0])} for the active turn) is")
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
        "bit opt = 0;              /* the current event's onlyIfSettled */",
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
        out += ["", f"/* {_comment(trigger)}: its transitions in file order, the first that applies is taken */"]
        out.append(f"inline step_{k}() {{")
        out.append("  taken = 0;")
        for t in spec.transitions_for(trigger):
            out.append(_transition(spec, t, status, on_enter, skipped_effects))
        out.append("  printf(\"@taken %d\\n\", taken)")
        out.append("}")
        if contracts[trigger]:
            out += [f"inline contracts_{k}() {{", *_assertions(contracts[trigger]), "}"]

    def options(k: int) -> tuple[int, ...]:
        # A trigger whose guards read the payload is sent with `opt` 0 and 1.
        return (0, 1) if any(g in PAYLOAD_GUARDS for t in spec.transitions_for(triggers[k]) for g in t.guards) else (0,)

    def event(k: int, turn: str, label: str, opt: int = 0) -> str:
        save = (["pstatus = status", "pturn = turn", *(f"pfin[{i}] = fin[{i}]" for i in fins), "ppend = pend",
                 "paw = aw"] if contracts[triggers[k]] else [])
        reset = ([f"pstatus = {status[spec.initial]}", "pturn = 0", *(f"pfin[{i}] = 0" for i in fins), "ppend = 0",
                  f"paw = {AWAITING_NONE}"] if contracts[triggers[k]] else [])
        body = [f"ev = {turn}", *([f"opt = {opt}"] if opt else []),
                f"printf(\"@event {k} %d {_label(label)}\\n\", ev)", *save, f"step_{k}()"]
        if contracts[triggers[k]]:
            body.append(f"contracts_{k}()")
        body += ["taken = 0", "ev = 0", *(["opt = 0"] if opt else []), *reset]
        body.append(f"last = {k + 1}" if temporal else "check_invariants()")
        return "d_step { " + "; ".join(body) + " }"

    out += ["", "active proctype session() {", "  check_invariants();"]
    if temporal:
        # `end`: once the provider is quiet and no turn is active, nothing is left to happen.
        out += ["end:", "  do"]
        for k, trigger in enumerate(triggers):
            for turn in range(turn_ids + 1):
                for opt in options(k):
                    out.append(f"  :: !quiet -> {event(k, str(turn), trigger, opt)}")
        out.append("  :: !quiet -> printf(\"@quiet\\n\"); quiet = 1")
        if stale_pending is None:
            out.append(f"  :: turn != 0 -> {event(stale or 0, 'turn', 'stale expiry')}")
        else:
            # As expire_stale_turns: a session with a pending turn is settled by its own event.
            out.append(f"  :: turn != 0 && pend == 0 -> {event(stale or 0, 'turn', 'stale expiry')}")
            out.append(f"  :: pend != 0 -> {event(stale_pending, '0', 'stale expiry of a pending turn')}")
        out += ["  od", "}", ""]
        for name, formula in claims:
            out.append(f"ltl {_identifier('', name)} {{ {formula} }}")
        out.append("")
    else:
        out.append("  do")
        for k, trigger in enumerate(triggers):
            for turn in range(turn_ids + 1):
                for opt in options(k):
                    out.append(f"  :: {event(k, str(turn), trigger, opt)}")
        out += ["  od", "}", ""]
    return "\n".join(out)
