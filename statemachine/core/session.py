"""The projected session: an immutable value, with T3's wire field names."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["PENDING_UNKNOWN", "Session"]

# A pending turn start whose turn id is not known yet.
PENDING_UNKNOWN = ""


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
    awaiting: str | None = None  # None, "approval" or "user-input": what the provider waits on

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
        }
        if self.provider_instance_id is not None:
            wire["providerInstanceId"] = self.provider_instance_id
        if self.runtime_mode is not None:
            wire["runtimeMode"] = self.runtime_mode
        return wire

    def evolve(self, **changes: Any) -> Session:
        return self._replace(**changes)
