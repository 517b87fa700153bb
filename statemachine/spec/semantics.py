"""The named guards and effects: the only code that interprets an event.

Which guard or effect applies to which transition is decided by the spec file alone; this module
gives each *name* its meaning, once. A meaning is one declaration (`Guard`, `Effect`): a line of
Python over a few named step values (`SLOTS`), the slots it reads and writes, and its class for
the static rules. Every consumer reads the declaration and nothing else:

- the `transitions` reference engine runs `declaration.fn`, a function built from the code
  (`statemachine.engine.machine`);
- the compiled engine writes the same code into its generated step functions, loading only the
  declared reads and storing only the declared writes (`statemachine.engine.compiled`);
- the static rules read the classes (`statemachine.verify.static`);
- the verification universe varies only the payload fields an effect declares it reads
  (`statemachine.verify.universe`);
- the docs print the descriptions.

Promela (`statemachine.verify.promela`) renders the same names independently on purpose; a test
checks that its vocabulary equals this one.
"""

from __future__ import annotations

import ast
import symtable
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from statemachine.core.session import Session

if TYPE_CHECKING:
    from statemachine.core.event import Event

__all__ = [
    "CLEARS_TURN",
    "CLEARS_TURN_CLASS",
    "EFFECTS",
    "EXCLUDES_FINISHED",
    "GUARDS",
    "GUARDS_UNFINISHED_TURN",
    "OPENS_REQUEST_CLASS",
    "REMEMBERS_CLASS",
    "SETS_TURN",
    "SETS_TURN_CLASS",
    "SLOTS",
    "VOCABULARY",
    "Cursor",
    "Effect",
    "EffectClass",
    "EffectFn",
    "Guard",
    "GuardFn",
    "Slot",
    "Vocabulary",
]

class Slot(NamedTuple):
    """A value guards and effects read or write, by the local name their code uses."""

    cursor: str  # where the reference engine keeps it: an attribute of `Cursor`
    load: str  # how a compiled step loads it, from `s` (the session), `rec` (the record), `ev`
    session_field: str | None  # the `Session` field it becomes after the step (None: read only)
    meaning: str


SLOTS: Mapping[str, Slot] = {
    "turn": Slot("active_turn", "s.active_turn_id", "active_turn_id", "activeTurnId"),
    "err": Slot("last_error", "s.last_error", "last_error", "lastError"),
    "upd": Slot("updated_at", "s.updated_at", "updated_at", "updatedAt"),
    "upd_dt": Slot("updated_dt", "rec.updated_dt", None, "updatedAt parsed (kept by the thread's record)"),
    "prov": Slot("provider", "s.provider_name", "provider_name", "providerName"),
    "t": Slot("event_turn", "ev.turn_id", None, "the event's turnId"),
    "ev": Slot("event", "ev", None, "the event"),
    "fin": Slot("finished", "rec.finished", None, "the thread's finished turns before the step"),
    "pend": Slot("pending_turn", "s.pending_turn", "pending_turn", "pendingTurn (\"\" when its id is unknown)"),
    "aw": Slot("awaiting", "s.awaiting", "awaiting", "awaiting"),
    "req": Slot("open_requests", "s.open_requests", "open_requests",
                "openRequests: ((requestId, kind), ...), oldest first"),
}
READ_ONLY = frozenset({"t", "ev", "fin"})

# Effect classes the static rules reason about.
EffectClass = str
SETS_TURN_CLASS: EffectClass = "sets_turn"  # may make a turn active
CLEARS_TURN_CLASS: EffectClass = "clears_turn"  # leaves no turn active, remembering the one it ends
REMEMBERS_CLASS: EffectClass = "remembers_turn"  # adds a turn to the finished turns
# Opens the request the event's `requestId` names, of the kind its one parameter gives.
OPENS_REQUEST_CLASS: EffectClass = "opens_request"
# A guard class: the guard keeps a finished turn from becoming active again.
EXCLUDES_FINISHED: str = "excludes_finished_turn"


class Cursor:
    """Mutable scratch state for one step of the reference engine; `status` is the `transitions`
    model attribute. Holds exactly the slots above plus the machine's bookkeeping."""

    __slots__ = (
        "active_turn",
        "awaiting",
        "depth",
        "event",
        "event_turn",
        "finished",
        "last_error",
        "newly_finished",
        "open_requests",
        "pending_turn",
        "provider",
        "reason",
        "status",
        "taken",
        "updated_at",
        "updated_dt",
    )

    def __init__(self, session: Session, updated_dt: datetime | None, finished: Any, event: Event) -> None:
        self.status = session.status
        self.active_turn = session.active_turn_id
        self.last_error = session.last_error
        self.updated_at = session.updated_at
        self.updated_dt = updated_dt
        self.provider = session.provider_name
        self.pending_turn = session.pending_turn
        self.awaiting = session.awaiting
        self.open_requests = session.open_requests
        self.event = event
        self.event_turn = event.turn_id
        self.finished = finished  # the thread's remembered turns, read-only here
        self.newly_finished: list[str] = []  # committed by the engine only if applied
        # Rejection bookkeeping: the guard that failed furthest along any candidate transition.
        self.depth = -1
        self.reason: str | None = None
        self.taken: int | None = None  # index of the spec transition taken, for coverage

    def session_after(self, before: Session) -> Session:
        """The session the step produced; fields the lifecycle never touches come from `before`."""
        return Session(before.thread_id, self.status, self.provider, self.active_turn, self.last_error,
                       self.updated_at, before.provider_instance_id, before.runtime_mode, self.pending_turn,
                       self.awaiting, self.open_requests)


GuardFn = Callable[[Cursor], bool]
EffectFn = Callable[[Cursor, Mapping[str, Any]], None]


def _check_code(name: str, code: str, reads: tuple[str, ...], writes: tuple[str, ...]) -> None:
    """The declaration and its code must agree: every slot the code assigns is declared written,
    every slot it reads is declared read. Read with the stdlib's own symbol table, not by text."""
    table = symtable.symtable("def _():\n" + "".join("    " + line + "\n" for line in code.splitlines()),
                              f"<semantics {name}>", "exec").get_children()[0]
    for symbol in table.get_symbols():
        slot = symbol.get_name()
        if slot not in SLOTS:
            continue
        if symbol.is_assigned() and slot not in writes:
            raise ValueError(f"{name}: its code assigns slot {slot!r}, which it does not declare in writes")
        if symbol.is_referenced() and slot not in reads:
            raise ValueError(f"{name}: its code reads slot {slot!r}, which it does not declare in reads")


# What code may read of the event through `ev`. Its turn is read only through slot `t`, so a
# declaration's `reads` says whether it depends on the event's turn (the verification universe
# varies turn ids only for triggers where something does).
EVENT_ATTRIBUTES = frozenset({"payload", "created_at", "created_dt", "provider", "type", "trigger"})


def _check_event_uses(name: str, code: str) -> None:
    tree = ast.parse("def _():\n" + "".join("    " + line + "\n" for line in code.splitlines()))
    attribute_bases = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ev":
            if node.attr not in EVENT_ATTRIBUTES:
                raise ValueError(f"{name}: its code reads ev.{node.attr}; it may read only "
                                 f"{', '.join(sorted(EVENT_ATTRIBUTES))} of the event (its turn through slot t)")
        elif isinstance(node, ast.Name) and node.id == "ev" and id(node) not in attribute_bases:
            raise ValueError(f"{name}: its code uses the event (ev) other than by reading one of its attributes")


def _bind(code: str, reads: tuple[str, ...], writes: tuple[str, ...], params: tuple[str, ...], label: str) -> Any:
    """Build the reference engine's function for a declaration from its own code: load the
    declared reads from the cursor, run the code, store the declared writes back.

    Spec parameters arrive as a mapping and are bound to their names; `remember(x)` appends to
    the cursor's newly finished turns. The code is the registry's own, never a spec string.
    """
    loads = [f"    {slot} = c.{SLOTS[slot].cursor}" for slot in dict.fromkeys((*reads, *writes))]
    binds = [f"    {p} = params[{p!r}]" for p in params]
    stores = [f"    c.{SLOTS[slot].cursor} = {slot}" for slot in writes]
    body = ["    remember = c.newly_finished.append", *loads, *binds,
            *("    " + line for line in code.splitlines()), *stores, "    return None"]
    source = "def fn(c, params):\n" + "\n".join(body) + "\n"
    scope: dict[str, Any] = {}
    exec(compile(source, f"<semantics {label}>", "exec"), {}, scope)  # registry code only
    return scope["fn"]


@dataclass(frozen=True)
class Guard:
    """A named condition on the session and the event.

    `expr` is a Python expression over `reads` (names from `SLOTS`). `negates` names the guard
    this one is exactly the negation of; `implied_by` lists guards whose truth makes this one
    true: the compiled engine uses both to branch only where a guard can differ, and the
    agreement check proves them (a wrong relation makes the engines disagree).
    """

    name: str
    expr: str
    reads: tuple[str, ...]
    description: str
    negates: str | None = None
    implied_by: tuple[str, ...] = ()
    classes: frozenset[str] = frozenset()
    # Payload fields the expression reads (through `ev`): the verification universe varies them.
    payload_fields: tuple[str, ...] = ()
    # The same expression in TypeScript, over the same slot names (`statemachine.rendering.typescript`
    # documents the slot types and helpers); "" when the guard has no TypeScript rendering.
    ts: str = ""
    fn: GuardFn = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_slots(self.name, self.reads, ())
        if self.payload_fields and "ev" not in self.reads:
            raise ValueError(f"guard {self.name}: declares payload_fields but does not read the event (ev)")
        _check_code(self.name, f"return {self.expr}", self.reads, ())
        _check_event_uses(self.name, f"return {self.expr}")
        wrapped = _bind(f"return {self.expr}", self.reads, (), (), self.name)
        object.__setattr__(self, "fn", lambda c: bool(wrapped(c, {})))


@dataclass(frozen=True)
class Effect:
    """A named change to the session.

    `code` is Python statements over `reads` and `writes` (names from `SLOTS`) and the effect's
    spec parameters (`params`, bound by name). `remember(x)` adds turn `x` to the thread's
    finished turns. `payload_params` names the parameters whose value is a payload field the
    effect reads: the verification universe varies exactly those fields. `payload_reads` names the
    payload fields the code reads by a fixed name (`ev.payload.get('requestId')`).
    """

    name: str
    code: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    description: str
    params: tuple[str, ...] = ()
    payload_params: tuple[str, ...] = ()
    payload_reads: tuple[str, ...] = ()
    classes: frozenset[EffectClass] = frozenset()
    # The same statements in TypeScript, over the same slot names, with the parameters as `p.<name>`
    # (`statemachine.rendering.typescript`); "" when the effect has no TypeScript rendering.
    ts: str = ""
    fn: EffectFn = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_slots(self.name, self.reads, self.writes)
        clash = set(self.params) & (set(SLOTS) | {"remember", "params", "c"})
        if clash:
            raise ValueError(f"effect {self.name}: parameter names {sorted(clash)} are taken by slots")
        unknown = set(self.payload_params) - set(self.params)
        if unknown:
            raise ValueError(f"effect {self.name}: payload_params {sorted(unknown)} are not params")
        if self.payload_reads and "ev" not in self.reads:
            raise ValueError(f"effect {self.name}: declares payload_reads but does not read the event (ev)")
        _check_code(self.name, self.code, self.reads, self.writes)
        _check_event_uses(self.name, self.code)
        object.__setattr__(self, "fn", _bind(self.code, self.reads, self.writes, self.params, self.name))

    @property
    def remembers(self) -> bool:
        return REMEMBERS_CLASS in self.classes or CLEARS_TURN_CLASS in self.classes

    def payload_fields(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The payload fields this use of the effect reads."""
        return (*self.payload_reads, *(str(params[p]) for p in self.payload_params if p in params))


def _check_slots(name: str, reads: tuple[str, ...], writes: tuple[str, ...]) -> None:
    unknown = (set(reads) | set(writes)) - set(SLOTS)
    if unknown:
        raise ValueError(f"{name}: unknown slots {sorted(unknown)} (known: {sorted(SLOTS)})")
    if READ_ONLY & set(writes):
        raise ValueError(f"{name}: writes read-only slots {sorted(READ_ONLY & set(writes))}")


@dataclass(frozen=True)
class Vocabulary:
    """The guards and effects a spec may name. The spec checker takes one as an argument, so a
    test or an embedder can load a spec against a vocabulary of its own."""

    guards: Mapping[str, Guard]
    effects: Mapping[str, Effect]

    @classmethod
    def of(cls, guards: tuple[Guard, ...], effects: tuple[Effect, ...]) -> Vocabulary:
        vocabulary = cls({g.name: g for g in guards}, {e.name: e for e in effects})
        for g in guards:
            related = ([g.negates] if g.negates else []) + list(g.implied_by)
            missing = [r for r in related if r not in vocabulary.guards]
            if missing:
                raise ValueError(f"guard {g.name}: relates to unknown guards {missing}")
        return vocabulary

    def extended(self, guards: tuple[Guard, ...] = (), effects: tuple[Effect, ...] = ()) -> Vocabulary:
        """This vocabulary plus more declarations (a name declared again replaces the old one)."""
        return Vocabulary.of((*self.guards.values(), *guards), (*self.effects.values(), *effects))

    def effects_of_class(self, cls: EffectClass) -> frozenset[str]:
        return frozenset(n for n, e in self.effects.items() if cls in e.classes)

    def guards_of_class(self, cls: str) -> frozenset[str]:
        return frozenset(n for n, g in self.guards.items() if cls in g.classes)

    @cached_property
    def fingerprint(self) -> tuple[Any, ...]:
        """What identifies this vocabulary's meaning (part of the compile cache key)."""
        return (
            tuple((g.name, g.expr, g.reads, g.negates, g.implied_by, g.payload_fields) for g in self.guards.values()),
            tuple((e.name, e.code, e.reads, e.writes, e.params, e.payload_reads) for e in self.effects.values()),
        )


# -- the built-in vocabulary ----------------------------------------------------------------------

_GUARDS = (
    Guard("has_active_turn", "turn is not None", ("turn",), "The session holds an active turn.",
          negates="no_active_turn", ts="turn !== null"),
    Guard("no_active_turn", "turn is None", ("turn",), "The session holds no active turn.",
          negates="has_active_turn", ts="turn === null"),
    Guard("targeted", "t is not None", ("t",), "The event names a turn (envelope turnId).", negates="untargeted",
          ts="t !== null"),
    Guard("untargeted", "t is None", ("t",), "The event names no turn.", negates="targeted", ts="t === null"),
    Guard("turn_matches", "t is None or turn is None or t == turn", ("t", "turn"),
          "The event names no turn, or no turn is active, or it names the active one.",
          implied_by=("untargeted", "no_active_turn"), ts="t === null || turn === null || t === turn"),
    # No effect has run yet when guards are read, so `fin` is the whole memory.
    Guard("turn_not_finished", "t is None or t not in fin", ("t", "fin"),
          "The turn the event names has not completed, aborted or been cleared.",
          implied_by=("untargeted",), classes=frozenset({EXCLUDES_FINISHED}), ts="t === null || !fin.has(t)"),
    # The orchestrator's side: pending turn starts and stop requests.
    Guard("turn_pending", "pend is not None", ("pend",), "The orchestrator has requested a turn that has not started.",
          negates="no_turn_pending", ts="pend !== null"),
    Guard("no_turn_pending", "pend is None", ("pend",), "No requested turn is waiting to start.",
          negates="turn_pending", ts="pend === null"),
    # An empty `pend` is a request whose turn id is unknown: it never names the event's turn.
    Guard("turn_expected", "t is not None and t == pend", ("t", "pend"),
          "The event names the turn the orchestrator's pending request expects.", negates="turn_not_expected",
          ts="t !== null && t === pend"),
    Guard("turn_not_expected", "t is None or t != pend", ("t", "pend"),
          "The event names no turn, or not the one the pending request expects.", negates="turn_expected",
          implied_by=("untargeted", "no_turn_pending"), ts="t === null || t !== pend"),
    # Open requests, per requestId. The bound is MAX_OPEN_REQUESTS (statemachine.core.session),
    # written out here because a declaration's code reads nothing but its slots.
    Guard("request_room", "len(req) < 32 or ev.payload.get('requestId') in [r[0] for r in req]", ("req", "ev"),
          "Fewer than 32 requests are open, or the event's requestId is one of them (it is asked again).",
          payload_fields=("requestId",),
          ts='req.length < 32 || req.some((r) => r[0] === payloadGet(ev.payload, "requestId"))'),
    # A resolution naming no request ends every open one.
    Guard("closes_last_request",
          "len(req) > 0 and (ev.payload.get('requestId') is None "
          "or (len(req) == 1 and req[0][0] == ev.payload.get('requestId')))",
          ("req", "ev"),
          "Requests are open, and the resolution names the only one, or names none (it ends them all).",
          payload_fields=("requestId",),
          ts='req.length > 0 && (payloadGet(ev.payload, "requestId") === null || '
             '(req.length === 1 && req[0]![0] === payloadGet(ev.payload, "requestId")))'),
    Guard("stop_unconditional", "not ev.payload.get('onlyIfSettled')", ("ev",),
          "The stop request does not ask to stop only a settled session (onlyIfSettled).",
          payload_fields=("onlyIfSettled",), ts='!pyTruthy(payloadGet(ev.payload, "onlyIfSettled"))'),
)

_EFFECTS = (
    Effect("clear_turn", "if turn is not None:\n    remember(turn)\n    turn = None", ("turn",), ("turn",),
           "Remember the active turn as finished, then set activeTurnId to null.",
           classes=frozenset({CLEARS_TURN_CLASS}), ts="if (turn !== null) {\n  remember(turn);\n  turn = null;\n}"),
    Effect("set_turn", "turn = t", ("t",), ("turn",), "Set activeTurnId to the turn the event names.",
           classes=frozenset({SETS_TURN_CLASS}), ts="turn = t;"),
    Effect("remember_event_turn", "if t is not None:\n    remember(t)", ("t",), (),
           "Remember the turn the event names (if any) as finished.", classes=frozenset({REMEMBERS_CLASS}),
           ts="if (t !== null) {\n  remember(t);\n}"),
    Effect("clear_error", "err = None", (), ("err",), "Set lastError to null.", ts="err = null;"),
    # T3's `payload[field] ?? previous ?? default`: only a missing or null value falls through.
    Effect("set_error",
           "value = ev.payload.get(field)\n"
           "if value is not None:\n    err = str(value)\n"
           "elif err is None:\n    err = str(default)",
           ("ev", "err"), ("err",),
           "Set lastError to the payload's `field`, else keep the previous one, else `default`.",
           params=("field", "default"), payload_params=("field",),
           ts="const value = payloadGet(ev.payload, p.field);\n"
              "if (value !== null) {\n  err = pyStr(value);\n} else if (err === null) {\n  err = pyStr(p.default);\n}"),
    Effect("advance_updated_at",
           "if upd_dt is None or ev.created_dt > upd_dt:\n    upd = ev.created_at\n    upd_dt = ev.created_dt",
           ("ev", "upd", "upd_dt"), ("upd", "upd_dt"),
           "Set updatedAt to max(updatedAt, the event's createdAt); it never moves backwards.",
           ts="if (upd_dt === null || ev.created_dt > upd_dt) {\n  upd = ev.created_at;\n  upd_dt = ev.created_dt;\n}"),
    # An equal name keeps the string the session holds: one string per provider, not one per session.
    Effect("record_provider", "if prov != ev.provider:\n    prov = ev.provider", ("prov", "ev"), ("prov",),
           "Set providerName to the event's provider.",
           ts="if (prov !== ev.provider) {\n  prov = ev.provider;\n}"),
    # The orchestrator's side: a pending turn start, and what the provider waits on.
    Effect("set_pending_turn", "pend = t if t is not None else ''", ("t",), ("pend",),
           "Record a pending turn start: the turn the request names, or an unknown one.",
           ts='pend = t !== null ? t : "";'),
    Effect("clear_pending_turn", "pend = None", (), ("pend",), "Set pendingTurn to null.", ts="pend = null;"),
    Effect("consume_pending_turn", "if pend is not None and (pend == '' or pend == t):\n    pend = None",
           ("pend", "t"), ("pend",),
           "A turn started: the pending start it fulfils (the one expected, or one of unknown id) is over.",
           ts='if (pend !== null && (pend === "" || pend === t)) {\n  pend = null;\n}'),
    # Requests of the orchestrator, tracked per requestId (the event's; None when it carries none):
    # asked again, a request moves to the end. `awaiting` is what the newest open one asks.
    Effect("open_request",
           "rid = ev.payload.get('requestId')\n"
           "req = tuple([r for r in req if r[0] != rid] + [(rid, what)])\n"
           "aw = what",
           ("req", "ev"), ("req", "aw"),
           "Open the request the event names (its requestId), asking `what` (approval, user-input); awaiting "
           "becomes `what`.",
           params=("what",), payload_reads=("requestId",), classes=frozenset({OPENS_REQUEST_CLASS}),
           ts='const rid = payloadGet(ev.payload, "requestId") as RequestId;\n'
              "req = [...req.filter((r) => r[0] !== rid), [rid, p.what as string]];\n"
              "aw = p.what as string;"),
    Effect("close_request",
           "rid = ev.payload.get('requestId')\n"
           "req = () if rid is None else tuple([r for r in req if r[0] != rid])\n"
           "aw = req[-1][1] if req else None",
           ("req", "ev"), ("req", "aw"),
           "End the request the resolution names, or every open one when it names none; awaiting becomes what "
           "the newest request still open asks, or null.",
           payload_reads=("requestId",),
           ts='const rid = payloadGet(ev.payload, "requestId") as RequestId;\n'
              "req = rid === null ? [] : req.filter((r) => r[0] !== rid);\n"
              "aw = req.length > 0 ? req[req.length - 1]![1] : null;"),
    Effect("clear_awaiting", "aw = None\nreq = ()", (), ("aw", "req"),
           "End every open request: awaiting is null, nothing is asked of the orchestrator.",
           ts="aw = null;\nreq = [];"),
)

VOCABULARY = Vocabulary.of(_GUARDS, _EFFECTS)

# Views by name, for readers that want one mapping (tests, Promela's vocabulary check).
GUARDS: Mapping[str, Guard] = VOCABULARY.guards
EFFECTS: Mapping[str, Effect] = VOCABULARY.effects
SETS_TURN = VOCABULARY.effects_of_class(SETS_TURN_CLASS)
CLEARS_TURN = VOCABULARY.effects_of_class(CLEARS_TURN_CLASS)
GUARDS_UNFINISHED_TURN = VOCABULARY.guards_of_class(EXCLUDES_FINISHED)
