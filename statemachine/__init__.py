"""A session-lifecycle kernel for coding-agent orchestrators.

Provider runtime events go in; one consistent session per thread comes out. The lifecycle is a
spec file (`specs/session_lifecycle.yaml`) run by the `transitions` library, and its core
invariant is proven: a session whose status may not hold a turn never holds one.
"""

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
