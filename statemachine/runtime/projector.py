"""`SessionProjector`: sessions by threadId, de-duplication, remembered turns, `apply()`.

Data flows one way: wire event -> `EventParser` -> the engine's step for (status, trigger) ->
`Outcome`. Nothing here decides a lifecycle rule; it only keeps per-thread memory and asks the
engine.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from statemachine.core.clock import CREATED_IN_FUTURE, DEFAULT_MAX_CLOCK_SKEW, Clock
from statemachine.core.event import Event, EventError
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.core.record import DIGEST_SIZE, LEGACY_DIGEST_SIZE, digest_from_hex, event_digest
from statemachine.core.session import Session
from statemachine.engine.boundary import EngineName
from statemachine.runtime.observers import Observer, ObserverErrorHandler, Observers, ObserveWhat
from statemachine.runtime.pipeline import (
    DEFAULT_MAX_EVENT_IDS,
    DEFAULT_MAX_FINISHED_TURNS,
    DEFAULT_MAX_TOMBSTONES,
    BatchResult,
    OnMalformed,
    OnRejected,
    OnThread,
    Pipeline,
)
from statemachine.runtime.snapshot import (
    MAX_SNAPSHOT_BYTES,
    Limits,
    SnapshotError,
    ThreadState,
    Tombstone,
    bury,
    decode,
    encode,
    record_of,
)
from statemachine.spec.load import builtin_spec
from statemachine.spec.model import Spec
from statemachine.spec.parser import EventParser

__all__ = [
    "CREATED_IN_FUTURE",
    "DEFAULT_MAX_CLOCK_SKEW",
    "DEFAULT_MAX_EVENT_IDS",
    "DEFAULT_MAX_FINISHED_TURNS",
    "ObserveWhat",
    "Observer",
    "ObserverErrorHandler",
    "SessionProjector",
    "SnapshotError",
]


class SessionProjector:
    """Projects provider runtime events into one consistent session per thread.

    Not thread-safe by itself: share one across threads through `statemachine.runtime.concurrency`
    (or your own lock). Sessions handed out are immutable snapshots.
    """

    def __init__(
        self,
        spec: Spec | None = None,
        *,
        max_event_ids: int = DEFAULT_MAX_EVENT_IDS,
        max_finished_turns: int = DEFAULT_MAX_FINISHED_TURNS,
        engine: EngineName = "compiled",
        max_clock_skew: timedelta | None = DEFAULT_MAX_CLOCK_SKEW,
        clock: Clock | None = None,
        parser: EventParser | None = None,
        max_tombstones: int = DEFAULT_MAX_TOMBSTONES,
        event_id_key: bytes | None = None,
    ) -> None:
        """`engine="transitions"` steps every event through the `transitions` machine itself (the
        reference, slower, handy for debugging callbacks); the default answers from the table
        recorded from that same machine (`statemachine.engine.compiled`), proven equal by `verify`.

        An event whose `createdAt` is more than `max_clock_skew` ahead of `clock()` (default: the
        wall clock, UTC) is rejected as `created_in_future`; `max_clock_skew=None` lifts the bound
        (replaying logs written ahead of this machine's clock). See `statemachine.core.clock`.

        `parser` shares one `EventParser` (of the same spec) between projectors: an `Event` is
        trusted as is only when the parser this projector uses returned it, so events parsed once
        can be applied to several projectors without being validated again.

        `event_id_key` (16 bytes) is the secret key of the eventId digests the de-duplication
        memory keeps (`statemachine.core.record`); by default every projector of the process
        shares one random key. A snapshot carries its projector's key and `restore()` takes it
        back; a store keeps its own."""
        pipeline = self._pipeline = Pipeline(
            spec if spec is not None else builtin_spec(), parser=parser, engine=engine, max_event_ids=max_event_ids,
            max_finished_turns=max_finished_turns, max_clock_skew=max_clock_skew, clock=clock,
            max_tombstones=max_tombstones, event_id_key=event_id_key,
        )
        self.spec = pipeline.spec
        self.parser = pipeline.parser
        self.engine = engine
        self.max_event_ids = max_event_ids
        self.max_finished_turns = max_finished_turns
        self._threads = pipeline.threads
        self._step = pipeline.step
        self._observers = Observers()
        # Events applied by observers, while observers run: None when none are running.
        self._pending: deque[Event] | None = None

    # -- reading -------------------------------------------------------------------------------

    def get(self, thread_id: str) -> Session | None:
        record = self._threads.get(thread_id)
        return record.session if record is not None else None

    def __getitem__(self, thread_id: str) -> Session:
        return self._threads[thread_id].session

    def __contains__(self, thread_id: object) -> bool:
        return thread_id in self._threads

    def __len__(self) -> int:
        return len(self._threads)

    def __iter__(self) -> Iterator[str]:
        return iter(self._threads)

    def sessions(self) -> dict[str, Session]:
        """A copy: threadId -> Session."""
        return {k: r.session for k, r in self._threads.items()}

    def forget(self, thread_id: str) -> bool:
        """Drop a thread and both its memories without an event (observers are not told); False
        if there was none. A later event for it starts a new thread."""
        return self._threads.pop(thread_id, None) is not None

    def finished_turns(self, thread_id: str) -> tuple[str, ...]:
        """Turns of this thread remembered as completed, aborted or cleared (oldest first)."""
        record = self._threads.get(thread_id)
        return tuple(record.finished) if record is not None else ()

    @property
    def event_id_key(self) -> bytes:
        """The secret key of this projector's eventId digests (16 bytes)."""
        return self._pipeline.event_id_key

    def seen_event_digests(self, thread_id: str) -> tuple[str, ...]:
        """The de-duplication memory of this thread, oldest first: each remembered eventId as its
        64-bit digest under `event_id_key`, in hex (`statemachine.core.record.event_digest_hex`),
        or as an older snapshot's or store's 128-bit digest; the ids themselves are not kept."""
        record = self._threads.get(thread_id)
        return tuple(d.hex() for d in record.seen_digests()) if record is not None else ()

    def has_seen(self, thread_id: str, event_id: str) -> bool:
        """Is `event_id` in this thread's de-duplication memory (would it be a duplicate now)?"""
        record = self._threads.get(thread_id)
        return record is not None and record.has_seen(event_id)

    def seen_count(self, thread_id: str) -> int:
        """How many eventIds this thread remembers (at most `max_event_ids`)."""
        record = self._threads.get(thread_id)
        return record.seen_count() if record is not None else 0

    # -- writing -------------------------------------------------------------------------------

    def parse(self, event: Event | Mapping[str, Any] | str | bytes) -> Event:
        """Validate without applying. Raises `EventError`."""
        return self.parser.coerce(event)

    @property
    def max_clock_skew(self) -> timedelta | None:
        return self._pipeline.horizon.max_clock_skew

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline this projector drives (`statemachine.runtime.pipeline`)."""
        return self._pipeline

    def apply(self, event: Event | Mapping[str, Any] | str | bytes) -> Outcome:
        """Apply one event (an `Event`, a wire dict, or one JSON line) and say what happened.

        Raises `EventError` for malformed input, before anything changes. An `Event` is trusted
        only if it is the very object this projector's parser returned; any other is checked in
        full. Observers (see `subscribe`) are told after the session is updated; their failures
        never reach the caller. Called from inside an observer, the event is checked at once,
        queued, and applied once every observer of the current event has run: the outcome
        returned then is `DEFERRED` (see `subscribe`).
        """
        ev = event if type(event) is Event and event.checked_by is self.parser else self.parser.coerce(event)
        if self._pending is not None:
            return self._defer(ev)
        outcome = self._step(ev)
        if self._observers.subscriptions:  # a tuple: no Python call when there is none
            self._run_observers(outcome)
        return outcome

    def _defer(self, ev: Event) -> Outcome:
        record = self._threads.get(ev.thread_id)
        # Nothing changes now, not even a new thread: the session is the one held (or would be).
        before = record.session if record is not None else self._pipeline.fresh(ev.thread_id, ev.provider)
        assert self._pending is not None
        self._pending.append(ev)
        return Outcome(OutcomeKind.DEFERRED, ev, before, before)

    def apply_all(self, events: Iterable[Event | Mapping[str, Any] | str | bytes]) -> list[Outcome]:
        """Apply in order and return every outcome. Every event is checked first: a malformed one
        raises `EventError` and none is applied (as a store does, in one transaction)."""
        return [self.apply(e) for e in [self.parser.coerce(e) for e in events]]

    def apply_batch(
        self,
        events: Iterable[Event | Mapping[str, Any] | str | bytes | None],
        *,
        on_rejected: OnRejected | None = None,
        on_malformed: OnMalformed | None = None,
    ) -> BatchResult:
        """Apply many events (JSON lines, this parser's `Event`s, wire dicts) for bulk loads and
        replay: the same sessions, memories, outcome kinds, rejection reasons and errors as `apply`
        on each, in order, without an `Outcome` per event (see `statemachine.runtime.pipeline`).

        Returns the counts by outcome kind plus `malformed`. A malformed item is counted, told to
        `on_malformed(number, error)` and skipped (the items after it still apply); each rejected
        event is told to `on_rejected(number, event_id, reason)`. Numbers count items from 1, so
        they are line numbers for a list of lines; blank lines are skipped. With observers
        subscribed, from inside an observer, or with `engine="transitions"`, each item goes
        through `apply`, so observers see every outcome.
        """
        result = self.apply_numbered(enumerate(events, 1), on_rejected=on_rejected, on_malformed=on_malformed)
        result.lines = result.last or 0
        return result

    def apply_numbered(
        self,
        items: Iterable[tuple[int, Event | Mapping[str, Any] | str | bytes | None]],
        *,
        on_rejected: OnRejected | None = None,
        on_malformed: OnMalformed | None = None,
        on_created: OnThread | None = None,
        on_forgotten: OnThread | None = None,
    ) -> BatchResult:
        """`apply_batch` over (number, item) pairs, numbers increasing: for a caller that hands over
        only some lines of a file (`replay --jobs`) and keeps the file's line numbers. A None item
        is a line that was not read (malformed, told to `on_malformed` with None). `on_created` and
        `on_forgotten` are told when an item makes or forgets a thread's record."""
        return self._pipeline.run(items, step=self._outcome_step(), on_rejected=on_rejected,
                                  on_malformed=on_malformed, on_created=on_created, on_forgotten=on_forgotten)

    def _outcome_step(self) -> Callable[[Event], Outcome] | None:
        """The step a batch uses: None (the pipeline's lean one) unless every outcome is needed:
        observers subscribed, a call from inside an observer, or a subclass that changes `apply`."""
        if self._observers or self._pending is not None or type(self).apply is not SessionProjector.apply:
            return self.apply
        return None

    def seed(
        self,
        session: Session,
        *,
        finished_turns: Iterable[str] = (),
        seen_event_ids: Iterable[str] = (),
        seen_event_digests: Iterable[str] = (),
    ) -> None:
        """Put a session in place as is (tests, proofs, restoring from your own storage).

        The de-duplication memory comes from `seen_event_ids` (the ids, digested here) or from
        `seen_event_digests` (as `seen_event_digests()` of a projector with the same `event_id_key`
        returns them: 16 hex digits each, or 32 for an older unkeyed digest), oldest first, not both.
        Nothing is checked against the invariants here on purpose: the inductive
        proof seeds arbitrary states. Use `restore()` for snapshots, which does check. Observers
        are not told.
        """
        if not self.spec.has_status(session.status):
            raise EventError("status", f"unknown status {session.status!r}")
        try:
            record = self._pipeline.new_record(session)
        except (TypeError, ValueError):
            raise EventError("updatedAt", f"not an ISO 8601 timestamp: {str(session.updated_at)[:64]!r}") from None
        for turn in finished_turns:
            record.remember_turn(turn)
        digests = [event_digest(e, self.event_id_key) for e in seen_event_ids]
        hexes = list(seen_event_digests)
        if digests and hexes:
            raise ValueError("seed() takes seen_event_ids or seen_event_digests, not both")
        for i, text in enumerate(hexes):
            digest = digest_from_hex(text)
            if digest is None:
                raise EventError(f"seenEventDigests[{i}]", f"not {DIGEST_SIZE * 2} or {LEGACY_DIGEST_SIZE * 2} "
                                 f"lowercase hex digits: {str(text)[:64]!r}")
            digests.append(digest)
        for digest in digests:
            record.see_digest(digest)
        self._threads[session.thread_id] = record

    # -- observers -----------------------------------------------------------------------------

    def subscribe(
        self,
        observer: Observer,
        *,
        what: ObserveWhat = "outcome",
        on_error: ObserverErrorHandler | None = None,
    ) -> Callable[[], None]:
        """Call `observer(outcome)` after each event; returns a function that unsubscribes it.

        `what`: "outcome" (every outcome, duplicates and rejections included), "change" (only those
        that changed the session), "status" (only those that changed its status).

        Observers run synchronously inside `apply()`, in subscription order, once the session and
        both memories are already updated. They run to completion: an `apply()` made by an observer
        checks its event at once (a malformed one raises `EventError` and is not queued), queues
        it and returns an outcome of kind `DEFERRED` (session unchanged, nothing remembered). Once
        every observer of the current event has run, the queued events are applied in the order
        they were queued, each told to every observer in turn (their own queued events after
        them), before the outermost `apply()` returns. So every observer sees every outcome, in
        the order the events were applied, and an observer is never re-entered.

        An observer that raises an `Exception` cannot undo or corrupt that: the exception goes to
        its `on_error(exc, outcome)` (default: logged on the
        `statemachine.observers` logger), the remaining observers still run, the observer stays
        subscribed, and `apply()` returns the outcome as usual. A failing `on_error` is logged too.
        A `BaseException` (KeyboardInterrupt, SystemExit) is not caught: it propagates from
        `apply()` after the event was applied, later observers miss that one outcome, and events
        still queued by observers are dropped.
        """
        return self._observers.subscribe(observer, what=what, on_error=on_error)

    def _run_observers(self, outcome: Outcome) -> None:
        pending = self._pending = deque()
        notify = self._observers.notify
        try:
            notify(outcome)
            while pending:
                notify(self._step(pending.popleft()))
        finally:
            self._pending = None

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every session and both per-thread memories as a JSON-able dict (see `statemachine.runtime.snapshot`).

        Carries the format version, the spec's name and content digest, and the memory caps.
        Observers, the engine choice and the clock bound are not state and are not saved.
        """
        return encode(
            self.spec,
            self.max_event_ids,
            self.max_finished_turns,
            self.event_id_key,
            (ThreadState(r.session, tuple(d.hex() for d in r.seen_digests()), tuple(r.finished))
             for r in self._threads.values()),
            (Tombstone(t, tuple(d.hex() for d in r.seen_digests())) for t, r in self._pipeline.tombstones.items()),
        )

    @classmethod
    def restore(
        cls,
        data: Mapping[str, Any] | str | bytes,
        spec: Spec | None = None,
        *,
        engine: EngineName = "compiled",
        max_event_ids: int = DEFAULT_MAX_EVENT_IDS,
        max_finished_turns: int = DEFAULT_MAX_FINISHED_TURNS,
        max_clock_skew: timedelta | None = DEFAULT_MAX_CLOCK_SKEW,
        clock: Clock | None = None,
        max_tombstones: int = DEFAULT_MAX_TOMBSTONES,
        allow_spec_change: bool = False,
        max_bytes: int = MAX_SNAPSHOT_BYTES,
        event_id_key: bytes | None = None,
    ) -> SessionProjector:
        """A projector holding what `data` holds (a `snapshot()` dict, or its JSON text).

        The restoring projector is built from these arguments, not from the file: its caps are
        `max_event_ids` and `max_finished_turns`, and a thread remembering more ids than they
        allow is refused (the caps in the file are only informative). `spec` (default: the
        built-in one) must have the snapshot's spec name and, unless `allow_spec_change`, its
        content digest. JSON text longer than `max_bytes` is refused unread.

        Raises `SnapshotError` (a `ValueError`, with `.path`) for a wrong format or version, a
        wrong type anywhere, an id longer than the parser's limit, an unknown status, an
        `updatedAt` beyond the clock bound, or a session that breaks the spec's invariants.
        Nothing is restored unless everything is valid. The projector digests eventIds with the
        snapshot's key (version 7), or with `event_id_key` (default: the process's) when the
        snapshot is older.
        """
        projector = cls(
            spec, engine=engine, max_event_ids=max_event_ids, max_finished_turns=max_finished_turns,
            max_clock_skew=max_clock_skew, clock=clock, max_tombstones=max_tombstones, event_id_key=event_id_key,
        )
        horizon = projector._pipeline.horizon
        limits = Limits(
            max_event_ids=max_event_ids,
            max_finished_turns=max_finished_turns,
            max_id_length=projector.parser.max_id_length,
            max_bytes=max_bytes,
            in_future=horizon.beyond,
            allow_spec_change=allow_spec_change,
            event_id_key=projector.event_id_key,
        )
        decoded = decode(data, projector.spec, limits)
        pipeline = projector._pipeline
        if decoded.event_id_key is not None:
            pipeline.event_id_key = decoded.event_id_key  # before any record is made
        for t in decoded.threads:
            projector._threads[t.session.thread_id] = record_of(pipeline, t)
        for tomb in decoded.tombstones:
            bury(pipeline, tomb)
        return projector


__all__ += ["EventError"]
