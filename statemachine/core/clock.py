"""How far an event's `createdAt` may run ahead of the clock of the process that ingests it.

`createdAt` is written by the provider, and `updatedAt` never moves backwards. Without a bound,
one event dated in the year 9999 would pin `updatedAt` (and the activity clock) forever: that
session would never look idle or stale again. So an event more than `max_clock_skew` ahead of the
ingest clock is refused (`SessionProjector` rejects it as `created_in_future`; `ActivityClock`
does not record it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["CREATED_IN_FUTURE", "DEFAULT_MAX_CLOCK_SKEW", "Clock", "Horizon", "utc_now"]

# Generous on purpose: provider clocks drift by seconds, and a log may be written in another time
# zone with a wrong offset (hours). A day still refuses every date that would pin a session.
DEFAULT_MAX_CLOCK_SKEW = timedelta(days=1)

# The rejection reason of an event dated beyond the bound.
CREATED_IN_FUTURE = "created_in_future"

Clock = Callable[[], datetime]

_MIN = datetime.min.replace(tzinfo=UTC)
_MAX = datetime.max.replace(tzinfo=UTC)


def utc_now() -> datetime:
    """The default ingest clock: the wall clock, in UTC."""
    return datetime.now(UTC)


class Horizon:
    """The latest `createdAt` accepted: the ingest clock plus `max_clock_skew` (None: no bound).

    `limit` is the horizon last computed, and only grows: an event at or before it is accepted
    without reading the clock (one comparison on the hot path). A later event reads the clock
    again. So the bound is measured from the latest clock reading, and a clock that steps back
    does not shrink it.
    """

    __slots__ = ("_clock", "limit", "max_clock_skew")

    def __init__(self, max_clock_skew: timedelta | None = DEFAULT_MAX_CLOCK_SKEW, clock: Clock | None = None) -> None:
        if max_clock_skew is not None:
            if not isinstance(max_clock_skew, timedelta):
                raise TypeError(f"max_clock_skew must be a timedelta or None, got {type(max_clock_skew).__name__}")
            if max_clock_skew < timedelta(0):
                raise ValueError("max_clock_skew must not be negative")
        self.max_clock_skew = max_clock_skew
        self._clock = clock if clock is not None else utc_now
        # Unbounded: nothing is ever beyond, and no clock is read (but for dates past the largest
        # datetime by their offset, which take the slow path and are accepted there).
        self.limit = _MAX if max_clock_skew is None else _MIN

    def beyond(self, at: datetime) -> bool:
        """Is `at` later than the ingest clock plus the bound?"""
        if at <= self.limit or self.max_clock_skew is None:
            return False
        now = self._clock()
        if not isinstance(now, datetime):
            raise TypeError(f"the ingest clock must return a datetime, got {type(now).__name__}")
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        try:
            limit = now + self.max_clock_skew
        except OverflowError:  # a bound past the largest date: nothing is beyond it
            self.max_clock_skew = None
            self.limit = _MAX
            return False
        if limit > self.limit:
            self.limit = limit
        return at > self.limit
