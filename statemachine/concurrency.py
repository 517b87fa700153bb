"""Sharing one projector: across OS threads (`LockedProjector`) and in asyncio (`consume`).

Ordering: the lifecycle is per thread (per `threadId`), and only the order of one thread's events
matters. `LockedProjector` applies each event atomically, in the order callers acquire its lock;
events sent by one caller are therefore applied in the order that caller sent them. Keep each
`threadId`'s events on one producer (one provider connection, one queue) and their order holds;
events of different threads may interleave freely. `consume` applies one source strictly in
order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterable, Callable, Collection, Container, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from . import operations
from .events import Event, EventError
from .outcome import Outcome, OutcomeKind
from .projector import ObserverErrorHandler, ObserveWhat, SessionProjector
from .session import Session

if TYPE_CHECKING:
    import asyncio

__all__ = ["ConsumeStats", "EventInput", "LockedProjector", "consume"]

EventInput = Event | Mapping[str, Any] | str | bytes

_log = logging.getLogger("statemachine.concurrency")


class LockedProjector:
    """One `SessionProjector` behind one re-entrant lock; every method is atomic.

    Observers run under the lock, in the applying OS thread: keep them quick. The lock is
    re-entrant, so an observer may read the projector. Use `locked()` for several steps at once.
    """

    def __init__(self, projector: SessionProjector | None = None) -> None:
        self._projector = projector if projector is not None else SessionProjector()
        self._lock = threading.RLock()

    @contextmanager
    def locked(self) -> Iterator[SessionProjector]:
        """Hold the lock and use the projector directly (e.g. a consistent read of many sessions)."""
        with self._lock:
            yield self._projector

    # -- events ------------------------------------------------------------------------------

    def apply(self, event: EventInput) -> Outcome:
        with self._lock:
            return self._projector.apply(event)

    def apply_all(self, events: Iterable[EventInput]) -> list[Outcome]:
        """The whole batch under the lock: no other caller's event lands in between."""
        with self._lock:
            return self._projector.apply_all(events)

    # -- reading -----------------------------------------------------------------------------

    def get(self, thread_id: str) -> Session | None:
        with self._lock:
            return self._projector.get(thread_id)

    def sessions(self) -> dict[str, Session]:
        with self._lock:
            return self._projector.sessions()

    def finished_turns(self, thread_id: str) -> tuple[str, ...]:
        with self._lock:
            return self._projector.finished_turns(thread_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._projector)

    def snapshot(self) -> dict[str, Any]:
        """A consistent snapshot: no event is applied while it is taken."""
        with self._lock:
            return self._projector.snapshot()

    def subscribe(
        self, observer: Callable[[Outcome], object], *, what: ObserveWhat = "outcome",
        on_error: ObserverErrorHandler | None = None,
    ) -> Callable[[], None]:
        with self._lock:
            unsubscribe = self._projector.subscribe(observer, what=what, on_error=on_error)

        def locked_unsubscribe() -> None:
            with self._lock:
                unsubscribe()

        return locked_unsubscribe

    # -- operations (listing and applying under one lock hold) -------------------------------

    def reapable_sessions(
        self, now: datetime, *, last_seen: Mapping[str, datetime] | None = None,
        threshold: timedelta = operations.DEFAULT_IDLE_THRESHOLD, busy: Container[str] = frozenset(),
    ) -> list[Session]:
        with self._lock:
            return operations.reapable_sessions(
                self._projector, now, last_seen=last_seen, threshold=threshold, busy=busy
            )

    def stale_turns(
        self, now: datetime, max_age: timedelta, *, last_seen: Mapping[str, datetime] | None = None
    ) -> list[Session]:
        with self._lock:
            return operations.stale_turns(self._projector, now, max_age, last_seen=last_seen)

    def expire_stale_turns(
        self, now: datetime, max_age: timedelta, *, last_seen: Mapping[str, datetime] | None = None,
        reason: str = operations.STALE_TURN_REASON,
    ) -> list[Outcome]:
        with self._lock:
            return operations.expire_stale_turns(self._projector, now, max_age, last_seen=last_seen, reason=reason)

    def reconcile(
        self, live_thread_ids: Container[str], *, now: datetime | None = None,
        reason: str = operations.RESTART_REASON, statuses: Collection[str] | None = None,
    ) -> list[Outcome]:
        with self._lock:
            return operations.reconcile(self._projector, live_thread_ids, now=now, reason=reason, statuses=statuses)


class Applier(Protocol):
    """What `consume` needs: a `SessionProjector` or a `LockedProjector`."""

    def apply(self, event: EventInput) -> Outcome: ...


@dataclass
class ConsumeStats:
    """What `consume` did: outcome counts by kind, and malformed events skipped."""

    outcomes: dict[OutcomeKind, int] = field(default_factory=lambda: dict.fromkeys(OutcomeKind, 0))
    malformed: int = 0

    @property
    def total(self) -> int:
        """Every event taken from the source (the sentinel of a queue not counted)."""
        return sum(self.outcomes.values()) + self.malformed


MalformedHandler = Callable[[EventError, EventInput], object]


def _log_malformed(error: EventError, _: EventInput) -> None:
    _log.warning("skipped a malformed event: %s", error)


async def consume(
    projector: Applier,
    source: AsyncIterable[EventInput] | asyncio.Queue[EventInput | None],
    *,
    on_outcome: Callable[[Outcome], object] | None = None,
    on_malformed: MalformedHandler | Literal["raise"] = _log_malformed,
    yield_every: int = 256,
) -> ConsumeStats:
    """Apply every event from `source`, in order, until it ends; returns the counts.

    `source` is an async iterable (a websocket reader, an async generator), or an `asyncio.Queue`
    ended by putting `None` (each item, the `None` included, is marked `task_done`, so
    `queue.join()` works). A malformed event is passed to `on_malformed` (default: a warning on
    the `statemachine.concurrency` logger) and skipped; `on_malformed="raise"` re-raises it.
    `on_outcome` is this consumer's own callback (observers see every source): an exception from
    it ends `consume`, the event staying applied.
    `apply` is synchronous and fast; every `yield_every` events the loop is given a turn, so a
    source that is always ready does not starve other tasks.
    """
    import asyncio  # here, not at module level: most embedders never pay for it

    if yield_every < 1:
        raise ValueError("yield_every must be at least 1")
    stats = ConsumeStats()

    def one(item: EventInput) -> None:
        try:
            outcome = projector.apply(item)
        except EventError as exc:
            stats.malformed += 1
            if on_malformed == "raise":
                raise
            on_malformed(exc, item)
            return
        stats.outcomes[outcome.kind] += 1
        if on_outcome is not None:
            on_outcome(outcome)

    count = 0
    if isinstance(source, asyncio.Queue):
        while True:
            item = await source.get()
            try:
                if item is None:
                    return stats
                one(item)
            finally:
                source.task_done()
            count += 1
            if count % yield_every == 0:
                await asyncio.sleep(0)
    else:
        async for item in source:
            one(item)
            count += 1
            if count % yield_every == 0:
                await asyncio.sleep(0)
    return stats
