"""The lifecycle's statuses and transitions as an XState v5 machine.

`machine_config(spec)` is the config (`python -m statemachine export xstate`, JSON): a state per
status; per status and trigger, the spec's transitions that leave it, in the spec's order (XState
takes the first whose guard passes, as the `transitions` machine does); each with its guard (one
name, or several joined as `a && b`) and its actions: the on-enter hooks of its destination, its
effects, then `on_applied`, which is the order the Python machine runs them in. A transition
without a destination is targetless (XState's counterpart of an internal transition).

`export_setup(spec)` (`export xstate-setup`) is a TypeScript module embedding the same config,
with a typed `setup()`: the guards implemented from their TypeScript renderings
(`statemachine.spec.semantics`) over a context holding the session's fields and its finished
turns, the actions named and typed with their parameters as stubs for the embedder.

What the machine leaves out (docs/typescript.md): both memories, non-lifecycle types, the clock
bound, rejection reasons, the envelope checks, `forgotten`, and the effects themselves.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from statemachine.engine.compiled import vocabulary_of
from statemachine.rendering.typescript import js
from statemachine.spec.model import EffectRef, Spec, TransitionSpec

__all__ = ["XStateExportError", "actions_of", "export_setup", "guard_name", "machine_config"]


class XStateExportError(ValueError):
    """The spec cannot be written as an XState machine (a guard without a TypeScript rendering, or
    one reading what the XState context does not hold); the message says which."""


# What the XState context holds for each slot a guard may read (`upd_dt` and the event's parsed
# time are not there: a guard reading them cannot be exported).
_CONTEXT = {
    "turn": "context.activeTurnId",
    "err": "context.lastError",
    "upd": "context.updatedAt",
    "prov": "context.providerName",
    "pend": "context.pendingTurn",
    "aw": "context.awaiting",
    # The context holds the session's wire form; the renderings read [requestId, kind] pairs.
    "req": "context.openRequests.map((r) => [r.requestId, r.kind] as const)",
    "fin": "new Set<string>(context.finishedTurns)",
    "t": "event.turnId",
    "ev": "view(event)",
}


def guard_name(guards: tuple[str, ...]) -> str:
    """The XState guard of a transition: its one guard, or its guards joined (`a && b`)."""
    return " && ".join(guards)


def actions_of(spec: Spec, transition: TransitionSpec) -> list[EffectRef]:
    """The effects a transition runs, in the order the Python machine runs them."""
    entered = list(spec.status(transition.dest).on_enter) if transition.dest is not None else []
    return [*entered, *transition.effects, *spec.on_applied]


def _action(ref: EffectRef) -> dict[str, Any] | str:
    return {"type": ref.name, "params": ref.param_map} if ref.params else ref.name


def machine_config(spec: Spec) -> dict[str, Any]:
    """The XState v5 machine config of `spec` (JSON-able)."""
    states: dict[str, Any] = {}
    for status in spec.status_names:
        on: dict[str, Any] = {}
        for trigger in spec.triggers:
            candidates = []
            for t in spec.transitions_for(trigger):
                if status not in t.sources:
                    continue
                candidate: dict[str, Any] = {}
                if t.dest is not None:
                    candidate["target"] = t.dest
                if t.guards:
                    candidate["guard"] = guard_name(t.guards)
                candidate["actions"] = [_action(ref) for ref in actions_of(spec, t)]
                candidate["meta"] = {"transition": t.index}
                candidates.append(candidate)
            if candidates:
                on[trigger] = candidates
        states[status] = {"on": on} if on else {}
    return {
        "id": spec.name,
        "initial": spec.initial,
        "context": {"activeTurnId": None, "lastError": None, "updatedAt": None, "providerName": None,
                    "pendingTurn": None, "awaiting": None, "openRequests": [], "finishedTurns": []},
        "states": states,
    }


def config_json(spec: Spec) -> str:
    """`machine_config` as the JSON text `export xstate` writes (ASCII: every spec string escaped)."""
    return json.dumps(machine_config(spec), indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def _helpers() -> str:
    runtime = resources.files("statemachine.rendering").joinpath("typescript_runtime.ts").read_text(encoding="utf-8")
    start = runtime.index("// <helpers>")
    return runtime[start:runtime.index("// </helpers>")]


def export_setup(spec: Spec) -> str:
    """The TypeScript module: the config, its types, and a typed `setup()`."""
    vocabulary = vocabulary_of(spec)
    names = sorted({g for t in spec.transitions for g in t.guards})
    problems = [n for n in names if not vocabulary.guards[n].ts.strip()]
    if problems:
        raise XStateExportError(f"no TypeScript rendering (the declaration's ts=) for guard {', '.join(problems)}")
    unreadable = [n for n in names if "upd_dt" in vocabulary.guards[n].reads or "created_dt" in vocabulary.guards[n].ts]
    if unreadable:
        raise XStateExportError(f"guard {', '.join(unreadable)} reads a parsed time, which the XState context does "
                                "not hold")
    composites = sorted({t.guards for t in spec.transitions if len(t.guards) > 1})
    refs = [*(e for t in spec.transitions for e in t.effects), *(e for s in spec.statuses for e in s.on_enter),
            *spec.on_applied]
    effects: dict[str, tuple[str, ...]] = {}
    for ref in refs:
        effects.setdefault(ref.name, vocabulary.effects[ref.name].params)
    index = {name: i for i, name in enumerate(names)}
    guard_functions = []
    for name in names:
        g = vocabulary.guards[name]
        loads = [f"  const {slot} = {_CONTEXT[slot]};" for slot in g.reads]
        guard_functions += [f"// {js(name)}",
                            f"function guard_{index[name]}({{ context, event }}: GuardArgs): boolean {{",
                            *loads, f"  return {g.ts.strip()};", "}"]
    guard_entries = [f"  {js(name)}: guard_{index[name]}," for name in names]
    guard_entries += [f"  {js(guard_name(c))}: (args: GuardArgs): boolean => "
                      + " && ".join(f"guard_{index[g]}(args)" for g in c) + "," for c in composites]
    action_entries = []
    for name in sorted(effects):
        params = effects[name]
        if params:
            shape = "{ " + " ".join(f"readonly {js(p)}: ParamValue;" for p in params) + " }"
            action_entries.append(f"  {js(name)}: (_args: ActionArgs, _params: {shape}): void => {{}},")
        else:
            action_entries.append(f"  {js(name)}: (_args: ActionArgs): void => {{}},")
    return "\n".join([
        f"// The session lifecycle {js(spec.name)} as an XState v5 machine (spec digest {js(spec.digest)}).",
        "// Generated by `python -m statemachine export xstate-setup`; do not edit, regenerate.",
        "// Statuses and transitions only: see docs/typescript.md for what the machine leaves out.",
        'import { setup } from "xstate";',
        "",
        f"export const STATUSES = [{', '.join(js(s) for s in spec.status_names)}] as const;",
        "export type Status = (typeof STATUSES)[number];",
        f"export const TRIGGERS = [{', '.join(js(t) for t in spec.triggers)}] as const;",
        "export type Trigger = (typeof TRIGGERS)[number];",
        "",
        "/** What the guards read of a session: its fields, and the turns it finished. */",
        "export interface LifecycleContext {",
        "  readonly activeTurnId: string | null;",
        "  readonly lastError: string | null;",
        "  readonly updatedAt: string | null;",
        "  readonly providerName: string | null;",
        '  /** A requested turn not started yet ("" when its id is unknown). */',
        "  readonly pendingTurn: string | null;",
        "  readonly awaiting: string | null;",
        "  /** The open requests, oldest first, as the session holds them. */",
        "  readonly openRequests: readonly OpenRequest[];",
        "  readonly finishedTurns: readonly string[];",
        "}",
        "",
        "export interface OpenRequest {",
        "  readonly requestId: RequestId;",
        "  readonly kind: string;",
        "}",
        "",
        "type Payload = { readonly [field: string]: unknown };",
        "",
        "/** A lifecycle event, by its trigger (`type` or `type[variant]`). */",
        "export interface LifecycleEvent {",
        "  readonly type: Trigger;",
        "  readonly turnId: string | null;",
        "  readonly payload: Payload;",
        "  readonly provider?: string;",
        "  readonly createdAt?: string;",
        "}",
        "",
        "export type ParamValue = string | number | boolean | null;",
        "type GuardArgs = { context: LifecycleContext; event: LifecycleEvent };",
        "type ActionArgs = { context: LifecycleContext; event: LifecycleEvent };",
        "",
        "/** The event as the guards' renderings read it (`ev`). */",
        "function view(event: LifecycleEvent) {",
        "  return { payload: event.payload, provider: event.provider ?? \"\", created_at: event.createdAt ?? \"\",",
        "           type: event.type.replace(/\\[.*$/s, \"\"), trigger: event.type };",
        "}",
        "",
        _helpers(),
        *guard_functions,
        "",
        "/** Every guard the config names, implemented from the TypeScript renderings. */",
        "export const guards = {",
        *guard_entries,
        "};",
        "",
        "/** Every action the config names, with its parameters: stubs, to provide with",
        " * `machine.provide({ actions: { ... } })` (the effects are the TypeScript module's). */",
        "export const actions = {",
        *action_entries,
        "};",
        "",
        f"export const config = {config_json(spec).rstrip()} as const;",
        "",
        "export const lifecycle = setup({",
        "  types: { context: {} as LifecycleContext, events: {} as LifecycleEvent },",
        "  guards,",
        "  actions,",
        "});",
        "",
        "export const machine = lifecycle.createMachine(config);",
        "",
    ])
