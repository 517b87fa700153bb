"""What the projector keeps per thread, and the one place that changes it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from .events import parse_timestamp
from .session import Session

__all__ = ["BoundedSet", "ThreadRecord"]


class BoundedSet:
    """An insertion-ordered set of strings that forgets its oldest member past `cap`.

    O(1) per operation whatever the cap. Until it is full, the dict's own insertion order is all
    it needs (most threads never fill their memories, and pay for nothing more). When it first
    fills, a ring of its keys is built once, and from then on says which member is oldest, so an
    eviction never scans the dict from its front (which costs time proportional to the entries
    deleted before it).
    """

    __slots__ = ("_head", "_members", "_ring", "cap")

    def __init__(self, cap: int, members: Iterable[str] = ()) -> None:
        self.cap = cap
        self._members: dict[str, None] = {}
        self._ring: list[str] | None = None  # built when the set first fills
        self._head = 0
        for member in members:
            self.add(member)

    def add(self, key: str) -> bool:
        """Add `key`; False if it was already a member (the de-duplication test and update in one)."""
        members = self._members
        if key in members:
            return False
        ring = self._ring
        if ring is None:
            if len(members) < self.cap:
                members[key] = None
                return True
            ring = self._ring = list(members)  # full from now on: the oldest is ring[head]
        head = self._head
        del members[ring[head]]
        ring[head] = key
        members[key] = None
        self._head = (head + 1) % self.cap
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[str]:
        """Oldest first."""
        ring, head = self._ring, self._head
        if ring is None:
            return iter(list(self._members))
        return iter(ring[head:] + ring[:head])

    def __repr__(self) -> str:
        return f"BoundedSet(cap={self.cap}, {list(self)!r})"


class ThreadRecord:
    """Per-thread memory. Internal and mutable; callers only ever see `Session` values.

    Its memories change only through `BoundedSet.add` (the one FIFO implementation: `seen` on
    de-duplication, `finished` when an applied step remembers a turn), and its session only
    through `commit`, which both engines call: the session and its parsed `updatedAt` together.
    """

    __slots__ = ("finished", "seen", "session", "updated_dt")

    def __init__(self, session: Session, max_event_ids: int, max_finished_turns: int) -> None:
        self.session = session
        self.updated_dt: datetime | None = (
            parse_timestamp(session.updated_at) if session.updated_at is not None else None
        )
        self.seen = BoundedSet(max_event_ids)  # processed eventIds
        self.finished = BoundedSet(max_finished_turns)  # turns completed, aborted or cleared

    def commit(self, session: Session, updated_dt: datetime | None) -> None:
        """An applied step: the new session and its parsed `updatedAt` (the turns it finished are
        already in `finished`: effects add them as they run, after every guard was read)."""
        self.session = session
        self.updated_dt = updated_dt
