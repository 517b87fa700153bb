"""What an orchestrator does around the lifecycle: reap idle sessions, bound stuck turns, reconcile
after a restart.

The functions here decide *policy* (which session is idle enough, which turn is stale, which
session lost its provider). They never write a session: every change is an ordinary wire event
applied through `SessionProjector.apply`, so the spec's machine decides what it does, observers
and logs see it like any other event, and the proofs that cover `apply` cover these paths too.

Times: `now` and `last_seen` are datetimes; a naive one is taken as UTC.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Mapping
from datetime import UTC, datetime, timedelta

from .events import parse_timestamp
from .outcome import Outcome
from .projector import SessionProjector
from .session import Session

__all__ = [
    "DEFAULT_IDLE_THRESHOLD",
    "NEVER_REAPED",
    "RECONCILED_STATUSES",
    "RESTART_EVENT_PREFIX",
    "RESTART_REASON",
    "STALE_TURN_EVENT_PREFIX",
    "STALE_TURN_REASON",
    "SYNTHETIC_PROVIDER",
    "expire_stale_turns",
    "idle_since",
    "reapable",
    "reapable_sessions",
    "reconcile",
    "stale_turns",
]

DEFAULT_IDLE_THRESHOLD = timedelta(minutes=30)
# Sessions in these statuses are never reaped: work may be in progress, or there is nothing to stop.
NEVER_REAPED: frozenset[str] = frozenset({"starting", "running", "stopped"})
# Statuses that mean "a provider was working" when the process went away.
RECONCILED_STATUSES: frozenset[str] = frozenset({"starting", "running"})

STALE_TURN_EVENT_PREFIX = "stale-turn:"
STALE_TURN_REASON = "Turn expired: no event for it within the stale-turn bound"
RESTART_EVENT_PREFIX = "restart:"
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


# -- the reaper --------------------------------------------------------------------------------


def idle_since(session: Session, last_seen: datetime | None = None) -> datetime | None:
    """When the session went idle: the later of `last_seen` (the orchestrator's own clock, e.g.
    the last user message) and its `updatedAt`. None when neither is known."""
    clocks = [t for t in (_updated(session), _aware(last_seen, "last_seen") if last_seen is not None else None)
              if t is not None]
    return max(clocks) if clocks else None


def reapable(
    session: Session,
    now: datetime,
    *,
    last_seen: datetime | None = None,
    threshold: timedelta = DEFAULT_IDLE_THRESHOLD,
    busy: bool = False,
    never: Collection[str] = NEVER_REAPED,
) -> bool:
    """May the orchestrator stop this session's provider now? A pure decision; nothing is applied.

    Yes only when: its status is not in `never` (starting, running, stopped), it holds no turn,
    the caller has flagged no background work (`busy`), and it has been idle (see `idle_since`)
    for at least `threshold`. A session with no clock at all is never reapable: its idle time is
    unknown.
    """
    if threshold < timedelta(0):
        raise ValueError("threshold must not be negative")
    now = _aware(now, "now")
    if busy or session.status in never or session.active_turn_id is not None:
        return False
    since = idle_since(session, last_seen)
    return since is not None and now - since >= threshold


def reapable_sessions(
    projector: SessionProjector,
    now: datetime,
    *,
    last_seen: Mapping[str, datetime] | None = None,
    threshold: timedelta = DEFAULT_IDLE_THRESHOLD,
    busy: Container[str] = frozenset(),
    never: Collection[str] = NEVER_REAPED,
) -> list[Session]:
    """`reapable` over every session. `last_seen` and `busy` are keyed by threadId."""
    seen = last_seen or {}
    return [
        s
        for tid, s in projector.sessions().items()
        if reapable(s, now, last_seen=seen.get(tid), threshold=threshold, busy=tid in busy, never=never)
    ]


# -- stale turns -------------------------------------------------------------------------------


def stale_turns(projector: SessionProjector, now: datetime, max_age: timedelta) -> list[Session]:
    """Sessions holding a turn with no event applied for at least `max_age`.

    `updatedAt` is when the session's last applied event happened, so "no event since" is
    `now - updatedAt >= max_age`. A session without `updatedAt` is left alone (its age is unknown).
    """
    if max_age <= timedelta(0):
        raise ValueError("max_age must be positive")
    now = _aware(now, "now")
    stale = []
    for s in projector.sessions().values():
        updated = _updated(s)
        if s.active_turn_id is not None and updated is not None and now - updated >= max_age:
            stale.append(s)
    return stale


def expire_stale_turns(
    projector: SessionProjector,
    now: datetime,
    max_age: timedelta,
    *,
    reason: str = STALE_TURN_REASON,
) -> list[Outcome]:
    """Settle each stale turn by applying `turn.completed {state: interrupted}` for it.

    The event is `stale-turn:<threadId>:<turnId>`, createdAt `now`, provider the session's,
    `payload.reason` = `reason`. The machine decides the result (on the built-in spec:
    `interrupted`, turn cleared and remembered, so a late completion for it is rejected).
    Returns one outcome per stale session, in projector order.
    """
    outcomes = []
    for s in stale_turns(projector, now, max_age):
        turn = s.active_turn_id
        assert turn is not None  # stale_turns only lists sessions holding a turn
        outcomes.append(
            projector.apply(
                {
                    "eventId": f"{STALE_TURN_EVENT_PREFIX}{s.thread_id}:{turn}",
                    "type": "turn.completed",
                    "provider": s.provider_name or SYNTHETIC_PROVIDER,
                    "threadId": s.thread_id,
                    "createdAt": _wire_time(_aware(now, "now")),
                    "turnId": turn,
                    "payload": {"state": "interrupted", "reason": reason},
                }
            )
        )
    return outcomes


# -- restart reconciliation --------------------------------------------------------------------


def reconcile(
    projector: SessionProjector,
    live_thread_ids: Container[str],
    *,
    now: datetime | None = None,
    reason: str = RESTART_REASON,
    statuses: Collection[str] = RECONCILED_STATUSES,
) -> list[Outcome]:
    """After a restart: every session left in `statuses` (starting, running) or holding a turn,
    whose thread is not in `live_thread_ids`, gets `session.state.changed {state: error, reason}`.

    The event is `restart:<threadId>:<now>`, createdAt `now` (default: the current time). On the
    built-in spec the session becomes `error` with `lastError = reason`, and entering `error`
    clears (and remembers) its turn. Returns one outcome per session reconciled.
    """
    when = _wire_time(_aware(now, "now") if now is not None else datetime.now(UTC))
    outcomes = []
    for s in projector.sessions().values():
        if s.thread_id in live_thread_ids:
            continue
        if s.status not in statuses and s.active_turn_id is None:
            continue
        outcomes.append(
            projector.apply(
                {
                    "eventId": f"{RESTART_EVENT_PREFIX}{s.thread_id}:{when}",
                    "type": "session.state.changed",
                    "provider": s.provider_name or SYNTHETIC_PROVIDER,
                    "threadId": s.thread_id,
                    "createdAt": when,
                    "payload": {"state": "error", "reason": reason},
                }
            )
        )
    return outcomes
