"""What every provider adapter shares: per-thread state, deterministic ids, counters, error reports.

An adapter reads one raw provider line at a time (`feed`) and returns envelope dicts in T3's
wire shape (`{eventId, type, provider, threadId, createdAt, turnId?, payload}`) that
`SessionProjector.apply` accepts. A malformed line is reported (`errors`, `stats.malformed`,
`last_error`) and yields no event; `feed` never raises for any input, and a bad line changes no
adapter state. `finish()` settles the turns a stream left open.

State is kept per thread (`ThreadState`: the open turn, turn numbering, turns already settled,
open requests, message ids seen, the answers to redelivered messages), so one thread's traffic
never changes what another thread's lines mean. Only what the protocol itself scopes wider is
kept wider: a JSON-RPC connection's request ids and its generation (see the ACP and Codex
adapters).

Identity is deterministic, so adapting the same raw log twice gives identical events:
- a message the protocol identifies (Claude `uuid`, a JSON-RPC id, a Codex turn id) gets an
  eventId from that identity, so a redelivered message yields the same events again (and the
  projector counts them as duplicates) without touching the adapter's state;
- any other line gets an eventId from its position in the stream and a digest of its content, so
  two identical lines (two `turn.started` in a row) are two events, not a redelivery;
- `createdAt` comes from the protocol where it has a timestamp, else from the clock. The default
  clock is the wall clock (`wall_clock`); replaying a saved log passes `LineClock()`, a
  deterministic clock (1970-01-01T00:00:00Z plus one second per raw line), so the same log gives
  the same events.

Undo without copies: every change a line makes to a container (`BoundedMap`, `BoundedSet`) is
written to the adapter's `Journal`, and a thread's few scalars are saved when the line first
touches the thread. A malformed line rolls the journal back; a good line costs only what it
changes, however many requests are pending.
"""

from __future__ import annotations

import copy
import hashlib
import json
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, Literal, TypeVar

__all__ = [
    "EOF_SETTLEMENTS",
    "MAX_ERRORS_LISTED",
    "MAX_PROTOCOL_ID",
    "Adapter",
    "AdapterError",
    "AdapterStats",
    "BoundedMap",
    "BoundedSet",
    "Clock",
    "Envelope",
    "EofSettlement",
    "Journal",
    "LineClock",
    "Malformed",
    "Request",
    "ThreadState",
    "check_stream_name",
    "wall_clock",
    "wire_time",
]

Envelope = dict[str, Any]
Clock = Callable[[], datetime]
EofSettlement = Literal["interrupted", "error", "leave"]
EOF_SETTLEMENTS: tuple[EofSettlement, ...] = ("interrupted", "error", "leave")

# What `finish()` emits per open turn, by settlement rule ("leave" emits nothing: the stale-turn
# bound, statemachine.runtime.operations.expire_stale_turns, settles the turn later).
EOF_PAYLOADS: dict[str, dict[str, str]] = {
    "interrupted": {"state": "interrupted", "reason": "end_of_stream"},
    "error": {"state": "failed", "errorMessage": "The provider stream ended while the turn was open"},
}

MAX_ERRORS_LISTED = 1000
# A protocol id (thread, session, message, request) longer than this is not an id: the derived
# turn and event ids must stay within the envelope's 256-character limit.
MAX_PROTOCOL_ID = 160
# Longest eventId written as text (the envelope allows 256).
MAX_EVENT_ID = 200
# Messages remembered by protocol identity per scope (thread, or connection where the protocol
# scopes ids so), to answer a redelivery with the same events.
DEFAULT_MEMORY = 4096
# Per thread: turns remembered as settled, requests remembered after they opened.
MAX_FINISHED_TURNS = 4096
MAX_REQUESTS = 4096

K = TypeVar("K")
V = TypeVar("V")


def wire_time(moment: datetime) -> str:
    """An aware datetime as the envelope's ISO 8601 UTC text (`...Z`)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def wall_clock() -> datetime:
    """The default clock: now, in UTC. A live adapter stamps events with the time they arrived."""
    return datetime.now(UTC)


def check_stream_name(name: str) -> str:
    """A stream name goes into ids: at most 32 characters, no ':' (the ids' separator)."""
    if not isinstance(name, str) or len(name) > 32 or ":" in name:
        raise ValueError("a stream name has at most 32 characters and no ':'")
    return name


class LineClock:
    """The replay clock: `start` plus `step` per call; an adapter calls it once per raw line.

    Deterministic on purpose: adapting a file twice gives identical `createdAt` values, and
    their order follows the stream's. Not for live streams: its times are not the events' times.
    """

    def __init__(self, start: datetime = datetime(1970, 1, 1, tzinfo=UTC), step: timedelta = timedelta(seconds=1)):
        self._next = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
        self._step = step

    def __call__(self) -> datetime:
        now = self._next
        self._next = now + self._step
        return now


class Malformed(Exception):
    """Raised inside an adapter for a line it cannot read; `feed` turns it into an `AdapterError`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class AdapterError:
    """One malformed raw line: its 1-based number and the field at fault."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class AdapterStats:
    lines: int = 0  # raw lines fed, blank ones included
    events: int = 0  # envelopes returned, settlements included
    ignored: int = 0  # known messages that mean nothing to the lifecycle (items, deltas, ...)
    unknown: int = 0  # message types or enum values this adapter does not know (skipped or defaulted)
    redelivered: int = 0  # messages seen before by protocol identity (answered with the same events)
    malformed: int = 0  # lines that are not a readable message of this format


@dataclass
class Line:
    """The line being adapted: where it is, when (clock), and how its events are named."""

    number: int
    now: datetime
    key: str  # eventId stem
    emitted: int = 0
    threads: dict[str, Line] = field(default_factory=dict)  # its per-thread namings (`for_thread`)


class Journal:
    """What the line being adapted changed, as undo steps; `rollback` puts everything back."""

    __slots__ = ("_undo",)

    def __init__(self) -> None:
        self._undo: list[Callable[[], object]] = []

    def note(self, undo: Callable[[], object]) -> None:
        self._undo.append(undo)

    def begin(self) -> None:
        self._undo.clear()

    def rollback(self) -> None:
        while self._undo:
            self._undo.pop()()

    def __len__(self) -> int:
        return len(self._undo)


class BoundedMap(Generic[K, V]):
    """A dict that forgets its oldest entries beyond `limit`, each change written to a `Journal`.

    Copying a large table for every line would make a bad line's undo the cost of every line;
    a journal of what the line changed costs only what it changed. Entries carry their insertion
    number, so an undone removal goes back to its place (only a rolled-back line pays for that).
    """

    __slots__ = ("_count", "_data", "_journal", "_limit")

    def __init__(self, limit: int, journal: Journal) -> None:
        self._data: dict[K, tuple[int, V]] = {}
        self._limit = limit
        self._journal = journal
        self._count = 0

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BoundedMap) and self.items() == other.items()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BoundedMap({dict(self.items())!r})"

    def get(self, key: K) -> V | None:
        entry = self._data.get(key)
        return entry[1] if entry is not None else None

    def items(self) -> list[tuple[K, V]]:
        return [(k, v) for k, (_, v) in self._data.items()]

    def last(self) -> tuple[K, V] | None:
        """The newest entry."""
        if not self._data:
            return None
        key = next(reversed(self._data))
        return key, self._data[key][1]

    def set(self, key: K, value: V) -> None:
        data = self._data
        old = data.get(key)
        if old is not None:
            data[key] = (old[0], value)
            self._journal.note(lambda: data.__setitem__(key, old))
            return
        self._count += 1
        data[key] = (self._count, value)
        self._journal.note(lambda: data.pop(key))
        if len(data) > self._limit:
            oldest = next(iter(data))
            evicted = data.pop(oldest)
            self._journal.note(lambda: _reinsert(data, oldest, evicted))

    def pop(self, key: K) -> V | None:
        data = self._data
        entry = data.pop(key, None)
        if entry is None:
            return None
        self._journal.note(lambda: _reinsert(data, key, entry))
        return entry[1]

    def clear(self) -> None:
        """Forget everything (a new connection): the old entries are kept whole for undo."""
        if not self._data:
            return
        old = self._data
        self._data = {}
        self._journal.note(lambda: setattr(self, "_data", old))


def _reinsert(data: dict[Any, tuple[int, Any]], key: Any, entry: tuple[int, Any]) -> None:
    data[key] = entry
    if len(data) < 2:
        return
    newest = reversed(data.values())
    next(newest)  # the entry itself
    if next(newest)[0] > entry[0]:
        # Back to its place in insertion order: only a rolled-back line pays for this sort.
        ordered = sorted(data.items(), key=lambda item: item[1][0])
        data.clear()
        data.update(ordered)


class BoundedSet:
    """A set that forgets its oldest keys beyond `limit`; its changes can be undone (`Journal`)."""

    __slots__ = ("_map",)

    def __init__(self, limit: int, journal: Journal | None = None) -> None:
        self._map: BoundedMap[str, None] = BoundedMap(limit, journal if journal is not None else Journal())

    def __contains__(self, key: object) -> bool:
        return key in self._map

    def __len__(self) -> int:
        return len(self._map)

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BoundedSet) and self._map == other._map

    __hash__ = None  # type: ignore[assignment]

    def add(self, key: str) -> None:
        if key not in self._map:
            self._map.set(key, None)

    def begin(self) -> None:
        """Start a line: what follows can be undone by `rollback` (for a set with its own journal)."""
        self._map._journal.begin()

    def rollback(self) -> None:
        self._map._journal.rollback()


@dataclass(frozen=True)
class Request:
    """A request the provider made of the user (an approval, a question), as the adapter saw it."""

    event: str  # the event that opened it: request.opened, user-input.requested; "" if unattended
    request_id: Any  # as the protocol gave it (a JSON-RPC id is a string or an integer)
    request_type: str
    turn: str | None  # the turn it belongs to (None: raised outside a turn)


@dataclass(eq=False)
class ThreadState:
    """Everything the adapter remembers about one thread.

    The scalars are saved when a line first touches the thread; the containers journal their
    own changes. `extra` holds a format's own scalars (never a container: it is saved by copy).
    """

    journal: Journal = field(repr=False)
    started: bool = False  # session.started already emitted
    open_turn: str | None = None
    turns: int = 0  # turns synthesized so far, for `<thread>:turn:<n>`
    extra: dict[str, Any] = field(default_factory=dict)
    finished: BoundedSet = field(init=False)  # turns settled here: never opened again
    requests: BoundedMap[str, Request] = field(init=False)  # requests seen, by key, until resolved
    open_requests: BoundedMap[str, Request] = field(init=False)  # those of the open turn, oldest first
    seen: BoundedSet = field(init=False)  # message ids seen (a format's own use)

    def __post_init__(self) -> None:
        self.finished = BoundedSet(MAX_FINISHED_TURNS, self.journal)
        self.requests = BoundedMap(MAX_REQUESTS, self.journal)
        self.open_requests = BoundedMap(MAX_REQUESTS, self.journal)
        self.seen = BoundedSet(MAX_FINISHED_TURNS, self.journal)

    def scalars(self) -> tuple[bool, str | None, int, dict[str, Any]]:
        return self.started, self.open_turn, self.turns, dict(self.extra)

    def restore(self, saved: tuple[bool, str | None, int, dict[str, Any]]) -> None:
        self.started, self.open_turn, self.turns, extra = saved
        self.extra = dict(extra)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ThreadState) and (
            self.scalars(), self.finished, self.requests, self.open_requests, self.seen
        ) == (other.scalars(), other.finished, other.requests, other.open_requests, other.seen)

    __hash__ = None  # type: ignore[assignment]


class Adapter(ABC):
    """A streaming adapter for one raw format. One instance per stream (it holds the stream's state)."""

    format: ClassVar[str]
    default_provider: ClassVar[str]

    def __init__(
        self,
        *,
        provider: str | None = None,
        clock: Clock | None = None,
        on_eof: EofSettlement = "interrupted",
        stream: str = "",
        memory: int = DEFAULT_MEMORY,
    ) -> None:
        """`clock` stamps events the protocol gives no time for: the wall clock by default; pass
        `LineClock()` to replay a saved log reproducibly. `stream` names this stream when one
        thread spans several (`codex exec resume`, a resumed Claude session, a reconnected ACP
        agent): positional event ids and synthesized turn ids include it, so the second stream's
        first turn is not taken for the first's."""
        check_stream_name(stream)
        if on_eof not in EOF_SETTLEMENTS:
            raise ValueError(f"on_eof must be one of {list(EOF_SETTLEMENTS)}, got {on_eof!r}")
        if memory < 1:
            raise ValueError("memory must be at least 1")
        if clock is not None and not callable(clock):
            raise TypeError("clock must be a callable returning a datetime (wall_clock, LineClock(), ...)")
        self.provider = provider or self.default_provider
        self.clock: Clock = clock if clock is not None else wall_clock
        self.on_eof: EofSettlement = on_eof
        self.stream = stream
        self._prefix = f"{stream}:" if stream else ""
        self.stats = AdapterStats()
        self.errors: list[AdapterError] = []  # the first MAX_ERRORS_LISTED; stats.malformed is exact
        self.last_error: AdapterError | None = None  # the error of the last line fed, if any
        self._memory = memory
        # Answers to redeliveries, per scope (a thread, or a connection where ids are the
        # connection's): one thread's traffic never evicts another's.
        self._replies: dict[str, OrderedDict[str, list[Envelope]]] = {}
        self._journal = Journal()
        self._threads: dict[str, ThreadState] = {}
        # Per line: the threads it touched, their scalars as they were (None: created by it).
        self._touched: dict[str, tuple[bool, str | None, int, dict[str, Any]] | None] = {}
        self._done = False

    # -- the stream ----------------------------------------------------------------------------

    def feed(self, raw: str | bytes) -> list[Envelope]:
        """One raw line -> the envelopes it means (often none). Never raises for any input."""
        self.stats.lines += 1
        self.last_error = None
        number = self.stats.lines
        if not raw.strip():
            return []
        now = self.clock()
        try:
            message = json.loads(raw.strip())
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            return self._malformed(number, "line", f"not valid JSON: {exc}")
        if not isinstance(message, dict):
            return self._malformed(number, "message", f"must be a JSON object, got {type(message).__name__}")
        try:
            identity = self._identity(message)
        except Malformed as exc:
            return self._malformed(number, exc.field, exc.message)
        if identity is not None:
            scope, key = identity
            replies = self._replies.get(scope)
            if replies is not None and key in replies:
                self.stats.redelivered += 1
                replies.move_to_end(key)
                return self._count(copy.deepcopy(replies[key]))
        else:
            try:
                canonical = json.dumps(message, sort_keys=True, ensure_ascii=True).encode("ascii")
            except RecursionError:  # parsed just below the limit, but the caller's stack is deeper
                return self._malformed(number, "line", "nested too deeply")
            key = f"{self._prefix}L{number}-{hashlib.sha256(canonical).hexdigest()[:12]}"
        line = Line(number, now, key)
        snapshot = self._save()
        try:
            events = self._adapt(message, line)
        except Malformed as exc:
            self._restore(snapshot)  # a bad line changes nothing
            return self._malformed(number, exc.field, exc.message)
        if identity is not None:
            replies = self._replies.setdefault(identity[0], OrderedDict())
            replies[identity[1]] = copy.deepcopy(events)
            if len(replies) > self._memory:
                replies.popitem(last=False)
        return self._count(events)

    def finish(self) -> list[Envelope]:
        """End of stream: settle every open turn by the `on_eof` rule. A second call returns []."""
        if self._done:
            return []
        self._done = True
        if self.on_eof == "leave":
            return []
        line = Line(self.stats.lines + 1, self.clock(), f"{self._prefix}eof")
        return self._count(self.settle_open_turns(line))

    # -- for subclasses ------------------------------------------------------------------------

    @abstractmethod
    def _adapt(self, message: dict[str, Any], line: Line) -> list[Envelope]:
        """The envelopes for one message. Raise `Malformed` for a message it cannot read: `feed`
        then undoes what the line changed (thread records through `thread()`, containers
        through the journal, the rest through `_save_extra` / `_restore_extra`)."""

    def _identity(self, message: dict[str, Any]) -> tuple[str, str] | None:
        """The message's protocol identity as (scope, key): redeliveries share it, and the scope
        (a thread, or a connection) holds the memory that answers them. None: named by position."""
        return None

    def event(
        self,
        line: Line,
        type_: str,
        thread_id: str,
        payload: Mapping[str, Any] | None = None,
        turn_id: str | None = None,
        created_at: datetime | None = None,
    ) -> Envelope:
        event_id = f"{line.key}:{line.emitted}"
        if len(event_id) > MAX_EVENT_ID:  # long protocol ids: keep the identity, not the text
            event_id = "sha256:" + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()
        envelope: Envelope = {
            "eventId": event_id,
            "type": type_,
            "provider": self.provider,
            "threadId": thread_id,
            "createdAt": wire_time(created_at if created_at is not None else line.now),
        }
        if turn_id is not None:
            envelope["turnId"] = turn_id
        envelope["payload"] = dict(payload or {})
        line.emitted += 1
        return envelope

    def thread(self, thread_id: str) -> ThreadState:
        """The thread's record, for changing it (created on first use)."""
        state = self._threads.get(thread_id)
        if thread_id not in self._touched:
            self._touched[thread_id] = state.scalars() if state is not None else None
        if state is None:
            state = self._threads[thread_id] = ThreadState(self._journal)
        return state

    def known_thread(self, thread_id: str) -> bool:
        return thread_id in self._threads

    def start_session(self, line: Line, thread_id: str, *, thread_started: bool = True) -> list[Envelope]:
        """`session.started` the first time a thread is seen, then `thread.started` (if asked)."""
        state = self.thread(thread_id)
        events = []
        if not state.started:
            state.started = True
            events.append(self.event(line, "session.started", thread_id))
        if thread_started:
            events.append(self.event(line, "thread.started", thread_id, {"providerThreadId": thread_id}))
        return events

    def open_turn(self, line: Line, thread_id: str, turn_id: str | None = None, **kw: Any) -> Envelope | None:
        """`turn.started` for a new turn (synthesized `<thread>:turn:<n>` unless the protocol names
        it), or None when this thread already has a turn open (the provider is still on it)."""
        state = self.thread(thread_id)
        if state.open_turn is not None:
            return None
        state.turns += 1
        turn = turn_id if turn_id is not None else f"{thread_id}:{self._prefix}turn:{state.turns}"
        state.open_turn = turn
        return self.event(line, "turn.started", thread_id, kw.pop("payload", None), turn, **kw)

    def close_turn(self, thread_id: str) -> str | None:
        """Forget the thread's open turn (it was settled), and the requests it held; returns it.
        The turn is remembered as settled, so the adapter never opens it again."""
        if thread_id not in self._threads:
            return None
        state = self.thread(thread_id)
        turn, state.open_turn = state.open_turn, None
        if turn is not None:
            state.finished.add(turn)
            state.open_requests.clear()  # the projector clears `awaiting` with the turn
            state.extra.pop("fatal", None)
        return turn

    def open_turn_of(self, thread_id: str) -> str | None:
        state = self._threads.get(thread_id)
        return state.open_turn if state is not None else None

    def settle_open_turns(self, line: Line) -> list[Envelope]:
        """The `on_eof` settlement of every open turn (the stream, or a connection, ended)."""
        if self.on_eof == "leave":
            return []
        events = []
        for thread_id in [t for t, state in self._threads.items() if state.open_turn is not None]:
            events.append(self.settle_turn(self.for_thread(line, thread_id), thread_id))
        return events

    @staticmethod
    def for_thread(line: Line, thread_id: str) -> Line:
        """The line, naming its events per thread: when one line speaks for several threads (a
        connection or the stream ends), each thread's event ids are its own, whatever the others."""
        named = line.threads.get(thread_id)
        if named is None:
            named = line.threads[thread_id] = Line(line.number, line.now, f"{line.key}:{thread_id}")
        return named

    def settle_turn(self, line: Line, thread_id: str) -> Envelope:
        """The `on_eof` settlement of one thread's open turn; `failed` with the provider's own
        message when it already reported the turn's fatal error (`extra["fatal"]`)."""
        state = self.thread(thread_id)
        fatal = state.extra.get("fatal")
        payload = dict(EOF_PAYLOADS[self.on_eof])
        if isinstance(fatal, str):
            payload = {"state": "failed", "errorMessage": fatal}
        turn = self.close_turn(thread_id)
        return self.event(line, "turn.completed", thread_id, payload, turn)

    # -- requests (approvals, questions) -------------------------------------------------------

    def open_request(
        self, line: Line, thread_id: str, key: str, request: Request, payload: Mapping[str, Any], reason: str
    ) -> list[Envelope]:
        """Report a request of the user: its event, then `session.state.changed {waiting}` when it
        belongs to the open turn. Remembered by `key` (the protocol's request id, scoped as the
        protocol scopes it) so its resolution names the request's own turn. A request outside a
        turn is open too (the projector keeps the session running for it), so that a cancel or a
        closed connection answers it."""
        state = self.thread(thread_id)
        state.requests.set(key, request)
        if not request.event:
            return self.ignored()  # answered by the client program itself: nobody waits
        events = [self.event(line, request.event, thread_id, payload, request.turn)]
        if request.turn is None or request.turn == state.open_turn:
            state.open_requests.set(key, request)
        if request.turn is not None and request.turn == state.open_turn:
            events.append(self.event(line, "session.state.changed", thread_id, {"state": "waiting", "reason": reason}))
        return events

    def resolve_request(
        self, line: Line, thread_id: str, key: str, payload: Mapping[str, Any] | None = None
    ) -> list[Envelope] | None:
        """`request.resolved` for a known request, naming its turn and its requestId; None when the
        request is not known (never seen, or already resolved). The projector keeps every open
        request by its id, so the others stay open."""
        if thread_id not in self._threads:
            return None
        state = self.thread(thread_id)
        request = state.requests.pop(key)
        if request is None:
            return None
        if not request.event:
            return self.ignored()
        state.open_requests.pop(key)
        return [self.event(line, "request.resolved", thread_id, {**_named(request), **(payload or {})}, request.turn)]

    def drop_requests(
        self, line: Line, thread_id: str | None = None, outcome: str = "connection_closed"
    ) -> list[Envelope]:
        """Every request of one thread (or of all) is over without an answer: a cancelled turn,
        a closed connection. `request.resolved` for each the open turn waits on; the rest are
        forgotten (their turn is already settled, the projector awaits nothing from them)."""
        names = [thread_id] if thread_id is not None else [t for t, s in self._threads.items() if len(s.requests)]
        events = []
        for name in names:
            if name not in self._threads or not len(self._threads[name].requests):
                continue
            state = self.thread(name)
            named_line = line if thread_id is not None else self.for_thread(line, name)
            for _, request in state.open_requests.items():
                events.append(self.event(named_line, "request.resolved", name,
                                         {**_named(request), "outcome": outcome}, request.turn))
            state.open_requests.clear()
            state.requests.clear()
        return events

    def ignored(self) -> list[Envelope]:
        self.stats.ignored += 1
        return []

    def unknown(self) -> list[Envelope]:
        self.stats.unknown += 1
        return []

    # -- internals -----------------------------------------------------------------------------

    def _count(self, events: list[Envelope]) -> list[Envelope]:
        self.stats.events += len(events)
        return events

    def _malformed(self, number: int, field_: str, message: str) -> list[Envelope]:
        self.stats.malformed += 1
        error = AdapterError(number, field_, message[:300])
        self.last_error = error
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append(error)
        return []

    def _save(self) -> tuple[AdapterStats, Any]:
        # Threads are saved as the line touches them (`thread`), containers through the journal;
        # the rest is a few scalars.
        self._touched = {}
        self._journal.begin()
        return copy.copy(self.stats), self._save_extra()

    def _restore(self, snapshot: tuple[AdapterStats, Any]) -> None:
        self._journal.rollback()
        for thread_id, before in self._touched.items():
            if before is None:
                self._threads.pop(thread_id, None)
            else:
                self._threads[thread_id].restore(before)
        self._touched = {}
        self.stats, extra = snapshot
        self._restore_extra(extra)

    def _save_extra(self) -> Any:
        """Subclass scalars beyond the per-thread records (containers journal themselves)."""
        return None

    def _restore_extra(self, extra: Any) -> None:  # noqa: B027 - optional hook, nothing to restore by default
        """Put back what `_save_extra` returned."""


def _named(request: Request) -> dict[str, Any]:
    named: dict[str, Any] = {"requestType": request.request_type}
    if request.request_id is not None:
        named = {"requestId": request.request_id, **named}
    return named


# -- reading fields: each failure names the field ------------------------------------------------


def text(data: Mapping[str, Any], name: str, where: str, *, limit: int | None = None) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        got = "missing" if value is None else f"a {type(value).__name__}" if not isinstance(value, str) else "empty"
        raise Malformed(f"{where}{name}", f"must be a non-empty string, got {got}")
    if limit is not None and len(value) > limit:
        raise Malformed(f"{where}{name}", f"is {len(value)} characters long; the limit is {limit}")
    return value


def protocol_id(data: Mapping[str, Any], name: str, where: str = "") -> str:
    """A thread/session/turn id from the protocol: a non-empty string within MAX_PROTOCOL_ID."""
    return text(data, name, where, limit=MAX_PROTOCOL_ID)


def optional_text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) and value else None


def obj(data: Mapping[str, Any], name: str, where: str = "") -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        got = "missing" if value is None else f"a {type(value).__name__}"
        raise Malformed(f"{where}{name}", f"must be a JSON object, got {got}")
    return value


def rpc_id(message: Mapping[str, Any], name: str = "id") -> str | None:
    """A JSON-RPC id as text, or None when absent; a bad id is malformed. An integer and a string
    never share a text (`7` and `"7"`): the protocols allow both and echo them as given."""
    if name not in message or message[name] is None:
        return None
    value = message[name]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise Malformed(name, f"must be a string or an integer, got {type(value).__name__}")
    out = str(value) if isinstance(value, int) else json.dumps(value, ensure_ascii=True)
    if len(out) > MAX_PROTOCOL_ID:
        raise Malformed(name, f"is {len(out)} characters long; the limit is {MAX_PROTOCOL_ID}")
    return out
