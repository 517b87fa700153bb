"""The named guards and effects: the only code that interprets an event.

Which guard or effect applies to which transition is decided by the spec file alone; this module
gives each *name* its meaning, nothing more. Everything here works on a `Cursor`, a scratch copy
of one session that the machine mutates while it takes one transition.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .events import parse_timestamp
from .session import Session

if TYPE_CHECKING:
    from .events import Event

__all__ = [
    "CLEARS_TURN",
    "EFFECTS",
    "EFFECT_SOURCE",
    "GUARDS",
    "GUARDS_UNFINISHED_TURN",
    "GUARD_SOURCE",
    "SETS_TURN",
    "Cursor",
    "EffectFn",
    "GuardFn",
]


class Cursor:
    """Mutable scratch state for one step. `status` is the `transitions` model attribute."""

    __slots__ = (
        "active_turn",
        "depth",
        "event",
        "finished",
        "last_error",
        "newly_finished",
        "provider",
        "reason",
        "status",
        "taken",
        "updated_at",
        "updated_dt",
    )

    def __init__(
        self,
        status: str,
        active_turn: str | None,
        last_error: str | None,
        updated_at: str | None,
        updated_dt: datetime | None,
        provider: str | None,
        event: Event,
        finished: Container[str],
    ) -> None:
        self.status = status
        self.active_turn = active_turn
        self.last_error = last_error
        self.updated_at = updated_at
        self.updated_dt = updated_dt
        self.provider = provider
        self.event = event
        self.finished = finished  # the thread's remembered turns, read-only here
        self.newly_finished: list[str] = []  # committed by the projector only if applied
        # Rejection bookkeeping: the guard that failed furthest along any candidate transition.
        self.depth = -1
        self.reason: str | None = None
        self.taken: int | None = None  # index of the spec transition taken, for coverage

    @classmethod
    def load(cls, session: Session, finished: Container[str], event: Event) -> Cursor:
        """A scratch copy of `session` for one step of `event`."""
        updated_dt = parse_timestamp(session.updated_at) if session.updated_at is not None else None
        return cls(session.status, session.active_turn_id, session.last_error, session.updated_at, updated_dt,
                   session.provider_name, event, finished)

    def session_after(self, before: Session) -> Session:
        """The session the step produced; fields the lifecycle never touches come from `before`."""
        return Session(before.thread_id, self.status, self.provider, self.active_turn, self.last_error,
                       self.updated_at, before.provider_instance_id, before.runtime_mode)

    def is_finished(self, turn: str) -> bool:
        return turn in self.finished or turn in self.newly_finished


GuardFn = Callable[[Cursor], bool]
EffectFn = Callable[[Cursor, Mapping[str, Any]], None]


def _has_active_turn(c: Cursor) -> bool:
    return c.active_turn is not None


def _no_active_turn(c: Cursor) -> bool:
    return c.active_turn is None


def _targeted(c: Cursor) -> bool:
    return c.event.turn_id is not None


def _untargeted(c: Cursor) -> bool:
    return c.event.turn_id is None


def _turn_matches(c: Cursor) -> bool:
    turn = c.event.turn_id
    return turn is None or c.active_turn is None or turn == c.active_turn


def _turn_not_finished(c: Cursor) -> bool:
    turn = c.event.turn_id
    return turn is None or not c.is_finished(turn)


GUARDS: Mapping[str, GuardFn] = {
    "has_active_turn": _has_active_turn,
    "no_active_turn": _no_active_turn,
    "targeted": _targeted,
    "untargeted": _untargeted,
    "turn_matches": _turn_matches,
    "turn_not_finished": _turn_not_finished,
}


def _clear_turn(c: Cursor, _: Mapping[str, Any]) -> None:
    if c.active_turn is not None:
        c.newly_finished.append(c.active_turn)
        c.active_turn = None


def _set_turn(c: Cursor, _: Mapping[str, Any]) -> None:
    c.active_turn = c.event.turn_id


def _remember_event_turn(c: Cursor, _: Mapping[str, Any]) -> None:
    if c.event.turn_id is not None:
        c.newly_finished.append(c.event.turn_id)


def _clear_error(c: Cursor, _: Mapping[str, Any]) -> None:
    c.last_error = None


def _set_error(c: Cursor, params: Mapping[str, Any]) -> None:
    # T3's `payload[field] ?? previous ?? default`: only a missing/null value falls through.
    value = c.event.payload.get(params["field"])
    if value is not None:
        c.last_error = str(value)
    elif c.last_error is None:
        c.last_error = str(params["default"])


def _advance_updated_at(c: Cursor, _: Mapping[str, Any]) -> None:
    if c.updated_dt is None or c.event.created_dt > c.updated_dt:
        c.updated_at = c.event.created_at
        c.updated_dt = c.event.created_dt


def _record_provider(c: Cursor, _: Mapping[str, Any]) -> None:
    c.provider = c.event.provider


# What the static check needs to know of the names above (statemachine/verify/static.py).
SETS_TURN = frozenset({"set_turn"})
CLEARS_TURN = frozenset({"clear_turn"})
# A guard that keeps finished turns from becoming active again.
GUARDS_UNFINISHED_TURN = frozenset({"turn_not_finished"})

EFFECTS: Mapping[str, EffectFn] = {
    "clear_turn": _clear_turn,
    "set_turn": _set_turn,
    "remember_event_turn": _remember_event_turn,
    "clear_error": _clear_error,
    "set_error": _set_error,
    "advance_updated_at": _advance_updated_at,
    "record_provider": _record_provider,
}


# The same meanings once more, as Python source for the compiled engine (`statemachine.compiled`),
# which turns each recorded table entry into one straight-line function instead of calling the
# functions above through a Cursor. They read and write plain local names: `ev` (the event), `t`
# (its turnId), `fin` (the thread's finished turns, as before the step), and the session's fields
# being built: `turn`, `err`, `upd`, `upd_dt` (updatedAt parsed), `prov`. A line `remember(x)`
# adds `x` to the finished turns; `{name}` is the effect's spec parameter. `verify`'s agreement
# check proves the two renderings mean the same on every reachable state x every event.
GUARD_SOURCE: Mapping[str, str] = {
    "has_active_turn": "turn is not None",
    "no_active_turn": "turn is None",
    "targeted": "t is not None",
    "untargeted": "t is None",
    "turn_matches": "t is None or turn is None or t == turn",
    # No effect has run yet when guards are read, so nothing is newly finished.
    "turn_not_finished": "t is None or t not in fin",
}

EFFECT_SOURCE: Mapping[str, str] = {
    "clear_turn": "if turn is not None:\n    remember(turn)\n    turn = None",
    "set_turn": "turn = t",
    "remember_event_turn": "if t is not None:\n    remember(t)",
    "clear_error": "err = None",
    "set_error": (
        "value = ev.payload.get({field})\n"
        "if value is not None:\n    err = str(value)\n"
        "elif err is None:\n    err = str({default})"
    ),
    "advance_updated_at": (
        "if upd_dt is None or ev.created_dt > upd_dt:\n    upd = ev.created_at\n    upd_dt = ev.created_dt"
    ),
    "record_provider": "prov = ev.provider",
}
