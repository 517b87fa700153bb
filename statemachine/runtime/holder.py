"""What holds sessions: the one interface of `SessionProjector` (in memory) and the stores
(`statemachine.store`: SQLite, PostgreSQL). The operations (`statemachine.runtime.operations`)
and every reader take it, so whatever runs on one holder runs on the others."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from statemachine.core.event import Event
from statemachine.core.outcome import Outcome
from statemachine.core.session import Session
from statemachine.runtime.observers import Observer, ObserverErrorHandler, ObserveWhat
from statemachine.runtime.pipeline import BatchResult, OnMalformed, OnRejected
from statemachine.spec.model import Spec
from statemachine.spec.parser import EventParser

__all__ = ["SessionHolder"]

EventInput = Event | Mapping[str, Any] | str | bytes


class SessionHolder(Protocol):
    """Sessions by threadId, each with its de-duplication and finished-turn memories, changed only
    by events through the pipeline (`statemachine.runtime.pipeline`)."""

    spec: Spec
    parser: EventParser
    max_event_ids: int
    max_finished_turns: int

    def apply(self, event: EventInput) -> Outcome: ...

    def apply_all(self, events: Iterable[EventInput]) -> list[Outcome]:
        """Every outcome; a malformed event raises `EventError` and none is applied."""
        ...

    def apply_batch(
        self,
        events: Iterable[EventInput | None],
        *,
        on_rejected: OnRejected | None = None,
        on_malformed: OnMalformed | None = None,
    ) -> BatchResult: ...

    def get(self, thread_id: str) -> Session | None: ...

    def sessions(self) -> dict[str, Session]:
        """threadId -> Session, in the order the threads were made."""
        ...

    def __iter__(self) -> Iterator[str]: ...

    def __len__(self) -> int: ...

    def forget(self, thread_id: str) -> bool:
        """Drop a thread and its memories without an event; False if there was none."""
        ...

    def snapshot(self) -> dict[str, Any]: ...

    def subscribe(
        self, observer: Observer, *, what: ObserveWhat = "outcome", on_error: ObserverErrorHandler | None = None
    ) -> Callable[[], None]: ...
