"""One shared `transitions` Machine built from the spec; it steps any number of sessions.

Why one machine and a scratch model per step: `Machine.add_model` is linear in the number of
models (quadratic overall) and a Machine per session costs far more to build. `transitions` can
trigger an event on a model it has never registered, so each step loads the session into a fresh
`Cursor`, triggers, and reads the cursor back. The machine itself holds no session state, which
also makes it safe to share across threads.

`LifecycleMachine` is also the reference engine (`SessionProjector(engine="transitions")`).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from datetime import datetime
from typing import Any, NamedTuple, cast

from transitions import EventData, Machine

from statemachine.core.event import Event, parse_timestamp
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.core.record import ThreadRecord
from statemachine.core.session import Session
from statemachine.engine.boundary import StepFn
from statemachine.spec.cache import SpecCache
from statemachine.spec.model import EffectRef, Spec, TransitionSpec, no_transition_reason
from statemachine.spec.semantics import VOCABULARY, Cursor, EffectFn, GuardFn, Vocabulary

__all__ = ["LifecycleMachine", "Step", "build_transitions_machine", "machine_for", "vocabulary_of"]

Callback = Callable[[EventData], Any]


def vocabulary_of(spec: Spec) -> Vocabulary:
    """The vocabulary `spec` was checked against."""
    vocabulary: Vocabulary = spec.vocabulary if spec.vocabulary is not None else VOCABULARY
    return vocabulary


class Step(NamedTuple):
    """The machine's answer for one lifecycle event on one session."""

    applied: bool
    after: Session
    reason: str | None = None  # a named reason when not applied
    finished: tuple[str, ...] = ()  # turns to remember as finished (applied steps only)
    transition: int | None = None  # index of the spec transition taken


def _effect_callback(ref: EffectRef, effects: Mapping[str, EffectFn]) -> Callback:
    fn, params = effects[ref.name], ref.param_map

    def run(event_data: EventData) -> None:
        fn(cast(Cursor, event_data.model), params)

    run.__name__ = run.__qualname__ = ref.label()  # what the diagram extension prints
    return run


def _guard_callback(spec: Spec, name: str, position: int, guards: Mapping[str, GuardFn]) -> Callback:
    fn, rejects_as = guards[name], spec.guards[name].rejects_as

    def check(event_data: EventData) -> bool:
        cursor = cast(Cursor, event_data.model)
        if fn(cursor):
            return True
        # Name the rejection after the guard that failed furthest along a candidate transition.
        if position > cursor.depth:
            cursor.depth, cursor.reason = position, rejects_as
        return False

    check.__name__ = check.__qualname__ = name
    return check


def _mark_taken(index: int) -> Callback:
    def mark(event_data: EventData) -> None:
        cast(Cursor, event_data.model).taken = index

    mark.__name__ = mark.__qualname__ = f"transition_{index}"
    return mark


def _transition_kwargs(
    spec: Spec, t: TransitionSpec, guards: Mapping[str, GuardFn], effects: Mapping[str, EffectFn]
) -> dict[str, Any]:
    return {
        "trigger": t.trigger,
        "source": list(t.sources),
        "dest": t.dest,  # None: an internal transition, no exit and no on-enter
        "conditions": [_guard_callback(spec, g, i, guards) for i, g in enumerate(t.guards)],
        "before": [_mark_taken(t.index)],  # runs once the guards passed
        "after": [_effect_callback(e, effects) for e in t.effects],
    }


def build_transitions_machine(
    spec: Spec,
    machine_class: type[Machine] = Machine,
    *,
    guards: Mapping[str, GuardFn] | None = None,
    effects: Mapping[str, EffectFn] | None = None,
    **options: Any,
) -> Machine:
    """The spec as a `transitions` machine with no models (diagrams pass GraphMachine here).

    `guards`/`effects` replace the meaning of the names (default: the spec's vocabulary); the
    compiled engine uses this to probe the machine. The wiring (which name runs where, in which
    order) always comes from the spec.
    """
    vocabulary = vocabulary_of(spec)
    guard_fns = guards if guards is not None else {n: g.fn for n, g in vocabulary.guards.items()}
    effect_fns = effects if effects is not None else {n: e.fn for n, e in vocabulary.effects.items()}
    states = [
        {"name": s.name, "on_enter": [_effect_callback(e, effect_fns) for e in s.on_enter]} for s in spec.statuses
    ]
    machine = machine_class(
        model=None,
        states=states,
        initial=spec.initial,
        auto_transitions=False,
        ignore_invalid_triggers=True,
        send_event=True,
        model_attribute="status",
        after_state_change=[_effect_callback(e, effect_fns) for e in spec.on_applied],
        **options,
    )
    for t in spec.transitions:
        machine.add_transition(**_transition_kwargs(spec, t, guard_fns, effect_fns))
    return machine


class LifecycleMachine:
    """Steps sessions through the spec's machine. Holds no session state; share freely.

    The reference engine: its `dispatch` sends every (status, trigger) to `step_record`.
    """

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.machine = build_transitions_machine(spec)
        self._events: Mapping[str, Any] = self.machine.events
        step: StepFn = self.step_record
        self.dispatch: Mapping[str, Mapping[str, StepFn]] = {
            status: dict.fromkeys(spec.triggers, step) for status in spec.status_names
        }

    def _run(self, session: Session, updated_dt: datetime | None, finished: Container[str],
             event: Event) -> Cursor | str:
        """The cursor after an applied step, or the rejection reason."""
        assert event.trigger is not None, "only lifecycle events reach the machine"
        trigger = self._events.get(event.trigger)
        # Check the source first: transitions would log a warning for each invalid trigger, and
        # a rejected event is an ordinary outcome here, not something for the host's logs.
        if trigger is None or session.status not in trigger.transitions:
            return no_transition_reason(session.status)
        cursor = Cursor(session, updated_dt, finished, event)
        if not trigger.trigger(cursor):
            return cursor.reason or no_transition_reason(session.status)
        return cursor

    def step(self, session: Session, finished: Container[str], event: Event) -> Step:
        """Apply one lifecycle event (`event.trigger` set) to `session`. Never mutates inputs."""
        updated_dt = parse_timestamp(session.updated_at) if session.updated_at is not None else None
        result = self._run(session, updated_dt, finished, event)
        if isinstance(result, str):
            return Step(False, session, result)
        return Step(True, result.session_after(session), None, tuple(result.newly_finished), result.taken)

    def step_record(self, record: ThreadRecord, event: Event) -> Outcome:
        """The engine step: like `step`, on a thread's record, committing when applied."""
        before = record.session
        result = self._run(before, record.updated_dt, record.finished, event)
        if isinstance(result, str):
            return Outcome(OutcomeKind.REJECTED, event, before, before, result)
        after = result.session_after(before)
        for turn in result.newly_finished:
            record.remember_turn(turn)
        record.commit(after, result.updated_dt)
        return Outcome(OutcomeKind.APPLIED, event, before, after, None, result.taken)


_MACHINES: SpecCache[LifecycleMachine] = SpecCache(LifecycleMachine)


def machine_for(spec: Spec) -> LifecycleMachine:
    """One machine per spec content per process (a bounded cache)."""
    return _MACHINES.get(spec)
