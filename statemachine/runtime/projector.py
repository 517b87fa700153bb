"""`SessionProjector`: sessions by threadId, de-duplication, remembered turns, `apply()`.

Data flows one way: wire event -> `EventParser` -> the engine's step for (status, trigger) ->
`Outcome`. Nothing here decides a lifecycle rule; it only keeps per-thread memory and asks the
engine.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from sys import intern
from typing import TYPE_CHECKING, Any, Literal

from statemachine.core.clock import CREATED_IN_FUTURE, DEFAULT_MAX_CLOCK_SKEW, Clock, Horizon
from statemachine.core.event import Event, EventError
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.core.record import DIGEST_SIZE, ThreadRecord, event_digest
from statemachine.core.session import Session
from statemachine.engine.boundary import ENGINES, EngineName, StepFn
from statemachine.engine.registry import engine_for
from statemachine.runtime.batch import BatchResult, OnMalformed, OnRejected, ingest
from statemachine.runtime.snapshot import MAX_SNAPSHOT_BYTES, Limits, SnapshotError, ThreadState, decode, encode
from statemachine.spec.load import builtin_spec
from statemachine.spec.model import Spec
from statemachine.spec.parser import EventParser

if TYPE_CHECKING:
    import logging

__all__ = [
    "CREATED_IN_FUTURE",
    "DEFAULT_MAX_CLOCK_SKEW",
    "DEFAULT_MAX_EVENT_IDS",
    "DEFAULT_MAX_FINISHED_TURNS",
    "Observer",
    "ObserverErrorHandler",
    "SessionProjector",
    "SnapshotError",
]

# Per-thread memory caps. When full, the oldest entry is forgotten first (FIFO): a redelivery
# older than the last N events of its thread is then treated as new, and may be rejected by the
# turn guards instead of being reported as a duplicate.
DEFAULT_MAX_EVENT_IDS = 1024
DEFAULT_MAX_FINISHED_TURNS = 256


Observer = Callable[[Outcome], object]
ObserverErrorHandler = Callable[[Exception, Outcome], object]
# Which outcomes an observer receives: every one, those that changed the session, or those that
# changed its status.
ObserveWhat = Literal["outcome", "change", "status"]

# The observers' logger is looked up when first needed: importing `logging` (and `inspect`, for
# subscribe's check) costs start-up time that a replay, which subscribes nothing, never needs.
_LOGGER = "statemachine.observers"

# For the hot path: builds an Outcome without the NamedTuple's Python-level __new__ (every field given).
_new = tuple.__new__
_DUPLICATE, _IGNORED, _REJECTED = OutcomeKind.DUPLICATE, OutcomeKind.IGNORED, OutcomeKind.REJECTED


def _logger() -> logging.Logger:
    import logging

    return logging.getLogger(_LOGGER)


class _Subscription:
    __slots__ = ("observer", "on_error", "what")

    def __init__(self, observer: Observer, what: ObserveWhat, on_error: ObserverErrorHandler | None) -> None:
        self.observer = observer
        self.what = what
        self.on_error = on_error


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
    ) -> None:
        """`engine="transitions"` steps every event through the `transitions` machine itself (the
        reference, slower, handy for debugging callbacks); the default answers from the table
        recorded from that same machine (`statemachine.engine.compiled`), proven equal by `verify`.

        An event whose `createdAt` is more than `max_clock_skew` ahead of `clock()` (default: the
        wall clock, UTC) is rejected as `created_in_future`; `max_clock_skew=None` lifts the bound
        (replaying logs written ahead of this machine's clock). See `statemachine.core.clock`.

        `parser` shares one `EventParser` (of the same spec) between projectors: an `Event` is
        trusted as is only when the parser this projector uses returned it, so events parsed once
        can be applied to several projectors without being validated again."""
        if max_event_ids < 1:
            raise ValueError("max_event_ids must be at least 1")
        if max_finished_turns < 1:
            raise ValueError("max_finished_turns must be at least 1")
        self.spec = spec if spec is not None else builtin_spec()
        if parser is not None and parser.spec is not self.spec:
            raise ValueError("parser must be an EventParser of this projector's spec")
        self.parser = parser if parser is not None else EventParser(self.spec)
        if engine not in ENGINES:
            raise ValueError(f"engine must be 'compiled' or 'transitions', got {engine!r}")
        self.engine = engine
        # The engine itself is kept: its generated source stays readable (linecache) while in use.
        self._engine = engine_for(self.spec, engine)
        self._dispatch = self._with_forgetting(self._engine.dispatch)
        self._horizon = Horizon(max_clock_skew, clock)
        self._threads: dict[str, ThreadRecord] = {}
        self.max_event_ids = max_event_ids
        self.max_finished_turns = max_finished_turns
        # Replaced, never mutated: a notification in progress keeps iterating the tuple it started
        # with, even if an observer (un)subscribes meanwhile.
        self._observers: tuple[_Subscription, ...] = ()
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

    def finished_turns(self, thread_id: str) -> tuple[str, ...]:
        """Turns of this thread remembered as completed, aborted or cleared (oldest first)."""
        record = self._threads.get(thread_id)
        return tuple(record.finished) if record is not None else ()

    def seen_event_digests(self, thread_id: str) -> tuple[str, ...]:
        """The de-duplication memory of this thread, oldest first: each remembered eventId as its
        128-bit digest in hex (`statemachine.core.record.event_digest_hex`); the ids themselves are not kept."""
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
        return self._horizon.max_clock_skew

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
        if self._observers:
            self._run_observers(outcome)
        return outcome

    def _step(self, ev: Event) -> Outcome:
        # The hot path: written out in one function on purpose (a call costs as much as a step).
        record = self._threads.get(ev.thread_id)
        if record is None:
            # A thread not seen before starts in the initial status, with no turn.
            # The provider's name interned: sessions share one string per provider (with
            # `record_provider` keeping an equal name as it is).
            session = Session(ev.thread_id, self.spec.initial, intern(ev.provider))
            record = self._threads[ev.thread_id] = self._new_record(session)
        if not record.see(ev.event_id):
            before = record.session
            return _new(Outcome, (_DUPLICATE, ev, before, before, None, None))
        if ev.created_dt > self._horizon.limit and self._horizon.beyond(ev.created_dt):
            # Refused before the spec sees it: no lifecycle rule may depend on a time that would
            # pin updatedAt. The eventId stays remembered, like any rejection.
            before = record.session
            return _new(Outcome, (_REJECTED, ev, before, before, CREATED_IN_FUTURE, None))
        if ev.trigger is None:
            before = record.session
            return _new(Outcome, (_IGNORED, ev, before, before, None, None))
        return self._dispatch[record.session.status][ev.trigger](record, ev)

    def _defer(self, ev: Event) -> Outcome:
        record = self._threads.get(ev.thread_id)
        # Nothing changes now, not even a new thread: the session is the one held (or would be).
        before = record.session if record is not None else Session(ev.thread_id, self.spec.initial, ev.provider)
        assert self._pending is not None
        self._pending.append(ev)
        return Outcome(OutcomeKind.DEFERRED, ev, before, before)

    def apply_all(self, events: Iterable[Event | Mapping[str, Any] | str | bytes]) -> list[Outcome]:
        """Apply in order; stops at the first malformed event (raising `EventError`)."""
        return [self.apply(e) for e in events]

    def apply_batch(
        self,
        events: Iterable[Event | Mapping[str, Any] | str | bytes],
        *,
        on_rejected: OnRejected | None = None,
        on_malformed: OnMalformed | None = None,
    ) -> BatchResult:
        """Apply many events (JSON lines, this parser's `Event`s, wire dicts) for bulk loads and
        replay: the same sessions, memories, outcome kinds, rejection reasons and errors as `apply`
        on each, in order, without an `Outcome` per event (see `statemachine.runtime.batch`).

        Returns the counts by outcome kind plus `malformed`. A malformed item is counted, told to
        `on_malformed(number, error)` and skipped (the items after it still apply); each rejected
        event is told to `on_rejected(number, event_id, reason)`. Numbers count items from 1, so
        they are line numbers for a list of lines; blank lines are skipped. With observers
        subscribed, from inside an observer, or with `engine="transitions"`, each item goes
        through `apply`, so observers see every outcome.
        """
        return ingest(self, events, on_rejected=on_rejected, on_malformed=on_malformed)

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
        `seen_event_digests` (as `seen_event_digests()` returns them: 32 hex digits each), oldest
        first, not both. Nothing is checked against the invariants here on purpose: the inductive
        proof seeds arbitrary states. Use `restore()` for snapshots, which does check. Observers
        are not told.
        """
        if not self.spec.has_status(session.status):
            raise EventError("status", f"unknown status {session.status!r}")
        try:
            record = self._new_record(session)
        except (TypeError, ValueError):
            raise EventError("updatedAt", f"not an ISO 8601 timestamp: {str(session.updated_at)[:64]!r}") from None
        for turn in finished_turns:
            record.remember_turn(turn)
        digests = [event_digest(e) for e in seen_event_ids]
        hexes = list(seen_event_digests)
        if digests and hexes:
            raise ValueError("seed() takes seen_event_ids or seen_event_digests, not both")
        for i, text in enumerate(hexes):
            digest = _digest_from_hex(text)
            if digest is None:
                raise EventError(f"seenEventDigests[{i}]",
                                 f"not {DIGEST_SIZE * 2} lowercase hex digits: {str(text)[:64]!r}")
            digests.append(digest)
        for digest in digests:
            record.see_digest(digest)
        self._threads[session.thread_id] = record

    def _with_forgetting(self, dispatch: Mapping[str, Mapping[str, StepFn]]) -> Mapping[str, Mapping[str, StepFn]]:
        """The engine's dispatch, with the steps of forgetting triggers (`forgets_thread` in the
        spec) wrapped to drop the thread once applied. Wrapping keeps the hot path untouched."""
        forgetting = {t.name for e in self.spec.events if e.forgets_thread for t in e.trigger_values}
        if not forgetting:
            return dispatch

        def forget(step: StepFn) -> StepFn:
            def run(record: ThreadRecord, ev: Event) -> Outcome:
                outcome = step(record, ev)
                if outcome.kind is not OutcomeKind.APPLIED:
                    return outcome
                if self._threads.get(ev.thread_id) is record:
                    del self._threads[ev.thread_id]
                # `after` is the session the thread would start from again, as for a new thread.
                fresh = Session(ev.thread_id, self.spec.initial, ev.provider)
                return outcome._replace(kind=OutcomeKind.FORGOTTEN, after=fresh)
            return run

        return {status: {trigger: forget(step) if trigger in forgetting else step for trigger, step in steps.items()}
                for status, steps in dispatch.items()}

    def _new_record(self, session: Session) -> ThreadRecord:
        return ThreadRecord(session, self.max_event_ids, self.max_finished_turns)

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
        self._observers = (*self._observers, subscription)

        def unsubscribe() -> None:
            self._observers = tuple(s for s in self._observers if s is not subscription)

        return unsubscribe

    def _run_observers(self, outcome: Outcome) -> None:
        pending = self._pending = deque()
        try:
            self._notify(outcome)
            while pending:
                self._notify(self._step(pending.popleft()))
        finally:
            self._pending = None

    def _notify(self, outcome: Outcome) -> None:
        for sub in self._observers:
            if sub.what == "change" and not outcome.changed:
                continue
            if sub.what == "status" and not outcome.status_changed:
                continue
            try:
                sub.observer(outcome)
            except Exception as exc:
                self._observer_failed(sub, exc, outcome)

    @staticmethod
    def _observer_failed(sub: _Subscription, exc: Exception, outcome: Outcome) -> None:
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
            (ThreadState(r.session, tuple(d.hex() for d in r.seen_digests()), tuple(r.finished))
             for r in self._threads.values()),
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
        allow_spec_change: bool = False,
        max_bytes: int = MAX_SNAPSHOT_BYTES,
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
        Nothing is restored unless everything is valid.
        """
        projector = cls(
            spec, engine=engine, max_event_ids=max_event_ids, max_finished_turns=max_finished_turns,
            max_clock_skew=max_clock_skew, clock=clock,
        )
        horizon = projector._horizon
        limits = Limits(
            max_event_ids=max_event_ids,
            max_finished_turns=max_finished_turns,
            max_id_length=projector.parser.max_id_length,
            max_bytes=max_bytes,
            in_future=horizon.beyond,
            allow_spec_change=allow_spec_change,
        )
        for t in decode(data, projector.spec, limits).threads:
            record = projector._new_record(t.session)
            for digest in t.seen_event_digests:
                record.see_digest(bytes.fromhex(digest))  # checked by decode()
            for turn in t.finished_turns:
                record.remember_turn(turn)
            projector._threads[t.session.thread_id] = record
        return projector


def _digest_from_hex(text: object) -> bytes | None:
    """The digest spelled by `text` (32 lowercase hex digits), or None if it spells none."""
    if not isinstance(text, str) or len(text) != DIGEST_SIZE * 2 or text != text.lower():
        return None
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        return None
    return digest if len(digest) == DIGEST_SIZE else None  # fromhex skips spaces


__all__ += ["EventError"]
