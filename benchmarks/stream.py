"""A seeded stream of provider runtime events (wire dicts), for benchmarks and their tests.

Each session follows a plausible history of its own (started, turns that start and end in every
way, state changes, errors, exits and resumes, many `item.*`/`content.delta` events that the
lifecycle ignores); histories are interleaved across sessions, with bursts from recently active
sessions. On top of that, on purpose:
- about 5% of events are redeliveries of an earlier event (same eventId): duplicates;
- late events for turns that already finished, turn completions that arrive before their start,
  events for another turn, turn events on stopped sessions: rejections;
- late events carry an older `createdAt`, so `updatedAt` must not move backwards.

Deterministic for a given (events, sessions, seed): only `random.Random(seed)` decides.
No dependency on the `statemachine` package.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["IGNORED_TYPES", "LIFECYCLE_TYPES", "generate_stream", "session_subset"]

LIFECYCLE_TYPES = (
    "session.started",
    "thread.started",
    "session.state.changed",
    "session.exited",
    "turn.started",
    "turn.completed",
    "turn.aborted",
    "runtime.error",
)
IGNORED_TYPES = (
    "item.started",
    "item.updated",
    "item.completed",
    "content.delta",
    "runtime.warning",
    "session.configured",
    "thread.state.changed",
)
_BASE = datetime(2026, 11, 20, tzinfo=UTC)
_DAY_MS = 86_400_000


class _Timestamps:
    """ISO 8601 strings for milliseconds since the start of the day (cached per second)."""

    def __init__(self) -> None:
        self._seconds: dict[int, str] = {}

    def __call__(self, ms: int) -> str:
        ms = max(0, ms)
        second, milli = divmod(ms, 1000)
        prefix = self._seconds.get(second)
        if prefix is None:
            prefix = (_BASE + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S")
            self._seconds[second] = prefix
        return f"{prefix}.{milli:03d}Z"


class _Script:
    """What the generator believes about one session; only roughly what the projector holds."""

    __slots__ = ("finished", "index", "pending_start", "provider", "started", "stopped", "thread_id", "turn", "turns")

    def __init__(self, index: int, thread_id: str, provider: str) -> None:
        self.index = index
        self.thread_id = thread_id
        self.provider = provider
        self.started = False
        self.stopped = False
        self.turn: str | None = None
        self.turns = 0
        self.finished: list[str] = []
        self.pending_start: str | None = None  # a turn whose start arrives after its completion


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _ignored(rng: random.Random, turn: str | None) -> tuple[str, str | None, dict[str, Any]]:
    r = rng.random()
    if r < 0.30:
        return "content.delta", turn, {"streamKind": "assistant_text", "delta": "ok"}
    if r < 0.55:
        return "item.started", turn, {"itemType": "command_execution", "status": "inProgress"}
    if r < 0.75:
        return "item.completed", turn, {"itemType": "command_execution", "status": "completed"}
    if r < 0.85:
        return "item.updated", turn, {"itemType": "file_change"}
    if r < 0.95:
        return "runtime.warning", turn, {"message": "rate limit approaching"}
    if r < 0.98:
        return "session.configured", None, {"config": {"model": "gpt-5-codex"}}
    return "thread.state.changed", None, {"state": "active"}


def _turn_completed_state(rng: random.Random) -> dict[str, Any]:
    r = rng.random()
    if r < 0.55:
        return {"state": "completed"}
    if r < 0.62:
        return {}  # no state: counts as completed
    if r < 0.72:
        return {"state": "failed", "errorMessage": "tests failed"}
    if r < 0.76:
        return {"state": "failed"}  # keeps the previous error, else "Turn failed"
    if r < 0.88:
        return {"state": "interrupted"}
    return {"state": "cancelled"}


def _next_event(rng: random.Random, s: _Script) -> tuple[str, str | None, dict[str, Any], bool]:
    """The next event of one session: (type, turnId, payload, late). Updates the script."""
    if not s.started:
        s.started = True
        s.stopped = False
        return "session.started", None, {"message": "Connected", "resume": None}, False
    if s.pending_start is not None:
        turn, s.pending_start = s.pending_start, None
        return "turn.started", turn, {"model": "gpt-5-codex"}, True  # after its own completion
    r = rng.random()
    if s.stopped:
        if r < 0.55:
            s.stopped = False
            return ("session.started" if r < 0.35 else "thread.started"), None, {}, False
        if r < 0.75:
            return (*_ignored(rng, None), False)
        if r < 0.85:
            turn = f"turn-{s.index}-{s.turns + 1}"  # a turn on a stopped session: rejected
            return "turn.started", turn, {}, False
        if r < 0.92:
            return "runtime.error", None, {"message": "transport closed"}, False
        s.stopped = False
        return "session.state.changed", None, {"state": "starting"}, False
    if s.turn is not None:
        turn = s.turn
        if r < 0.50:
            return (*_ignored(rng, turn), False)
        if r < 0.72:
            s.turn = None
            s.finished.append(turn)
            return "turn.completed", turn, _turn_completed_state(rng), False
        if r < 0.75:
            s.turn = None
            s.finished.append(turn)
            return "turn.aborted", (turn if r < 0.74 else None), {"reason": "user stop"}, False
        if r < 0.77:
            s.turn = None
            s.finished.append(turn)
            return "runtime.error", (turn if r < 0.76 else None), {"message": "model overloaded"}, False
        if r < 0.80:
            state = "waiting" if r < 0.785 else "running"
            return "session.state.changed", None, {"state": state}, False
        if r < 0.81:
            s.turn = None
            s.finished.append(turn)
            return "session.state.changed", None, {"state": "ready"}, False
        if r < 0.84:
            other = f"turn-{s.index}-x{rng.randrange(1000)}"  # another turn: rejected
            kind = "turn.completed" if r < 0.825 else "turn.started"
            return kind, other, ({"state": "completed"} if kind == "turn.completed" else {}), False
        if r < 0.86:
            return "turn.completed", None, {"state": "completed"}, False  # untargeted: rejected
        if r < 0.87:
            return "turn.started", None, {}, False  # untargeted while active: rejected
        if r < 0.90:
            return "session.started", None, {}, False  # keeps the turn
        if r < 0.91:
            return "thread.started", None, {"providerThreadId": "prov-1"}, False
        if r < 0.915:
            s.turn = None
            s.finished.append(turn)
            s.stopped = True
            return "session.exited", None, {"reason": "process exited", "exitKind": "error"}, False
        if r < 0.92:
            return "session.state.changed", None, {"state": "starting"}, False
        return (*_ignored(rng, turn), False)
    # No turn active.
    if r < 0.38:
        s.turns += 1
        turn = f"turn-{s.index}-{s.turns}"
        if rng.random() < 0.04:
            s.finished.append(turn)  # completion overtakes its start; the start comes next
            s.pending_start = turn
            return "turn.completed", turn, {"state": "completed"}, False
        s.turn = turn
        return "turn.started", turn, {"model": "gpt-5-codex", "effort": "medium"}, False
    if r < 0.55:
        return (*_ignored(rng, None), False)
    if r < 0.63 and s.finished:
        old = s.finished[-1 - min(len(s.finished) - 1, int(rng.expovariate(0.5)))]
        kind = ("turn.completed", "turn.started", "turn.aborted", "runtime.error")[rng.randrange(4)]
        payload: dict[str, Any] = {
            "turn.completed": {"state": "completed"},
            "turn.started": {},
            "turn.aborted": {"reason": "late abort"},
            "runtime.error": {"message": "late failure"},
        }[kind]
        return kind, old, payload, True
    if r < 0.70:
        states = ("starting", "ready", "running", "waiting", "stopped", "error")
        state = states[rng.randrange(len(states))]
        payload = {"state": state}
        if state == "error" and rng.random() < 0.6:
            payload["reason"] = "provider crashed"
        if state == "stopped":
            s.stopped = True
        return "session.state.changed", None, payload, False
    if r < 0.74:
        return "session.started", None, {"resume": True}, False
    if r < 0.78:
        return "thread.started", None, {"providerThreadId": "prov-1"}, False
    if r < 0.80:
        return "runtime.error", None, {"message": "auth expired", "class": "provider_error"}, False
    if r < 0.82:
        s.stopped = True
        return "session.exited", None, {"reason": "idle", "exitKind": "graceful"}, False
    if r < 0.84:
        return "turn.completed", None, {}, False  # untargeted with no turn: rejected
    if r < 0.86:
        return "turn.aborted", None, {"reason": "nothing to abort"}, False  # rejected
    if r < 0.88:
        return "turn.started", None, {}, False  # untargeted, no turn active: applied
    return (*_ignored(rng, None), False)


def generate_stream(events: int, sessions: int, seed: int = 1) -> list[dict[str, Any]]:
    """`events` wire dicts over `sessions` threads, spread over one day of createdAt values."""
    if events < 1 or sessions < 1:
        raise ValueError("events and sessions must be at least 1")
    rng = random.Random(seed)
    stamp = _Timestamps()
    scripts: list[_Script] = []
    for i in range(sessions):
        provider = "codex" if rng.random() < 0.8 else "claudeAgent"
        scripts.append(_Script(i, f"thread-{_uuid(rng)}", provider))
    out: list[dict[str, Any]] = []
    recent: list[int] = []  # recently active sessions: events come in bursts
    step_ms = _DAY_MS / events
    while len(out) < events:
        now = int(len(out) * step_ms)
        if out and rng.random() < 0.05:
            # Redelivery: mostly recent, sometimes much older (beyond the de-dup memory).
            # (randrange may give 0, which would point past the end: it stands for the oldest.)
            back = 1 + int(rng.expovariate(1 / 50)) if rng.random() < 0.9 else rng.randrange(len(out)) or len(out)
            out.append(dict(out[max(0, len(out) - back)]))
            continue
        if recent and rng.random() < 0.5:
            index = recent[rng.randrange(len(recent))]
        else:
            index = rng.randrange(sessions)
            recent.append(index)
            if len(recent) > 8:
                del recent[0]
        s = scripts[index]
        type_, turn, payload, late = _next_event(rng, s)
        at = now - (rng.randrange(1, 120_000) if late else 0)
        event: dict[str, Any] = {
            "eventId": _uuid(rng),
            "type": type_,
            "provider": s.provider,
            "threadId": s.thread_id,
            "createdAt": stamp(at),
        }
        if turn is not None:
            event["turnId"] = turn
        event["payload"] = payload
        out.append(event)
    return out


def session_subset(stream: list[dict[str, Any]], every: int) -> list[dict[str, Any]]:
    """All events of one session in `every` (by first appearance), in stream order.

    Keeps the events-per-session ratio of the full stream, so per-event rates measured on the
    subset still include a fair share of per-session set-up costs.
    """
    order: dict[str, int] = {}
    for e in stream:
        order.setdefault(e["threadId"], len(order))
    return [e for e in stream if order[e["threadId"]] % every == 0]
