"""The lifecycle as one dependency-free TypeScript module (`python -m statemachine export typescript`).

What it holds: the types (`Session`, `EventEnvelope`, `Outcome`, `Status`, `Trigger`,
`RejectionReason`), the envelope parser (the checks of `statemachine.spec.parser`, in the same
order, naming the same field), the clock bound, both memories with their caps and FIFO eviction,
`apply(thread, event, horizon)` (the projector's step: de-duplication, clock bound, type, then the
step for (status, trigger)), and `SessionProjector`. The fixed part is
`typescript_runtime.ts` beside this file; the rest is generated here:

- the step functions come from the table recorded from the `transitions` machine
  (`statemachine.engine.compiled.record_table`), one per (status, trigger): the same decision tree
  as the compiled engine's (a guard is tested only where its value is not yet settled by the
  declarations' `negates` / `implied_by`: `statemachine.engine.compiled.settled`, which both
  call) and the same effects in the same order;
- guards and effects are the declarations' TypeScript renderings (`Guard.ts`, `Effect.ts` in
  `statemachine.spec.semantics`), over the same slot names as their Python code;
- every string from the spec becomes a JSON string literal (ASCII, so no character can end a
  comment or a line), never an identifier: step functions are numbered.

The TypeScript side keeps the eventIds themselves where the Python side keeps their keyed 64-bit
digests: duplicates and eviction order are the same (barring a digest collision, which the Python
side makes negligible; docs/reliability.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from statemachine.core.clock import CREATED_IN_FUTURE
from statemachine.core.event import SYNTHETIC_EVENT_PREFIX
from statemachine.core.session import Session
from statemachine.engine.compiled import Entry, Plan, record_table, settled, vocabulary_of
from statemachine.spec.model import Spec, no_transition_reason
from statemachine.spec.semantics import SLOTS, Effect, Vocabulary

__all__ = ["TS_SLOTS", "TypeScriptExportError", "export_typescript", "js", "reasons_of"]


class TypeScriptExportError(ValueError):
    """The spec or its vocabulary cannot be written as TypeScript (a declaration with no TypeScript
    rendering, a slot the renderer does not know); the message says which."""


def js(value: Any) -> str:
    """A value as a JSON literal: ASCII only, so safe in a string, a comment and a line of code."""
    return json.dumps(value, ensure_ascii=True, allow_nan=False)


# slot -> (its TypeScript type, how a step loads it). Every slot of `SLOTS` must be here.
TS_SLOTS: Mapping[str, tuple[str, str]] = {
    "turn": ("string | null", "s.activeTurnId"),
    "err": ("string | null", "s.lastError"),
    "upd": ("string | null", "s.updatedAt"),
    "upd_dt": ("bigint | null", "rec.updatedDt"),
    "prov": ("string | null", "s.providerName"),
    "t": ("string | null", "ev.turn_id"),
    "ev": ("ParsedEvent", "ev"),
    "fin": ("TurnMemory", "rec.finished"),
    "pend": ("string | null", "pendOf(s)"),
    "aw": ("string | null", "s.awaiting"),
    # [requestId, kind] pairs, oldest first, as the Python slot holds them; the session's wire
    # form ([{requestId, kind}]) is converted on load and on store.
    "req": ("readonly (readonly [RequestId, string])[]", "reqOf(s)"),
}
_READ_ONLY = frozenset({"t", "ev", "fin"})
# Session fields (in `Session._fields` order) -> the wire field a step writes.
_WIRE = {"status": "status", "provider_name": "providerName", "active_turn_id": "activeTurnId",
         "last_error": "lastError", "updated_at": "updatedAt", "pending_turn": "pendingTurn", "awaiting": "awaiting",
         "open_requests": "openRequests"}
# Slots whose TypeScript form is not the wire field's -> how a step writes the field from the slot.
_STORE = {"pend": "pendingOf(pend)", "req": "requestsOf(req)"}


def _check_vocabulary(spec: Spec, vocabulary: Vocabulary) -> None:
    unknown = set(SLOTS) - set(TS_SLOTS)
    if unknown:
        raise TypeScriptExportError(f"slots {sorted(unknown)} have no TypeScript type "
                                    "(statemachine.rendering.typescript)")
    used_guards = {g for t in spec.transitions for g in t.guards}
    used_effects = {e.name for t in spec.transitions for e in t.effects}
    used_effects |= {e.name for s in spec.statuses for e in s.on_enter} | {e.name for e in spec.on_applied}
    missing = sorted(f"guard {g}" for g in used_guards if not vocabulary.guards[g].ts.strip())
    missing += sorted(f"effect {e}" for e in used_effects if not vocabulary.effects[e].ts.strip())
    if missing:
        raise TypeScriptExportError(f"no TypeScript rendering (the declaration's ts=) for {', '.join(missing)}")


def reasons_of(spec: Spec, table: Mapping[tuple[str, str], Plan]) -> tuple[str, ...]:
    """Every rejection reason a step can give, and the clock bound's."""
    reasons = {CREATED_IN_FUTURE}
    for (trigger, status) in ((t, s) for s in spec.status_names for t in spec.triggers):
        plan = table.get((trigger, status))
        if plan is None:
            reasons.add(no_transition_reason(status))
        else:
            reasons.update(e.reason for e in plan.entries if e.reason is not None)
    return tuple(sorted(reasons))


def _indent(lines: Sequence[str], by: str = "  ") -> list[str]:
    return [by + line if line else line for line in lines]


class _Codegen:
    def __init__(self, spec: Spec, vocabulary: Vocabulary) -> None:
        self.spec = spec
        self.vocabulary = vocabulary
        self.functions: list[str] = []
        self.leaves: dict[tuple[Any, ...], str] = {}
        self.leaf_functions: list[str] = []

    def effect(self, effect: Effect, params: Mapping[str, Any]) -> list[str]:
        head = [f"const p = {{ {', '.join(f'{js(k)}: {js(params.get(k))}' for k in effect.params)} }} as const;"] \
            if effect.params else []
        return ["{", *_indent([*head, *effect.ts.strip().splitlines()]), "}"]

    def leaf(self, entry: Entry) -> list[str]:
        """A rejection, or a call of the applied entry's function (one per distinct entry: what an
        applied entry does depends on the entry alone, not on the status it leaves)."""
        if not entry.applied:
            return [f"return rejected(ev, s, {js(entry.reason)});"]
        key = (entry.status, tuple((n, tuple(sorted(p.items()))) for n, p in entry.effects), entry.transition)
        name = self.leaves.get(key)
        if name is None:
            name = self.leaves[key] = f"applied_{len(self.leaves)}"
            self.leaf_functions.append("\n".join([
                f"// transition {entry.transition}: to {js(entry.status)}, effects "
                f"{js([n for n, _ in entry.effects])}",
                f"function {name}(rec: Thread, ev: ParsedEvent): Outcome {{",
                *_indent(self.applied(entry)),
                "}",
            ]))
        return [f"return {name}(rec, ev);"]

    def applied(self, entry: Entry) -> list[str]:
        effects = [(self.vocabulary.effects[name], params) for name, params in entry.effects]
        slots = dict.fromkeys(slot for e, _ in effects for slot in (*e.reads, *e.writes))
        loads = [f"{'const' if slot in _READ_ONLY else 'let'} {slot}: {TS_SLOTS[slot][0]} = {TS_SLOTS[slot][1]};"
                 for slot in slots if slot != "ev"]
        body = [line for e, params in effects for line in self.effect(e, params)]
        written = {slot for e, _ in effects for slot in e.writes}
        fields = []
        for field in Session._fields:
            if field not in _WIRE:
                continue
            slot = next((k for k, v in SLOTS.items() if v.session_field == field), None)
            if field == "status":
                fields.append(js(entry.status))
            elif slot is not None and slot in written:
                fields.append(_STORE.get(slot, slot))
            else:
                fields.append(f"s.{_WIRE[field]}")
        commit = ["rec.session = after;"]
        if "upd" in written:
            commit.append("rec.updatedDt = upd_dt;" if "upd_dt" in written else
                          "rec.updatedDt = upd === null ? null : parseTimestamp(upd);")
        remembers = any(e.remembers for e, _ in effects)
        return [
            "const s = rec.session;",
            *loads,
            *(["const remember = (finishedTurn: string): void => {", "  rec.finished.add(finishedTurn);", "};"]
              if remembers else []),
            *body,
            f"const after = sessionAfter(s, {', '.join(fields)});",
            *commit,
            f"return applied(ev, s, after, {js(entry.transition)});",
        ]

    def tree(self, plan: Plan, i: int = 0, bits: int = 0, known: Mapping[str, bool] | None = None) -> list[str]:
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
        return [f"if ({self.vocabulary.guards[name].ts.strip()}) {{", *_indent(if_true),
                "} else {", *_indent(if_false), "}"]

    def function(self, trigger: str, status: str, plan: Plan | None) -> str:
        if plan is None:
            body = self.leaf(Entry(False, status, (), no_transition_reason(status)))
            used: set[str] = set()
        else:
            body = self.tree(plan)
            used = {slot for g in plan.guards for slot in self.vocabulary.guards[g].reads}
        # Guards only read: every slot they read is a constant here.
        head = ["const s = rec.session;", *(f"const {slot}: {TS_SLOTS[slot][0]} = {TS_SLOTS[slot][1]};"
                                            for slot in SLOTS if slot in used and slot != "ev")]
        name = f"step_{len(self.functions)}"
        self.functions.append("\n".join([
            f"// {js(trigger)} in {js(status)}",
            f"function {name}(rec: Thread, ev: ParsedEvent): Outcome {{",
            *_indent([*head, *body]),
            "}",
        ]))
        return name


def _renderings(vocabulary: Vocabulary, guards: Sequence[str], effects: Sequence[str]) -> list[str]:
    """The guards and effects the spec uses, each as a function over a `Slots` record: what the
    steps inline, callable on its own (the renderings' agreement test calls them)."""
    lines = [
        "/** The values guards and effects read and write, by the names their renderings use. */",
        "export interface Slots {",
        *(f"  {slot}: {TS_SLOTS[slot][0]};" for slot in SLOTS),
        "}",
        "export type ParamValue = string | number | boolean | null;",
        "export type Params = { readonly [name: string]: ParamValue };",
        "export const GUARDS: ReadonlyMap<string, (x: Readonly<Slots>) => boolean> = new Map([",
    ]
    for name in guards:
        g = vocabulary.guards[name]
        reads = " ".join(f"const {slot} = x.{slot};" for slot in g.reads)
        lines.append(f"  [{js(name)}, (x: Readonly<Slots>): boolean => {{ {reads} return {g.ts.strip()}; }}],")
    lines += [
        "]);",
        "export const EFFECTS: ReadonlyMap<string, (x: Slots, p: Params, remember: (turn: string) => void) => void> =",
        "  new Map([",
    ]
    for name in effects:
        e = vocabulary.effects[name]
        slots = dict.fromkeys((*e.reads, *e.writes))
        loads = [f"{'let' if slot in e.writes else 'const'} {slot}: {TS_SLOTS[slot][0]} = x.{slot};" for slot in slots]
        stores = [f"x.{slot} = {slot};" for slot in e.writes]
        lines += [
            f"    [{js(name)}, (x: Slots, p: Params, remember: (turn: string) => void): void => {{",
            *_indent([*loads, "{", *_indent(e.ts.strip().splitlines()), "}", *stores], "      "),
            "    }],",
        ]
    lines.append("  ]);")
    return lines


def export_typescript(spec: Spec, table: Mapping[tuple[str, str], Plan] | None = None) -> str:
    """The TypeScript module for `spec`, its steps generated from the recorded `table` (default:
    recorded now from the `transitions` machine)."""
    vocabulary = vocabulary_of(spec)
    _check_vocabulary(spec, vocabulary)
    if table is None:
        table = record_table(spec)
    gen = _Codegen(spec, vocabulary)
    names: dict[tuple[str, str], str] = {}
    for status in spec.status_names:
        for trigger in spec.triggers:
            names[(trigger, status)] = gen.function(trigger, status, table.get((trigger, status)))
    guards = sorted({g for t in spec.transitions for g in t.guards})
    effects = sorted({e.name for t in spec.transitions for e in t.effects}
                     | {e.name for s in spec.statuses for e in s.on_enter} | {e.name for e in spec.on_applied})
    field_checks = [
        f"  [{js(e.type)}, [" + ", ".join(
            "{ " + f"name: {js(f.name)}, type: {js(f.type)}, required: {js(f.required)}, default: {js(f.default)}, "
            f"enum: {js(list(f.enum)) if f.enum is not None else 'null'}, selects: {js(f.name == e.variant_by)}" + " }"
            for f in e.payload) + "]],"
        for e in spec.events
    ]
    forgetting = [t.name for e in spec.events if e.forgets_thread for t in e.trigger_values]
    steps = [
        "type StepTable = ReadonlyMap<string, ReadonlyMap<string, Step>>;",
        "const STEPS: StepTable = new Map([",
        *(f"  [{js(status)}, new Map<string, Step>([" + ", ".join(
            f"[{js(trigger)}, {names[(trigger, status)]}]" for trigger in spec.triggers) + "])],"
          for status in spec.status_names),
        "]);",
    ]
    header = [
        f"// The session lifecycle {js(spec.name)} as TypeScript (spec digest {js(spec.digest)}).",
        "// Generated by `python -m statemachine export typescript`; do not edit, regenerate. No dependencies.",
        "// Spec values appear only as JSON string literals.",
        "",
        f"export const SPEC_NAME = {js(spec.name)};",
        f"export const SPEC_DIGEST = {js(spec.digest)};",
        f"export const STATUSES = [{', '.join(js(s) for s in spec.status_names)}] as const;",
        "export type Status = (typeof STATUSES)[number];",
        f"export const INITIAL_STATUS: Status = {js(spec.initial)};",
        f"export const TRIGGERS = [{', '.join(js(t) for t in spec.triggers)}] as const;",
        "export type Trigger = (typeof TRIGGERS)[number];",
        f"export const REJECTION_REASONS = [{', '.join(js(r) for r in reasons_of(spec, table))}] as const;",
        "export type RejectionReason = (typeof REJECTION_REASONS)[number];",
        "const STATUS_SET: ReadonlySet<string> = new Set<string>(STATUSES);",
        f"const SYNTHETIC_EVENT_PREFIX = {js(SYNTHETIC_EVENT_PREFIX)};",
        f"const FORGETTING: ReadonlySet<string> = new Set<string>([{', '.join(js(t) for t in forgetting)}]);",
        "interface FieldCheck {",
        "  readonly name: string;",
        "  readonly type: string;",
        "  readonly required: boolean;",
        "  readonly default: string | null;",
        "  readonly enum: readonly string[] | null;",
        "  readonly selects: boolean;",
        "}",
        "/** Lifecycle event types -> their payload checks, in the spec's order. */",
        "const EVENT_TYPES: ReadonlyMap<string, readonly FieldCheck[]> = new Map<string, readonly FieldCheck[]>([",
        *field_checks,
        "]);",
        "",
    ]
    runtime = resources.files("statemachine.rendering").joinpath("typescript_runtime.ts").read_text(encoding="utf-8")
    body = [
        "",
        "// ---- the steps: one per (status, trigger), generated from the recorded table ---------------------",
        "",
        *("\n" + f for f in gen.leaf_functions),
        *("\n" + f for f in gen.functions),
        "",
        *steps,
        "",
        "// ---- the guards and effects alone --------------------------------------------------------------",
        "",
        *_renderings(vocabulary, guards, effects),
    ]
    return "\n".join(header) + "\n" + runtime + "\n".join(body) + "\n"
