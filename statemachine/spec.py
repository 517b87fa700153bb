"""Load the lifecycle spec file into frozen dataclasses, or fail with a `SpecError` naming where.

Checks, in order: size (at most `MAX_SPEC_BYTES`), YAML syntax (the safe loader, refusing
explicit tags, anchors, aliases and nesting deeper than `MAX_SPEC_DEPTH`), string keys, the JSON
Schema, then references (unknown status, event, trigger, guard, effect or invariant kind; wrong
effect parameters; unreachable statuses). No string from a spec is ever evaluated: guard and
effect names are looked up in fixed tables. A well-formed spec may still be *wrong*; proving it
right is `statemachine.verify`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .invariants import INVARIANT_KINDS
from .semantics import EFFECTS, GUARDS

__all__ = [
    "BUILTIN_SPEC",
    "MAX_SPEC_BYTES",
    "MAX_SPEC_DEPTH",
    "EffectRef",
    "EventType",
    "GuardSpec",
    "Invariant",
    "PayloadField",
    "Spec",
    "SpecError",
    "Status",
    "TransitionSpec",
    "builtin_spec",
    "load_spec",
]

SPEC_FILE = "session_lifecycle.yaml"
SCHEMA_FILE = "session_lifecycle.schema.json"

# A spec is a few kilobytes; anything near these limits is not a lifecycle but an attack or an
# accident, refused before it can cost time or memory.
MAX_SPEC_BYTES = 256 * 1024
MAX_SPEC_DEPTH = 32


def _specs_dir() -> Path:
    # Installed wheels carry the spec inside the package; a source checkout keeps it in specs/.
    packaged = Path(str(resources.files(__package__ or "statemachine"))) / "specs"
    if (packaged / SPEC_FILE).is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "specs"


BUILTIN_SPEC = _specs_dir() / SPEC_FILE
SCHEMA_PATH = _specs_dir() / SCHEMA_FILE


class SpecError(ValueError):
    """A spec file that cannot be used. `file` and `path` (e.g. `transitions[3].guards[0]`) say where."""

    def __init__(self, file: str, path: str, message: str) -> None:
        super().__init__(f"{file}: {path}: {message}")
        self.file = file
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class EffectRef:
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def param_map(self) -> dict[str, Any]:
        return dict(self.params)

    def label(self) -> str:
        if not self.params:
            return self.name
        args = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.name}({args})"


@dataclass(frozen=True, slots=True)
class Status:
    name: str
    holds_turn: bool
    on_enter: tuple[EffectRef, ...]
    description: str = ""
    reapable: bool = False  # the reaper may stop an idle session in this status


@dataclass(frozen=True, slots=True)
class PayloadField:
    name: str
    type: str
    required: bool = False
    default: str | None = None
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class EventType:
    type: str
    payload: tuple[PayloadField, ...]
    variant_by: str | None = None

    def field(self, name: str) -> PayloadField | None:
        return next((f for f in self.payload if f.name == name), None)

    @property
    def triggers(self) -> tuple[str, ...]:
        """The machine triggers this event type can become: `type`, or `type[value]` per variant."""
        if self.variant_by is None:
            return (self.type,)
        selector = self.field(self.variant_by)
        assert selector is not None and selector.enum is not None  # checked at load
        return tuple(f"{self.type}[{v}]" for v in selector.enum)


@dataclass(frozen=True, slots=True)
class GuardSpec:
    name: str
    rejects_as: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class EffectSpec:
    name: str
    params: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class TransitionSpec:
    index: int  # position in the file: transitions are tried in this order
    trigger: str
    sources: tuple[str, ...]
    dest: str | None  # None for an internal transition (no exit, no on-enter)
    guards: tuple[str, ...] = ()
    effects: tuple[EffectRef, ...] = ()

    @property
    def internal(self) -> bool:
        return self.dest is None


@dataclass(frozen=True, slots=True)
class Invariant:
    name: str
    kind: str
    description: str = ""


@dataclass(frozen=True, slots=True, eq=False)  # identity: a spec is a value used as a cache key
class Spec:
    name: str
    initial: str
    statuses: tuple[Status, ...]
    events: tuple[EventType, ...]
    guards: Mapping[str, GuardSpec]
    effects: Mapping[str, EffectSpec]
    on_applied: tuple[EffectRef, ...]
    transitions: tuple[TransitionSpec, ...]
    invariants: tuple[Invariant, ...]
    source: str = field(default="<memory>", compare=False)
    _status_index: Mapping[str, Status] = field(default_factory=dict, compare=False, repr=False)
    _event_index: Mapping[str, EventType] = field(default_factory=dict, compare=False, repr=False)

    def status(self, name: str) -> Status:
        return self._status_index[name]

    def has_status(self, name: str) -> bool:
        return name in self._status_index

    def event_type(self, type_: str) -> EventType | None:
        return self._event_index.get(type_)

    @property
    def status_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.statuses)

    @property
    def reapable_statuses(self) -> tuple[str, ...]:
        """Statuses the reaper may stop once the session has been idle long enough."""
        return tuple(s.name for s in self.statuses if s.reapable)

    @property
    def turn_statuses(self) -> tuple[str, ...]:
        """Statuses that may hold a turn."""
        return tuple(s.name for s in self.statuses if s.holds_turn)

    @property
    def inactive_statuses(self) -> tuple[str, ...]:
        """Statuses that may not hold a turn."""
        return tuple(s.name for s in self.statuses if not s.holds_turn)

    @property
    def triggers(self) -> tuple[str, ...]:
        return tuple(t for e in self.events for t in e.triggers)

    def transitions_for(self, trigger: str) -> Iterator[TransitionSpec]:
        return (t for t in self.transitions if t.trigger == trigger)


def _effect_ref(raw: str | Mapping[str, Mapping[str, Any]]) -> EffectRef:
    if isinstance(raw, str):
        return EffectRef(raw)
    ((name, params),) = raw.items()
    return EffectRef(name, tuple(sorted(params.items())))


@cache
def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def _json_path(parts: Iterator[Any] | Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _SpecLoader(yaml.SafeLoader):
    """The safe loader, minus what a lifecycle never needs and an attacker would use: explicit
    tags (`!!python/...`, `!foo`), anchors and aliases (the "billion laughs" expansion), and deep
    nesting (recursion in the composer)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(line, f"alias *{event.anchor} refused: a spec may not use anchors or aliases")
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise _Refused(line, f"anchor &{event.anchor} refused: a spec may not use anchors or aliases")
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise _Refused(line, f"tag {tag} refused: a spec may not use explicit YAML tags")
        if self._depth >= MAX_SPEC_DEPTH:
            raise _Refused(line, f"nested deeper than {MAX_SPEC_DEPTH} levels (MAX_SPEC_DEPTH)")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _too_big(source: str, size: str) -> SpecError:
    return SpecError(source, "$", f"the spec is {size} bytes; the limit is {MAX_SPEC_BYTES} (MAX_SPEC_BYTES)")


def load_spec(path: str | Path | None = None) -> Spec:
    """Load and check a spec file (the built-in one when `path` is None)."""
    file = Path(path) if path is not None else BUILTIN_SPEC
    name = str(file)
    try:
        with file.open("rb") as stream:
            # Read one byte past the limit, never the whole file: it may be huge or endless.
            data = stream.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            raise _too_big(name, f"more than {MAX_SPEC_BYTES}")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(name, "$", f"cannot read the file: {exc}") from None
    return parse_spec(text, name)


def _check_keys(value: Any, path: str, source: str) -> None:
    # YAML allows keys of any type (`1:`, `null:`, `2024-01-01:`); the schema and the builder
    # assume strings. Depth is already bounded by the loader.
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpecError(source, path, f"key {key!r} must be a string, got {type(key).__name__}")
            _check_keys(item, f"{path}.{key}" if path != "$" else key, source)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_keys(item, f"{path}[{i}]", source)


def parse_spec(text: str, source: str = "<memory>") -> Spec:
    """Check spec text (YAML) and build the typed Spec."""
    if len(text) > MAX_SPEC_BYTES:  # more characters than the limit is more bytes too
        raise _too_big(source, f"more than {MAX_SPEC_BYTES}")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_BYTES:
        raise _too_big(source, str(size))
    try:
        raw = yaml.load(text, Loader=_SpecLoader)  # a SafeLoader: plain data only
    except _Refused as exc:
        raise SpecError(source, f"line {exc.line}", exc.message) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "$"
        raise SpecError(source, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if raw is None:  # an empty file, or only comments: say so, not "None is not of type 'object'"
        raise SpecError(source, "$", "the spec is empty")
    _check_keys(raw, "$", source)
    import jsonschema  # only when a spec is loaded: keeps `import statemachine` light

    validator = jsonschema.Draft202012Validator(_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(raw))
    if error is not None:
        raise SpecError(source, _json_path(error.absolute_path), error.message)
    return _build(raw, source)


def _build(raw: dict[str, Any], source: str) -> Spec:
    def fail(path: str, message: str) -> SpecError:
        return SpecError(source, path, message)

    effects = {
        n: EffectSpec(n, tuple(e.get("params", ())), e.get("description", ""))
        for n, e in raw["effects"].items()
    }
    guards = {
        n: GuardSpec(n, g["rejects_as"], g.get("description", "")) for n, g in raw["guards"].items()
    }
    for n in guards:
        if n not in GUARDS:
            raise fail(f"guards.{n}", f"no implementation for guard {n!r} (known: {sorted(GUARDS)})")
    for n in effects:
        if n not in EFFECTS:
            raise fail(f"effects.{n}", f"no implementation for effect {n!r} (known: {sorted(EFFECTS)})")

    def effect_refs(items: list[Any], path: str) -> tuple[EffectRef, ...]:
        refs = tuple(_effect_ref(i) for i in items)
        for k, ref in enumerate(refs):
            if ref.name not in effects:
                raise fail(f"{path}[{k}]", f"unknown effect {ref.name!r}")
            given, wanted = {p for p, _ in ref.params}, set(effects[ref.name].params)
            if given != wanted:
                raise fail(f"{path}[{k}]", f"effect {ref.name!r} takes {sorted(wanted)}, got {sorted(given)}")
        return refs

    statuses: list[Status] = []
    for i, s in enumerate(raw["statuses"]):
        if any(s["name"] == t.name for t in statuses):
            raise fail(f"statuses[{i}].name", f"duplicate status {s['name']!r}")
        on_enter = effect_refs(s["on_enter"], f"statuses[{i}].on_enter")
        statuses.append(Status(s["name"], s["holds_turn"], on_enter, s.get("description", ""), s["reapable"]))
    status_index = {s.name: s for s in statuses}
    if raw["initial"] not in status_index:
        raise fail("initial", f"unknown status {raw['initial']!r}")

    events: list[EventType] = []
    for i, e in enumerate(raw["events"]):
        if any(e["type"] == t.type for t in events):
            raise fail(f"events[{i}].type", f"duplicate event type {e['type']!r}")
        payload = tuple(
            PayloadField(
                n,
                f["type"],
                f.get("required", False),
                f.get("default"),
                tuple(f["enum"]) if "enum" in f else None,
            )
            for n, f in e["payload"].items()
        )
        for f in payload:
            if f.default is not None and f.enum is not None and f.default not in f.enum:
                raise fail(f"events[{i}].payload.{f.name}.default", f"{f.default!r} is not in its enum")
        variant_by = e.get("variant_by")
        if variant_by is not None:
            selector = next((f for f in payload if f.name == variant_by), None)
            if selector is None or selector.enum is None:
                raise fail(f"events[{i}].variant_by", f"{variant_by!r} must name a payload field with an enum")
            if not (selector.required or selector.default is not None):
                raise fail(f"events[{i}].variant_by", f"{variant_by!r} must be required or have a default")
        events.append(EventType(e["type"], payload, variant_by))
    event_index = {e.type: e for e in events}
    triggers = {t for e in events for t in e.triggers}

    transitions: list[TransitionSpec] = []
    for i, t in enumerate(raw["transitions"]):
        path = f"transitions[{i}]"
        if t["trigger"] not in triggers:
            raise fail(f"{path}.trigger", f"unknown trigger {t['trigger']!r} (known: {sorted(triggers)})")
        sources = tuple(status_index) if t["sources"] == "*" else tuple(t["sources"])
        for k, s in enumerate(sources):
            if s not in status_index:
                raise fail(f"{path}.sources[{k}]", f"unknown status {s!r}")
        dest = t.get("dest")
        if dest is not None and dest not in status_index:
            raise fail(f"{path}.dest", f"unknown status {dest!r}")
        for k, g in enumerate(t.get("guards", ())):
            if g not in guards:
                raise fail(f"{path}.guards[{k}]", f"unknown guard {g!r}")
        transitions.append(
            TransitionSpec(
                i,
                t["trigger"],
                sources,
                dest,
                tuple(t.get("guards", ())),
                effect_refs(t.get("effects", []), f"{path}.effects"),
            )
        )

    invariants = []
    for i, inv in enumerate(raw["invariants"]):
        if inv["kind"] not in INVARIANT_KINDS:
            known = sorted(INVARIANT_KINDS)
            raise fail(f"invariants[{i}].kind", f"unknown invariant kind {inv['kind']!r} (known: {known})")
        invariants.append(Invariant(inv["name"], inv["kind"], inv.get("description", "")))

    # Every status must be reachable from the initial one (guards ignored: a graph property).
    reached, frontier = {raw["initial"]}, [raw["initial"]]
    while frontier:
        here = frontier.pop()
        for t in transitions:
            if here in t.sources and t.dest is not None and t.dest not in reached:
                reached.add(t.dest)
                frontier.append(t.dest)
    for i, s in enumerate(statuses):
        if s.name not in reached:
            raise fail(f"statuses[{i}]", f"status {s.name!r} is unreachable from {raw['initial']!r}")

    return Spec(
        name=raw["name"],
        initial=raw["initial"],
        statuses=tuple(statuses),
        events=tuple(events),
        guards=guards,
        effects=effects,
        on_applied=effect_refs(raw["on_applied"], "on_applied"),
        transitions=tuple(transitions),
        invariants=tuple(invariants),
        source=source,
        _status_index=status_index,
        _event_index=event_index,
    )


@cache
def builtin_spec() -> Spec:
    """The built-in spec, loaded once per process."""
    return load_spec(None)
