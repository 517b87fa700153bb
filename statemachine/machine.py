"""One shared `transitions` Machine built from the spec; it steps any number of sessions.

Why one machine and a scratch model per step: `Machine.add_model` is linear in the number of
models (quadratic overall) and a Machine per session costs far more to build. `transitions` can
trigger an event on a model it has never registered, so each step loads the session into a fresh
`Cursor`, triggers, and reads the cursor back. The machine itself holds no session state, which
also makes it safe to share across threads.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from functools import cache
from typing import Any, NamedTuple, cast

from transitions import EventData, Machine

from .events import Event
from .semantics import EFFECTS, GUARDS, Cursor, EffectFn, GuardFn
from .session import Session
from .spec import EffectRef, Spec, TransitionSpec

__all__ = ["LifecycleMachine", "Step", "build_transitions_machine", "machine_for"]

Callback = Callable[[EventData], Any]


class Step(NamedTuple):
    """The machine's answer for one lifecycle event on one session."""

    applied: bool
    after: Session
    reason: str | None = None  # a named reason when not applied
    finished: tuple[str, ...] = ()  # turns to remember as finished (applied steps only)
    transition: int | None = None  # index of the spec transition taken


def _effect_callback(ref: EffectRef, effects: Mapping[str, EffectFn] = EFFECTS) -> Callback:
    fn, params = effects[ref.name], ref.param_map

    def run(event_data: EventData) -> None:
        fn(cast(Cursor, event_data.model), params)

    run.__name__ = run.__qualname__ = ref.label()  # what the diagram extension prints
    return run


def _guard_callback(spec: Spec, name: str, position: int, guards: Mapping[str, GuardFn] = GUARDS) -> Callback:
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
    guards: Mapping[str, GuardFn] = GUARDS,
    effects: Mapping[str, EffectFn] = EFFECTS,
    **options: Any,
) -> Machine:
    """The spec as a `transitions` machine with no models (diagrams pass GraphMachine here).

    `guards`/`effects` replace the meaning of the names; the compiled engine uses this to probe
    the machine. The wiring (which name runs where, in which order) always comes from the spec.
    """
    states = [
        {"name": s.name, "on_enter": [_effect_callback(e, effects) for e in s.on_enter]} for s in spec.statuses
    ]
    machine = machine_class(
        model=None,
        states=states,
        initial=spec.initial,
        auto_transitions=False,
        ignore_invalid_triggers=True,
        send_event=True,
        model_attribute="status",
        after_state_change=[_effect_callback(e, effects) for e in spec.on_applied],
        **options,
    )
    for t in spec.transitions:
        machine.add_transition(**_transition_kwargs(spec, t, guards, effects))
    return machine


class LifecycleMachine:
    """Steps sessions through the spec's machine. Holds no session state; share freely."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.machine = build_transitions_machine(spec)
        self._events: Mapping[str, Any] = self.machine.events

    def step(self, session: Session, finished: Container[str], event: Event) -> Step:
        """Apply one lifecycle event (`event.trigger` set) to `session`. Never mutates inputs."""
        assert event.trigger is not None, "only lifecycle events reach the machine"
        trigger = self._events.get(event.trigger)
        # Check the source first: transitions would log a warning for each invalid trigger, and
        # a rejected event is an ordinary outcome here, not something for the host's logs.
        if trigger is None or session.status not in trigger.transitions:
            return Step(False, session, f"invalid_in_{session.status}")
        cursor = Cursor.load(session, finished, event)
        if not trigger.trigger(cursor):
            return Step(False, session, cursor.reason or f"invalid_in_{session.status}")
        return Step(True, cursor.session_after(session), None, tuple(cursor.newly_finished), cursor.taken)


@cache
def machine_for(spec: Spec) -> LifecycleMachine:
    """One machine per spec per process."""
    return LifecycleMachine(spec)
