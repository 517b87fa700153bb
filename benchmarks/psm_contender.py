"""Contender (d): the lifecycle in python-statemachine, one StateMachine instance per session.

Runs only in its own virtual environment (python-statemachine installs the import name
`statemachine`, like this package): `benchmarks/run.py` starts it as a subprocess with
`--events FILE` (wire events, one JSON object per line) and reads one JSON object from stdout.

Per event: the same de-duplication and memories as everywhere else, then `sm.send(<event>,
ev=...)`; guards are `cond=` methods and effects `after=`/`enter=` methods, resolved and called by
the library with its dependency injection. No transition (or every guard failing) raises
`TransitionNotAllowed` (the library's default for `StateMachine`): a rejection. The input is
turned into the same plain tuples as contender (b) before the clock starts.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# In this process `statemachine` is python-statemachine, installed in the venv running it.
from bookkeeping import fallback, remember
from handwritten import APPLIED, DUPLICATE, IGNORED, Ev, from_wire
from statemachine.exceptions import TransitionNotAllowed

from statemachine import State, StateMachine

REJECTED = "rejected"
TURN_GUARDS = ["targeted", "turn_not_finished", "turn_matches"]


def _edges(sources: Any, dest: Any, **options: Any) -> Any:
    """One transition from each source to `dest`, joined in order into one event's list."""
    joined = None
    for source in sources:
        t = source.to(dest, **options)
        joined = t if joined is None else joined | t
    return joined


class Lifecycle(StateMachine):  # type: ignore[misc]
    idle = State(initial=True, enter="clear_turn")
    starting = State()
    running = State()
    ready = State(enter="clear_turn")
    interrupted = State(enter="clear_turn")
    stopped = State(enter="clear_turn")
    error = State(enter="clear_turn")

    _all = (idle, starting, running, ready, interrupted, stopped, error)
    _not_stopped = (idle, starting, running, ready, interrupted, error)

    # Transitions of one event are tried in the order written, as in the spec.
    session_started = _edges((starting, running), running, cond="has_active_turn") | _edges(
        _all, ready, cond="no_active_turn", after="clear_error"
    )
    thread_started = _edges((starting, running), running, cond="has_active_turn") | _edges(
        _all, ready, cond="no_active_turn", after="clear_error"
    )
    state_starting = _edges(_all, starting)
    state_running = _edges(_all, running)
    state_waiting = _edges(_all, running)
    state_ready = _edges(_all, ready, after="clear_error")
    state_stopped = _edges(_all, stopped)
    state_error = _edges(_all, error, after="set_provider_error")
    session_exited = _edges(_all, stopped)
    turn_started = _edges(_not_stopped, running, cond=TURN_GUARDS, after="set_turn") | _edges(
        _not_stopped, running, cond=["untargeted", "no_active_turn"]
    )
    turn_completed = _edges(_not_stopped, ready, cond=TURN_GUARDS, after=["remember_event_turn", "clear_error"])
    turn_failed = _edges(_not_stopped, error, cond=TURN_GUARDS, after=["remember_event_turn", "set_turn_error"])
    turn_interrupted = _edges(
        _not_stopped, interrupted, cond=TURN_GUARDS, after=["remember_event_turn", "clear_error"]
    )
    turn_cancelled = _edges(
        _not_stopped, interrupted, cond=TURN_GUARDS, after=["remember_event_turn", "clear_error"]
    )
    turn_aborted = _edges(
        (starting, running), interrupted, cond=["has_active_turn", "turn_matches"], after="clear_error"
    )
    runtime_error = _edges(
        _not_stopped,
        error,
        cond=["turn_matches", "turn_not_finished"],
        after=["remember_event_turn", "set_runtime_error"],
    )

    def __init__(self, thread_id: str, provider: str, max_finished_turns: int) -> None:
        self.thread_id = thread_id
        self.provider = provider
        self.active_turn: str | None = None
        self.last_error: str | None = None
        self.updated_at: str | None = None
        self.updated_dt: Any = None
        self.seen: dict[str, None] = {}
        self.finished: dict[str, None] = {}
        self.max_finished_turns = max_finished_turns
        super().__init__()

    def _finish(self, turn: str) -> None:
        remember(self.finished, turn, self.max_finished_turns)

    # guards
    def has_active_turn(self) -> bool:
        return self.active_turn is not None

    def no_active_turn(self) -> bool:
        return self.active_turn is None

    def targeted(self, ev: Ev) -> bool:
        return ev[4] is not None

    def untargeted(self, ev: Ev) -> bool:
        return ev[4] is None

    def turn_matches(self, ev: Ev) -> bool:
        return ev[4] is None or self.active_turn is None or ev[4] == self.active_turn

    def turn_not_finished(self, ev: Ev) -> bool:
        return ev[4] is None or ev[4] not in self.finished

    # effects
    def clear_turn(self) -> None:
        if self.active_turn is not None:
            self._finish(self.active_turn)
            self.active_turn = None

    def set_turn(self, ev: Ev) -> None:
        self.active_turn = ev[4]

    def remember_event_turn(self, ev: Ev) -> None:
        if ev[4] is not None:
            self._finish(ev[4])

    def clear_error(self) -> None:
        self.last_error = None

    def _set_error(self, value: Any, default: str) -> None:
        self.last_error = fallback(value, self.last_error, default)

    def set_provider_error(self, ev: Ev) -> None:
        self._set_error(ev[7].get("reason"), "Provider session error")

    def set_turn_error(self, ev: Ev) -> None:
        self._set_error(ev[7].get("errorMessage"), "Turn failed")

    def set_runtime_error(self, ev: Ev) -> None:
        self._set_error(ev[7].get("message"), "Runtime error")

    def after_transition(self, ev: Ev) -> None:
        # The spec's on_applied effects: updatedAt never moves backwards; the event's provider.
        if self.updated_dt is None or ev[6] > self.updated_dt:
            self.updated_at, self.updated_dt = ev[5], ev[6]
        self.provider = ev[2]

    def wire(self) -> dict[str, Any]:
        return {
            "threadId": self.thread_id,
            "status": self.current_state_value,
            "providerName": self.provider,
            "activeTurnId": self.active_turn,
            "lastError": self.last_error,
            "updatedAt": self.updated_at,
            # The stream carries no commands or provider requests: nothing is ever pending or awaited.
            "pendingTurn": None,
            "awaiting": None,
            "openRequests": [],
        }


EVENTS = {
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


class PsmProjector:
    def __init__(self, max_event_ids: int = 1024, max_finished_turns: int = 256) -> None:
        self.records: dict[str, Lifecycle] = {}
        self.max_event_ids = max_event_ids
        self.max_finished_turns = max_finished_turns

    def apply(self, ev: Ev) -> str:
        sm = self.records.get(ev[1])
        if sm is None:
            sm = self.records[ev[1]] = Lifecycle(ev[1], ev[2], self.max_finished_turns)
        if ev[0] in sm.seen:
            return DUPLICATE
        remember(sm.seen, ev[0], self.max_event_ids)
        if ev[3] is None:
            return IGNORED
        try:
            sm.send(EVENTS[ev[3]], ev=ev)
        except TransitionNotAllowed:
            return REJECTED
        return APPLIED


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", required=True, help="JSONL file of wire events")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--results", action="store_true", help="also print outcome kinds and final sessions")
    ap.add_argument("--new-sessions", type=int, default=0,
                    help="instead: time N first events on new threads (sessions created per second)")
    args = ap.parse_args()
    import statemachine as psm  # the installed python-statemachine

    with open(args.events, encoding="utf-8") as f:
        events = [from_wire(json.loads(line)) for line in f if line.strip()]
    gc.collect()
    gc.freeze()  # the input is not the contender's garbage
    report: dict[str, Any] = {"library": f"python-statemachine {psm.__version__}", "events": len(events)}
    if args.new_sessions:
        template = events[0]
        fresh = [(f"{template[0]}-{i}", f"new-{i}", *template[2:]) for i in range(args.new_sessions)]
        times = []
        for _ in range(args.repeats):
            p = PsmProjector()
            t0 = time.perf_counter()
            for ev in fresh:
                p.apply(ev)
            times.append(time.perf_counter() - t0)
        report["new_session_seconds"] = times
        report["new_sessions"] = len(fresh)
    else:
        times = []
        outcomes: list[str] = []
        for _ in range(args.repeats):
            p = PsmProjector()
            apply = p.apply
            t0 = time.perf_counter()
            for ev in events:
                apply(ev)
            times.append(time.perf_counter() - t0)
        report["seconds"] = times
        if args.results:
            p = PsmProjector()
            outcomes = [p.apply(ev) for ev in events]
            report["outcomes"] = outcomes
            report["sessions"] = {k: sm.wire() for k, sm in p.records.items()}
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
