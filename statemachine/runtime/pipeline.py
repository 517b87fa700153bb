"""The one way from an event to a session.

```
item (JSON line, wire dict, Event) -> parse and trust -> thread record -> de-duplicate -> clock bound
    -> the engine's step for (status, trigger) -> commit -> forget (deleting triggers) -> outcome
```

`Pipeline` holds a spec's parser, engine and clock bound, and the thread records it steps. Every
caller drives it: `SessionProjector.apply` and `apply_batch`, the stores (one pipeline over the
rows a transaction loaded), `replay` and its `--jobs` workers, the adapters' replay and the
operations' synthetic events. `step` returns an `Outcome`; `run` takes many items and counts
them, stepping each with the lean functions the compiled engine generates from the same recorded
table (no `Outcome` is built when nobody reads one), or with a given step function when a caller
wants every outcome (observers, a store's journal, the `transitions` engine). Both go through
`admit`, so de-duplication, the clock bound and ignoring are decided in one place.

Observers are not the pipeline's business: their owner wraps `step` (`SessionProjector` runs them
synchronously, a store after its transaction commits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from sys import intern
from typing import Any

from statemachine.core.clock import CREATED_IN_FUTURE, DEFAULT_MAX_CLOCK_SKEW, Clock, Horizon
from statemachine.core.event import Event, EventError
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.core.record import PROCESS_KEY, ThreadRecord, check_key
from statemachine.core.session import Session
from statemachine.engine.boundary import ENGINES, EngineName
from statemachine.engine.registry import compiled_for, engine_for
from statemachine.spec.model import Spec
from statemachine.spec.parser import EventParser

__all__ = [
    "DEFAULT_MAX_EVENT_IDS",
    "DEFAULT_MAX_FINISHED_TURNS",
    "DEFAULT_MAX_TOMBSTONES",
    "BatchResult",
    "Item",
    "OnMalformed",
    "OnRejected",
    "OnThread",
    "Pipeline",
    "StepFn",
]

# Per-thread memory caps. When full, the oldest entry is forgotten first (FIFO): a redelivery
# older than the last N events of its thread is then treated as new, and may be rejected by the
# turn guards instead of being reported as a duplicate.
DEFAULT_MAX_EVENT_IDS = 1024
DEFAULT_MAX_FINISHED_TURNS = 256
# How many deleted threads keep their de-duplication memory (a tombstone), oldest forgotten first:
# a redelivered event of a deleted thread is then a duplicate, not a new thread.
DEFAULT_MAX_TOMBSTONES = 1024

# Told about each rejected event: (item number, eventId, reason).
OnRejected = Callable[[int, str, str], object]
# Told about each item that yields no event: (its number, the error; None for a line the reader
# did not read, such as one past the replay's line length limit).
OnMalformed = Callable[[int, "EventError | None"], object]
# Told when an item makes a thread's record (a new thread, or one forgotten and seen again) and
# when one forgets it: (its number, the threadId).
OnThread = Callable[[int, str], object]
# A caller's own step: a checked event -> its outcome (observers, journals).
StepFn = Callable[[Event], Outcome]

Item = Event | Mapping[str, Any] | bytes | str | None

_KINDS = tuple(k.value for k in OutcomeKind)
_new = tuple.__new__  # an Outcome without the NamedTuple's Python-level __new__ (every field given)
_DUPLICATE, _IGNORED, _REJECTED, _FORGOTTEN = (OutcomeKind.DUPLICATE, OutcomeKind.IGNORED, OutcomeKind.REJECTED,
                                               OutcomeKind.FORGOTTEN)


@dataclass
class BatchResult:
    """What a batch did: outcome counts by kind (`applied`, `ignored`, `duplicate`, `rejected`,
    `forgotten`; `deferred` only when applied from inside an observer) plus `malformed` (items that
    raised `EventError`, lines not read), and the number of items read, blank lines included."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*_KINDS, "malformed"), 0))
    lines: int = 0
    last: int | None = field(default=None, repr=False)  # the number of the last item read


class Pipeline:
    """A spec's parser, engine and clock bound, and the thread records they step (see the module).

    `threads` maps threadId -> `ThreadRecord` in the order the threads were made: that order is
    every holder's output order. Not thread-safe by itself."""

    def __init__(
        self,
        spec: Spec,
        *,
        parser: EventParser | None = None,
        engine: EngineName = "compiled",
        max_event_ids: int = DEFAULT_MAX_EVENT_IDS,
        max_finished_turns: int = DEFAULT_MAX_FINISHED_TURNS,
        max_clock_skew: timedelta | None = DEFAULT_MAX_CLOCK_SKEW,
        clock: Clock | None = None,
        max_tombstones: int = DEFAULT_MAX_TOMBSTONES,
        event_id_key: bytes | None = None,
    ) -> None:
        if max_tombstones < 0:
            raise ValueError("max_tombstones must not be negative")
        if max_event_ids < 1:
            raise ValueError("max_event_ids must be at least 1")
        if max_finished_turns < 1:
            raise ValueError("max_finished_turns must be at least 1")
        if engine not in ENGINES:
            raise ValueError(f"engine must be 'compiled' or 'transitions', got {engine!r}")
        if parser is not None and parser.spec is not spec:
            raise ValueError("parser must be an EventParser of this spec")
        self.spec = spec
        self.parser = parser if parser is not None else EventParser(spec)
        self.engine_name = engine
        # The engine itself is kept: its generated source stays readable (linecache) while in use.
        self.engine = engine_for(spec, engine)
        self.dispatch = self.engine.dispatch
        self.horizon = Horizon(max_clock_skew, clock)
        self.max_event_ids = max_event_ids
        self.max_finished_turns = max_finished_turns
        # The secret key of the eventId digests (`statemachine.core.record`): the process's unless
        # a snapshot or a store brings its own.
        self.event_id_key = check_key(event_id_key) if event_id_key is not None else PROCESS_KEY
        self.threads: dict[str, ThreadRecord] = {}
        # Deleted threads -> their last record (only its de-duplication memory is read), oldest
        # deletion first, at most `max_tombstones`.
        self.tombstones: dict[str, ThreadRecord] = {}
        self.max_tombstones = max_tombstones
        self.initial = spec.initial
        self.forgetting = frozenset(t.name for e in spec.events if e.forgets_thread for t in e.trigger_values)

    # -- records -------------------------------------------------------------------------------

    def new_record(self, session: Session) -> ThreadRecord:
        return ThreadRecord(session, self.max_event_ids, self.max_finished_turns, self.event_id_key)

    def fresh(self, thread_id: str, provider: str) -> Session:
        """The session a thread starts from: the initial status, no turn. The provider's name is
        interned: sessions share one string per provider."""
        return Session(thread_id, self.initial, intern(provider))

    # -- one event -----------------------------------------------------------------------------

    def admit(self, ev: Event) -> ThreadRecord | OutcomeKind:
        """Everything before the engine: the thread's record (made for a new thread), the
        de-duplication memory, the clock bound, and whether the lifecycle reads this type. Returns
        the record to step, or the kind the event ends with here (duplicate, rejected as
        `created_in_future`, ignored); the eventId is remembered either way. The one admission of
        every path (`step` and `run`): a known thread, the common case, comes first."""
        record = self.threads.get(ev.thread_id)
        if record is None:
            record = self._begin(ev)
            if record is None:
                return _DUPLICATE  # a redelivery from before the delete: the thread stays deleted
        if not record.see(ev.event_id):
            return _DUPLICATE
        created = ev.created_dt
        horizon = self.horizon
        if created > horizon.limit and horizon.beyond(created):
            # Refused before the spec sees it: no lifecycle rule may depend on a time that would
            # pin updatedAt. The eventId stays remembered, like any rejection.
            return _REJECTED
        if ev.trigger is None:
            return _IGNORED
        return record

    def _begin(self, ev: Event) -> ThreadRecord | None:
        """The record of a thread that has none: a new one, or None when a deleted thread's
        tombstone already saw this eventId (a redelivery from before the delete)."""
        thread_id = ev.thread_id
        tomb = self.tombstones.get(thread_id) if self.tombstones else None
        if tomb is not None and tomb.has_seen(ev.event_id):
            return None
        record = self.threads[thread_id] = self.new_record(self.fresh(thread_id, ev.provider))
        if tomb is not None:
            # A new event: the thread starts anew, and still knows the ids it saw before.
            del self.tombstones[thread_id]
            record.adopt_seen(tomb)
        return record

    def forget(self, record: ThreadRecord, ev: Event) -> None:
        """A deleting trigger was applied: the thread's record goes, and its de-duplication memory
        stays as a tombstone (a redelivery is a duplicate; a new event starts the thread anew)."""
        if self.threads.get(ev.thread_id) is record:
            del self.threads[ev.thread_id]
        self.bury(ev.thread_id, record)

    def bury(self, thread_id: str, record: ThreadRecord) -> None:
        """Keep `record`'s memory as `thread_id`'s tombstone, the newest; the oldest past the cap go."""
        if self.max_tombstones == 0:
            return
        tombstones = self.tombstones
        tombstones.pop(thread_id, None)
        tombstones[thread_id] = record
        while len(tombstones) > self.max_tombstones:
            del tombstones[next(iter(tombstones))]

    def step(self, ev: Event) -> Outcome:
        """One checked event -> its outcome, the record already updated."""
        admitted = self.admit(ev)
        if type(admitted) is OutcomeKind:
            held = self.threads.get(ev.thread_id)
            # No record: a redelivery to a deleted thread, which stays deleted.
            before = held.session if held is not None else self.fresh(ev.thread_id, ev.provider)
            reason = CREATED_IN_FUTURE if admitted is _REJECTED else None
            return _new(Outcome, (admitted, ev, before, before, reason, None))
        record: Any = admitted
        trigger = ev.trigger
        assert trigger is not None
        outcome = self.dispatch[record.session.status][trigger](record, ev)
        if trigger in self.forgetting and outcome.kind is OutcomeKind.APPLIED:
            self.forget(record, ev)
            # `after` is the session the thread would start from again, as for a new thread.
            return outcome._replace(kind=_FORGOTTEN, after=self.fresh(ev.thread_id, ev.provider))
        return outcome

    # -- many events ---------------------------------------------------------------------------

    def run(
        self,
        items: Iterable[tuple[int, Item]],
        *,
        step: StepFn | None = None,
        on_outcome: Callable[[int, Outcome], object] | None = None,
        on_rejected: OnRejected | None = None,
        on_malformed: OnMalformed | None = None,
        on_created: OnThread | None = None,
        on_forgotten: OnThread | None = None,
        result: BatchResult | None = None,
    ) -> BatchResult:
        """Every (number, item) in order: checked, stepped, counted. A None item is a line that was
        not read (malformed, told to `on_malformed` with None); a blank line is skipped; a
        malformed item is counted, told to `on_malformed` and skipped.

        `step` (default: the pipeline's own, through the engine's lean functions) is used for every
        event when given or when `on_outcome` wants each outcome; the `transitions` engine always
        builds outcomes. `on_created` / `on_forgotten` are told when an item makes or forgets a
        thread's record."""
        result = result if result is not None else BatchResult()
        counts = result.counts
        parser = self.parser
        read = parser.line_reader()
        coerce = parser.coerce
        threads = self.threads
        told = on_created is not None
        if step is None and (on_outcome is not None or self.engine_name != "compiled"):
            step = self.step
        # Written out in one loop on purpose: a call per item costs as much as a step.
        lean: Any = compiled_for(self.spec).batch_dispatch if step is None else None
        admit, forgetting, forget = self.admit, self.forgetting, self.forget
        applied = ignored = duplicate = rejected = forgotten = malformed = 0
        number: Any = None
        try:
            for number, item in items:
                if item is None:
                    malformed += 1
                    if on_malformed is not None:
                        on_malformed(number, None)
                    continue
                try:
                    if type(item) is Event and item.checked_by is parser:
                        ev = item  # this parser's own: trusted as it is
                    elif type(item) is bytes or type(item) is str:
                        ev = read(item)
                    else:
                        ev = coerce(item)
                except EventError as exc:
                    if isinstance(item, (bytes, str)) and not item.strip():
                        continue  # a blank line
                    malformed += 1
                    if on_malformed is not None:
                        on_malformed(number, exc)
                    continue
                tid = ev.thread_id
                new = told and tid not in threads
                if step is not None:
                    outcome = step(ev)
                    kind = outcome.kind
                    if new and on_created is not None and (tid in threads or kind is _FORGOTTEN):
                        on_created(number, tid)
                    if kind is OutcomeKind.APPLIED:
                        applied += 1
                    elif kind is _IGNORED:
                        ignored += 1
                    elif kind is _DUPLICATE:
                        duplicate += 1
                    elif kind is _REJECTED:
                        rejected += 1
                        if on_rejected is not None:
                            on_rejected(number, ev.event_id, outcome.reason or "")
                    elif kind is _FORGOTTEN:
                        forgotten += 1
                        if on_forgotten is not None:
                            on_forgotten(number, tid)
                    else:
                        counts[kind.value] += 1  # deferred, from inside an observer
                    if on_outcome is not None:
                        on_outcome(number, outcome)
                    continue
                admitted: Any = admit(ev)
                if new and on_created is not None and tid in threads:
                    on_created(number, tid)
                if type(admitted) is OutcomeKind:
                    if admitted is _DUPLICATE:
                        duplicate += 1
                    elif admitted is _IGNORED:
                        ignored += 1
                    else:
                        rejected += 1
                        if on_rejected is not None:
                            on_rejected(number, ev.event_id, CREATED_IN_FUTURE)
                    continue
                trigger = ev.trigger
                reason = lean[admitted.session.status][trigger](admitted, ev)
                if reason is not None:
                    rejected += 1
                    if on_rejected is not None:
                        on_rejected(number, ev.event_id, reason)
                elif trigger in forgetting:
                    forget(admitted, ev)
                    forgotten += 1
                    if on_forgotten is not None:
                        on_forgotten(number, tid)
                else:
                    applied += 1
        finally:
            for kind_name, n in (("applied", applied), ("ignored", ignored), ("duplicate", duplicate),
                                 ("rejected", rejected), ("forgotten", forgotten), ("malformed", malformed)):
                counts[kind_name] += n
            if number is not None:  # None: no item was read
                result.last = number
        return result
