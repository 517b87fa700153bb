"""Observers of outcomes: who is told, which outcomes, and what a failing observer cannot do.

One implementation for every holder of sessions: `SessionProjector` tells its observers inside
`apply`, a store after the transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from statemachine.core.outcome import Outcome

if TYPE_CHECKING:
    import logging

__all__ = ["ObserveWhat", "Observer", "ObserverErrorHandler", "Observers"]

Observer = Callable[[Outcome], object]
ObserverErrorHandler = Callable[[Exception, Outcome], object]
# Which outcomes an observer receives: every one, those that changed the session, or those that
# changed its status.
ObserveWhat = Literal["outcome", "change", "status"]

# The observers' logger is looked up when first needed: importing `logging` (and `inspect`, for
# subscribe's check) costs start-up time that a replay, which subscribes nothing, never needs.
_LOGGER = "statemachine.observers"


def _logger() -> logging.Logger:
    import logging

    return logging.getLogger(_LOGGER)


class _Subscription:
    __slots__ = ("observer", "on_error", "what")

    def __init__(self, observer: Observer, what: ObserveWhat, on_error: ObserverErrorHandler | None) -> None:
        self.observer = observer
        self.what = what
        self.on_error = on_error


class Observers:
    """The subscriptions of one holder, in subscription order.

    The tuple is replaced, never mutated: a notification in progress keeps iterating the tuple it
    started with, even if an observer (un)subscribes meanwhile."""

    __slots__ = ("subscriptions",)

    def __init__(self) -> None:
        self.subscriptions: tuple[_Subscription, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.subscriptions)

    def subscribe(
        self, observer: Observer, *, what: ObserveWhat = "outcome", on_error: ObserverErrorHandler | None = None
    ) -> Callable[[], None]:
        if what not in ("outcome", "change", "status"):
            raise ValueError(f"what must be 'outcome', 'change' or 'status', got {what!r}")
        # Calling an async function only builds a coroutine: it would be accepted and never run.
        import inspect

        if inspect.iscoroutinefunction(observer) or (
            callable(observer) and inspect.iscoroutinefunction(type(observer).__call__)
        ):
            raise TypeError(
                f"observer {observer!r} is an async function; observers run synchronously inside apply(). "
                "Subscribe a plain function that hands the outcome to your event loop "
                "(e.g. loop.call_soon_threadsafe(queue.put_nowait, outcome))"
            )
        subscription = _Subscription(observer, what, on_error)
        self.subscriptions = (*self.subscriptions, subscription)

        def unsubscribe() -> None:
            self.subscriptions = tuple(s for s in self.subscriptions if s is not subscription)

        return unsubscribe

    def notify(self, outcome: Outcome) -> None:
        """Tell every observer that wants this outcome; a failing one goes to its `on_error`
        (default: logged), and the others still run."""
        for sub in self.subscriptions:
            if sub.what == "change" and not outcome.changed:
                continue
            if sub.what == "status" and not outcome.status_changed:
                continue
            try:
                sub.observer(outcome)
            except Exception as exc:
                _failed(sub, exc, outcome)


def _failed(sub: _Subscription, exc: Exception, outcome: Outcome) -> None:
    if sub.on_error is not None:
        try:
            sub.on_error(exc, outcome)
            return
        except Exception:
            _logger().exception("observer error handler %r failed", sub.on_error)
    _logger().error(
        "observer %r failed on event %s of thread %s",
        sub.observer, outcome.event.event_id, outcome.event.thread_id, exc_info=exc,
    )
