"""What an orchestrator does around the lifecycle: reap idle sessions, bound stuck turns, reconcile
after a restart.

The functions here decide *policy* (which session is idle enough, which turn is stale, which
session lost its provider). They never write a session: every change is an ordinary wire event
applied through the holder's `apply_all` (a `SessionProjector` or a store: `SessionHolder`), so the
spec's machine decides what it does, observers and logs see it like any other event, and the proofs
that cover `apply` cover these paths too.

Times: `now` and `last_seen` are datetimes; a naive one is taken as UTC. `updatedAt` only moves
on applied lifecycle events, not on the items and deltas a working turn streams; an `ActivityClock`
observer records those too, and its `last_seen` can be passed to the reaper and the stale-turn bound.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection, Container, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from statemachine.core.clock import DEFAULT_MAX_CLOCK_SKEW, Clock, Horizon
from statemachine.core.event import SYNTHETIC_EVENT_PREFIX, parse_timestamp
from statemachine.core.outcome import Outcome
from statemachine.core.session import Session
from statemachine.runtime.holder import SessionHolder
from statemachine.spec.load import builtin_spec
from statemachine.spec.model import Spec

__all__ = [
    "ATTENTION_RECOVERY",
    "DEFAULT_IDLE_THRESHOLD",
    "RESTART_EVENT_PREFIX",
    "RESTART_REASON",
    "STALE_PENDING_REASON",
    "STALE_TURN_EVENT_PREFIX",
    "STALE_TURN_REASON",
    "SYNTHETIC_PROVIDER",
    "ActivityClock",
    "Attention",
    "AttentionReason",
    "AttentionWatch",
    "expire_stale_turns",
    "idle_since",
    "needs_attention",
    "reapable",
    "reapable_sessions",
    "reconcile",
    "stale_turns",
]

DEFAULT_IDLE_THRESHOLD = timedelta(minutes=30)

# Synthetic eventIds live under the parser's reserved prefix: no provider event can take one.
STALE_TURN_EVENT_PREFIX = SYNTHETIC_EVENT_PREFIX + "stale-turn:"
STALE_TURN_REASON = "Turn expired: no event for it within the stale-turn bound"
STALE_PENDING_REASON = "Requested turn did not start within the stale-turn bound"
RESTART_EVENT_PREFIX = SYNTHETIC_EVENT_PREFIX + "restart:"
RESTART_REASON = "Provider session did not survive a server restart"
# The provider named on a synthetic event when the session has never recorded one.
SYNTHETIC_PROVIDER = "session-lifecycle"


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _wire_time(now: datetime) -> str:
    return now.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _updated(session: Session) -> datetime | None:
    return parse_timestamp(session.updated_at) if session.updated_at is not None else None


def _latest(*clocks: datetime | None) -> datetime | None:
    known = [c for c in clocks if c is not None]
    return max(known) if known else None


def _event_id(holder: SessionHolder, prefix: str, *parts: str) -> str:
    """`prefix` + parts joined by ":"; past the parser's id length limit the parts are hashed, so
    the synthetic event is never refused as malformed and stays recognisable by its prefix."""
    event_id = prefix + ":".join(parts)
    if len(event_id) <= holder.parser.max_id_length:
        return event_id
    return prefix + hashlib.sha256(":".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _apply_synthetic(holder: SessionHolder, wires: list[dict[str, Any]]) -> list[Outcome]:
    """Apply a sweep's events. All are built first, through the parser's internal path (the only
    one that accepts the reserved id prefix): one that cannot be built (a seeded session holding
    an id past the parser's limit) raises `EventError` before any of the sweep is applied."""
    events = [holder.parser.parse_synthetic(wire) for wire in wires]
    return holder.apply_all(events)


class ActivityClock:
    """An observer recording, per thread, the latest `createdAt` of any event it was sent, ignored
    ones (items, deltas, warnings) included: `holder.subscribe(clock)`.

    Its `last_seen` is what `stale_turns` and `reapable_sessions` take. It is not part of a
    snapshot: after a restore it starts empty and the operations fall back to `updatedAt`.
    It follows the projector's time rule: a `createdAt` more than `max_clock_skew` ahead of
    `clock()` (default: the wall clock, UTC) is not recorded, so one event dated years ahead cannot
    keep a thread looking busy forever (`None`: no bound).
    """

    def __init__(
        self,
        *,
        max_clock_skew: timedelta | None = DEFAULT_MAX_CLOCK_SKEW,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`monotonic`: the clock idleness is measured on in this process, in seconds. The default,
        `time.monotonic`, does not advance while the host is suspended (Linux `CLOCK_MONOTONIC`,
        macOS `mach_absolute_time`), so a laptop that wakes after a night does not find every
        session a night idle: `idle_for` says how long the orchestrator was *running* without
        news of the thread."""
        self.last_seen: dict[str, datetime] = {}
        self._ticks: dict[str, float] = {}
        self._monotonic = monotonic
        self._horizon = Horizon(max_clock_skew, clock)

    def __call__(self, outcome: Outcome) -> None:
        ev = outcome.event
        self._ticks[ev.thread_id] = self._monotonic()
        at = ev.created_dt
        if at > self._horizon.limit and self._horizon.beyond(at):
            return
        previous = self.last_seen.get(ev.thread_id)
        if previous is None or at > previous:
            self.last_seen[ev.thread_id] = at

    def idle_for(self, thread_id: str) -> timedelta | None:
        """How long this process has run since it last saw an event of the thread, on the
        monotonic clock (host sleep not counted); None when it has seen none (then the persisted
        wall times are all there is)."""
        tick = self._ticks.get(thread_id)
        if tick is None:
            return None
        return timedelta(seconds=max(0.0, self._monotonic() - tick))


# -- the reaper --------------------------------------------------------------------------------


def idle_since(session: Session, last_seen: datetime | None = None) -> datetime | None:
    """When the session went idle: the later of `last_seen` (the orchestrator's own clock, e.g.
    the last user message) and its `updatedAt`. None when neither is known."""
    return _latest(_updated(session), _aware(last_seen, "last_seen") if last_seen is not None else None)


def _in_flight(session: Session) -> bool:
    """Work under way: a turn, a requested turn that has not started, or an open request."""
    return session.active_turn_id is not None or session.pending_turn is not None or session.awaiting is not None


def reapable(
    session: Session,
    now: datetime,
    *,
    last_seen: datetime | None = None,
    threshold: timedelta = DEFAULT_IDLE_THRESHOLD,
    busy: bool = False,
    spec: Spec | None = None,
    statuses: Collection[str] | None = None,
    idle_for: timedelta | None = None,
) -> bool:
    """May the orchestrator stop this session's provider now? A pure decision; nothing is applied.

    Yes only when: the spec marks its status `reapable` (the built-in one: idle, ready,
    interrupted, error; never starting, running or stopped), it holds no turn, the caller has
    flagged no background work (`busy`), and it has been idle (see `idle_since`) for at least
    `threshold`. A session with no clock at all is never reapable: its idle time is unknown.
    `spec` defaults to the built-in one; pass the projector's when it has its own. `statuses`
    overrides the spec's reapable statuses (a stricter policy, say). `idle_for`, when known (an
    `ActivityClock`'s, measured on a clock that stands still while the host sleeps), is the idle
    time; the wall-clock times (`now`, `updatedAt`, `last_seen`) are the fallback, persisted
    across restarts but counting host sleep.
    """
    if threshold < timedelta(0):
        raise ValueError("threshold must not be negative")
    now = _aware(now, "now")
    if statuses is None:
        statuses = (spec if spec is not None else builtin_spec()).reapable_statuses
    if busy or session.status not in statuses or _in_flight(session):
        return False
    if idle_for is not None:
        return idle_for >= threshold
    since = idle_since(session, last_seen)
    return since is not None and now - since >= threshold


def reapable_sessions(
    holder: SessionHolder,
    now: datetime,
    *,
    last_seen: Mapping[str, datetime] | None = None,
    threshold: timedelta = DEFAULT_IDLE_THRESHOLD,
    busy: Container[str] = frozenset(),
    activity: ActivityClock | None = None,
) -> list[Session]:
    """`reapable` over every session. `last_seen` and `busy` are keyed by threadId. `activity`
    (an `ActivityClock` subscribed to the holder): idleness on its monotonic clock where it has
    seen the thread, so host sleep does not count; its `last_seen` is used when `last_seen` is
    not given."""
    seen = last_seen if last_seen is not None else (activity.last_seen if activity is not None else {})
    return [
        s
        for tid, s in holder.sessions().items()
        if reapable(s, now, last_seen=seen.get(tid), threshold=threshold, busy=tid in busy, spec=holder.spec,
                    idle_for=activity.idle_for(tid) if activity is not None else None)
    ]


# -- needs attention ---------------------------------------------------------------------------

AttentionReason = Literal["pending_turn_not_started", "stuck_starting"]

# What to do about each, said where the signal is read (CLI listing, observers, metrics).
ATTENTION_RECOVERY: dict[str, str] = {
    "pending_turn_not_started": "the requested turn never started: send the turn again, or settle it "
                                "(expire_stale_turns puts the session in error and clears the request)",
    "stuck_starting": "the provider session never became ready: restart the provider, or reconcile "
                      "(reconcile moves it to error)",
}


@dataclass(frozen=True, slots=True)
class Attention:
    """A session that waits on something that will not come by itself."""

    session: Session
    reason: AttentionReason
    waiting: timedelta  # how long it has waited (on the activity clock where known)

    @property
    def recovery(self) -> str:
        return ATTENTION_RECOVERY[self.reason]

    def to_json(self) -> dict[str, Any]:
        return {"threadId": self.session.thread_id, "status": self.session.status, "reason": self.reason,
                "waitingSeconds": round(self.waiting.total_seconds(), 3), "recovery": self.recovery}


def needs_attention(
    holder: SessionHolder,
    now: datetime,
    bound: timedelta,
    *,
    activity: ActivityClock | None = None,
    starting: Collection[str] = ("starting",),
) -> list[Attention]:
    """Sessions waiting past `bound` on what will not come by itself: a requested turn that never
    started (`pendingTurn` set, no turn running), or a session still in a `starting` status. A
    pure decision, like the reaper's: the caller chooses the recovery (each `Attention` says the
    usual one). Waiting is measured on `activity`'s monotonic clock where it has seen the thread,
    else from `updatedAt` on the wall clock; a session with no clock is left alone."""
    if bound <= timedelta(0):
        raise ValueError("bound must be positive")
    now = _aware(now, "now")
    found = []
    for tid, s in holder.sessions().items():
        if s.pending_turn is not None and s.active_turn_id is None:
            reason: AttentionReason = "pending_turn_not_started"
        elif s.status in starting:
            reason = "stuck_starting"
        else:
            continue
        waited = activity.idle_for(tid) if activity is not None else None
        if waited is None:
            since = _latest(_updated(s), activity.last_seen.get(tid) if activity is not None else None)
            if since is None:
                continue
            waited = now - since
        if waited >= bound:
            found.append(Attention(s, reason, waited))
    return found


class AttentionWatch:
    """`needs_attention` as a signal: each `sweep(now)` tells the watch's observers about every
    session that *newly* needs attention (a session flagged again on the next sweep is not told
    twice; one that recovered and gets stuck again is). Run `sweep` on the reaper's timer."""

    def __init__(self, holder: SessionHolder, bound: timedelta, *, activity: ActivityClock | None = None) -> None:
        if bound <= timedelta(0):
            raise ValueError("bound must be positive")
        self.holder, self.bound, self.activity = holder, bound, activity
        self._flagged: set[tuple[str, str]] = set()
        self._observers: tuple[Callable[[Attention], object], ...] = ()

    def subscribe(self, observer: Callable[[Attention], object]) -> Callable[[], None]:
        self._observers = (*self._observers, observer)

        def unsubscribe() -> None:
            self._observers = tuple(o for o in self._observers if o is not observer)

        return unsubscribe

    def sweep(self, now: datetime) -> list[Attention]:
        """Every session needing attention now; the newly flagged ones are told to the observers
        (an observer's exception propagates: this is the caller's own timer, not `apply`)."""
        found = needs_attention(self.holder, now, self.bound, activity=self.activity)
        current: set[tuple[str, str]] = {(a.session.thread_id, a.reason) for a in found}
        new = [a for a in found if (a.session.thread_id, a.reason) not in self._flagged]
        self._flagged = current
        for attention in new:
            for observer in self._observers:
                observer(attention)
        return found


# -- stale turns -------------------------------------------------------------------------------


def stale_turns(
    holder: SessionHolder,
    now: datetime,
    max_age: timedelta,
    *,
    last_seen: Mapping[str, datetime] | None = None,
) -> list[Session]:
    """Sessions holding a turn, or a requested turn that has not started, with no event for at
    least `max_age`.

    `updatedAt` is when the session's last applied event happened; `last_seen` (by threadId, e.g.
    an `ActivityClock`'s) adds events that do not move it. "No event since" is
    `now - max(updatedAt, last_seen) >= max_age`. A session with neither clock is left alone
    (its age is unknown).
    """
    if max_age <= timedelta(0):
        raise ValueError("max_age must be positive")
    now = _aware(now, "now")
    seen = last_seen or {}
    stale = []
    for tid, s in holder.sessions().items():
        if s.active_turn_id is None and s.pending_turn is None:
            continue
        raw = seen.get(tid)
        since = _latest(_updated(s), _aware(raw, "last_seen") if raw is not None else None)
        if since is not None and now - since >= max_age:
            stale.append(s)
    return stale


def expire_stale_turns(
    holder: SessionHolder,
    now: datetime,
    max_age: timedelta,
    *,
    last_seen: Mapping[str, datetime] | None = None,
    reason: str = STALE_TURN_REASON,
) -> list[Outcome]:
    """Settle each stale turn by applying `turn.completed {state: interrupted}` for it.

    The event is `~lifecycle:stale-turn:<threadId>:<turnId>` (hashed after the prefix if too long),
    createdAt `now`, provider the session's, `payload.reason` = `reason`. The machine decides the
    result (on the built-in spec: `interrupted`, turn cleared and remembered, so a late completion
    for it is rejected). A session whose requested turn never started (a pending turn) gets
    `session.state.changed {state: error, reason: STALE_PENDING_REASON}` instead, event
    `~lifecycle:stale-turn:<threadId>:<turnId or "pending">:<now>`: settling clears the pending start and
    any open request. Returns one outcome per stale session, in projector order.
    """
    at = _wire_time(_aware(now, "now"))
    events = []
    for s in stale_turns(holder, now, max_age, last_seen=last_seen):
        turn = s.active_turn_id
        if s.pending_turn is not None or turn is None:
            # The requested turn never started: the session is in error, which clears the turn,
            # the pending start and any open request (all remembered as over).
            events.append({
                "eventId": _event_id(holder, STALE_TURN_EVENT_PREFIX, s.thread_id, turn or "pending", at),
                "type": "session.state.changed",
                "provider": s.provider_name or SYNTHETIC_PROVIDER,
                "threadId": s.thread_id,
                "createdAt": at,
                "payload": {"state": "error", "reason": STALE_PENDING_REASON},
            })
            continue
        events.append(
            {
                "eventId": _event_id(holder, STALE_TURN_EVENT_PREFIX, s.thread_id, turn),
                "type": "turn.completed",
                "provider": s.provider_name or SYNTHETIC_PROVIDER,
                "threadId": s.thread_id,
                "createdAt": at,
                "turnId": turn,
                "payload": {"state": "interrupted", "reason": reason},
            }
        )
    return _apply_synthetic(holder, events)


# -- restart reconciliation --------------------------------------------------------------------


def reconcile(
    holder: SessionHolder,
    live_thread_ids: Container[str],
    *,
    now: datetime | None = None,
    reason: str = RESTART_REASON,
    statuses: Collection[str] | None = None,
) -> list[Outcome]:
    """After a restart: every session left in `statuses` (default: the statuses the spec lets
    hold a turn, starting and running in the built-in one) or holding a turn,
    whose thread is not in `live_thread_ids`, gets `session.state.changed {state: error, reason}`.

    The event is `~lifecycle:restart:<threadId>:<now>` (hashed after the prefix if too long), createdAt
    `now` (default: the current time). On the built-in spec the session becomes `error` with
    `lastError = reason`, and entering `error` clears (and remembers) its turn. Returns one
    outcome per session reconciled.
    """
    when = _wire_time(_aware(now, "now") if now is not None else datetime.now(UTC))
    working = holder.spec.turn_statuses if statuses is None else statuses
    events = []
    for s in holder.sessions().values():
        if s.thread_id in live_thread_ids:
            continue
        if s.status not in working and not _in_flight(s):
            continue
        events.append(
            {
                "eventId": _event_id(holder, RESTART_EVENT_PREFIX, s.thread_id, when),
                "type": "session.state.changed",
                "provider": s.provider_name or SYNTHETIC_PROVIDER,
                "threadId": s.thread_id,
                "createdAt": when,
                "payload": {"state": "error", "reason": reason},
            }
        )
    return _apply_synthetic(holder, events)
