"""Requirements rendered as Promela: state requirements and contracts as assertions, temporal ones as LTL.

The model (see `promela`) keeps one session's `status`, active `turn`, finished bits `fin[]`,
pending turn `pend`, what it awaits (`aw`) and its open requests (`rq[]`, `nrq`); for contracts
it also keeps the values before the current event (`pstatus`, `pturn`, `pfin[]`, `ppend`, `paw`,
`prq[]`, `pnrq`) and the spec transition `taken` (0: rejected). Each contract is rendered once per
trigger, with the event's type, trigger and variant payload field known at generation time, so
only the turn id (`ev`) and, for an event type that declares it, the request id (`rid`) are left
to the model. `requestIds` (the set of the open requests' ids) is rendered over `rq[]` and `nrq`,
given the model's request ids (`RequestIds`).

A requirement that reads what the model leaves out (lastError, updatedAt, the provider, the carried
fields, a rejection's reason, whole sessions, duplicates, the creating delivery, the remembered
eventIds, forgetting; awaiting when no names are given) is not rendered: `render_state` and
`render_contract` return None, and spin reports it as not covered instead of passing it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from statemachine.core.session import FIELDS
from statemachine.spec.model import Spec
from statemachine.spec.requirements import Requirement, Temporal

__all__ = ["MODELLED_FIELDS", "RequestIds", "Unmodelled", "render_contract", "render_state", "render_temporal"]

# An expression is a Promela string or a constant decided at generation time.
Expr = str | bool


class Unmodelled(Exception):
    """The predicate reads something the model leaves out."""


def _and(parts: list[Expr]) -> Expr:
    if any(p is False for p in parts):
        return False
    rest = [p for p in parts if p is not True]
    if not rest:
        return True
    return "(" + " && ".join(str(p) for p in rest) + ")"


def _or(parts: list[Expr]) -> Expr:
    if any(p is True for p in parts):
        return True
    rest = [p for p in parts if p is not False]
    if not rest:
        return False
    return "(" + " || ".join(str(p) for p in rest) + ")"


def _not(p: Expr) -> Expr:
    return (not p) if isinstance(p, bool) else f"(!{p})"


# The session fields the model keeps, by wire name -> the model's variable (and path kind); the
# others of `statemachine.core.session.FIELDS` are left out. `pend` 255: a pending turn of unknown
# id, equal to no event turn. The open requests (`req`: `rq[]`, `ro[]`, `nrq`) are never null; a
# requirement reads them as the set of their ids (`requestIds`).
MODELLED_FIELDS = {"status": "status", "activeTurnId": "turn", "pendingTurn": "pend", "awaiting": "aw",
                   "openRequests": "req"}
assert set(MODELLED_FIELDS) <= {f.wire for f in FIELDS if f.lifecycle}

# Path kinds holding a turn id (0: none): comparable with one another.
TURN_LIKE = frozenset({"turn", "pend"})


class RequestIds(NamedTuple):
    """The model's request ids: the payload field that names a request, and how many id slots
    `rq[]` has (0: a request without id, then one per kind)."""

    field: str
    slots: int


class _Renderer:
    def __init__(self, spec: Spec, status: Mapping[str, str], trigger: str | None,
                 awaiting: Mapping[str, str] | None = None, requests: RequestIds | None = None) -> None:
        self.spec = spec
        self.status = status
        self.awaiting = awaiting  # value -> Promela name; None: awaiting is not modelled
        self.requests = requests  # None: request ids are not modelled
        self.trigger = trigger  # None for a state requirement
        type_, _, variant = (trigger or "").partition("[")
        self.type = type_
        self.variant = variant.rstrip("]") or None
        event_type = spec.event_type(type_) if trigger is not None else None
        self.variant_by = event_type.variant_by if event_type is not None else None
        # The model sends `rid` only with events whose type declares the request id.
        self.carries_id = (requests is not None and event_type is not None
                           and event_type.field(requests.field) is not None)

    # A path is ("status", expr) | ("turn", expr) | ("set", prefix) | ("const", value)
    def path(self, target: str) -> tuple[str, Any]:
        root, _, rest = target.partition(".")
        if root in ("session", "after", "before"):
            pre = "p" if root == "before" else ""
            if rest == "finished":
                return ("set", f"{pre}fin")
            if rest == "requestIds" and self.requests is not None:
                return ("ids", pre)
            kind = MODELLED_FIELDS.get(rest)
            if kind is None or (kind == "aw" and self.awaiting is None):
                raise Unmodelled(target)
            return (kind, f"{pre}{kind}")
        if root == "event":
            if rest == "turnId":
                return ("turn", "ev")
            if rest == "type":
                return ("const", self.type)
            if rest == "trigger":
                return ("const", self.trigger)
            if self.variant_by is not None and rest == f"payload.{self.variant_by}":
                return ("const", self.variant)
            if self.carries_id and self.requests is not None and rest == f"payload.{self.requests.field}":
                return ("rid", "rid")
            raise Unmodelled(target)
        if target == "outcome.kind":
            return ("kind", None)
        raise Unmodelled(target)

    def compare(self, target: str, value: Any) -> Expr:
        kind, expr = self.path(target)
        if kind == "const":
            return bool(expr == value)
        if kind == "status":
            return f"({expr} == {self.status[value]})"
        if kind in TURN_LIKE and value is None:
            return f"({expr} == 0)"
        if kind == "aw" and self.awaiting is not None:
            if value is None:
                return f"({expr} == AW_none)"
            name = self.awaiting.get(value)
            return f"({expr} == {name})" if name is not None else False  # a value no effect sets
        if kind == "kind":
            # Every modelled event is a lifecycle event delivered once: applied or rejected.
            if value in ("applied", "rejected"):
                return "(taken != 0)" if value == "applied" else "(taken == 0)"
            raise Unmodelled(f"outcome.kind {value}")
        raise Unmodelled(target)

    def predicate(self, raw: Any) -> Expr:
        ((op, arg),) = raw.items()
        if op == "all":
            return _and([self.predicate(p) for p in arg])
        if op == "any":
            return _or([self.predicate(p) for p in arg])
        if op == "not":
            return _not(self.predicate(arg))
        if op == "implies":
            return _or([_not(self.predicate(arg[0])), self.predicate(arg[1])])
        if op == "eq":
            return self.compare(arg[0], arg[1])
        if op == "in":
            return _or([self.compare(arg[0], v) for v in arg[1]])
        if op == "is_null":
            kind, expr = self.path(arg)
            if kind == "const":
                return expr is None
            if kind in TURN_LIKE:
                return f"({expr} == 0)"
            if kind == "req":
                return False  # a list, possibly empty, never null
            if kind == "rid":
                return f"({expr} == 0)"
            if kind == "aw":
                return f"({expr} == AW_none)"
            raise Unmodelled(arg)
        if op == "same":
            (k1, e1), (k2, e2) = self.path(arg[0]), self.path(arg[1])
            if k1 == k2 == "const":
                return bool(e1 == e2)
            if (k1 == k2 and k1 in ("status", "aw")) or (k1 in TURN_LIKE and k2 in TURN_LIKE):
                return f"({e1} == {e2})"
            raise Unmodelled(f"{arg[0]} vs {arg[1]}")
        if op == "contains":
            (k1, e1), (k2, e2) = self.path(arg[0]), self.path(arg[1])
            if k1 == "set" and k2 == "turn":
                return f"({e2} != 0 && {e1}[{e2}])"
            if k1 == "ids" and k2 == "rid":  # no request id is in no set
                return f"({e2} != 0 && {e1}rq[{e2}] != AW_none)"
            raise Unmodelled(arg[0])
        if op == "empty":
            kind, expr = self.path(arg)
            if kind == "ids":
                return f"({expr}nrq == 0)"
            raise Unmodelled(arg)
        if op == "fewer_than":
            kind, expr = self.path(arg[0])
            if kind == "ids":
                return f"({expr}nrq < {int(arg[1])})"
            raise Unmodelled(arg[0])
        if op == "same_except":
            # The two sets agree on every id but the one named (none: they agree on every id but
            # that of a request without one, slot 0, which is the `rid` 0 stands for).
            (k1, e1), (k2, e2), (k3, e3) = self.path(arg[0]), self.path(arg[1]), self.path(arg[2])
            if k1 == k2 == "ids" and k3 == "rid" and self.requests is not None:
                return _and([f"({e3} == {i} || (({e1}rq[{i}] != AW_none) == ({e2}rq[{i}] != AW_none)))"
                             for i in range(self.requests.slots)])
            raise Unmodelled(f"{arg[0]} vs {arg[1]}")
        raise Unmodelled(op)  # instants (not_earlier, latest): updatedAt is not modelled


def render_state(spec: Spec, status: Mapping[str, str], req: Requirement,
                 awaiting: Mapping[str, str] | None = None, requests: RequestIds | None = None) -> Expr | None:
    try:
        return _Renderer(spec, status, None, awaiting, requests).predicate(req.holds)
    except Unmodelled:
        return None


def render_contract(spec: Spec, status: Mapping[str, str], req: Requirement,
                    awaiting: Mapping[str, str] | None = None, requests: RequestIds | None = None
                    ) -> dict[str, Expr] | None:
    """Per trigger, the contract as one expression (`!when || then`); None when not modelled."""
    if req.applies_to in ("redelivered", "first"):
        return None  # the model has no event ids and one thread from the start: neither is modelled
    out: dict[str, Expr] = {}
    try:
        for trigger in spec.triggers:
            r = _Renderer(spec, status, trigger, awaiting, requests)
            when = r.predicate(req.when) if req.when is not None else True
            if when is False:
                continue
            out[trigger] = _or([_not(when), r.predicate(req.then)])
    except Unmodelled:
        return None
    # Decided at generation time for every trigger: nothing is left for the model to check.
    return out if any(not isinstance(e, bool) for e in out.values()) else None


def render_temporal(formula: Temporal, status: Mapping[str, str], trigger_index: Callable[[str], int]) -> str:
    """An LTL formula for spin over the model's globals (`last` is 1 + the last event's trigger index)."""

    def go(t: Temporal) -> str:
        if t.op == "quiet":
            return "quiet"
        if t.op == "turn_active":
            return "(turn != 0)"
        if t.op == "status_in":
            return "(" + " || ".join(f"status == {status[s]}" for s in t.args) + ")"
        if t.op == "last_event_in":
            return "(" + " || ".join(f"last == {trigger_index(x) + 1}" for x in t.args) + ")"
        parts = [go(a) for a in t.args]
        if t.op == "always":
            return f"([] {parts[0]})"
        if t.op == "eventually":
            return f"(<> {parts[0]})"
        if t.op == "not":
            return f"(! {parts[0]})"
        if t.op == "all":
            return "(" + " && ".join(parts) + ")"
        if t.op == "any":
            return "(" + " || ".join(parts) + ")"
        if t.op == "implies":
            return f"({parts[0]} -> {parts[1]})"
        if t.op == "until":
            return f"({parts[0]} U {parts[1]})"
        if t.op == "weak_until":
            return f"(({parts[0]} U {parts[1]}) || ([] {parts[0]}))"
        raise ValueError(f"unknown temporal operator {t.op!r}")

    return go(formula)
