"""Static rules over the spec's tables: the invariants' structural preconditions.

- S1 every transition into a status that may not hold a turn runs the clearing hook on entry;
- S2 no effect sets a turn after that hook (transition effects and on_applied run after on-enter);
- S3 an internal transition (no on-enter) from a status that may not hold a turn sets no turn;
- S4 every effect that sets a turn is guarded against turns that already finished.
Cheap and exact, but only as good as the classification of names in `semantics`; the explorer,
the induction and spin check behaviour, not structure.
"""

from __future__ import annotations

import time

from ..semantics import CLEARS_TURN, GUARDS_UNFINISHED_TURN, SETS_TURN
from ..spec import EffectRef, Spec
from .report import CheckResult

__all__ = ["static_check"]


def _sets(effects: tuple[EffectRef, ...]) -> bool:
    return any(e.name in SETS_TURN for e in effects)


def _clears_last(effects: tuple[EffectRef, ...]) -> bool:
    """Some effect clears the turn and none sets it afterwards."""
    state = False
    for e in effects:
        if e.name in CLEARS_TURN:
            state = True
        elif e.name in SETS_TURN:
            state = False
    return state


def static_check(spec: Spec) -> CheckResult:
    started = time.perf_counter()
    problems: list[tuple[str, str]] = []
    for i, status in enumerate(spec.statuses):
        if not status.holds_turn and not _clears_last(status.on_enter):
            problems.append(("S1", f"statuses[{i}] {status.name}: on_enter does not end by clearing the turn"))
    if _sets(spec.on_applied):
        problems.append(("S2", "on_applied sets a turn after every on-enter hook"))
    for t in spec.transitions:
        where = f"transitions[{t.index}] {t.trigger}"
        if t.dest is not None and not spec.status(t.dest).holds_turn:
            if not _clears_last(spec.status(t.dest).on_enter):
                problems.append(("S1", f"{where} -> {t.dest}: entering {t.dest} does not clear the turn"))
            if _sets(t.effects):
                problems.append(("S2", f"{where} -> {t.dest}: an effect sets a turn after the clearing hook"))
        if t.dest is None and _sets(t.effects):
            inactive = [s for s in t.sources if not spec.status(s).holds_turn]
            if inactive:
                problems.append(("S3", f"{where}: internal transition sets a turn in {inactive}"))
        if _sets(t.effects) and not GUARDS_UNFINISHED_TURN.intersection(t.guards):
            problems.append(("S4", f"{where}: sets a turn without a guard against finished turns"))
    checked = len(spec.statuses) + len(spec.transitions)
    seconds = time.perf_counter() - started
    covered = {"statuses": len(spec.statuses), "transitions": len(spec.transitions)}
    if problems:
        rules = tuple(sorted({rule for rule, _ in problems}))
        return CheckResult("static", False, seconds, covered, "; ".join(p for _, p in problems), rules)
    return CheckResult("static", True, seconds, covered, f"S1-S4 hold over {checked} statuses and transitions")
