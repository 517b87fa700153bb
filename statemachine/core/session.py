"""The projected session: an immutable value, with T3's wire field names."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["FIELDS", "MAX_OPEN_REQUESTS", "MAX_SAFE_INTEGER", "PENDING_UNKNOWN", "OpenRequest", "RequestId",
           "Session", "SessionField", "request_id_problem", "unstorable"]

# A pending turn start whose turn id is not known yet.
PENDING_UNKNOWN = ""

# A provider request's id as the protocol gave it: a string or an integer (JSON-RPC ids), or None
# for a request that carries none. 1 and "1" are different requests.
RequestId = str | int | None
# One open request: (its id, what it asks for: approval, user-input).
OpenRequest = tuple[RequestId, str]
# At most this many requests are open per session at once; one more is refused
# (`too_many_open_requests`). The guard `request_room` in statemachine.spec.semantics says the
# same number in its code; a test holds them equal.
MAX_OPEN_REQUESTS = 32
# The largest integer id JavaScript holds exactly (the TypeScript export compares ids with ===).
MAX_SAFE_INTEGER = 2**53 - 1


def unstorable(value: str) -> str | None:
    """Why no store can keep this text as it is, or None when every store can: a NUL (PostgreSQL
    refuses it) or a lone surrogate (not Unicode text; UTF-8 cannot encode it). The one decision
    for the event parser and for sessions coming back from snapshots and stores."""
    if "\x00" in value:
        return "holds a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate (not Unicode text)"
    return None


def request_id_problem(value: object, max_length: int) -> str | None:
    """Why `value` is no request id, or None when it is one: a string of 1 to `max_length`
    characters that every store can keep, or an integer within +/-MAX_SAFE_INTEGER (not a bool,
    which Python would take for 1 or 0). The one decision for the event parser and for sessions
    coming back from snapshots and stores (a missing id, None, is the callers' to allow)."""
    if type(value) is int:
        return None if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else \
            f"is an integer beyond +/-{MAX_SAFE_INTEGER}"
    if type(value) is not str:
        return f"must be a string or an integer, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > max_length:
        return f"is {len(value)} characters long; the limit is {max_length}"
    return unstorable(value)


class Session(NamedTuple):
    """One thread's projected session. Immutable: callers hold snapshots, never live state.

    A NamedTuple rather than a frozen dataclass: one is built per applied event, and a tuple
    costs about a third as much to build.
    """

    thread_id: str
    status: str
    provider_name: str | None = None
    active_turn_id: str | None = None
    last_error: str | None = None
    updated_at: str | None = None
    # Carried through for the orchestrator, never interpreted by the lifecycle.
    provider_instance_id: str | None = None
    runtime_mode: str | None = None
    # The orchestrator's side (docs/semantics.md, "Commands"). `pending_turn` is
    # None when no turn start is pending, else the turn id the orchestrator expects, or
    # PENDING_UNKNOWN ("") when it does not know the id yet (no real turn id is empty).
    pending_turn: str | None = None
    awaiting: str | None = None  # None, "approval" or "user-input": what the newest open request asks
    # The provider's open requests, oldest first: (requestId, kind). Empty when awaiting is None.
    open_requests: tuple[OpenRequest, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        """The session as JSON, with T3's field names."""
        wire: dict[str, Any] = {
            "threadId": self.thread_id,
            "status": self.status,
            "providerName": self.provider_name,
            "activeTurnId": self.active_turn_id,
            "lastError": self.last_error,
            "updatedAt": self.updated_at,
            "pendingTurn": None if self.pending_turn is None else {"turnId": self.pending_turn or None},
            "awaiting": self.awaiting,
            "openRequests": [{"requestId": rid, "kind": kind} for rid, kind in self.open_requests],
        }
        if self.provider_instance_id is not None:
            wire["providerInstanceId"] = self.provider_instance_id
        if self.runtime_mode is not None:
            wire["runtimeMode"] = self.runtime_mode
        return wire

    def evolve(self, **changes: Any) -> Session:
        return self._replace(**changes)


class SessionField(NamedTuple):
    """One field of a session, said once: the wire, snapshots, the stores' columns, the
    requirements' paths and the audit all read this table."""

    attr: str  # the `Session` attribute, and the stores' column
    wire: str  # T3's JSON name
    always: bool  # present in every wire session (else only when set)
    lifecycle: bool  # the lifecycle reads or writes it (requirements may speak of it)
    description: str


FIELDS: tuple[SessionField, ...] = (
    SessionField("thread_id", "threadId", True, False, "The thread this session belongs to."),
    SessionField("status", "status", True, True, "The lifecycle status."),
    SessionField("provider_name", "providerName", True, True, "The provider that last spoke for the thread."),
    SessionField("active_turn_id", "activeTurnId", True, True, "The turn running now, or null."),
    SessionField("last_error", "lastError", True, True, "The last error, or null once cleared."),
    SessionField("updated_at", "updatedAt", True, True, "The latest createdAt applied (never moves back)."),
    SessionField("provider_instance_id", "providerInstanceId", False, False,
                 "Carried through for the orchestrator, never interpreted."),
    SessionField("runtime_mode", "runtimeMode", False, False,
                 "Carried through for the orchestrator, never interpreted."),
    SessionField("pending_turn", "pendingTurn", True, True,
                 "A requested turn that has not started: null, or {turnId: id or null}."),
    SessionField("awaiting", "awaiting", True, True,
                 "What the newest open request asks for: null, approval or user-input."),
    SessionField("open_requests", "openRequests", True, True,
                 "The provider's open requests, oldest first: [{requestId, kind}]."),
)
assert tuple(f.attr for f in FIELDS) == Session._fields, "FIELDS must follow Session's order"
