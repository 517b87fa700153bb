"""A session-lifecycle kernel for coding-agent orchestrators.

Provider runtime events go in; one consistent session per thread comes out. The lifecycle is a
spec file (`specs/session_lifecycle.yaml`) run by the `transitions` library, and its core
invariant is proven: a session whose status may not hold a turn never holds one.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from statemachine.core.version import __version__

if TYPE_CHECKING:
    from statemachine.core.event import Event, EventError
    from statemachine.core.outcome import Outcome, OutcomeKind
    from statemachine.core.session import Session
    from statemachine.core.vocabulary import (
        INACTIVE_STATUSES,
        OUTCOME_KINDS,
        REJECTION_REASONS,
        STATUSES,
        TURN_STATUSES,
        OutcomeKindName,
        RejectionReason,
        Status,
    )
    from statemachine.engine.machine import LifecycleMachine
    from statemachine.runtime.concurrency import ConsumeStats, LockedProjector, consume
    from statemachine.runtime.operations import (
        ActivityClock,
        expire_stale_turns,
        idle_since,
        reapable,
        reapable_sessions,
        reconcile,
        stale_turns,
    )
    from statemachine.runtime.pipeline import BatchResult
    from statemachine.runtime.projector import SessionProjector
    from statemachine.runtime.snapshot import SnapshotError
    from statemachine.spec.load import builtin_spec, load_spec
    from statemachine.spec.model import Spec, SpecError
    from statemachine.spec.parser import EventParser

# Each public name, by the module that defines it: imported on first use (PEP 562), so that
# `python -m statemachine replay` loads only what a replay needs.
_EXPORTS = {
    "BatchResult": "runtime.pipeline",
    "ConsumeStats": "runtime.concurrency", "LockedProjector": "runtime.concurrency", "consume": "runtime.concurrency",
    "Event": "core.event", "EventError": "core.event", "EventParser": "spec.parser",
    "LifecycleMachine": "engine.machine",
    "ActivityClock": "runtime.operations", "expire_stale_turns": "runtime.operations",
    "idle_since": "runtime.operations",
    "reapable": "runtime.operations", "reapable_sessions": "runtime.operations", "reconcile": "runtime.operations",
    "stale_turns": "runtime.operations",
    "Outcome": "core.outcome", "OutcomeKind": "core.outcome",
    "SessionProjector": "runtime.projector",
    "Session": "core.session",
    "SnapshotError": "runtime.snapshot",
    "Spec": "spec.model", "SpecError": "spec.model", "builtin_spec": "spec.load", "load_spec": "spec.load",
    "INACTIVE_STATUSES": "core.vocabulary", "OUTCOME_KINDS": "core.vocabulary", "REJECTION_REASONS": "core.vocabulary",
    "STATUSES": "core.vocabulary", "TURN_STATUSES": "core.vocabulary", "OutcomeKindName": "core.vocabulary",
    "RejectionReason": "core.vocabulary", "Status": "core.vocabulary",
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
    "__version__",
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
