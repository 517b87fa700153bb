"""The batch ingest path: many events in, outcome counts and rejections out.

`SessionProjector.apply_batch` (and so `replay`) runs here. It does what `apply` does to each item
(a JSON line, a pre-parsed `Event`, a wire dict), in the same order and with the same results (the
same sessions, memories, outcome kinds, rejection reasons and `EventError`s), without what a caller
of `apply` needs and a bulk caller does not: an `Outcome` per event, an `Event` for lines the
lifecycle ignores, a copy of a decoded payload.

An `Event` this projector's parser returned goes straight to the steps below; any other `Event`
or a wire dict is checked by the parser (`coerce`), as `apply` does. Per JSON line:
- decode: the stdlib's C scanner, or a msgspec envelope (`statemachine.core.wire`), with the same
  results;
- validate the envelope's fields in a row; anything unusual (a blank line, a missing or wrong
  field, a decoding error) goes to the parser (`EventParser.coerce`), which gives the exact error,
  or the event when it is valid after all; a lifecycle event's payload is checked by the parser's
  own `_trigger`;
- build an `Event` only for lifecycle events (the step functions read it);
- de-duplicate, check the clock bound, and step with the lean functions the compiled engine
  generates from the same recorded table as `apply`'s (`CompiledMachine.batch_dispatch`): they
  return None when applied and the rejection reason otherwise.

It falls back to `apply` per line where per-event outcomes are needed: observers subscribed, an
`apply_batch` from inside an observer, or `engine="transitions"`; and for a subclass of
`SessionProjector` that overrides `apply` or `_step`. `verify`'s agreement walk
checks that the lean steps give `apply`'s outcome kind, reason and session on every edge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from sys import intern
from typing import TYPE_CHECKING, Any

from statemachine.core import wire
from statemachine.core.clock import CREATED_IN_FUTURE
from statemachine.core.event import _EMPTY, SYNTHETIC_EVENT_PREFIX, Event, EventError
from statemachine.core.outcome import OutcomeKind
from statemachine.core.session import Session

if TYPE_CHECKING:
    from statemachine.runtime.projector import SessionProjector

__all__ = ["BatchResult", "Item", "OnMalformed", "OnRejected", "OnThread", "ingest", "ingest_numbered"]

# Told about each rejected event: (line number, eventId, reason).
OnRejected = Callable[[int, str, str], object]
# Told about each item that yields no event: (its number, the error; None for a line the reader
# did not read, such as one past the replay's line length limit).
OnMalformed = Callable[[int, "EventError | None"], object]
# Told when an item makes a thread's record (a new thread, or one forgotten and seen again) and
# when one forgets it: (its number, the threadId).
OnThread = Callable[[int, str], object]

_KINDS = tuple(k.value for k in OutcomeKind)
_new_tuple = tuple.__new__
_fromisoformat = datetime.fromisoformat
_LINE_ENDS = ("\n", "\r\n")


@dataclass
class BatchResult:
    """What `apply_batch` did: outcome counts by kind (`applied`, `ignored`, `duplicate`,
    `rejected`, `forgotten`; `deferred` only when called from inside an observer) plus
    `malformed` (items that raised `EventError`, lines not read), and the number of items read,
    blank lines included."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*_KINDS, "malformed"), 0))
    lines: int = 0
    last: int | None = field(default=None, repr=False)  # the number of the last item read


class _Unusual(Exception):
    """A line the fast reading does not settle: the full parser reads it."""


Item = Event | Mapping[str, Any] | bytes | str | None


def ingest(
    projector: SessionProjector,
    lines: Iterable[Item],
    *,
    on_rejected: OnRejected | None = None,
    on_malformed: OnMalformed | None = None,
    first_line: int = 1,
) -> BatchResult:
    """Apply every item; see `SessionProjector.apply_batch`. A None item is a line that was not
    read (counted as malformed, told to `on_malformed` with None)."""
    result = ingest_numbered(projector, enumerate(lines, first_line), on_rejected=on_rejected,
                             on_malformed=on_malformed)
    result.lines = result.last - first_line + 1 if result.last is not None else 0
    return result


def ingest_numbered(
    projector: SessionProjector,
    items: Iterable[tuple[int, Item]],
    *,
    on_rejected: OnRejected | None = None,
    on_malformed: OnMalformed | None = None,
    on_created: OnThread | None = None,
    on_forgotten: OnThread | None = None,
) -> BatchResult:
    """`ingest` over (number, item) pairs, numbers increasing: what a caller that hands over only
    some lines of a file (`replay --jobs`) uses to keep the file's line numbers. `on_created` and
    `on_forgotten` are told when an item makes or forgets a thread's record (through `apply`, an
    item deferred from inside an observer makes none yet, and is not told)."""
    from statemachine.runtime.projector import SessionProjector

    result = BatchResult()
    cls = type(projector)
    # A subclass that changes how one event is applied keeps its own behaviour: each goes through it.
    own_steps = cls.apply is not SessionProjector.apply or cls._step is not SessionProjector._step
    if projector._observers or projector._pending is not None or projector.engine != "compiled" or own_steps:
        _by_apply(projector, items, on_rejected, on_malformed, on_created, on_forgotten, result)
    else:
        _lean(projector, items, on_rejected, on_malformed, on_created, on_forgotten, result)
    return result


def _by_apply(
    projector: SessionProjector,
    items: Iterable[tuple[int, Item]],
    on_rejected: OnRejected | None,
    on_malformed: OnMalformed | None,
    on_created: OnThread | None,
    on_forgotten: OnThread | None,
    result: BatchResult,
) -> None:
    """The fallback: `apply` per line, so observers and the reference engine see every outcome."""
    counts = result.counts
    apply, parse, threads = projector.apply, projector.parse, projector._threads
    told = on_created is not None or on_forgotten is not None
    for number, line in items:
        result.last = number
        if line is None:
            counts["malformed"] += 1
            if on_malformed is not None:
                on_malformed(number, None)
            continue
        if isinstance(line, (bytes, str)) and not line.strip():
            continue
        try:
            # Parsed first when told about threads: whether the record is new is known only before.
            event = parse(line) if told else line
            new = told and event.thread_id not in threads  # type: ignore[union-attr]
            outcome = apply(event)
        except EventError as exc:
            counts["malformed"] += 1
            if on_malformed is not None:
                on_malformed(number, exc)
            continue
        if new and on_created is not None and (event.thread_id in threads  # type: ignore[union-attr]
                                               or outcome.kind is OutcomeKind.FORGOTTEN):
            on_created(number, outcome.event.thread_id)
        if outcome.kind is OutcomeKind.FORGOTTEN and on_forgotten is not None:
            on_forgotten(number, outcome.event.thread_id)
        counts[outcome.kind.value] += 1
        if outcome.kind is OutcomeKind.REJECTED and on_rejected is not None:
            on_rejected(number, outcome.event.event_id, outcome.reason or "")


def _lean(
    projector: SessionProjector,
    items: Iterable[tuple[int, Item]],
    on_rejected: OnRejected | None,
    on_malformed: OnMalformed | None,
    on_created: OnThread | None,
    on_forgotten: OnThread | None,
    result: BatchResult,
) -> None:
    # Written out in one function on purpose, like `SessionProjector._step`: a call per line costs
    # as much as a step. Every name the loop reads is a local.
    from statemachine.engine.registry import compiled_for

    spec = projector.spec
    parser = projector.parser
    coerce = parser.coerce
    trigger_of = parser._trigger
    limit = parser.max_id_length
    lifecycle = frozenset(e.type for e in spec.events)
    forgetting = frozenset(t.name for e in spec.events if e.forgets_thread for t in e.trigger_values)
    steps: Any = compiled_for(spec).batch_dispatch
    threads = projector._threads
    horizon = projector._horizon
    new_record = projector._new_record
    initial = spec.initial
    prefix = SYNTHETIC_EVENT_PREFIX
    too_deep = wire.too_deep
    deep = 2 * wire.MAX_NESTING  # no shorter line can nest that deep: `too_deep` is not called
    decoder = wire.envelope_decoder()
    scan = wire.scan_once
    unusual: tuple[type[BaseException], ...]
    if decoder is not None:
        struct, unusual = decoder[0], (_Unusual, *decoder[1])
    else:
        struct, unusual = None, (_Unusual, ValueError, RecursionError, StopIteration)
    # What one item yields, read as the wire gives it (checked below before any use).
    eid: Any
    type_: Any
    prov: Any
    tid: Any
    cat: Any
    turn: Any
    payload: Any
    text: Any
    dt: Any
    trigger: Any
    ev: Any
    empty = _EMPTY
    utc = UTC
    applied = ignored = duplicate = rejected = forgotten = malformed = 0
    number: Any = None
    try:
        for number, line in items:
            if line is None:
                malformed += 1
                if on_malformed is not None:
                    on_malformed(number, None)
                continue
            if type(line) is Event and line.checked_by is parser:
                ev = line  # this parser's own: trusted, as by `apply`
                eid, prov, tid, dt, trigger = ev.event_id, ev.provider, ev.thread_id, ev.created_dt, ev.trigger
            else:
                try:
                    try:
                        if type(line) is not bytes and type(line) is not str:
                            raise _Unusual  # another Event, a wire dict: the parser checks it in full
                        if struct is None:
                            # `json.loads` without its Python layers: the C scanner on the UTF-8
                            # text. A line it does not settle (leading or odd trailing whitespace,
                            # a BOM, another encoding, lone surrogates) is `_Unusual`.
                            text = line.decode() if isinstance(line, bytes) else line
                            data, end = scan(text, 0)
                            if end != len(text) and text[end:] not in _LINE_ENDS:
                                raise _Unusual
                            if type(data) is not dict or (len(line) > deep and too_deep(line)):
                                raise _Unusual
                            get = data.get
                            eid = get("eventId")
                            type_ = get("type")
                            prov = get("provider")
                            tid = get("threadId")
                            cat = get("createdAt")
                            turn = get("turnId")
                            payload = get("payload")
                            # The parser's checks, for the common case only; the rest is `_Unusual`.
                            if not (
                                type(eid) is str and 0 < len(eid) <= limit and not eid.startswith(prefix)
                                and type(type_) is str and 0 < len(type_) <= limit
                                and type(prov) is str and 0 < len(prov) <= limit
                                and type(tid) is str and 0 < len(tid) <= limit
                                and type(cat) is str and 0 < len(cat) <= limit
                                and (turn is None or (type(turn) is str and 0 < len(turn) <= limit))
                                and (payload is None or type(payload) is dict)
                            ):
                                raise _Unusual
                        else:
                            if len(line) > deep and too_deep(line):
                                raise _Unusual
                            env = struct(line)
                            eid, type_, prov, tid = env.eventId, env.type, env.provider, env.threadId
                            cat, turn, payload = env.createdAt, env.turnId, env.payload
                            # msgspec checked the types; the parser's other checks, for the common case.
                            if not (
                                0 < len(eid) <= limit and not eid.startswith(prefix) and 0 < len(type_) <= limit
                                and 0 < len(prov) <= limit and 0 < len(tid) <= limit and 0 < len(cat) <= limit
                                and (turn is None or 0 < len(turn) <= limit)
                            ):
                                raise _Unusual
                        dt = _fromisoformat(cat)
                        if dt.tzinfo is None:
                            dt = dt.replace(tzinfo=utc)
                        if payload is None:
                            payload = empty
                        if type_ in lifecycle:
                            trigger = trigger_of(type_, payload)
                            ev = _new_tuple(Event, (eid, type_, prov, tid, cat, turn, payload, trigger, dt, parser))
                        else:
                            trigger = ev = None
                    except unusual:
                        if isinstance(line, (bytes, str)) and not line.strip():
                            continue
                        ev = coerce(line)  # the parser's own answer: its EventError, or the event
                        eid, prov, tid, dt, trigger = ev.event_id, ev.provider, ev.thread_id, ev.created_dt, ev.trigger
                except EventError as exc:
                    malformed += 1
                    if on_malformed is not None:
                        on_malformed(number, exc)
                    continue
            # From here on, as `SessionProjector._step`, without the `Outcome`.
            rec = threads.get(tid)
            if rec is None:
                # As `_step`: the provider's name interned, one string per provider.
                rec = threads[tid] = new_record(Session(tid, initial, intern(prov)))
                if on_created is not None:
                    on_created(number, tid)
            if not rec.see(eid):
                duplicate += 1
                continue
            if dt > horizon.limit and horizon.beyond(dt):
                rejected += 1
                if on_rejected is not None:
                    on_rejected(number, eid, CREATED_IN_FUTURE)
                continue
            if trigger is None:
                ignored += 1
                continue
            reason = steps[rec.session.status][trigger](rec, ev)
            if reason is None:
                if trigger in forgetting:
                    if threads.get(tid) is rec:
                        del threads[tid]
                    forgotten += 1
                    if on_forgotten is not None:
                        on_forgotten(number, tid)
                else:
                    applied += 1
            else:
                rejected += 1
                if on_rejected is not None:
                    on_rejected(number, eid, reason)
    finally:
        counts = result.counts
        for kind, n in (("applied", applied), ("ignored", ignored), ("duplicate", duplicate),
                        ("rejected", rejected), ("forgotten", forgotten), ("malformed", malformed)):
            counts[kind] += n
        if number is not None:  # None: no item was read
            result.last = number
