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
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from statemachine.core.event import Event, EventError
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.runtime.projector import ObserverErrorHandler, ObserveWhat, SessionProjector

if TYPE_CHECKING:
    import asyncio

__all__ = ["ConsumeStats", "EventInput", "LockedProjector", "consume"]

EventInput = Event | Mapping[str, Any] | str | bytes

_log = logging.getLogger("statemachine.runtime.concurrency")


class LockedProjector:
    """One `SessionProjector` behind one re-entrant lock.

    `apply` and `apply_all` take the lock themselves (they are what producers call); everything
    else is done on the projector itself, handed out under the lock by `locked()`: reads,
    snapshots, the operations (`reapable_sessions(p, now)`, `expire_stale_turns(p, ...)`, ...).
    So this class never re-declares the projector's API and cannot drift from it.

    Observers run under the lock, in the applying OS thread: keep them quick. The lock is
    re-entrant, so an observer may use `locked()` to read the projector, and an `apply` from an
    observer is deferred like on the projector itself (applied once the current event's
    observers have run, still under the same hold of the lock).
    """

    def __init__(self, projector: SessionProjector | None = None) -> None:
        self._projector = projector if projector is not None else SessionProjector()
        self._lock = threading.RLock()

    @contextmanager
    def locked(self) -> Iterator[SessionProjector]:
        """Hold the lock and use the projector directly: reads, `snapshot()` (consistent: no event
        lands while it is taken), and the operations, which then list and apply under one hold."""
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


class Applier(Protocol):
    """What `consume` needs: a `SessionProjector` or a `LockedProjector`."""

    def apply(self, event: EventInput) -> Outcome: ...


@dataclass
class ConsumeStats:
    """What `consume` did: outcome counts by kind, and malformed events skipped."""

    # `deferred` is counted only if it happens (consume run from inside an observer).
    outcomes: dict[OutcomeKind, int] = field(
        default_factory=lambda: {k: 0 for k in OutcomeKind if k is not OutcomeKind.DEFERRED}
    )
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
    the `statemachine.runtime.concurrency` logger) and skipped; `on_malformed="raise"` re-raises it.
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
        stats.outcomes[outcome.kind] = stats.outcomes.get(outcome.kind, 0) + 1
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
