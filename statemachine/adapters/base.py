"""What every provider adapter shares: per-stream state, deterministic ids, counters, error reports.

An adapter reads one raw provider line at a time (`feed`) and returns envelope dicts in T3's
wire shape (`{eventId, type, provider, threadId, createdAt, turnId?, payload}`) that
`SessionProjector.apply` accepts. A malformed line is reported (`errors`, `stats.malformed`,
`last_error`) and yields no event; `feed` never raises for any input, and a bad line changes no
adapter state. `finish()` settles the turns a stream left open.

Identity is deterministic, so adapting the same raw log twice gives identical events:
- a message the protocol identifies (Claude `uuid`, a JSON-RPC id, a Codex turn id) gets an
  eventId from that identity, so a redelivered message yields the same events again (and the
  projector counts them as duplicates) without touching the adapter's state;
- any other line gets an eventId from its position in the stream and a digest of its content, so
  two identical lines (two `turn.started` in a row) are two events, not a redelivery;
- `createdAt` comes from the protocol where it has a timestamp, else from the clock. The default
  clock (`LineClock`) is deterministic: 1970-01-01T00:00:00Z plus one second per raw line. A live
  orchestrator passes a wall clock (`lambda: datetime.now(UTC)`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

__all__ = [
    "EOF_SETTLEMENTS",
    "MAX_ERRORS_LISTED",
    "MAX_PROTOCOL_ID",
    "Adapter",
    "AdapterError",
    "AdapterStats",
    "BoundedSet",
    "Clock",
    "Envelope",
    "EofSettlement",
    "LineClock",
    "Malformed",
    "check_stream_name",
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
# Messages remembered by protocol identity, to answer a redelivery with the same events.
DEFAULT_MEMORY = 4096


def wire_time(moment: datetime) -> str:
    """An aware datetime as the envelope's ISO 8601 UTC text (`...Z`)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def check_stream_name(name: str) -> str:
    """A stream name goes into ids: at most 32 characters, no ':' (the ids' separator)."""
    if not isinstance(name, str) or len(name) > 32 or ":" in name:
        raise ValueError("a stream name has at most 32 characters and no ':'")
    return name


class LineClock:
    """The default clock: `start` plus `step` per call; an adapter calls it once per raw line.

    Deterministic on purpose: adapting a file twice gives identical `createdAt` values, and
    their order follows the stream's.
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


@dataclass
class _ThreadState:
    started: bool = False  # session.started already emitted
    open_turn: str | None = None
    turns: int = 0  # turns synthesized so far, for `<thread>:turn:<n>`
    extra: dict[str, Any] = field(default_factory=dict)


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
        """`stream` names this stream when one thread spans several (`codex exec resume`, a
        resumed Claude session, a reconnected ACP agent): positional event ids and synthesized
        turn ids include it, so the second stream's first turn is not taken for the first's."""
        check_stream_name(stream)
        if on_eof not in EOF_SETTLEMENTS:
            raise ValueError(f"on_eof must be one of {list(EOF_SETTLEMENTS)}, got {on_eof!r}")
        if memory < 1:
            raise ValueError("memory must be at least 1")
        self.provider = provider or self.default_provider
        self.clock: Clock = clock if clock is not None else LineClock()
        self.on_eof: EofSettlement = on_eof
        self.stream = stream
        self._prefix = f"{stream}:" if stream else ""
        self.stats = AdapterStats()
        self.errors: list[AdapterError] = []  # the first MAX_ERRORS_LISTED; stats.malformed is exact
        self.last_error: AdapterError | None = None  # the error of the last line fed, if any
        self._memory = memory
        self._replies: OrderedDict[str, list[Envelope]] = OrderedDict()
        self._threads: dict[str, _ThreadState] = {}
        # Per line: the records it touched, as they were (None: created by it), to undo a bad line.
        self._touched: dict[str, _ThreadState | None] = {}
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
        if identity is not None and identity in self._replies:
            self.stats.redelivered += 1
            self._replies.move_to_end(identity)
            return self._count(copy.deepcopy(self._replies[identity]))
        if identity is not None:
            key = identity
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
            self._replies[identity] = copy.deepcopy(events)
            if len(self._replies) > self._memory:
                self._replies.popitem(last=False)
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
        then undoes what the line changed (thread records through `thread()`, the rest through
        `_save_extra` / `_restore_extra`)."""

    def _identity(self, message: dict[str, Any]) -> str | None:
        """The message's protocol identity (redeliveries share it), or None to name it by position."""
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

    def thread(self, thread_id: str) -> _ThreadState:
        """The thread's record, for changing it (created on first use)."""
        state = self._threads.get(thread_id)
        if thread_id not in self._touched:
            self._touched[thread_id] = copy.deepcopy(state)
        if state is None:
            state = self._threads[thread_id] = _ThreadState()
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
        """Forget the thread's open turn (it was settled); returns it."""
        if thread_id not in self._threads:
            return None
        state = self.thread(thread_id)
        turn, state.open_turn = state.open_turn, None
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
            turn = self.close_turn(thread_id)
            events.append(self.event(line, "turn.completed", thread_id, dict(EOF_PAYLOADS[self.on_eof]), turn))
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
        # Thread records are saved as the line touches them (`thread`); the rest is small.
        self._touched = {}
        return copy.copy(self.stats), self._save_extra()

    def _restore(self, snapshot: tuple[AdapterStats, Any]) -> None:
        for thread_id, before in self._touched.items():
            if before is None:
                self._threads.pop(thread_id, None)
            else:
                self._threads[thread_id] = before
        self._touched = {}
        self.stats, extra = snapshot
        self._restore_extra(extra)

    def _save_extra(self) -> Any:
        """Subclass state beyond the per-thread records (deep-copied)."""
        return None

    def _restore_extra(self, extra: Any) -> None:  # noqa: B027 - optional hook, nothing to restore by default
        """Put back what `_save_extra` returned."""


class BoundedSet:
    """A set that forgets its oldest keys beyond `limit`, and can undo the adds of one line.

    Copying a large memory for every line would make a bad line's undo the cost of every line;
    a journal of what the line changed costs only what it changed.
    """

    def __init__(self, limit: int) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._journal: list[tuple[bool, str]] = []  # (added, key): added, or evicted to make room

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str) -> None:
        if key in self._keys:
            return
        self._keys[key] = None
        self._journal.append((True, key))
        if len(self._keys) > self._limit:
            oldest, _ = self._keys.popitem(last=False)
            self._journal.append((False, oldest))

    def begin(self) -> None:
        """Start a line: what follows can be undone by `rollback`."""
        self._journal.clear()

    def rollback(self) -> None:
        for added, key in reversed(self._journal):
            if added:
                del self._keys[key]
            else:
                self._keys[key] = None
                self._keys.move_to_end(key, last=False)
        self._journal.clear()


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


def rpc_id(message: Mapping[str, Any]) -> str | None:
    """A JSON-RPC id as text (`7`, `"abc"`), or None when absent; a bad id is malformed."""
    if "id" not in message or message["id"] is None:
        return None
    value = message["id"]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise Malformed("id", f"must be a string or an integer, got {type(value).__name__}")
    out = str(value) if isinstance(value, int) else f'"{value}"'
    if len(out) > MAX_PROTOCOL_ID:
        raise Malformed("id", f"is {len(out)} characters long; the limit is {MAX_PROTOCOL_ID}")
    return out
