"""The snapshot format: every session, its de-duplication memory and its remembered turns, as JSON.

```
{"format": "session-lifecycle-snapshot", "version": 7, "spec": "session-lifecycle",
 "specDigest": "<sha256 of the spec's content>", "maxEventIds": 1024, "maxFinishedTurns": 256,
 "eventIdDigest": "blake2b-64-keyed", "eventIdKey": "<32 hex digits>",
 "threads": [{"session": {...Session.to_wire()...}, "seenEventDigests": [...], "finishedTurns": [...]}],
 "tombstones": [{"threadId": "...", "seenEventDigests": [...]}]}
```
Version 7 keeps each remembered eventId as its 64-bit BLAKE2b digest keyed by the snapshot's own
secret `eventIdKey` (16 lowercase hex digits each, `statemachine.core.record.event_digest_hex`);
a restored projector digests new eventIds with that key. Entries of 32 hex digits are the unkeyed
128-bit digests of versions 4 to 6, carried over until they are forgotten: a thread holding them
tests a new eventId against both. Keep a snapshot as private as the eventIds: its key is what
makes crafted collisions impossible.
Version 6 adds the sessions' `openRequests`: the provider's open requests, oldest first, each
`{"requestId": id, "kind": text}` (the id a string, an integer or null, as the parser passes it),
at most `MAX_OPEN_REQUESTS`, ids unrepeated; `awaiting` must be the newest one's kind (null when
none is open), and a status that may not hold a turn holds none. A session of an older version
restores with no open request when its `awaiting` is null, else with one request without id of
that kind, `(None, awaiting)`: what its single `awaiting` slot meant, and what a
`request.resolved` naming no request ends.
Version 5 adds `tombstones`: the de-duplication memories of deleted threads, oldest deletion first,
so that a redelivered event of a deleted thread stays a duplicate after a restore.

Lists keep their order (oldest first) because the per-thread memories forget the oldest entry
first: a restored projector must forget in the same order as the one that was saved. Decoding is
strict (unknown keys, wrong types, duplicates, ids past the parser's limit, memories fuller than
the *restoring* projector's caps, a different spec content, and states that break the spec's
invariants are all refused) so that a restored projector is one the proofs speak about.
Version 4 kept the de-duplication memory as the projector then did: each eventId as its 128-bit
BLAKE2b digest, 32 lowercase hex digits (`seenEventDigests`, named by `eventIdDigest`), not the id
itself. Version 3 added the sessions' `pendingTurn` and `awaiting`; version 2 added `specDigest`.
Older snapshots still restore: their `seenEventIds` are digested on the way in (checked as before:
non-empty, unrepeated, within the id length limit), version 2 sessions with both new fields null,
and version 1 without its spec content checked.
`SessionProjector.snapshot()` and `SessionProjector.restore()` are the public entry points.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from statemachine.core.event import MAX_ID_LENGTH, parse_timestamp
from statemachine.core.record import (
    DIGEST_SIZE,
    KEY_SIZE,
    LEGACY_DIGEST_SIZE,
    PROCESS_KEY,
    digest_from_hex,
    event_digest_hex,
    key_from_hex,
)
from statemachine.core.session import (
    FIELDS,
    MAX_OPEN_REQUESTS,
    OpenRequest,
    RequestId,
    Session,
    request_id_problem,
    unstorable,
)
from statemachine.spec.invariants import state_violations

if TYPE_CHECKING:
    from statemachine.core.record import ThreadRecord
    from statemachine.runtime.pipeline import Pipeline
    from statemachine.spec.model import Spec

__all__ = [
    "MAX_SNAPSHOT_BYTES",
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_VERSION",
    "Limits",
    "SnapshotError",
    "ThreadState",
    "Tombstone",
    "bury",
    "check_thread",
    "check_tombstone",
    "decode",
    "encode",
    "record_of",
    "session_violations",
]

SNAPSHOT_FORMAT = "session-lifecycle-snapshot"
SNAPSHOT_VERSION = 7
# Versions this library reads: 7 keys the eventId digests (`eventIdKey`, 64-bit digests) where 6
# kept unkeyed 128-bit ones; 6 adds the sessions' `openRequests` to version 5 (older versions
# restore them from `awaiting`, in `_session`); 5 adds `tombstones` (deleted threads'
# de-duplication memories) to version 4; 3 is version 4 with the eventIds themselves
# (`seenEventIds`); 2 is version 3 without the sessions' `pendingTurn` and `awaiting` (both restore
# null); 1 is version 2 without `specDigest`.
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7)
# How version 7 spells a remembered eventId (`statemachine.core.record.event_digest_hex`), and
# how versions 4 to 6 did (`legacy_digest_hex`).
EVENT_ID_DIGEST = "blake2b-64-keyed"
LEGACY_EVENT_ID_DIGEST = "blake2b-128"

# Longest snapshot text `decode` parses. A thread with full default memories of UUID-sized ids
# takes about 50 KB, a typical one well under 1 KB: this leaves room for thousands of full
# threads, or hundreds of thousands of typical ones, and refuses an endless or absurd input before
# parsing it.
MAX_SNAPSHOT_BYTES = 256 << 20

# The orchestrator's side, added in version 3: pendingTurn null or {"turnId": id or null}; awaiting
# null or text; and in version 6 openRequests, a list of {"requestId", "kind"}.
_ORCHESTRATOR_FIELDS = ("pendingTurn", "awaiting", "openRequests")
_REQUEST_FIELDS = ("requestId", "kind")
# The other fields, text or null (`statemachine.core.session.FIELDS`), by wire name.
_SESSION_FIELDS = {f.wire: f.attr for f in FIELDS if f.wire not in _ORCHESTRATOR_FIELDS}
_REQUIRED_SESSION_FIELDS = tuple(f.wire for f in FIELDS if f.always and f.wire not in _ORCHESTRATOR_FIELDS)
_TOP_FIELDS = ("format", "version", "spec", "specDigest", "maxEventIds", "maxFinishedTurns", "eventIdDigest",
               "eventIdKey", "threads", "tombstones")
_TOMBSTONE_FIELDS = ("threadId", "seenEventDigests")
_THREAD_FIELDS = ("session", "seenEventDigests", "finishedTurns")
_THREAD_FIELDS_V3 = ("session", "seenEventIds", "finishedTurns")


class SnapshotError(ValueError):
    """A snapshot that cannot be restored. `path` says where (`threads[2].session.status`)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class ThreadState:
    """One thread as saved: its session and both memories, oldest entry first (the eventIds as
    their digests in hex, `statemachine.core.record.event_digest_hex`)."""

    session: Session
    seen_event_digests: tuple[str, ...]
    finished_turns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A deleted thread's de-duplication memory, oldest entry first (digests in hex)."""

    thread_id: str
    seen_event_digests: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Limits:
    """What the restoring projector allows; it wins over whatever the snapshot says."""

    max_event_ids: int
    max_finished_turns: int
    max_id_length: int
    max_bytes: int = MAX_SNAPSHOT_BYTES
    # Is this `updatedAt` beyond the ingest clock's bound? (`ingest_clock.Horizon.beyond`)
    in_future: Callable[[datetime], bool] = lambda _: False
    allow_spec_change: bool = False
    # The key eventIds of versions 1 to 3 are digested with (the restoring projector's).
    event_id_key: bytes = PROCESS_KEY


@dataclass(frozen=True, slots=True)
class Decoded:
    max_event_ids: int
    max_finished_turns: int
    threads: tuple[ThreadState, ...]
    tombstones: tuple[Tombstone, ...] = ()
    event_id_key: bytes | None = None  # the snapshot's own (version 7); None: the restoring projector's


def encode(
    spec: Spec, max_event_ids: int, max_finished_turns: int, event_id_key: bytes, threads: Iterable[ThreadState],
    tombstones: Iterable[Tombstone] = (),
) -> dict[str, Any]:
    return {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "spec": spec.name,
        # A Spec built in code has no digest: null, and its content is then not checked.
        "specDigest": spec.digest or None,
        "maxEventIds": max_event_ids,
        "maxFinishedTurns": max_finished_turns,
        "eventIdDigest": EVENT_ID_DIGEST,
        "eventIdKey": event_id_key.hex(),
        "threads": [
            {
                "session": t.session.to_wire(),
                "seenEventDigests": list(t.seen_event_digests),
                "finishedTurns": list(t.finished_turns),
            }
            for t in threads
        ],
        "tombstones": [{"threadId": t.thread_id, "seenEventDigests": list(t.seen_event_digests)} for t in tombstones],
    }


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _object(value: object, path: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SnapshotError(path, f"must be a JSON object, got {_type_name(value)}")
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise SnapshotError(f"{path}.{unknown[0]}" if path else str(unknown[0]), "unknown field")
    return value


def _field(obj: Mapping[str, Any], name: str, path: str) -> Any:
    if name not in obj:
        raise SnapshotError(_join(path, name), "is required")
    return obj[name]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _int(value: object, path: str) -> int:
    # bool is an int in Python, but `true` is not a count in JSON.
    if not isinstance(value, int) or isinstance(value, bool):
        raise SnapshotError(path, f"must be an integer, got {_type_name(value)}")
    return value


def _text(value: object, path: str, *, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise SnapshotError(path, f"must be a string{' or null' if nullable else ''}, got {_type_name(value)}")
    _storable(value, path)
    return value


def _storable(value: str, path: str) -> None:
    """Refuse what the event parser refuses in any text that becomes session state (`unstorable`):
    a restored or loaded session is then one events could have made, and every store can write it
    back."""
    problem = unstorable(value)
    if problem is not None:
        raise SnapshotError(path, problem)


def _length(value: str, path: str, limit: int) -> None:
    if len(value) > limit:
        raise SnapshotError(path, f"is {len(value)} characters long; the parser's id length limit is {limit}")


def _ids(value: object, path: str, cap: int, cap_name: str, max_length: int,
         *, digests: bool = False, text: bool = False, version: int = SNAPSHOT_VERSION) -> tuple[str, ...]:
    """A memory's entries: ids (non-empty, within the id length limit) or, with `digests`, eventId
    digests (16 lowercase hex digits, or 32 for an older unkeyed one; only 32 before version 7);
    never repeated, never more than the cap. With `text`, ids that the parser would pass into
    session state (`_storable`)."""
    if not isinstance(value, list):
        raise SnapshotError(path, f"must be a JSON array, got {_type_name(value)}")
    if len(value) > cap:
        raise SnapshotError(path, f"holds {len(value)} entries, more than the restoring projector's "
                                  f"{cap_name}={cap} (pass a larger {cap_name} to restore())")
    seen: set[str] = set()
    for i, item in enumerate(value):
        if digests:
            if digest_from_hex(item, legacy_only=version < 7) is None:
                shown = repr(item[:64]) if isinstance(item, str) else _type_name(item)
                lengths = (f"{DIGEST_SIZE * 2} or {LEGACY_DIGEST_SIZE * 2}" if version >= 7
                           else f"{LEGACY_DIGEST_SIZE * 2}")
                raise SnapshotError(f"{path}[{i}]", f"must be {lengths} lowercase hex digits (an eventId "
                                                    f"digest), got {shown}")
        elif not isinstance(item, str) or not item:
            raise SnapshotError(f"{path}[{i}]", f"must be a non-empty string, got {_type_name(item)}")
        else:
            _length(item, f"{path}[{i}]", max_length)
            if text:
                _storable(item, f"{path}[{i}]")
        if item in seen:
            raise SnapshotError(f"{path}[{i}]", f"repeats {item[:64]!r}")
        seen.add(item)
    return tuple(value)


# Session fields that are identifiers from events, bounded by the parser's id length limit.
_ID_FIELDS = ("threadId", "providerName", "activeTurnId", "updatedAt")


def _pending_turn(obj: Mapping[str, Any], path: str, limits: Limits) -> str | None:
    raw = obj.get("pendingTurn")
    if raw is None:
        return None
    where = _join(path, "pendingTurn")
    pending = _object(raw, where, ("turnId",))
    turn = _text(_field(pending, "turnId", where), _join(where, "turnId"), nullable=True)
    if turn == "":
        raise SnapshotError(_join(where, "turnId"), "must not be empty")
    if turn is not None:
        _length(turn, _join(where, "turnId"), limits.max_id_length)
    return "" if turn is None else turn  # "" is Session's spelling of a pending turn of unknown id


def _request_id(value: object, path: str) -> RequestId:
    """A requestId as the event parser passes one (`request_id_problem`), or null for a request
    that carried none."""
    if value is None:
        return None
    problem = request_id_problem(value, MAX_ID_LENGTH)
    if problem is not None:
        raise SnapshotError(path, problem)
    assert type(value) is int or type(value) is str
    return value


def _open_requests(raw: object, where: str, limits: Limits) -> tuple[OpenRequest, ...]:
    """A session's `openRequests`, oldest first: at most MAX_OPEN_REQUESTS (the guard
    `request_room` opens no more), each {"requestId", "kind"}, no id twice (opening an open id
    again moves it to the end), each kind checked as `awaiting` is."""
    if not isinstance(raw, list):
        raise SnapshotError(where, f"must be a JSON array, got {_type_name(raw)}")
    if len(raw) > MAX_OPEN_REQUESTS:
        raise SnapshotError(where, f"holds {len(raw)} requests, more than MAX_OPEN_REQUESTS={MAX_OPEN_REQUESTS}")
    requests: list[OpenRequest] = []
    ids: set[RequestId] = set()
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        entry = _object(item, at, _REQUEST_FIELDS)
        request_id = _request_id(_field(entry, "requestId", at), _join(at, "requestId"))
        kind = _text(_field(entry, "kind", at), _join(at, "kind"), nullable=False)
        assert kind is not None
        if not kind:
            raise SnapshotError(_join(at, "kind"), "must not be empty")
        _length(kind, _join(at, "kind"), limits.max_id_length)
        if request_id in ids:
            raise SnapshotError(_join(at, "requestId"), f"repeats {json.dumps(request_id)[:64]} (an open request is "
                                                        "listed once)")
        ids.add(request_id)
        requests.append((request_id, kind))
    return tuple(requests)


def _session(value: object, path: str, spec: Spec, limits: Limits, version: int) -> Session:
    # The orchestrator's fields exist from version 3 on, openRequests from version 6.
    allowed = (*_SESSION_FIELDS, *_ORCHESTRATOR_FIELDS) if version >= 6 else \
        (*_SESSION_FIELDS, *_ORCHESTRATOR_FIELDS[:2]) if version >= 3 else tuple(_SESSION_FIELDS)
    obj = _object(value, path, allowed)
    fields: dict[str, str | None] = {}
    for name in _SESSION_FIELDS:
        where = _join(path, name)
        if name in _REQUIRED_SESSION_FIELDS:
            raw = _field(obj, name, path)
        elif name in obj:
            # to_wire() leaves these out when null; an explicit null would not round-trip exactly.
            raw = _text(obj[name], where, nullable=False)
        else:
            raw = None
        nullable = name not in ("threadId", "status")
        text = _text(raw, where, nullable=nullable)
        if text == "" and name in ("threadId", "activeTurnId"):
            raise SnapshotError(where, "must not be empty")
        if text is not None and name in _ID_FIELDS:
            _length(text, where, limits.max_id_length)
        fields[_SESSION_FIELDS[name]] = text
    if fields["status"] not in spec.status_names:
        raise SnapshotError(_join(path, "status"), f"unknown status {fields['status']!r} in spec {spec.name!r}")
    updated_at = fields["updated_at"]
    if updated_at is not None:
        try:
            updated_dt = parse_timestamp(updated_at)
        except ValueError:
            raise SnapshotError(_join(path, "updatedAt"), f"not an ISO 8601 timestamp: {updated_at[:64]!r}") from None
        if limits.in_future(updated_dt):
            raise SnapshotError(_join(path, "updatedAt"), f"{updated_at!r} is further ahead of the clock than the "
                                                          "restoring projector's max_clock_skew")
    thread_id, status = fields["thread_id"], fields["status"]
    assert thread_id is not None and status is not None  # not nullable, checked above
    pending = _pending_turn(obj, path, limits)
    awaiting = _text(obj.get("awaiting"), _join(path, "awaiting"), nullable=True)
    if awaiting == "":
        raise SnapshotError(_join(path, "awaiting"), "must not be empty")
    if awaiting is not None:
        _length(awaiting, _join(path, "awaiting"), limits.max_id_length)
    requests: tuple[OpenRequest, ...] = ()
    if version >= 6:
        # Required: to_wire() always writes it, and a missing list would silently drop requests.
        requests = _open_requests(_field(obj, "openRequests", path), _join(path, "openRequests"), limits)
    if not spec.status(status).holds_turn:
        if pending is not None or awaiting is not None:
            raise SnapshotError(path, f"a {status} session may not hold a pending turn or await anything")
        if requests:
            raise SnapshotError(_join(path, "openRequests"), f"a {status} session may hold no open request")
    if version < 6:
        # The one `awaiting` slot of older versions was one open request whose id nobody kept.
        requests = () if awaiting is None else ((None, awaiting),)
    newest = requests[-1][1] if requests else None
    if awaiting != newest:
        raise SnapshotError(_join(path, "awaiting"), f"is {json.dumps(awaiting)[:64]}, but must be "
                                                     f"{json.dumps(newest)[:64]}: what the newest open request asks "
                                                     "(null when none is open)")
    return Session(
        thread_id,
        status,
        fields["provider_name"],
        fields["active_turn_id"],
        fields["last_error"],
        updated_at,
        fields["provider_instance_id"],
        fields["runtime_mode"],
        pending,
        awaiting,
        requests,
    )


def session_violations(spec: Spec, session: Session, finished_turns: frozenset[str]) -> tuple[str, ...]:
    """The requirements a restored session must meet, by name; empty when it meets them all.

    The one place a restored session is judged: the spec's invariants and the built-in
    requirements' state invariants (those the lifecycle users rely on, which a spec cannot
    weaken), when they fit the spec.
    """
    from statemachine.spec.requirements import builtin_requirements_if_they_fit  # loaded on the first restore only

    broken = list(state_violations(spec, session, finished_turns))
    requirements = builtin_requirements_if_they_fit(spec)
    if requirements is not None:
        broken += [n for n in requirements.state_violations(session, finished_turns) if n not in broken]
    return tuple(broken)


def _parse_text(data: str | bytes | bytearray, max_bytes: int) -> object:
    if len(data) > max_bytes:
        unit = "characters" if isinstance(data, str) else "bytes"
        raise SnapshotError("snapshot", f"is {len(data)} {unit} long; the limit is {max_bytes} (max_bytes)")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SnapshotError("snapshot", f"not valid JSON: {str(exc)[:200]}") from None


def check_thread(raw: object, path: str, spec: Spec, limits: Limits, version: int = SNAPSHOT_VERSION) -> ThreadState:
    """One thread as a snapshot spells it (`{"session", "seenEventDigests", "finishedTurns"}`),
    checked: types, id lengths, the caps, the spec's statuses, the clock bound, and the invariants
    and the requirements' state invariants. The one check of a thread coming back from storage:
    `restore()` runs it on every thread of a snapshot, a store on every row it loads."""
    entry = _object(raw, path, _THREAD_FIELDS if version >= 4 else _THREAD_FIELDS_V3)
    session = _session(_field(entry, "session", path), f"{path}.session", spec, limits, version)
    if version >= 4:
        seen = _ids(_field(entry, "seenEventDigests", path), f"{path}.seenEventDigests", limits.max_event_ids,
                    "max_event_ids", limits.max_id_length, digests=True, version=version)
    else:  # the ids themselves: digested as the restoring projector keeps them
        ids = _ids(_field(entry, "seenEventIds", path), f"{path}.seenEventIds", limits.max_event_ids,
                   "max_event_ids", limits.max_id_length)
        seen = tuple(event_digest_hex(e, limits.event_id_key) for e in ids)
    finished = _ids(_field(entry, "finishedTurns", path), f"{path}.finishedTurns", limits.max_finished_turns,
                    "max_finished_turns", limits.max_id_length, text=True)
    broken = session_violations(spec, session, frozenset(finished))
    if broken:
        raise SnapshotError(f"{path}.session", f"breaks invariant(s) {', '.join(broken)}")
    return ThreadState(session, seen, finished)


def check_tombstone(raw: object, path: str, limits: Limits, version: int = SNAPSHOT_VERSION) -> Tombstone:
    """One deleted thread's memory as a snapshot spells it (`{"threadId", "seenEventDigests"}`),
    checked as a live thread's memory is."""
    entry = _object(raw, path, _TOMBSTONE_FIELDS)
    thread_id = _text(_field(entry, "threadId", path), f"{path}.threadId", nullable=False)
    assert thread_id is not None
    if not thread_id:
        raise SnapshotError(f"{path}.threadId", "must not be empty")
    _length(thread_id, f"{path}.threadId", limits.max_id_length)
    seen = _ids(_field(entry, "seenEventDigests", path), f"{path}.seenEventDigests", limits.max_event_ids,
                "max_event_ids", limits.max_id_length, digests=True, version=version)
    return Tombstone(thread_id, seen)


def decode(data: object, spec: Spec, limits: Limits) -> Decoded:
    """Validate a snapshot (a parsed JSON value, or JSON text) against `spec` and the restoring
    projector's `limits`. Raises `SnapshotError`."""
    if isinstance(data, (str, bytes, bytearray)):
        data = _parse_text(data, limits.max_bytes)
    if not isinstance(data, Mapping):
        raise SnapshotError("snapshot", f"must be a JSON object, got {_type_name(data)}")
    # Check the format and version before anything else: a newer layout gets a version error,
    # not a confusing complaint about one of its fields.
    if data.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError("format", f"not a session-lifecycle snapshot (format must be {SNAPSHOT_FORMAT!r})")
    version = _int(_field(data, "version", ""), "version")
    if version not in READABLE_VERSIONS:
        raise SnapshotError("version", f"unsupported snapshot version {version} (this library reads "
                                       f"{', '.join(map(str, READABLE_VERSIONS))})")
    absent = {"specDigest"} if version < 2 else set()
    absent |= {"eventIdDigest"} if version < 4 else set()
    absent |= {"tombstones"} if version < 5 else set()
    absent |= {"eventIdKey"} if version < 7 else set()
    top = tuple(f for f in _TOP_FIELDS if f not in absent)
    obj = _object(data, "", top)
    spec_name = _text(_field(obj, "spec", ""), "spec", nullable=False)
    if spec_name != spec.name:
        raise SnapshotError("spec", f"snapshot of spec {spec_name!r}, but the projector runs spec {spec.name!r}")
    if version >= 2:
        digest = _text(_field(obj, "specDigest", ""), "specDigest", nullable=True)
        if digest is not None and digest != spec.digest and not limits.allow_spec_change:
            raise SnapshotError("specDigest", f"snapshot of other content of spec {spec.name!r} (digest "
                                              f"{digest[:16]!r}, the projector's is {spec.digest[:16]!r}); "
                                              "restore(..., allow_spec_change=True) accepts it")
    # The caps in the file are checked for shape only: the restoring projector's caps win.
    saved_event_ids = _int(_field(obj, "maxEventIds", ""), "maxEventIds")
    saved_finished = _int(_field(obj, "maxFinishedTurns", ""), "maxFinishedTurns")
    if saved_event_ids < 1:
        raise SnapshotError("maxEventIds", "must be at least 1")
    if saved_finished < 1:
        raise SnapshotError("maxFinishedTurns", "must be at least 1")
    key: bytes | None = None
    if version >= 4:
        scheme = _field(obj, "eventIdDigest", "")
        wanted = EVENT_ID_DIGEST if version >= 7 else LEGACY_EVENT_ID_DIGEST
        if scheme != wanted:
            raise SnapshotError("eventIdDigest", f"must be {wanted!r} (the eventId digest of version {version}), "
                                                 f"got {str(scheme)[:64]!r}")
    if version >= 7:
        raw_key = _field(obj, "eventIdKey", "")
        key = key_from_hex(raw_key)
        if key is None:
            shown = f"text of {len(raw_key)} characters" if isinstance(raw_key, str) else _type_name(raw_key)
            raise SnapshotError("eventIdKey", f"must be {KEY_SIZE * 2} lowercase hex digits (the eventId digest "
                                              f"key), got {shown}")
        limits = replace(limits, event_id_key=key)
    raw_threads = _field(obj, "threads", "")
    if not isinstance(raw_threads, list):
        raise SnapshotError("threads", f"must be a JSON array, got {_type_name(raw_threads)}")
    threads: list[ThreadState] = []
    thread_ids: set[str] = set()
    for i, raw in enumerate(raw_threads):
        thread = check_thread(raw, f"threads[{i}]", spec, limits, version)
        if thread.session.thread_id in thread_ids:
            raise SnapshotError(f"threads[{i}].session.threadId", f"repeats {thread.session.thread_id[:64]!r}")
        thread_ids.add(thread.session.thread_id)
        threads.append(thread)
    tombstones: list[Tombstone] = []
    if version >= 5:
        raw_tombstones = _field(obj, "tombstones", "")
        if not isinstance(raw_tombstones, list):
            raise SnapshotError("tombstones", f"must be a JSON array, got {_type_name(raw_tombstones)}")
        for i, raw in enumerate(raw_tombstones):
            tomb = check_tombstone(raw, f"tombstones[{i}]", limits, version)
            if tomb.thread_id in thread_ids:
                raise SnapshotError(f"tombstones[{i}].threadId", f"repeats {tomb.thread_id[:64]!r} (a thread is "
                                                                 "live or deleted, once)")
            thread_ids.add(tomb.thread_id)
            tombstones.append(tomb)
    return Decoded(limits.max_event_ids, limits.max_finished_turns, tuple(threads), tuple(tombstones), key)


def record_of(pipeline: Pipeline, thread: ThreadState) -> ThreadRecord:
    """A checked thread (`check_thread`) as a pipeline holds it again: session, both memories in
    their order. The one way a saved thread comes back, from a snapshot or a store's rows."""
    record = pipeline.new_record(thread.session)
    for digest in thread.seen_event_digests:
        record.see_digest(bytes.fromhex(digest))  # checked by check_thread
    for turn in thread.finished_turns:
        record.remember_turn(turn)
    return record


def bury(pipeline: Pipeline, tomb: Tombstone) -> None:
    """A checked tombstone (`check_tombstone`) into a pipeline, as the newest."""
    record = pipeline.new_record(pipeline.fresh(tomb.thread_id, ""))
    for digest in tomb.seen_event_digests:
        record.see_digest(bytes.fromhex(digest))  # checked by check_tombstone
    pipeline.bury(tomb.thread_id, record)
