"""What the projector keeps per thread, and the one place that changes it.

One object per thread (`ThreadRecord`) holds everything the thread needs: its session, its
de-duplication memory and its finished turns. The memories are packed while they are small, which
is what almost every thread is: eventIds as a string of 64-bit keyed digests, finished turns as a
tuple (the empty tuple when the thread finished none, which costs nothing). Past a few dozen
entries a memory becomes a `BoundedSet`, so that a long-lived thread still pays O(1) per event.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Iterator
from datetime import datetime
from functools import lru_cache
from hashlib import blake2b
from typing import Generic, NamedTuple, TypeVar

from statemachine.core.event import parse_timestamp
from statemachine.core.session import Session

__all__ = ["DIGEST_SIZE", "KEY_SIZE", "LEGACY_DIGEST_SIZE", "PROCESS_KEY", "BoundedSet", "ThreadRecord",
           "check_key", "digest_from_hex", "event_digest", "event_digest_hex", "key_from_hex", "legacy_digest",
           "legacy_digest_hex", "new_key"]

K = TypeVar("K", bound=Hashable)

# Bytes per remembered eventId: BLAKE2b cut to 64 bits, keyed by a secret random 128-bit salt that
# each projector, snapshot and store carries (`KEY_SIZE`). Without the key nobody can compute a
# digest, so two colliding eventIds cannot be crafted; by chance, n remembered ids of one thread
# share one with a probability below n^2 / 2^65 (docs/reliability.md).
DIGEST_SIZE = 8
KEY_SIZE = 16
# Snapshots (versions 4 to 6) and stores (schema 3 to 5) written before kept unkeyed 128-bit
# digests. Restored, they stay as they were, and such a thread tests each new eventId against both.
LEGACY_DIGEST_SIZE = 16
# The salt goes into BLAKE2b's parameter block, so it costs nothing per digest (a `key=` would
# add one compression per eventId); the personalization keeps these digests apart from any other
# use of the same salt.
_PERSON = b"sm.eventId.v1"

# Up to this many entries a memory is packed (a bytes string, a tuple) and searched in order;
# beyond, it is a BoundedSet. Most threads never leave the packed form.
PACKED_EVENT_IDS = 32
PACKED_FINISHED_TURNS = 8


def new_key() -> bytes:
    """A fresh secret key for eventId digests: 16 random bytes from the operating system."""
    return os.urandom(KEY_SIZE)


# The key of projectors given none: random per process, so that every projector of one process
# digests alike (their memories compare) while no other process can predict it.
PROCESS_KEY = new_key()


def check_key(key: object) -> bytes:
    """`key` if it is an eventId digest key (16 bytes); raises ValueError otherwise."""
    if type(key) is not bytes or len(key) != KEY_SIZE:
        got = f"{len(key)} bytes" if type(key) is bytes else type(key).__name__
        raise ValueError(f"event_id_key (the eventId digest key) must be {KEY_SIZE} bytes, got {got}")
    return key


def _lower_hex(text: object, lengths: tuple[int, ...]) -> bytes | None:
    """The bytes spelled by `text` in lowercase hex, when it is that many bytes long; else None."""
    if type(text) is not str or len(text) not in lengths or text.strip("0123456789abcdef"):
        return None
    return bytes.fromhex(text)


def digest_from_hex(text: object, *, legacy_only: bool = False) -> bytes | None:
    """The eventId digest spelled by `text` as snapshots, stores and `seed()` keep it: 16 lowercase
    hex digits, or 32 for an older unkeyed one (only those with `legacy_only`); None when it spells
    none. The one reading of a saved digest."""
    return _lower_hex(text, (LEGACY_DIGEST_SIZE * 2,) if legacy_only else (DIGEST_SIZE * 2, LEGACY_DIGEST_SIZE * 2))


def key_from_hex(text: object) -> bytes | None:
    """The key spelled by `text` as snapshots and stores keep it (32 lowercase hex digits), or None
    when it spells none. The one reading of a saved key, for both."""
    return _lower_hex(text, (KEY_SIZE * 2,))


def _encoded(event_id: str) -> bytes:
    """`surrogatepass`: an eventId may hold a lone surrogate (JSON allows `\\ud800`); encoded this
    way, distinct strings still give distinct bytes."""
    try:
        return event_id.encode()
    except UnicodeEncodeError:  # only a surrogate fails, and only then is the slower spelling needed
        return event_id.encode("utf-8", "surrogatepass")


@lru_cache(maxsize=64)
def _blank(key: bytes) -> blake2b:
    """A blank hash object for `key`: `see` copies it instead of parsing the parameters per call."""
    return blake2b(digest_size=DIGEST_SIZE, salt=check_key(key), person=_PERSON)


def event_digest(event_id: str, key: bytes = PROCESS_KEY) -> bytes:
    """The digest the de-duplication memory keeps for `event_id` under `key` (8 bytes)."""
    h = _blank(key).copy()
    h.update(_encoded(event_id))
    return h.digest()


def event_digest_hex(event_id: str, key: bytes = PROCESS_KEY) -> str:
    """`event_digest` as 16 lowercase hex digits: how snapshots, stores and readers spell it."""
    return event_digest(event_id, key).hex()


def legacy_digest(event_id: str) -> bytes:
    """The unkeyed 128-bit digest older snapshots and stores kept for `event_id`."""
    return blake2b(_encoded(event_id), digest_size=LEGACY_DIGEST_SIZE).digest()


def legacy_digest_hex(event_id: str) -> str:
    return legacy_digest(event_id).hex()


def _packed_has(ids: bytes, digest: bytes) -> bool:
    """Whether `digest` is one of the digests packed end to end in `ids`."""
    at = ids.find(digest)
    while at >= 0:
        if not at % DIGEST_SIZE:  # a match across two digests does not count
            return True
        at = ids.find(digest, at + 1)
    return False


class BoundedSet(Generic[K]):
    """An insertion-ordered set that forgets its oldest member past `cap`.

    O(1) per operation whatever the cap: members live in a dict (compact for the few members most
    threads have), and a ring of the same keys says which one is oldest, so eviction never scans
    the dict from its front (which costs time proportional to the entries deleted before it).
    """

    __slots__ = ("_head", "_members", "_ring", "cap")

    def __init__(self, cap: int, members: Iterable[K] = ()) -> None:
        self.cap = cap
        self._members: dict[K, None] = {}
        self._ring: list[K] = []
        self._head = 0
        for member in members:
            self.add(member)

    def add(self, key: K) -> bool:
        """Add `key`; False if it was already a member (the de-duplication test and update in one)."""
        members = self._members
        if key in members:
            return False
        members[key] = None
        ring = self._ring
        if len(ring) < self.cap:
            ring.append(key)
        else:  # full: the oldest member makes room
            head = self._head
            del members[ring[head]]
            ring[head] = key
            self._head = (head + 1) % self.cap
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[K]:
        """Oldest first."""
        ring, head = self._ring, self._head
        return iter(ring[head:] + ring[:head])

    def __repr__(self) -> str:
        return f"BoundedSet(cap={self.cap}, {list(self)!r})"


class LegacyIds(BoundedSet[bytes]):
    """The eventId memory of a thread restored with unkeyed 128-bit digests (older snapshots and
    stores): those, and the keyed digests of the ids seen since, in one FIFO. A new eventId is a
    duplicate when either of its digests is a member; only the keyed one is added, so the legacy
    entries age out as the thread sees new ids."""

    __slots__ = ()

    def see(self, event_id: str, digest: bytes) -> bool:
        if legacy_digest(event_id) in self._members:
            return False
        return self.add(digest)

    def has(self, event_id: str, digest: bytes) -> bool:
        return digest in self._members or legacy_digest(event_id) in self._members


class _Caps(NamedTuple):
    """A projector's memory caps and digest key, shared by all its records (one object per
    distinct triple)."""

    event_ids: int
    finished_turns: int
    packed_id_bytes: int  # the packed eventId memory's longest length
    packed_turns: int  # the packed finished-turn memory's largest size
    key: bytes  # the eventId digest key
    blank: blake2b  # a blank hash object for `key`, copied per eventId


@lru_cache(maxsize=64)
def _caps(max_event_ids: int, max_finished_turns: int, key: bytes) -> _Caps:
    return _Caps(max_event_ids, max_finished_turns, min(max_event_ids, PACKED_EVENT_IDS) * DIGEST_SIZE,
                 min(max_finished_turns, PACKED_FINISHED_TURNS), key, _blank(key))


class ThreadRecord:
    """Per-thread memory. Internal and mutable; callers only ever see `Session` values.

    Its memories change only through `see` (the eventIds, on de-duplication) and `remember_turn`
    (turns completed, aborted or cleared, as an applied step's effects run), and its session only
    through `commit` (the compiled engine's generated steps assign `session` directly, which is
    all `commit` does). Both memories forget their oldest entry first, past
    the projector's caps, in the same order whether packed or not.

    `finished` is the finished-turn memory as it is (a tuple, or a `BoundedSet` once large): read
    it with `in`, `len` and iteration (oldest first), never change it directly. `updated_dt` is the
    session's `updatedAt` parsed, computed when read rather than kept (48 bytes per thread saved).
    EventIds are remembered as their digests under `key` (the projector's, `PROCESS_KEY` when none
    is given).
    """

    __slots__ = ("_caps", "_ids", "finished", "session")

    def __init__(self, session: Session, max_event_ids: int, max_finished_turns: int,
                 key: bytes = PROCESS_KEY) -> None:
        if session.updated_at is not None:
            parse_timestamp(session.updated_at)  # ValueError now, rather than on the thread's next event
        self.session = session
        self._caps = _caps(max_event_ids, max_finished_turns, key)
        # Digests of the processed eventIds: packed (bytes, oldest first) or, once large, a
        # BoundedSet (a LegacyIds when the thread was restored with older digests).
        self._ids: bytes | BoundedSet[bytes] = b""
        self.finished: tuple[str, ...] | BoundedSet[str] = ()

    @property
    def updated_dt(self) -> datetime | None:
        updated_at = self.session.updated_at
        return parse_timestamp(updated_at) if updated_at is not None else None

    @property
    def key(self) -> bytes:
        return self._caps.key

    def commit(self, session: Session, updated_dt: datetime | None) -> None:
        """An applied step: the new session (the turns it finished are already remembered: effects
        add them as they run, after every guard was read). `updated_dt` is the parsed `updatedAt`
        of `session`, which the record derives again when asked; kept in the signature for the
        engines, which have it at hand."""
        del updated_dt
        self.session = session

    # -- the de-duplication memory ---------------------------------------------------------------

    def see(self, event_id: str) -> bool:
        """Remember `event_id`; False if it was remembered already (the duplicate test and update in one)."""
        # `event_digest` and `see_digest` written out: this runs once per event, and each call is a
        # fair part of it. A copy of a prepared hash object skips parsing the parameters per call.
        try:
            data = event_id.encode()
        except UnicodeEncodeError:
            data = event_id.encode("utf-8", "surrogatepass")
        h = self._caps.blank.copy()
        h.update(data)
        digest = h.digest()
        ids = self._ids
        if not isinstance(ids, bytes):
            return ids.add(digest) if type(ids) is BoundedSet else ids.see(event_id, digest)  # type: ignore[attr-defined]
        # `find`, not `in`: `in` on bytes first tries the digest as an integer, and an exception
        # raised and cleared costs more than the search. A match across two digests does not count.
        at = ids.find(digest)
        if at >= 0 and (not at % DIGEST_SIZE or _packed_has(ids, digest)):
            return False
        if len(ids) < self._caps.packed_id_bytes:
            self._ids = ids + digest
            return True
        return self._spill(ids, digest)

    def see_digest(self, digest: bytes) -> bool:
        """`see` for an eventId's digest: a keyed one (`event_digest` under this record's key), or
        an older snapshot's or store's 128-bit digest, which makes the memory a `LegacyIds`."""
        ids = self._ids
        if isinstance(ids, bytes) and len(digest) != DIGEST_SIZE:
            ids = self._ids = LegacyIds(self._caps.event_ids, _chunks(ids))
        if not isinstance(ids, bytes):
            return ids.add(digest)
        if _packed_has(ids, digest):
            return False
        if len(ids) < self._caps.packed_id_bytes:
            self._ids = ids + digest
            return True
        return self._spill(ids, digest)

    def _spill(self, ids: bytes, digest: bytes) -> bool:
        """A new digest for a packed memory at its packed size: the oldest makes room when the cap
        is the packed size, else the memory becomes a BoundedSet."""
        caps = self._caps
        if caps.event_ids * DIGEST_SIZE == len(ids):
            self._ids = ids[DIGEST_SIZE:] + digest
        else:
            self._ids = BoundedSet(caps.event_ids, [*_chunks(ids), digest])
        return True

    def has_seen(self, event_id: str) -> bool:
        digest = event_digest(event_id, self._caps.key)
        ids = self._ids
        if type(ids) is LegacyIds:
            return ids.has(event_id, digest)
        return self.has_seen_digest(digest)

    def has_seen_digest(self, digest: bytes) -> bool:
        ids = self._ids
        return digest in ids if not isinstance(ids, bytes) else _packed_has(ids, digest)

    def seen_digests(self) -> tuple[bytes, ...]:
        """The remembered eventIds' digests, oldest first (older 128-bit ones among them, if any)."""
        ids = self._ids
        return tuple(_chunks(ids)) if isinstance(ids, bytes) else tuple(ids)

    def seen_count(self) -> int:
        ids = self._ids
        return len(ids) // DIGEST_SIZE if isinstance(ids, bytes) else len(ids)

    def adopt_seen(self, other: ThreadRecord) -> None:
        """Remember what `other` (a tombstone of the same pipeline) remembers, oldest first."""
        for digest in other.seen_digests():
            self.see_digest(digest)

    # -- the finished-turn memory ----------------------------------------------------------------

    def remember_turn(self, turn: str) -> None:
        """Remember a finished turn (a turn already remembered keeps its place)."""
        finished = self.finished
        if not isinstance(finished, tuple):
            finished.add(turn)
            return
        if turn in finished:
            return
        caps = self._caps
        if len(finished) < caps.packed_turns:
            self.finished = (*finished, turn)
        elif caps.finished_turns == len(finished):  # full: the oldest makes room
            self.finished = (*finished[1:], turn)
        else:
            self.finished = BoundedSet(caps.finished_turns, (*finished, turn))


def _chunks(ids: bytes) -> Iterator[bytes]:
    return (ids[i:i + DIGEST_SIZE] for i in range(0, len(ids), DIGEST_SIZE))
