"""Mutants: a spec with small, named edits, wrong on purpose.

A mutant file (`specs/mutants/*.yaml`) says what it breaks and which requirements catch it, and
lists its edits; `load_mutant` applies them to the built-in spec's data (as read from the file and
checked against the JSON Schema), checks the result against the schema again, and builds the
`Spec`. `verify --mutate` makes every single-edit mutant of the spec under test in the same edit
language (`single_edit_mutants`) and runs the checks on each (`statemachine.verify.mutation`).

The edit language, over the spec's data (plain YAML values, never evaluated):

    edit  := {at: PATH, set: VALUE}                   replace the value PATH names (or add a key)
           | {at: PATH, remove: STEP}                 remove from the list or mapping PATH names
           | {at: PATH, add: VALUE [, before: STEP | after: STEP]}   insert into the list (at its end)
           | {at: PATH, swap: [STEP, STEP]}           exchange two items of the list
    PATH  := [STEP, ...]                              from the top of the spec
    STEP  := a key (in a mapping), or an item (in a list): a string is the item equal to it; a
             mapping {field: value, ...} is the item whose fields have these values; with `nth: K`,
             the K-th such item (from 1) when several have them. Without `nth` exactly one may.

For example, `{at: [transitions, {trigger: turn.started, nth: 1}, guards], remove: turn_not_finished}`
drops a guard from the first `turn.started` transition.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statemachine.spec.check import build_spec
from statemachine.spec.load import load_spec
from statemachine.spec.loader import check_spec_data, read_spec_file, read_yaml_file, specs_dir
from statemachine.spec.model import Spec, SpecError

__all__ = [
    "MUTANTS_DIR",
    "OPERATORS",
    "PROJECTOR_GUARANTEES",
    "Edit",
    "MutantInfo",
    "Mutation",
    "apply_edits",
    "builtin_mutants",
    "edit_label",
    "load_mutant",
    "mutant_data",
    "mutant_spec_text",
    "mutant_table",
    "parse_edit",
    "read_mutant",
    "single_edit_mutants",
    "spec_from_data",
]

MUTANTS_DIR = specs_dir() / "mutants"  # beside the built-in spec, in a source checkout
OPERATIONS = ("set", "remove", "add", "swap")
# The requirements no spec can break, so no mutant catches them: the projector keeps them for every
# spec (de-duplication, outcomes and their reasons, updatedAt never moving back, the fields no spec
# rule sets). tests/spec/test_requirements.py shows each failing on a projector broken on purpose.
PROJECTOR_GUARANTEES = frozenset({
    "redelivery_is_duplicate", "fresh_event_is_not_duplicate", "unapplied_changes_nothing",
    "only_rejections_have_reasons", "updated_at_never_decreases", "carried_fields_untouched",
})
_FILE_KEYS = {"mutant_version", "class", "breaks", "caught_by", "before_requirements", "edits"}
_EDIT_KEYS = {"at", *OPERATIONS, "before", "after"}


@dataclass(frozen=True)
class Edit:
    """One edit of the spec's data (see the module's docstring)."""

    at: tuple[Any, ...]
    op: str  # one of OPERATIONS
    value: Any  # what is set or added; the step removed; the two steps swapped
    before: Any = None  # add: the item to insert before (a STEP), or None
    after: Any = None  # add: the item to insert after (a STEP), or None

    def to_data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": list(self.at), self.op: self.value}
        if self.before is not None:
            out["before"] = self.before
        if self.after is not None:
            out["after"] = self.after
        return out


@dataclass(frozen=True)
class MutantInfo:
    """What a mutant file says about itself."""

    name: str  # the file's stem
    path: str
    kind: str  # its class, e.g. "guard dropped"
    breaks: str  # the rule it breaks, in words
    caught_by: tuple[str, ...]  # the requirements `verify` shows failing on it
    before_requirements: str  # what the older checks (spec invariants, static rules) said
    edits: tuple[Edit, ...]


class _EditError(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, default=str)


def parse_edit(raw: Any, where: str = "edits[0]", source: str = "<edit>") -> Edit:
    """An edit as data -> an `Edit`, or a `SpecError` naming `source` and the field."""
    try:
        return _parse_edit(raw, where)
    except _EditError as exc:
        raise SpecError(source, exc.where, exc.message) from None


def _parse_edit(raw: Any, where: str) -> Edit:
    if not isinstance(raw, dict):
        raise _EditError(where, "an edit is a mapping with `at` and one of " + ", ".join(OPERATIONS))
    unknown = sorted(set(raw) - _EDIT_KEYS)
    if unknown:
        raise _EditError(f"{where}.{unknown[0]}", f"unknown key (an edit has at, {', '.join(OPERATIONS)}, "
                                                  "before, after)")
    ops = [op for op in OPERATIONS if op in raw]
    if len(ops) != 1:
        raise _EditError(where, f"an edit has exactly one of {', '.join(OPERATIONS)}; got {ops or 'none'}")
    op = ops[0]
    at = raw.get("at")
    if not isinstance(at, list) or not at:
        raise _EditError(f"{where}.at", "must be a non-empty list of steps")
    for i, step in enumerate(at):
        _check_step(step, f"{where}.at[{i}]")
    if op == "remove":
        _check_step(raw[op], f"{where}.remove")
    if op == "swap":
        pair = raw[op]
        if not isinstance(pair, list) or len(pair) != 2:
            raise _EditError(f"{where}.swap", "must list two steps")
        for i, step in enumerate(pair):
            _check_step(step, f"{where}.swap[{i}]")
    for key in ("before", "after"):
        if key in raw:
            if op != "add":
                raise _EditError(f"{where}.{key}", f"only an `add` takes `{key}`")
            _check_step(raw[key], f"{where}.{key}")
    if "before" in raw and "after" in raw:
        raise _EditError(where, "an `add` takes `before` or `after`, not both")
    return Edit(tuple(at), op, raw[op], raw.get("before"), raw.get("after"))


def _check_step(step: Any, where: str) -> None:
    if isinstance(step, str) and step:
        return
    if isinstance(step, dict) and step and set(step) != {"nth"}:
        nth = step.get("nth", 1)
        if not isinstance(nth, int) or isinstance(nth, bool) or nth < 1:
            raise _EditError(f"{where}.nth", "must be a whole number from 1")
        return
    raise _EditError(where, "a step is a key or item (a string) or a mapping of fields that picks an item")


def _matches(item: Any, step: Any) -> bool:
    if isinstance(step, str):
        return bool(item == step)
    return isinstance(item, dict) and all(k in item and item[k] == v for k, v in step.items() if k != "nth")


def _index(items: list[Any], step: Any, where: str) -> int:
    """The position of the one list item `step` picks."""
    found = [i for i, item in enumerate(items) if _matches(item, step)]
    nth: int | None = step.get("nth") if isinstance(step, dict) else None
    if nth is not None:
        if nth > len(found):
            raise _EditError(where, f"{_show(step)} picks item {nth}, but {len(found)} match")
        return found[nth - 1]
    if len(found) != 1:
        raise _EditError(where, f"{_show(step)} must pick exactly one item; {len(found)} match "
                                "(add `nth` to pick one of several)")
    return found[0]


def _child(container: Any, step: Any, where: str) -> tuple[Any, Any]:
    """(key or index, value) of the child `step` picks."""
    if isinstance(container, dict):
        if not isinstance(step, str) or step not in container:
            raise _EditError(where, f"no key {_show(step)} here (keys: {', '.join(sorted(map(str, container)))})")
        return step, container[step]
    if isinstance(container, list):
        i = _index(container, step, where)
        return i, container[i]
    raise _EditError(where, f"{_show(step)}: nothing to step into (a {type(container).__name__})")


def _apply(data: dict[str, Any], edit: Edit, where: str) -> None:
    parent: Any = data
    for i, step in enumerate(edit.at[:-1]):
        _, parent = _child(parent, step, f"{where}.at[{i}]")
    last = edit.at[-1]
    last_where = f"{where}.at[{len(edit.at) - 1}]"
    if edit.op == "set":
        if isinstance(parent, dict) and isinstance(last, str):
            parent[last] = copy.deepcopy(edit.value)  # a new key is allowed: the schema judges it
            return
        key, _ = _child(parent, last, last_where)
        parent[key] = copy.deepcopy(edit.value)
        return
    _, target = _child(parent, last, last_where)
    if edit.op == "remove":
        key, _ = _child(target, edit.value, f"{where}.remove")
        del target[key]
        return
    if not isinstance(target, list):
        raise _EditError(last_where, f"`{edit.op}` needs a list here, not a {type(target).__name__}")
    if edit.op == "swap":
        i, j = (_index(target, s, f"{where}.swap[{k}]") for k, s in enumerate(edit.value))
        if i == j:
            raise _EditError(f"{where}.swap", "both steps pick the same item")
        target[i], target[j] = target[j], target[i]
        return
    position = len(target)
    if edit.before is not None:
        position = _index(target, edit.before, f"{where}.before")
    elif edit.after is not None:
        position = _index(target, edit.after, f"{where}.after") + 1
    target.insert(position, copy.deepcopy(edit.value))


def apply_edits(data: Mapping[str, Any], edits: Sequence[Edit], source: str = "<mutant>") -> dict[str, Any]:
    """A copy of spec data with the edits applied in order; `SpecError` naming the edit that fails.
    The result is not yet checked (see `spec_from_data`)."""
    out = copy.deepcopy(dict(data))
    for i, edit in enumerate(edits):
        try:
            _apply(out, edit, f"edits[{i}]")
        except _EditError as exc:
            raise SpecError(source, exc.where, exc.message) from None
    return out


def spec_from_data(data: dict[str, Any], source: str) -> Spec:
    """Edited spec data -> a `Spec`: checked against the JSON Schema as a file would be, then built."""
    return build_spec(check_spec_data(data, source), source)


def _text(raw: dict[str, Any], key: str, name: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(name, key, "must be a non-empty text")
    return " ".join(value.split())


def read_mutant(path: str | Path) -> MutantInfo:
    """A mutant file's description and edits (not yet applied), or `SpecError` naming the field."""
    file = Path(path)
    name = str(file)
    raw = read_yaml_file(file)  # the spec loader's hardened rules (size, no tags or aliases)
    if not isinstance(raw, dict):
        raise SpecError(name, "$", "a mutant file is a mapping (mutant_version, class, breaks, caught_by, edits)")
    unknown = sorted(set(raw) - _FILE_KEYS)
    if unknown:
        raise SpecError(name, unknown[0], f"unknown key (known: {', '.join(sorted(_FILE_KEYS))})")
    if raw.get("mutant_version") != 1:
        raise SpecError(name, "mutant_version", "must be 1")
    caught = raw.get("caught_by")
    if not isinstance(caught, list) or not caught or not all(isinstance(c, str) and c for c in caught):
        raise SpecError(name, "caught_by", "must list the names of the requirements that catch the mutant")
    edits_raw = raw.get("edits")
    if not isinstance(edits_raw, list) or not edits_raw:
        raise SpecError(name, "edits", "must list at least one edit")
    edits = tuple(parse_edit(e, f"edits[{i}]", name) for i, e in enumerate(edits_raw))
    return MutantInfo(file.stem, name, _text(raw, "class", name), _text(raw, "breaks", name), tuple(caught),
                      _text(raw, "before_requirements", name), edits)


def mutant_data(path: str | Path, base: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], MutantInfo]:
    """The spec data a mutant file makes of `base` (the built-in spec's data when None), unchecked."""
    info = read_mutant(path)
    data = read_spec_file(None)[0] if base is None else base
    return apply_edits(data, info.edits, info.path), info


def load_mutant(path: str | Path, base: Mapping[str, Any] | None = None) -> tuple[Spec, MutantInfo]:
    """A mutant file -> the `Spec` it makes of `base` (the built-in spec's data when None), named
    after the file, and what the file says about it. `SpecError` names the file and the field."""
    data, info = mutant_data(path, base)
    return spec_from_data(data, info.path), info


def load_spec_or_mutant(path: str | Path) -> Spec:
    """A spec file, or a mutant file (a patch of the built-in spec, marked by `mutant_version`)
    as the spec it makes: what the commands' `--spec FILE` reads."""
    try:
        return load_spec(path)
    except SpecError as refused:
        try:
            raw = read_yaml_file(path)
        except SpecError:
            raise refused from None
        if isinstance(raw, dict) and "mutant_version" in raw:
            return load_mutant(path)[0]
        raise


def mutant_spec_text(path: str | Path) -> str:
    """A mutant as a whole spec file (YAML), for the commands that take `--spec FILE`."""
    import yaml

    data, info = mutant_data(path)
    spec_from_data(data, info.path)  # refuse what would not load

    class _Plain(yaml.SafeDumper):
        def ignore_aliases(self, _: Any) -> bool:
            return True  # the loader refuses anchors and aliases: spell every node out

    header = f"# The mutant {info.name} ({info.kind}), written out whole: {info.breaks}\n"
    return header + yaml.dump(data, Dumper=_Plain, sort_keys=False, allow_unicode=False, width=100)


def builtin_mutants() -> list[Path]:
    """The mutant files of the repository, by name."""
    return sorted(MUTANTS_DIR.glob("*.yaml"))


def _inline(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(", ", ": "))


def edit_label(edit: Edit) -> str:
    """One line for people: `transitions[trigger=turn.started #1].guards: remove turn_not_finished`."""
    def step(s: Any) -> str:
        if isinstance(s, str):
            return s
        fields = ",".join(f"{k}={v}" if isinstance(v, str) else f"{k}={_inline(v)}" for k, v in s.items() if k != "nth")
        return f"[{fields}{' #' + str(s['nth']) if 'nth' in s else ''}]"

    path = ""
    for s in edit.at:
        part = step(s)
        path += part if part.startswith("[") or not path else f".{part}"
    value = edit.value
    if edit.op == "swap":
        shown = f"{step(value[0])} with {step(value[1])}"
    elif edit.op == "remove":
        shown = step(value) if isinstance(value, str) else _inline(value)
    else:
        shown = value if isinstance(value, str) else _inline(value)
    where = ""
    if edit.before is not None:
        where = f" before {step(edit.before)}"
    elif edit.after is not None:
        where = f" after {step(edit.after)}"
    return f"{path}: {edit.op} {shown}{where}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def mutant_table(paths: Sequence[str | Path] | None = None) -> str:
    """The docs' table of mutants (docs/verification.md), one row per file: name, class, what it
    breaks, its edits and the requirements that catch it."""
    rows = ["| mutant | class | what it breaks | edits | caught by |", "|---|---|---|---|---|"]
    for path in builtin_mutants() if paths is None else paths:
        info = read_mutant(path)
        edits = "; ".join(f"`{_cell(edit_label(e))}`" for e in info.edits)
        rows.append(f"| `{info.name}` | {_cell(info.kind)} | {_cell(info.breaks)} | {edits} | "
                    f"{', '.join(sorted(info.caught_by))} |")
    return "\n".join(rows) + "\n"


# -- every single-edit mutant of a spec ---------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """One generated mutant: an operator and its one edit."""

    operator: str  # e.g. "drop guard" (see OPERATORS)
    edit: Edit

    def label(self) -> str:
        return f"{self.operator}: {edit_label(self.edit)}"


T = "transitions"
OPERATORS = (
    "drop guard", "drop effect", "change destination", "drop source", "add source", "replace guard",
    "swap transitions", "flip flag", "drop on-enter effect", "drop on-applied effect", "change parameter",
)


def _transition_steps(transitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A step naming each transition: its trigger, and its place among that trigger's (`nth`)."""
    seen: dict[str, int] = {}
    total = {t["trigger"]: 0 for t in transitions}
    for t in transitions:
        total[t["trigger"]] += 1
    steps = []
    for t in transitions:
        seen[t["trigger"]] = seen.get(t["trigger"], 0) + 1
        step: dict[str, Any] = {"trigger": t["trigger"]}
        if total[t["trigger"]] > 1:
            step["nth"] = seen[t["trigger"]]
        steps.append(step)
    return steps


def _parameter_values(
    data: Mapping[str, Any], payload_params: Mapping[str, tuple[str, ...]]
) -> dict[tuple[str, str], list[Any]]:
    """(effect, parameter) -> the values the spec gives it anywhere (the candidates to change to)."""
    values: dict[tuple[str, str], list[Any]] = {}
    refs = [e for t in data["transitions"] for e in t.get("effects", [])]
    refs += [e for s in data["statuses"] for e in s["on_enter"]] + list(data["on_applied"])
    for ref in refs:
        if isinstance(ref, dict):
            ((name, params),) = ref.items()
            for p, v in params.items():
                if p not in payload_params.get(name, ()):
                    values.setdefault((name, p), [])
                    if v not in values[(name, p)]:
                        values[(name, p)].append(v)
    return values


def single_edit_mutants(data: Mapping[str, Any]) -> list[Mutation]:
    """Every single-edit mutant of the spec data, in a fixed order: drop a guard or an effect;
    change a destination; drop or add a source; replace a guard by another; swap two transitions
    of one trigger; flip a status flag; drop an on-enter or on-applied effect; change an effect
    parameter (a payload field to another field of the event, any other value to one the spec
    gives the same parameter elsewhere). Some make a spec the checker refuses (a status no longer
    reachable): `spec_from_data` says so."""
    from statemachine.spec.semantics import VOCABULARY

    transitions: list[dict[str, Any]] = list(data["transitions"])
    statuses = [s["name"] for s in data["statuses"]]
    guard_names = list(data["guards"])
    payload_params = {n: e.payload_params for n, e in VOCABULARY.effects.items()}
    events = {e["type"]: e for e in data["events"]}
    out: list[Mutation] = []

    def add(operator: str, at: list[Any], op: str, value: Any) -> None:
        out.append(Mutation(operator, Edit(tuple(at), op, value)))

    steps = _transition_steps(transitions)
    for t, step in zip(transitions, steps, strict=True):
        for g in t.get("guards", []):
            add("drop guard", [T, step, "guards"], "remove", g)
        for e in t.get("effects", []):
            # An effect use is its own step: a name picks the item equal to it, a mapping the item
            # with the same parameters.
            add("drop effect", [T, step, "effects"], "remove", e)
    for t, step in zip(transitions, steps, strict=True):
        if "dest" in t:
            for s in statuses:
                if s != t["dest"]:
                    add("change destination", [T, step, "dest"], "set", s)
    for t, step in zip(transitions, steps, strict=True):
        sources = statuses if t["sources"] == "*" else list(t["sources"])
        if len(sources) > 1:
            for s in sources:
                if t["sources"] == "*":
                    add("drop source", [T, step, "sources"], "set", [x for x in statuses if x != s])
                else:
                    add("drop source", [T, step, "sources"], "remove", s)
        if t["sources"] != "*":
            for s in statuses:
                if s not in sources:
                    add("add source", [T, step, "sources"], "add", s)
    for t, step in zip(transitions, steps, strict=True):
        for g in t.get("guards", []):
            for other in guard_names:
                if other not in t["guards"]:
                    add("replace guard", [T, step, "guards", g], "set", other)
    by_trigger: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        by_trigger.setdefault(step["trigger"], []).append(step)
    for trigger_steps in by_trigger.values():
        for i, a in enumerate(trigger_steps):
            for b in trigger_steps[i + 1:]:
                add("swap transitions", [T], "swap", [a, b])
    for s in data["statuses"]:
        for flag in ("holds_turn", "reapable"):
            add("flip flag", ["statuses", {"name": s["name"]}, flag], "set", not s[flag])
    for s in data["statuses"]:
        for e in s["on_enter"]:
            add("drop on-enter effect", ["statuses", {"name": s["name"]}, "on_enter"], "remove", e)
    for e in data["on_applied"]:
        add("drop on-applied effect", ["on_applied"], "remove", e)
    others = _parameter_values(data, payload_params)
    for t, step in zip(transitions, steps, strict=True):
        event_type = events.get(t["trigger"].partition("[")[0], {})
        fields = list(event_type.get("payload", {}))
        for e in t.get("effects", []):
            if not isinstance(e, dict):
                continue
            ((name, params),) = e.items()
            for p, v in params.items():
                candidates = fields if p in payload_params.get(name, ()) else others.get((name, p), [])
                for c in candidates:
                    if c != v:
                        add("change parameter", [T, step, "effects", e, name, p], "set", c)
    return out
