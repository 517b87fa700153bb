"""Requirements the lifecycle is proven against, kept apart from the spec that implements it.

A spec lists its own invariants and declares its own status flags, so it could weaken its own
proof. The requirements file (`specs/requirements.yaml`) is the other side of the contract: every
rule of the target semantics as a named requirement, in one of three forms:

- `state`: a predicate over one session (`session.*`, `session.finished`) that holds in every
  reachable state, including a thread's first;
- `contract`: `when` (over the session before and the event) -> `then` (over the outcome and the
  session after, what the thread remembers after it, and anything `when` may read), on every
  event, valid or not; `applies_to` picks the deliveries (fresh, the first of a thread,
  redelivered, every). With `must_apply_from` a contract says what must be accepted: from those
  statuses an event meeting `when` gets `outcome` (applied, or forgotten) and meets `then`;
- `temporal`: an LTL formula over the generated Promela model, proven by spin.

Predicates are data in a small fixed language (`all`, `any`, `not`, `implies`, `eq`, `in`,
`is_null`, `same`, `contains`, `empty`, `not_earlier`, `latest`). No text from the file is ever
evaluated: each predicate compiles to one Python function built from this module's templates,
every literal bound to a name, which every checker calls. Every
status, event type, trigger, payload field and reason a requirement names is checked against the
spec under test: a requirement that mentions what the spec lacks is an error in the requirements
for that spec, never a silent pass.

The YAML is read with the spec loader's hardened rules (size limit, no tags, anchors or aliases,
bounded depth).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

from statemachine.core.event import Event, parse_timestamp
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.core.session import FIELDS, Session
from statemachine.spec.cache import SpecCache
from statemachine.spec.invariants import INVARIANT_KINDS
from statemachine.spec.loader import read_yaml_file, read_yaml_text, schema_violation, specs_dir
from statemachine.spec.model import Spec, SpecError

__all__ = [
    "BUILTIN_REQUIREMENTS",
    "DERIVED_SETS",
    "REQUIREMENTS_SCHEMA",
    "Requirement",
    "Requirements",
    "RequirementsError",
    "StepContext",
    "builtin_requirements",
    "load_requirements",
    "parse_requirements",
    "predicate_paths",
]

BUILTIN_REQUIREMENTS = specs_dir() / "requirements.yaml"
REQUIREMENTS_SCHEMA = specs_dir() / "requirements.schema.json"

Form = Literal["state", "contract", "temporal"]
AppliesTo = Literal["fresh", "first", "redelivered", "every"]
OUTCOME_KINDS = tuple(k.value for k in OutcomeKind)

# Wire name -> `Session` attribute, from the one field table; the thread id is left out, as a
# requirement speaks of one thread at a time.
SESSION_FIELDS = {f.wire: f.attr for f in FIELDS if f.attr != "thread_id"}
# The thread's memories, as sets: `finished` (turns completed, aborted or cleared; before, after
# and in a state) and `seen` (the eventIds it remembers; after a step only: whether it had seen
# this event's id before is what `applies_to: redelivered` says).
# `requestIds`: the ids of the session's open requests (`openRequests`), as a set; None stands
# for a request that carries no id.
SET_PATHS = {
    "session.finished": "c.finished",
    "before.finished": "c.finished_before",
    "after.finished": "c.finished_after",
    "after.seen": "c.seen_after",
    "session.requestIds": "_ids(_s.open_requests)",
    "before.requestIds": "_ids(_b.open_requests)",
    "after.requestIds": "_ids(_a.open_requests)",
}
# Set paths read from a session field (wire name -> the `Session` attribute they derive from).
DERIVED_SETS = {"requestIds": "open_requests"}
EVENT_FIELDS = {
    "eventId": "event_id",
    "type": "type",
    "trigger": "trigger",
    "turnId": "turn_id",
    "provider": "provider",
    "createdAt": "created_at",
}
# Which roots each place may read: `when` decides applicability before anything happened.
STATE_ROOTS = frozenset({"session"})
WHEN_ROOTS = frozenset({"before", "event"})
THEN_ROOTS = frozenset({"before", "event", "outcome", "after"})


class RequirementsError(ValueError):
    """A requirements file that cannot be used (for this spec). `file` and `path` say where."""

    def __init__(self, file: str, path: str, message: str) -> None:
        super().__init__(f"{file}: {path}: {message}")
        self.file = file
        self.path = path
        self.message = message


class SeenIds(Protocol):
    """The eventIds a thread remembers, as a contract reads them: `id in seen` and `len(seen)`."""

    def __contains__(self, event_id: object, /) -> bool: ...

    def __len__(self) -> int: ...


class StepContext(NamedTuple):
    """What a contract sees of one event: the outcome and the thread's remembered turns around it."""

    outcome: Outcome
    finished_before: frozenset[str]
    finished_after: frozenset[str]
    redelivered: bool = False  # the thread had already processed this eventId
    # The eventIds the thread remembers after the step; None when the caller cannot say, and then
    # the contracts that read `after.seen` are left out (`Requirements.contracts_for`).
    seen_after: SeenIds | None = None
    first: bool = False  # the event created the thread (its first delivery)


class _EventHolder(NamedTuple):
    event: Event


class _EventView(NamedTuple):
    """Enough of a StepContext to decide the `when` conjuncts that read only the event."""

    outcome: _EventHolder


class StateContext(NamedTuple):
    session: Session
    finished: frozenset[str]


Check = Callable[[Any], bool]


@dataclass(frozen=True)
class Temporal:
    """A parsed LTL formula: `op` is an operator or an atom; `args` its operands or atom values."""

    op: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Requirement:
    name: str
    form: Form
    description: str
    rule: str  # where the rule comes from: "part B", "semantics.md: ...", ...
    holds: Any = None  # state: the raw predicate
    when: Any = None  # contract
    then: Any = None  # contract
    ltl: Temporal | None = None  # temporal
    applies_to: AppliesTo = "fresh"  # contract: which deliveries
    # contract: the statuses from which an event meeting `when` must be taken, with `outcome`
    # (already folded into `when` and `then`; kept for the docs and the acceptance table)
    must_apply_from: tuple[str, ...] = ()
    outcome: str | None = None
    reads_seen: bool = False  # contract: it reads after.seen (the caller must say what the thread remembers)
    # state: statuses the spec must declare with `holds_turn: false` (a flag may not weaken it)
    no_turn_statuses: tuple[str, ...] = ()
    # state: the invariant kind the spec must list, its own statement of this requirement (the
    # spec's docs, its restores and its Hypothesis test read that list)
    spec_invariant: str | None = None
    index: int = 0
    check: Check | None = field(default=None, compare=False, repr=False)
    when_check: Check | None = field(default=None, compare=False, repr=False)
    # contract: the conjuncts of `when` that read only the event, decided once per event
    when_event: tuple[Check, ...] = field(default=(), compare=False, repr=False)
    # contract: `when` and not `then`, as one closure (the hot path of every checker)
    broken: Check | None = field(default=None, compare=False, repr=False)
    broken_expr: str = field(default="False", compare=False, repr=False)  # its source, over `c`
    # contract: the event types (None: any) and triggers (None: any) it can apply to
    types: frozenset[str] | None = None
    triggers: frozenset[str | None] | None = None
    def event_fields_given(self, known: Mapping[str, Any]) -> frozenset[str]:
        """The event fields this contract reads once the paths in `known` (such as `event.type`,
        `event.trigger`, the variant field) are fixed to those values: a conjunct they decide
        reads nothing more. What the verification universe must vary for one trigger."""
        read: set[str] = set()
        for raw in (self.when or {"all": []}, self.then):
            rest = _given(raw, known)
            if not isinstance(rest, bool):
                read |= predicate_paths(rest)
        return frozenset(p.removeprefix("event.") for p in read if p.startswith("event."))

    def applies_to_trigger(self, event_type: str, trigger: str | None) -> bool:
        """Whether this contract can apply to events of this type and trigger (by its index)."""
        return (self.types is None or event_type in self.types) and (self.triggers is None or trigger in self.triggers)


@dataclass(frozen=True)
class StaleExpiry:
    """The environment move of the temporal model: a turn with no event for too long is settled.

    `pending_trigger`, when given, settles instead a session whose requested turn has not started
    (a pending turn), as `expire_stale_turns` does.
    """

    trigger: str
    pending_trigger: str | None = None


@dataclass(frozen=True, eq=False)
class Requirements:
    source: str
    ignored_types: tuple[str, ...]
    stale_expiry: StaleExpiry | None
    items: tuple[Requirement, ...]
    spec: Spec
    # What the compiled predicates' names are bound to (constants and helpers).
    namespace: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _checkers: dict[tuple[str, ...], Callable[[StepContext], list[str]]] = field(
        default_factory=dict, compare=False, repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.items)

    def of_form(self, form: Form) -> tuple[Requirement, ...]:
        return tuple(r for r in self.items if r.form == form)

    def get(self, name: str) -> Requirement:
        """The requirement named `name` (KeyError if there is none)."""
        for r in self.items:
            if r.name == name:
                return r
        raise KeyError(name)

    # -- evaluation --------------------------------------------------------------------------

    def state_violations(self, session: Session, finished: Iterable[str]) -> list[str]:
        ctx = StateContext(session, frozenset(finished))
        return [r.name for r in self.of_form("state") if r.check is not None and not r.check(ctx)]

    def contracts_for(self, event: Event, redelivered: bool = False, *, first: bool = False,
                      seen: bool = True) -> tuple[Requirement, ...]:
        """The contracts whose `when` can hold for this delivery of an event of this type and
        trigger. `first`: the delivery creates the thread; `seen`: the caller says what the thread
        remembers after the step (without it, contracts reading `after.seen` are left out)."""
        wanted = {"redelivered", "every"} if redelivered else {"fresh", "every"}
        if first and not redelivered:
            wanted.add("first")
        view = _EventView(_EventHolder(event))
        return tuple(
            r for r in self.of_form("contract")
            if r.applies_to in wanted
            and (seen or not r.reads_seen)
            and r.applies_to_trigger(event.type, event.trigger)
            and all(check(view) for check in r.when_event)
        )

    def step_violations(
        self, outcome: Outcome, finished_before: Iterable[str], finished_after: Iterable[str],
        redelivered: bool = False, contracts: Sequence[Requirement] | None = None, *,
        seen_after: SeenIds | None = None, first: bool = False,
    ) -> list[str]:
        """Names of the contracts this step breaks. `contracts`: a precomputed `contracts_for`;
        `seen_after`: the eventIds the thread remembers after the step (None: the contracts that
        read them are not evaluated); `first`: the event created the thread."""
        ctx = StepContext(outcome, _frozen(finished_before), _frozen(finished_after), redelivered, seen_after, first)
        chosen = (self.contracts_for(outcome.event, redelivered, first=first, seen=seen_after is not None)
                  if contracts is None else contracts)
        return self._checker(chosen)(ctx)

    def step_checker(self, event: Event, redelivered: bool = False, *, first: bool = False,
                     seen: bool = True) -> Callable[[StepContext], list[str]]:
        """`step_violations` for every delivery of this event (its contracts chosen once): a
        function from a `StepContext` (finished sets as frozensets) to the names it breaks. With
        `seen` (the default) the context must carry `seen_after` when a chosen contract reads it
        (`reads_seen`)."""
        return self._checker(self.contracts_for(event, redelivered, first=first, seen=seen))

    def _checker(self, chosen: Sequence[Requirement]) -> Callable[[StepContext], list[str]]:
        """One compiled function testing every chosen contract (one call per step, not one per
        contract: the exhaustive checks make 10^5 steps)."""
        key = tuple(r.name for r in chosen)
        checker = self._checkers.get(key)
        if checker is None:
            names = {f"n{i}": r.name for i, r in enumerate(chosen)}
            body = "".join(f"    if {r.broken_expr}: out.append(n{i})\n" for i, r in enumerate(chosen))
            source = "def check(c):\n" + _prologue(body) + "    out = []\n" + body + "    return out\n"
            scope = {**self.namespace, **names}
            exec(compile(source, f"<requirements {self.source}>", "exec"), scope)  # module templates only
            checker = self._checkers[key] = scope["check"]
        return checker

    def declaration_violations(self) -> dict[str, str]:
        """Requirements the spec contradicts by declaration alone (a status flag, a missing
        invariant), with why."""
        out: dict[str, str] = {}
        listed = {inv.kind for inv in self.spec.invariants}
        for r in self.of_form("state"):
            flagged = [s for s in r.no_turn_statuses if self.spec.status(s).holds_turn]
            if flagged:
                out[r.name] = (f"the spec declares {', '.join(flagged)} with holds_turn: true; "
                               f"this requirement says {', '.join(r.no_turn_statuses)} never hold a turn")
            elif r.spec_invariant is not None and r.spec_invariant not in listed:
                out[r.name] = (f"the spec lists no invariant of kind {r.spec_invariant}, its own statement of "
                               "this requirement")
        return out


# -- loading -------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _instant(value: str) -> datetime:
    return parse_timestamp(value)


@cache
def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(REQUIREMENTS_SCHEMA.read_text(encoding="utf-8"))
    return loaded


def load_requirements(spec: Spec, path: str | Path | None = None) -> Requirements:
    """Load a requirements file (the built-in one when `path` is None) and check it against `spec`."""
    file = Path(path) if path is not None else BUILTIN_REQUIREMENTS
    try:
        raw = read_yaml_file(file)
    except SpecError as exc:
        raise RequirementsError(exc.file, exc.path, exc.message) from None
    return _from_data(raw, spec, str(file))


def builtin_requirements(spec: Spec) -> Requirements:
    return load_requirements(spec, None)


def _builtin_or_none(spec: Spec) -> Requirements | None:
    try:
        return builtin_requirements(spec)
    except RequirementsError:
        return None


_BUILTIN_FOR: SpecCache[Requirements | None] = SpecCache(_builtin_or_none)


def builtin_requirements_if_they_fit(spec: Spec) -> Requirements | None:
    """The built-in requirements for `spec` (cached by spec content), or None when they do not fit
    it (a spec with other statuses or events: its own invariants are then all that can be said)."""
    return _BUILTIN_FOR.get(spec)


def parse_requirements(text: str, spec: Spec, source: str = "<memory>") -> Requirements:
    """Requirements text (YAML, read by the spec loader's hardened rules) checked against `spec`."""
    try:
        raw = read_yaml_text(text, source)
    except SpecError as exc:
        raise RequirementsError(exc.file, exc.path, exc.message) from None
    return _from_data(raw, spec, source)


def _from_data(raw: Any, spec: Spec, source: str) -> Requirements:
    violation = schema_violation(_schema(), raw)
    if violation is not None:
        raise RequirementsError(source, *violation)
    return _Builder(spec, source, raw).build()


class _Builder:
    """Checks every name against the spec and compiles predicates into functions."""

    def __init__(self, spec: Spec, source: str, raw: dict[str, Any]) -> None:
        self.spec = spec
        self.source = source
        self.raw = raw
        self.ignored = tuple(raw.get("ignored_types", ()))
        self.reasons = {g.rejects_as for g in spec.guards.values()} | {f"invalid_in_{s}" for s in spec.status_names}
        self.payload_fields: dict[str, set[str] | None] = {}
        self.constants: dict[str, Any] = {}
        for e in spec.events:
            for f in e.payload:
                known = self.payload_fields.get(f.name, set())
                self.payload_fields[f.name] = None if (f.enum is None or known is None) else known | set(f.enum)

    def fail(self, path: str, message: str) -> RequirementsError:
        return RequirementsError(self.source, path, message)

    # -- names ---------------------------------------------------------------------------

    def status(self, value: Any, path: str) -> None:
        if not self.spec.has_status(value):
            raise self.fail(path, f"status {value!r} is not in the spec {self.spec.source} "
                                  f"(its statuses: {', '.join(self.spec.status_names)})")

    def trigger(self, value: Any, path: str) -> None:
        if value is not None and value not in self.spec.triggers:
            raise self.fail(path, f"trigger {value!r} is not in the spec {self.spec.source} "
                                  f"(its triggers: {', '.join(self.spec.triggers)})")

    def literal(self, target: str, value: Any, path: str) -> None:
        """A literal compared with `target` must be a value that path can take under this spec."""
        rest = target.partition(".")[2]
        if rest == "status":
            self.status(value, path)
        elif target == "event.type":
            if self.spec.event_type(value) is None and value not in self.ignored:
                raise self.fail(path, f"event type {value!r} is neither in the spec {self.spec.source} "
                                      "nor in ignored_types")
        elif target == "event.trigger":
            self.trigger(value, path)
        elif target == "outcome.kind":
            if value not in OUTCOME_KINDS:
                raise self.fail(path, f"outcome kind {value!r} is not one of {', '.join(OUTCOME_KINDS)}")
        elif target == "outcome.reason":
            if value is not None and value not in self.reasons:
                raise self.fail(path, f"reason {value!r} is not one the spec {self.spec.source} can give "
                                      f"(its reasons: {', '.join(sorted(self.reasons))})")
        elif target.startswith("event.payload."):
            allowed = self.payload_fields[target.removeprefix("event.payload.")]
            if allowed is not None and value is not None and value not in allowed:
                raise self.fail(path, f"{value!r} is not a value the spec allows for {target}")

    # -- paths ---------------------------------------------------------------------------

    def getter(self, target: Any, roots: frozenset[str], path: str, *, whole: bool = False) -> str:
        """The Python expression (over the context `c`) that reads `target`."""
        if not isinstance(target, str):
            raise self.fail(path, f"expected a path like before.status, got {target!r}")
        root, _, rest = target.partition(".")
        if root not in roots:
            raise self.fail(path, f"{target!r}: {root!r} cannot be read here (readable: {', '.join(sorted(roots))})")
        if root in ("session", "before", "after"):
            return self._session_getter(root, rest, target, path, whole)
        if root == "event":
            if rest in EVENT_FIELDS:
                return f"_e.{EVENT_FIELDS[rest]}"
            name = rest.removeprefix("payload.")
            if rest.startswith("payload.") and name in self.payload_fields:
                return f"_e.payload.get({self.constant(name)})"
            if rest.startswith("payload."):
                raise self.fail(path, f"{target!r}: no event type of the spec {self.spec.source} has "
                                      f"a payload field {name!r}")
        if root == "outcome" and rest in ("kind", "reason"):
            return f"_o.{rest}"
        raise self.fail(path, f"unknown path {target!r}")

    def _session_getter(self, root: str, rest: str, target: str, path: str, whole: bool) -> str:
        if target in SET_PATHS:
            return SET_PATHS[target]
        if root == "session":
            if rest in SESSION_FIELDS:
                return f"_s.{SESSION_FIELDS[rest]}"
        else:
            if rest == "" and whole:
                return f"_{root[0]}"
            if rest in SESSION_FIELDS:
                return f"_{root[0]}.{SESSION_FIELDS[rest]}"
        if rest == "seen":
            raise self.fail(path, f"{target!r}: only after.seen can be read (whether the thread had seen "
                                  "this eventId before is what applies_to: redelivered says)")
        raise self.fail(path, f"unknown path {target!r} (session fields: "
                              f"{', '.join([*SESSION_FIELDS, 'finished'])}; after.seen)")

    def set_getter(self, target: Any, roots: frozenset[str], path: str) -> str:
        get = self.getter(target, roots, path)
        if target not in SET_PATHS:
            raise self.fail(path, f"{target!r} is not a set (sets: {', '.join(SET_PATHS)})")
        return get

    def constant(self, value: Any) -> str:
        """A name bound to `value` in the compiled predicates' namespace: literals from the file
        never appear in generated code, only the names they are bound to."""
        name = f"k{len(self.constants)}"
        self.constants[name] = value
        return name

    # -- predicates ----------------------------------------------------------------------

    def predicate(self, raw: Any, roots: frozenset[str], path: str, negate: bool = False) -> str:
        """The Python expression deciding `raw` (or its negation, pushed down to the leaves).

        Built only from this method's templates, the getters' attribute chains and bound
        constants: the predicate is checked data, and its one compiled form is what every
        checker calls (about three times faster than a closure per node)."""
        ((op, arg),) = raw.items()  # the schema allows exactly one operator per object
        where = f"{path}.{op}"
        if op in ("all", "any"):
            parts = [self.predicate(p, roots, f"{where}[{i}]", negate) for i, p in enumerate(arg)]
            joiner = " and " if (op == "all") != negate else " or "
            return "(" + joiner.join(parts) + ")" if parts else ("True" if joiner == " and " else "False")
        if op == "not":
            return self.predicate(arg, roots, where, not negate)
        if op == "implies":
            a = self.predicate(arg[0], roots, f"{where}[0]", not negate)
            b = self.predicate(arg[1], roots, f"{where}[1]", negate)
            return f"({a} and {b})" if negate else f"({a} or {b})"  # not(a -> b) is a and not b
        if op == "eq":
            target, value = arg
            get = self.getter(target, roots, f"{where}[0]")
            self.literal(target, value, f"{where}[1]")
            return f"({get} {'!=' if negate else '=='} {self.constant(_normal(target, value))})"
        if op == "in":
            target, values = arg
            get = self.getter(target, roots, f"{where}[0]")
            for i, v in enumerate(values):
                self.literal(target, v, f"{where}[1][{i}]")
            allowed = self.constant(frozenset(_normal(target, v) for v in values))
            return f"({get} {'not in' if negate else 'in'} {allowed})"
        if op == "is_null":
            get = self.getter(arg, roots, where)
            return f"({get} {'is not' if negate else 'is'} None)"
        if op == "same":
            first, second = (self.getter(p, roots, f"{where}[{i}]", whole=True) for i, p in enumerate(arg))
            return f"({first} {'!=' if negate else '=='} {second})"
        if op == "contains":
            container = self.set_getter(arg[0], roots, f"{where}[0]")
            item = self.getter(arg[1], roots, f"{where}[1]")
            if negate:
                return f"({item} is None or {item} not in {container})"
            return f"({item} is not None and {item} in {container})"
        if op == "empty":
            return f"(len({self.set_getter(arg, roots, where)}) {'!=' if negate else '=='} 0)"
        if op == "same_except":
            first, second = (self.set_getter(p, roots, f"{where}[{i}]") for i, p in enumerate(arg[:2]))
            item = self.getter(arg[2], roots, f"{where}[2]")
            return f"((({first} - {{{item}}}) == ({second} - {{{item}}})) != {negate})"
        if op == "fewer_than":
            target, bound = arg
            if type(bound) is not int or bound < 0:
                raise self.fail(f"{where}[1]", f"must be a whole number, got {bound!r}")
            return f"((len({self.set_getter(target, roots, f'{where}[0]')}) < {self.constant(bound)}) != {negate})"
        if op == "not_earlier":
            later, earlier = (self.getter(p, roots, f"{where}[{i}]") for i, p in enumerate(arg))
            # The common cases inline (no call): nothing earlier, or the same text.
            return f"(({earlier} is None or {later} == {earlier} or _not_earlier({later}, {earlier})) != {negate})"
        if op == "latest":
            target, options = arg
            get = self.getter(target, roots, f"{where}[0]")
            gets = [self.getter(p, roots, f"{where}[1][{i}]") for i, p in enumerate(options)]
            return f"(_is_latest({get}, ({', '.join(gets)},)) != {negate})"
        raise self.fail(where, f"unknown operator {op!r}")  # unreachable past the schema

    def namespace(self) -> dict[str, Any]:
        return {**self.constants, "_not_earlier": _not_earlier, "_is_latest": _is_latest, "_ids": _ids}

    def compiled(self, expression: str, label: str) -> Check:
        source = f"def fn(c):\n{_prologue(expression)}    return {expression}\n"
        scope = self.namespace()
        exec(compile(source, f"<requirement {label}>", "exec"), scope)  # module templates only
        fn: Check = scope["fn"]
        return fn

    def temporal(self, raw: Any, path: str) -> Temporal:
        if raw == "quiet":
            return Temporal("quiet")
        if raw == "turn_active":
            return Temporal("turn_active")
        ((op, arg),) = raw.items()
        where = f"{path}.{op}"
        if op == "status_in":
            for i, s in enumerate(arg):
                self.status(s, f"{where}[{i}]")
            return Temporal(op, tuple(arg))
        if op == "last_event_in":
            for i, t in enumerate(arg):
                self.trigger(t, f"{where}[{i}]")
            return Temporal(op, tuple(arg))
        if op in ("always", "eventually", "not"):
            return Temporal(op, (self.temporal(arg, where),))
        return Temporal(op, tuple(self.temporal(p, f"{where}[{i}]") for i, p in enumerate(arg)))

    def _acceptance(self, r: Mapping[str, Any], path: str) -> tuple[Any, Any, tuple[str, ...], str | None]:
        """A contract's `when` and `then`, with `must_apply_from` folded in: an event meeting
        `when` on a session in one of those statuses gets `outcome` (applied unless said
        otherwise) and meets `then`."""
        when = r.get("when", {"all": []})
        then = r.get("then", {"all": []})
        apply_from = tuple(r.get("must_apply_from", ()))
        if not apply_from:
            return when, then, (), None
        # Checked as written first, so that an error names the place in the file.
        self.predicate(when, WHEN_ROOTS, f"{path}.when")
        self.predicate(then, THEN_ROOTS, f"{path}.then")
        for k, s in enumerate(apply_from):
            self.status(s, f"{path}.must_apply_from[{k}]")
        outcome = str(r.get("outcome", "applied"))
        if outcome not in ("applied", "forgotten"):  # the schema says so too
            raise self.fail(f"{path}.outcome", f"{outcome!r}: an accepted event is applied or forgotten")
        when = {"all": [*when.get("all", [when]), {"in": ["before.status", list(apply_from)]}]}
        then = {"all": [{"eq": ["outcome.kind", outcome]}, *then.get("all", [then])]}
        return when, then, apply_from, outcome

    def _event_filter(self, when: Any) -> tuple[frozenset[str] | None, frozenset[str | None] | None]:
        """The event types and triggers a `when` restricts itself to at its top level (an index)."""
        conjuncts = when.get("all", [when])
        types: frozenset[str] | None = None
        triggers: frozenset[str | None] | None = None
        for c in conjuncts:
            for op, arg in c.items():
                if op in ("eq", "in") and arg[0] in ("event.type", "event.trigger"):
                    values = frozenset([arg[1]] if op == "eq" else arg[1])
                    if arg[0] == "event.type":
                        types = values if types is None else types & values
                    else:
                        triggers = values if triggers is None else triggers & values
        return types, triggers

    # -- the file ------------------------------------------------------------------------

    def build(self) -> Requirements:
        for i, t in enumerate(self.ignored):
            if self.spec.event_type(t) is not None:
                # Not an error in the requirements: the contract on ignored types will fail on it.
                continue
            if not isinstance(t, str) or not t:
                raise self.fail(f"ignored_types[{i}]", "must be a non-empty type name")
        stale = None
        if "stale_expiry" in self.raw:
            stale = StaleExpiry(self.raw["stale_expiry"]["trigger"], self.raw["stale_expiry"].get("pending_trigger"))
            self.trigger(stale.trigger, "stale_expiry.trigger")
            self.trigger(stale.pending_trigger, "stale_expiry.pending_trigger")
        items: list[Requirement] = []
        seen: set[str] = set()
        for i, r in enumerate(self.raw["requirements"]):
            path = f"requirements[{i}]"
            if r["name"] in seen:
                raise self.fail(f"{path}.name", f"duplicate requirement {r['name']!r}")
            seen.add(r["name"])
            common = {"name": r["name"], "form": r["form"], "description": r["description"],
                      "rule": r.get("rule", ""), "index": i}
            if r["form"] == "state":
                no_turn = tuple(r.get("no_turn_statuses", ()))
                for k, s in enumerate(no_turn):
                    self.status(s, f"{path}.no_turn_statuses[{k}]")
                check = self.compiled(self.predicate(r["holds"], STATE_ROOTS, f"{path}.holds"), r["name"])
                kind = r.get("spec_invariant")
                if kind is not None and kind not in INVARIANT_KINDS:
                    raise self.fail(f"{path}.spec_invariant", f"unknown invariant kind {kind!r} "
                                    f"(known: {sorted(INVARIANT_KINDS)})")
                items.append(Requirement(**common, holds=r["holds"], no_turn_statuses=no_turn, spec_invariant=kind,
                                         check=check))
            elif r["form"] == "contract":
                when, then, apply_from, outcome = self._acceptance(r, path)
                conjuncts = when.get("all", [when])
                compiled = [(self.predicate(c, WHEN_ROOTS, f"{path}.when"), _roots(c) <= {"event"})
                            for c in conjuncts]
                rest = [c for c, event_only in compiled if not event_only]
                holds = self.predicate(then, THEN_ROOTS, f"{path}.then")
                fails = self.predicate(then, THEN_ROOTS, f"{path}.then", negate=True)
                types, triggers = self._event_filter(when)
                name = r["name"]
                read = predicate_paths(when) | predicate_paths(then)
                items.append(Requirement(**common, when=when if when != {"all": []} else None, then=then,
                                         must_apply_from=apply_from, outcome=outcome,
                                         reads_seen="after.seen" in read,
                                         check=self.compiled(holds, name),
                                         when_check=self.compiled(" and ".join(rest) or "True", name),
                                         broken=self.compiled(" and ".join([*rest, fails]), name),
                                         broken_expr=" and ".join([*rest, fails]),
                                         when_event=tuple(self.compiled(c, name) for c, event_only in compiled
                                                          if event_only),
                                         types=types, triggers=triggers, applies_to=r.get("applies_to", "fresh")))
            else:
                if stale is None:
                    raise self.fail(path, "a temporal requirement needs stale_expiry (the model's environment)")
                items.append(Requirement(**common, ltl=self.temporal(r["ltl"], f"{path}.ltl")))
        return Requirements(self.source, self.ignored, stale, tuple(items), self.spec, self.namespace())


# The names the compiled predicates read the context through, each bound once per call to what it
# stands for (`_s` the state's session; `_o` the outcome, `_b`/`_a` its sessions, `_e` its event).
_BINDINGS = (
    ("_s", "c.session"),
    ("_o", "c.outcome"),
    ("_b", "_o.before"),
    ("_a", "_o.after"),
    ("_e", "_o.event"),
)


def _prologue(code: str) -> str:
    """The bindings `code` needs (`_o` also for `_b`, `_a`, `_e`), one per line."""
    used = {name for name, _ in _BINDINGS if re.search(rf"\b{name}\b", code)}
    if used & {"_b", "_a", "_e"}:
        used.add("_o")
    return "".join(f"    {name} = {value}\n" for name, value in _BINDINGS if name in used)


def _ids(requests: Iterable[tuple[Any, str]]) -> frozenset[Any]:
    return frozenset(r[0] for r in requests)


def _frozen(items: Iterable[str]) -> frozenset[str]:
    return items if isinstance(items, frozenset) else frozenset(items)


def _normal(target: str, value: Any) -> Any:
    # Outcome kinds compare as enum members: hashing one is not hashing its string value.
    return OutcomeKind(value) if target == "outcome.kind" else value


def predicate_paths(raw: Any) -> set[str]:
    """The paths a raw predicate reads (literals, such as trigger names, are not paths; a whole
    session, as in `same: [before, after]`, is its root alone)."""
    ((op, arg),) = raw.items()
    if op in ("all", "any", "implies"):
        return set().union(*(predicate_paths(p) for p in arg))
    if op == "not":
        return predicate_paths(arg)
    if op in ("eq", "in"):
        return {arg[0]}
    if op == "latest":
        return {arg[0], *arg[1]}
    if op in ("is_null", "empty"):
        return {arg}
    if op == "fewer_than":
        return {arg[0]}
    return set(arg)


def _given(raw: Any, known: Mapping[str, Any]) -> Any:
    """`raw` with the paths in `known` replaced by their values and simplified: True, False, or
    what is left to decide."""
    ((op, arg),) = raw.items()
    if op == "eq" and arg[0] in known:
        return bool(known[arg[0]] == arg[1])
    if op == "in" and arg[0] in known:
        return known[arg[0]] in arg[1]
    if op == "is_null" and arg in known:
        return known[arg] is None
    if op == "not":
        inner = _given(arg, known)
        return (not inner) if isinstance(inner, bool) else {"not": inner}
    if op in ("all", "any"):
        stop = op == "any"  # the value that decides the whole
        parts = []
        for p in arg:
            part = _given(p, known)
            if part is stop:
                return stop
            if not isinstance(part, bool):
                parts.append(part)
        return {op: parts} if parts else not stop
    if op == "implies":
        a, b = (_given(p, known) for p in arg)
        if a is False or b is True:
            return True
        if a is True:
            return b
        return {"not": a} if b is False else {"implies": [a, b]}
    return raw


def _roots(raw: Any) -> set[str]:
    """The path roots a raw predicate reads."""
    return {p.partition(".")[0] for p in predicate_paths(raw)}


def _not_earlier(later: Any, earlier: Any) -> bool:
    if earlier is None or later == earlier:  # most steps leave updatedAt as it was
        return True
    return isinstance(later, str) and isinstance(earlier, str) and _instant(later) >= _instant(earlier)


def _is_latest(value: Any, options: Sequence[Any]) -> bool:
    instants = [_instant(o) for o in options if isinstance(o, str)]
    if not instants:
        return value is None
    return isinstance(value, str) and _instant(value) == max(instants)
