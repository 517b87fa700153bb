"""Contender (c): `transitions` used the way its README shows, one Machine per session.

Each session is a model object with its own `transitions.Machine`, built on the session's first
event from the lifecycle's states and transitions written as plain lists, with guards and effects
named by string (`conditions=["targeted", ...]`, `after=["set_turn"]`, `on_enter=["clear_turn"]`)
and resolved by `transitions` on the model. An event is applied by calling the trigger method
`transitions` attached to the model; a trigger with no transition from the current state raises
`MachineError` (the library's default), which counts as a rejection. De-duplication and the
finished-turn memory are the same bounded FIFO dicts as everywhere else.

Imports nothing from the `statemachine` package; `benchmarks/run.py` checks it agrees with the
package (outcome kinds and final sessions) on the events it is timed on. Rejection reasons are
not computed: typical user code gets only True/False (or an exception) from a trigger.
"""

from __future__ import annotations

from typing import Any

from bookkeeping import fallback, remember
from handwritten import APPLIED, DUPLICATE, IGNORED, Ev
from transitions import Machine, MachineError

__all__ = ["REJECTED", "NaiveProjector"]

REJECTED = "rejected"

_NOT_STOPPED = ["idle", "starting", "running", "ready", "interrupted", "error"]
_STATES: list[dict[str, Any]] = [
    {"name": "idle", "on_enter": ["clear_turn"]},
    {"name": "starting"},
    {"name": "running"},
    {"name": "ready", "on_enter": ["clear_turn"]},
    {"name": "interrupted", "on_enter": ["clear_turn"]},
    {"name": "stopped", "on_enter": ["clear_turn"]},
    {"name": "error", "on_enter": ["clear_turn"]},
]
_TURN_GUARDS = ["targeted", "turn_not_finished", "turn_matches"]
_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "session_started", "source": ["starting", "running"], "dest": "running",
     "conditions": ["has_active_turn"]},
    {"trigger": "session_started", "source": "*", "dest": "ready", "conditions": ["no_active_turn"],
     "after": ["clear_error"]},
    {"trigger": "thread_started", "source": ["starting", "running"], "dest": "running",
     "conditions": ["has_active_turn"]},
    {"trigger": "thread_started", "source": "*", "dest": "ready", "conditions": ["no_active_turn"],
     "after": ["clear_error"]},
    {"trigger": "state_starting", "source": "*", "dest": "starting"},
    {"trigger": "state_running", "source": "*", "dest": "running"},
    {"trigger": "state_waiting", "source": "*", "dest": "running"},
    {"trigger": "state_ready", "source": "*", "dest": "ready", "after": ["clear_error"]},
    {"trigger": "state_stopped", "source": "*", "dest": "stopped"},
    {"trigger": "state_error", "source": "*", "dest": "error", "after": ["set_provider_error"]},
    {"trigger": "session_exited", "source": "*", "dest": "stopped"},
    {"trigger": "turn_started", "source": _NOT_STOPPED, "dest": "running", "conditions": _TURN_GUARDS,
     "after": ["set_turn"]},
    {"trigger": "turn_started", "source": _NOT_STOPPED, "dest": "running",
     "conditions": ["untargeted", "no_active_turn"]},
    {"trigger": "turn_completed", "source": _NOT_STOPPED, "dest": "ready", "conditions": _TURN_GUARDS,
     "after": ["remember_event_turn", "clear_error"]},
    {"trigger": "turn_failed", "source": _NOT_STOPPED, "dest": "error", "conditions": _TURN_GUARDS,
     "after": ["remember_event_turn", "set_turn_error"]},
    {"trigger": "turn_interrupted", "source": _NOT_STOPPED, "dest": "interrupted", "conditions": _TURN_GUARDS,
     "after": ["remember_event_turn", "clear_error"]},
    {"trigger": "turn_cancelled", "source": _NOT_STOPPED, "dest": "interrupted", "conditions": _TURN_GUARDS,
     "after": ["remember_event_turn", "clear_error"]},
    {"trigger": "turn_aborted", "source": ["starting", "running"], "dest": "interrupted",
     "conditions": ["has_active_turn", "turn_matches"], "after": ["clear_error"]},
    {"trigger": "runtime_error", "source": _NOT_STOPPED, "dest": "error",
     "conditions": ["turn_matches", "turn_not_finished"], "after": ["remember_event_turn", "set_runtime_error"]},
]
# The package's trigger names (type[variant]) -> this machine's trigger methods.
TRIGGERS = {
    "session.started": "session_started",
    "thread.started": "thread_started",
    "session.state.changed[starting]": "state_starting",
    "session.state.changed[running]": "state_running",
    "session.state.changed[waiting]": "state_waiting",
    "session.state.changed[ready]": "state_ready",
    "session.state.changed[stopped]": "state_stopped",
    "session.state.changed[error]": "state_error",
    "session.exited": "session_exited",
    "turn.started": "turn_started",
    "turn.completed[completed]": "turn_completed",
    "turn.completed[failed]": "turn_failed",
    "turn.completed[interrupted]": "turn_interrupted",
    "turn.completed[cancelled]": "turn_cancelled",
    "turn.aborted": "turn_aborted",
    "runtime.error": "runtime_error",
}


def make_machine(model: Any) -> Machine:
    """The lifecycle as a `transitions` Machine; `model=None` gives one that models are added to."""
    return Machine(
        model=model,
        states=_STATES,
        transitions=_TRANSITIONS,
        initial="idle",
        auto_transitions=False,
        after_state_change=["advance_updated_at", "record_provider"],
    )


class NaiveSession:
    """The model: session fields, bounded memories, and the guard/effect methods by name."""

    state: str

    def __init__(self, thread_id: str, provider: str, max_event_ids: int, max_finished_turns: int,
                 shared: Machine | None = None) -> None:
        self.thread_id = thread_id
        self.provider = provider
        self.turn: str | None = None
        self.error: str | None = None
        self.updated_at: str | None = None
        self.updated_dt: Any = None
        self.seen: dict[str, None] = {}
        self.finished: dict[str, None] = {}
        self.max_event_ids = max_event_ids
        self.max_finished_turns = max_finished_turns
        if shared is not None:
            shared.add_model(self)  # the library's idiom for many objects: one Machine, many models
            self.machine = shared
        else:
            self.machine = make_machine(self)

    def _finish(self, turn: str) -> None:
        remember(self.finished, turn, self.max_finished_turns)

    # guards
    def has_active_turn(self, ev: Ev) -> bool:
        return self.turn is not None

    def no_active_turn(self, ev: Ev) -> bool:
        return self.turn is None

    def targeted(self, ev: Ev) -> bool:
        return ev[4] is not None

    def untargeted(self, ev: Ev) -> bool:
        return ev[4] is None

    def turn_matches(self, ev: Ev) -> bool:
        return ev[4] is None or self.turn is None or ev[4] == self.turn

    def turn_not_finished(self, ev: Ev) -> bool:
        return ev[4] is None or ev[4] not in self.finished

    # effects
    def clear_turn(self, ev: Ev) -> None:
        if self.turn is not None:
            self._finish(self.turn)
            self.turn = None

    def set_turn(self, ev: Ev) -> None:
        self.turn = ev[4]

    def remember_event_turn(self, ev: Ev) -> None:
        if ev[4] is not None:
            self._finish(ev[4])

    def clear_error(self, ev: Ev) -> None:
        self.error = None

    def _set_error(self, value: Any, default: str) -> None:
        self.error = fallback(value, self.error, default)

    def set_provider_error(self, ev: Ev) -> None:
        self._set_error(ev[7].get("reason"), "Provider session error")

    def set_turn_error(self, ev: Ev) -> None:
        self._set_error(ev[7].get("errorMessage"), "Turn failed")

    def set_runtime_error(self, ev: Ev) -> None:
        self._set_error(ev[7].get("message"), "Runtime error")

    def advance_updated_at(self, ev: Ev) -> None:
        if self.updated_dt is None or ev[6] > self.updated_dt:
            self.updated_at, self.updated_dt = ev[5], ev[6]

    def record_provider(self, ev: Ev) -> None:
        self.provider = ev[2]

    def wire(self) -> dict[str, Any]:
        return {
            "threadId": self.thread_id,
            "status": self.state,
            "providerName": self.provider,
            "activeTurnId": self.turn,
            "lastError": self.error,
            "updatedAt": self.updated_at,
            # The stream carries no commands or provider requests: nothing is ever pending or awaited.
            "pendingTurn": None,
            "awaiting": None,
            "openRequests": [],
        }


class NaiveProjector:
    """`shared=True`: one Machine for every session (`add_model`, the documented idiom);
    `shared=False`: a Machine per session."""

    def __init__(self, max_event_ids: int = 1024, max_finished_turns: int = 256, *, shared: bool = True) -> None:
        self.records: dict[str, NaiveSession] = {}
        self.shared = make_machine(None) if shared else None
        self.max_event_ids = max_event_ids
        self.max_finished_turns = max_finished_turns

    def apply(self, ev: Ev) -> str:
        session = self.records.get(ev[1])
        if session is None:
            session = NaiveSession(ev[1], ev[2], self.max_event_ids, self.max_finished_turns, self.shared)
            self.records[ev[1]] = session
        if ev[0] in session.seen:
            return DUPLICATE
        remember(session.seen, ev[0], self.max_event_ids)
        if ev[3] is None:
            return IGNORED
        try:
            applied = getattr(session, TRIGGERS[ev[3]])(ev)
        except MachineError:
            return REJECTED
        return APPLIED if applied else REJECTED
