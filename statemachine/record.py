"""What the projector keeps per thread, shared by both engines' step functions."""

from __future__ import annotations

from datetime import datetime

from .events import parse_timestamp
from .session import Session

__all__ = ["ThreadRecord", "remember"]


class ThreadRecord:
    """Per-thread memory. Internal and mutable; callers only ever see `Session` values.

    `updated_dt` is `session.updated_at` parsed, kept beside it so that no step re-reads the
    string: whatever replaces `session` must replace it too (`set_session`).
    """

    __slots__ = ("finished", "seen", "session", "updated_dt")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.updated_dt: datetime | None = (
            parse_timestamp(session.updated_at) if session.updated_at is not None else None
        )
        self.seen: dict[str, None] = {}  # insertion-ordered set of processed eventIds
        self.finished: dict[str, None] = {}  # insertion-ordered set of finished turn ids

    def set_session(self, session: Session) -> None:
        if session.updated_at != self.session.updated_at:
            self.updated_dt = parse_timestamp(session.updated_at) if session.updated_at is not None else None
        self.session = session


def remember(memory: dict[str, None], key: str, cap: int) -> None:
    """Add `key` to a bounded insertion-ordered set, forgetting the oldest entry when full."""
    memory[key] = None
    if len(memory) > cap:
        del memory[next(iter(memory))]
