"""Contender (b): the lifecycle as a hand-written dict-table reducer. The practical speed limit.

Same semantics as the spec (specs/session_lifecycle.yaml) and the package's projector: the same
transitions, guards in the same order (so the same rejection reasons), the same per-thread
de-duplication and finished-turn memory with the same caps and FIFO eviction, `updatedAt` as the
max of applied `createdAt`s. It is written out by hand, not derived from the spec, and imports
nothing from the `statemachine` package: it is a benchmark peer, and the agreement check in
`benchmarks/run.py` proves it projects the same sessions and outcomes as the package. A spec
change must be mirrored here by hand: tests/project/test_benchmark_harness.py fails until it is.

Per event: one dict lookup for the thread, one membership test and insert for de-duplication,
one dict lookup of (trigger, status) into a table of small functions, the function mutates the
thread's record in place. No immutable snapshot or outcome object is built; the return value is
"applied", "ignored", "duplicate" or the rejection reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "APPLIED",
    "DUPLICATE",
    "IGNORED",
    "HandwrittenProjector",
    "Record",
    "from_wire",
]

APPLIED = "applied"
IGNORED = "ignored"
DUPLICATE = "duplicate"

STATUSES = ("idle", "starting", "running", "ready", "interrupted", "stopped", "error")
# The payload field whose value selects the trigger, and its default when absent.
_VARIANTS: dict[str, tuple[str, str | None]] = {
    "session.state.changed": ("state", None),
    "turn.completed": ("state", "completed"),
}
_LIFECYCLE = frozenset(
    {
        "session.started",
        "thread.started",
        "session.state.changed",
        "session.exited",
        "turn.started",
        "turn.completed",
        "turn.aborted",
        "runtime.error",
    }
)

# (eventId, threadId, provider, trigger or None, turnId, createdAt, createdAt parsed, payload)
Ev = tuple[str, str, str, "str | None", "str | None", str, datetime, Mapping[str, Any]]


def from_wire(wire: Mapping[str, Any]) -> Ev:
    """A wire dict -> the plain tuple this reducer takes. Trusts its input (no validation)."""
    type_ = wire["type"]
    trigger = None
    if type_ in _LIFECYCLE:
        trigger = type_
        variant = _VARIANTS.get(type_)
        if variant is not None:
            payload = wire.get("payload") or {}
            value = payload.get(variant[0], variant[1])
            trigger = f"{type_}[{value}]"
    created_at = wire["createdAt"]
    created_dt = datetime.fromisoformat(created_at)
    if created_dt.tzinfo is None:
        created_dt = created_dt.replace(tzinfo=UTC)
    return (
        wire["eventId"],
        wire["threadId"],
        wire["provider"],
        trigger,
        wire.get("turnId"),
        created_at,
        created_dt,
        wire.get("payload") or {},
    )


class Record:
    """One thread: its session fields and its bounded memories, mutated in place."""

    __slots__ = ("error", "finished", "provider", "seen", "status", "thread_id", "turn", "updated_at", "updated_dt")

    def __init__(self, thread_id: str, provider: str) -> None:
        self.thread_id = thread_id
        self.status = "idle"
        self.turn: str | None = None
        self.error: str | None = None
        self.updated_at: str | None = None
        self.updated_dt: datetime | None = None
        self.provider = provider
        self.seen: dict[str, None] = {}
        self.finished: dict[str, None] = {}

    def wire(self) -> dict[str, Any]:
        return {
            "threadId": self.thread_id,
            "status": self.status,
            "providerName": self.provider,
            "activeTurnId": self.turn,
            "lastError": self.error,
            "updatedAt": self.updated_at,
            # The stream carries no commands or provider requests: nothing is ever pending or awaited.
            "pendingTurn": None,
            "awaiting": None,
            "openRequests": [],
        }


Handler = Callable[[Record, Ev, "HandwrittenProjector"], str]


class HandwrittenProjector:
    def __init__(self, max_event_ids: int = 1024, max_finished_turns: int = 256) -> None:
        self.records: dict[str, Record] = {}
        self.max_event_ids = max_event_ids
        self.max_finished_turns = max_finished_turns

    def finish(self, rec: Record, turn: str) -> None:
        finished = rec.finished
        finished[turn] = None
        if len(finished) > self.max_finished_turns:
            del finished[next(iter(finished))]

    def apply(self, ev: Ev) -> str:
        rec = self.records.get(ev[1])
        if rec is None:
            rec = self.records[ev[1]] = Record(ev[1], ev[2])
        seen = rec.seen
        if ev[0] in seen:
            return DUPLICATE
        seen[ev[0]] = None
        if len(seen) > self.max_event_ids:
            del seen[next(iter(seen))]
        trigger = ev[3]
        if trigger is None:
            return IGNORED
        handler = _TABLE.get((trigger, rec.status))
        if handler is None:
            return _INVALID[rec.status]
        result = handler(rec, ev, self)
        if result is APPLIED:
            # on_applied: updatedAt never moves backwards; the provider is the event's.
            if rec.updated_dt is None or ev[6] > rec.updated_dt:
                rec.updated_at = ev[5]
                rec.updated_dt = ev[6]
            rec.provider = ev[2]
        return result


_INVALID = {s: f"invalid_in_{s}" for s in STATUSES}


def _enter_clearing(rec: Record, status: str, p: HandwrittenProjector) -> None:
    """Enter a status that may not hold a turn: the active turn is remembered as finished."""
    rec.status = status
    if rec.turn is not None:
        p.finish(rec, rec.turn)
        rec.turn = None


def _set_error(rec: Record, value: Any, default: str) -> None:
    if value is not None:
        rec.error = str(value)
    elif rec.error is None:
        rec.error = default


def _resume_from_working(rec: Record, ev: Ev, p: HandwrittenProjector) -> str:
    # session.started / thread.started from starting or running: keep a turn that is active.
    if rec.turn is not None:
        rec.status = "running"
    else:
        _enter_clearing(rec, "ready", p)
        rec.error = None
    return APPLIED


def _resume(rec: Record, ev: Ev, p: HandwrittenProjector) -> str:
    if rec.turn is not None:
        return "turn_active"
    _enter_clearing(rec, "ready", p)
    rec.error = None
    return APPLIED


def _to_holding(status: str) -> Handler:
    def handler(rec: Record, ev: Ev, p: HandwrittenProjector) -> str:
        rec.status = status
        return APPLIED

    return handler


def _state_ready(rec: Record, ev: Ev, p: HandwrittenProjector) -> str:
    _enter_clearing(rec, "ready", p)
    rec.error = None
    return APPLIED


def _stop(rec: Record, ev: Ev, p: HandwrittenProjector) -> str:
    _enter_clearing(rec, "stopped", p)
    return APPLIED


def _state_error(rec: Record, ev: Ev, p: HandwrittenProjector) -> str:
    _enter_clearing(rec, "error", p)
    _set_error(rec, ev[7].get("reason"), "Provider session error")
    return APPLIED


def _turn_started(rec: Record, ev: Ev, p: HandwrittenProjector) -> str:
    turn = ev[4]
    if turn is not None:
        if turn in rec.finished:
            return "turn_finished"
        if rec.turn is not None and turn != rec.turn:
            return "other_turn_active"
        rec.status = "running"
        rec.turn = turn
        return APPLIED
    if rec.turn is not None:
        return "turn_active"
    rec.status = "running"
    return APPLIED


def _turn_completed(dest: str, failed: bool) -> Handler:
    def handler(rec: Record, ev: Ev, p: HandwrittenProjector) -> str:
        turn = ev[4]
        if turn is None:
            return "untargeted"
        if turn in rec.finished:
            return "turn_finished"
        if rec.turn is not None and turn != rec.turn:
            return "other_turn_active"
        _enter_clearing(rec, dest, p)
        p.finish(rec, turn)
        if failed:
            _set_error(rec, ev[7].get("errorMessage"), "Turn failed")
        else:
            rec.error = None
        return APPLIED

    return handler


def _turn_aborted(rec: Record, ev: Ev, p: HandwrittenProjector) -> str:
    if rec.turn is None:
        return "no_active_turn"
    if ev[4] is not None and ev[4] != rec.turn:
        return "other_turn_active"
    _enter_clearing(rec, "interrupted", p)
    rec.error = None
    return APPLIED


def _runtime_error(rec: Record, ev: Ev, p: HandwrittenProjector) -> str:
    turn = ev[4]
    if turn is not None and rec.turn is not None and turn != rec.turn:
        return "other_turn_active"
    if turn is not None and turn in rec.finished:
        return "turn_finished"  # late news of a settled turn
    _enter_clearing(rec, "error", p)
    if turn is not None:
        p.finish(rec, turn)
    _set_error(rec, ev[7].get("message"), "Runtime error")
    return APPLIED


def _build_table() -> dict[tuple[str, str], Handler]:
    table: dict[tuple[str, str], Handler] = {}
    not_stopped = [s for s in STATUSES if s != "stopped"]
    for status in STATUSES:
        working = status in ("starting", "running")
        for trigger in ("session.started", "thread.started"):
            table[(trigger, status)] = _resume_from_working if working else _resume
        table[("session.state.changed[starting]", status)] = _to_holding("starting")
        table[("session.state.changed[running]", status)] = _to_holding("running")
        table[("session.state.changed[waiting]", status)] = _to_holding("running")
        table[("session.state.changed[ready]", status)] = _state_ready
        table[("session.state.changed[stopped]", status)] = _stop
        table[("session.state.changed[error]", status)] = _state_error
        table[("session.exited", status)] = _stop
        if working:
            table[("turn.aborted", status)] = _turn_aborted
    for status in not_stopped:
        table[("turn.started", status)] = _turn_started
        table[("turn.completed[completed]", status)] = _turn_completed("ready", False)
        table[("turn.completed[failed]", status)] = _turn_completed("error", True)
        table[("turn.completed[interrupted]", status)] = _turn_completed("interrupted", False)
        table[("turn.completed[cancelled]", status)] = _turn_completed("interrupted", False)
        table[("runtime.error", status)] = _runtime_error
    return table


_TABLE = _build_table()
