"""Static rules over the spec's tables: the invariants' structural preconditions.

- S1 every status that may not hold a turn ends its on-enter hook by clearing the turn;
- S2 no effect sets a turn after that hook (transition effects and on_applied run after on-enter);
- S3 an internal transition (no on-enter) from a status that may not hold a turn sets no turn;
- S4 every effect that sets a turn, in a transition or in the on-enter hook of its destination,
  is guarded against turns that already finished.

What "sets" and "clears" mean comes from the vocabulary's declarations: an effect *sets* a turn
when it declares that it writes the `turn` slot and is not of the clearing class, so an effect
cannot escape these rules by a missing class. Cheap and exact, but structural only; the explorer,
the induction and spin check behaviour.
"""

from __future__ import annotations

import time

from statemachine.engine.machine import vocabulary_of
from statemachine.spec.model import EffectRef, Spec
from statemachine.spec.semantics import CLEARS_TURN_CLASS, EXCLUDES_FINISHED, Vocabulary
from statemachine.verify.report import CheckResult

__all__ = ["static_check"]


class _Rules:
    def __init__(self, vocabulary: Vocabulary) -> None:
        self.clears = vocabulary.effects_of_class(CLEARS_TURN_CLASS)
        self.sets_turn = frozenset(n for n, e in vocabulary.effects.items() if "turn" in e.writes) - self.clears
        self.guards_finished = vocabulary.guards_of_class(EXCLUDES_FINISHED)

    def sets(self, effects: tuple[EffectRef, ...]) -> bool:
        return any(e.name in self.sets_turn for e in effects)

    def clears_last(self, effects: tuple[EffectRef, ...]) -> bool:
        """Some effect clears the turn and none sets it afterwards."""
        state = False
        for e in effects:
            if e.name in self.clears:
                state = True
            elif e.name in self.sets_turn:
                state = False
        return state


def static_check(spec: Spec) -> CheckResult:
    started = time.perf_counter()
    rules = _Rules(vocabulary_of(spec))
    problems: list[tuple[str, str]] = []
    for i, status in enumerate(spec.statuses):
        if not status.holds_turn and not rules.clears_last(status.on_enter):
            problems.append(("S1", f"statuses[{i}] {status.name}: on_enter does not end by clearing the turn"))
    if rules.sets(spec.on_applied):
        problems.append(("S2", "on_applied sets a turn after every on-enter hook"))
    for t in spec.transitions:
        where = f"transitions[{t.index}] {t.trigger}"
        entered = spec.status(t.dest) if t.dest is not None else None
        if entered is not None and not entered.holds_turn and rules.sets(t.effects):
            problems.append(("S2", f"{where} -> {t.dest}: an effect sets a turn after the clearing hook"))
        if entered is None and rules.sets(t.effects):
            inactive = [s for s in t.sources if not spec.status(s).holds_turn]
            if inactive:
                problems.append(("S3", f"{where}: internal transition sets a turn in {inactive}"))
        guarded = bool(rules.guards_finished.intersection(t.guards))
        if rules.sets(t.effects) and not guarded:
            problems.append(("S4", f"{where}: sets a turn without a guard against finished turns"))
        if entered is not None and rules.sets(entered.on_enter) and not guarded:
            problems.append(("S4", f"{where} -> {t.dest}: the on_enter hook of {t.dest} sets a turn, "
                                   "and the transition has no guard against finished turns"))
    checked = len(spec.statuses) + len(spec.transitions)
    seconds = time.perf_counter() - started
    covered = {"statuses": len(spec.statuses), "transitions": len(spec.transitions)}
    if problems:
        found = tuple(sorted({rule for rule, _ in problems}))
        return CheckResult("static", False, seconds, covered, "; ".join(p for _, p in problems), found)
    return CheckResult("static", True, seconds, covered, f"S1-S4 hold over {checked} statuses and transitions")
