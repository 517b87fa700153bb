"""A session-lifecycle kernel for coding-agent orchestrators.

Provider runtime events go in; one consistent session per thread comes out. The lifecycle is a
spec file (`specs/session_lifecycle.yaml`) run by the `transitions` library, and its core
invariant is proven: a session whose status may not hold a turn never holds one.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batch import BatchResult
    from .concurrency import ConsumeStats, LockedProjector, consume
    from .events import Event, EventError, EventParser
    from .machine import LifecycleMachine
    from .operations import (
        ActivityClock,
        expire_stale_turns,
        idle_since,
        reapable,
        reapable_sessions,
        reconcile,
        stale_turns,
    )
    from .outcome import Outcome, OutcomeKind
    from .projector import SessionProjector
    from .session import Session
    from .snapshot import SnapshotError
    from .spec import Spec, SpecError, builtin_spec, load_spec
    from .vocabulary import (
        INACTIVE_STATUSES,
        OUTCOME_KINDS,
        REJECTION_REASONS,
        STATUSES,
        TURN_STATUSES,
        OutcomeKindName,
        RejectionReason,
        Status,
    )

# Each public name, by the module that defines it: imported on first use (PEP 562), so that
# `python -m statemachine replay` loads only what a replay needs.
_EXPORTS = {
    "BatchResult": "batch",
    "ConsumeStats": "concurrency", "LockedProjector": "concurrency", "consume": "concurrency",
    "Event": "events", "EventError": "events", "EventParser": "events",
    "LifecycleMachine": "machine",
    "ActivityClock": "operations", "expire_stale_turns": "operations", "idle_since": "operations",
    "reapable": "operations", "reapable_sessions": "operations", "reconcile": "operations",
    "stale_turns": "operations",
    "Outcome": "outcome", "OutcomeKind": "outcome",
    "SessionProjector": "projector",
    "Session": "session",
    "SnapshotError": "snapshot",
    "Spec": "spec", "SpecError": "spec", "builtin_spec": "spec", "load_spec": "spec",
    "INACTIVE_STATUSES": "vocabulary", "OUTCOME_KINDS": "vocabulary", "REJECTION_REASONS": "vocabulary",
    "STATUSES": "vocabulary", "TURN_STATUSES": "vocabulary", "OutcomeKindName": "vocabulary",
    "RejectionReason": "vocabulary", "Status": "vocabulary",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "INACTIVE_STATUSES",
    "OUTCOME_KINDS",
    "REJECTION_REASONS",
    "STATUSES",
    "TURN_STATUSES",
    "ActivityClock",
    "BatchResult",
    "ConsumeStats",
    "Event",
    "EventError",
    "EventParser",
    "LifecycleMachine",
    "LockedProjector",
    "Outcome",
    "OutcomeKind",
    "OutcomeKindName",
    "RejectionReason",
    "Session",
    "SessionProjector",
    "SnapshotError",
    "Spec",
    "SpecError",
    "Status",
    "builtin_spec",
    "consume",
    "expire_stale_turns",
    "idle_since",
    "load_spec",
    "reapable",
    "reapable_sessions",
    "reconcile",
    "stale_turns",
]
__version__ = "0.1.0"
