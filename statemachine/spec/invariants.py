"""The invariant kinds the spec may name, and how to check them.

State invariants look at one session (and its remembered turns); step invariants look at one
outcome. Every checker (explorer, induction, Hypothesis, the stress tests) calls these.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from datetime import datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from statemachine.core.event import parse_timestamp
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.core.session import Session

if TYPE_CHECKING:
    from statemachine.spec.model import Spec

__all__ = ["INVARIANT_KINDS", "STATE_INVARIANTS", "STEP_INVARIANTS", "state_violations",
           "step_violations"]

StateCheck = Callable[["Spec", Session, Container[str]], bool]
StepCheck = Callable[["Spec", Outcome], bool]


def _no_turn_unless_holds_turn(spec: Spec, s: Session, _: Container[str]) -> bool:
    return s.active_turn_id is None or spec.status(s.status).holds_turn


def _active_turn_not_remembered(_: Spec, s: Session, finished: Container[str]) -> bool:
    return s.active_turn_id is None or s.active_turn_id not in finished


@lru_cache(maxsize=4096)
def _instant(value: str) -> datetime:
    # The checkers compare the same few timestamps on every step of a walk.
    return parse_timestamp(value)


def _updated_at_monotonic(_: Spec, o: Outcome) -> bool:
    before, after = o.before.updated_at, o.after.updated_at
    if o.kind is OutcomeKind.FORGOTTEN:
        return True  # the thread is gone; a new one starts its own clock
    if before is None or before == after:
        return True
    return after is not None and _instant(after) >= _instant(before)


def _unapplied_is_noop(_: Spec, o: Outcome) -> bool:
    return o.kind in (OutcomeKind.APPLIED, OutcomeKind.FORGOTTEN) or o.before == o.after


STATE_INVARIANTS: Mapping[str, StateCheck] = {
    "no_turn_unless_holds_turn": _no_turn_unless_holds_turn,
    "active_turn_not_remembered": _active_turn_not_remembered,
}
STEP_INVARIANTS: Mapping[str, StepCheck] = {
    "updated_at_monotonic": _updated_at_monotonic,
    "unapplied_is_noop": _unapplied_is_noop,
}
INVARIANT_KINDS = frozenset(STATE_INVARIANTS) | frozenset(STEP_INVARIANTS)


@cache
def _checks(spec: Spec) -> tuple[tuple[tuple[str, StateCheck], ...], tuple[tuple[str, StepCheck], ...]]:
    # Looked up once per spec: the checkers call these on every step of every walk.
    state = tuple((inv.name, STATE_INVARIANTS[inv.kind]) for inv in spec.invariants if inv.kind in STATE_INVARIANTS)
    step = tuple((inv.name, STEP_INVARIANTS[inv.kind]) for inv in spec.invariants if inv.kind in STEP_INVARIANTS)
    return state, step


def state_violations(spec: Spec, session: Session, finished: Container[str]) -> list[str]:
    """Names of the spec's state invariants that `session` breaks."""
    return [name for name, check in _checks(spec)[0] if not check(spec, session, finished)]


def step_violations(spec: Spec, outcome: Outcome) -> list[str]:
    """Names of the spec's step invariants that `outcome` breaks."""
    return [name for name, check in _checks(spec)[1] if not check(spec, outcome)]
