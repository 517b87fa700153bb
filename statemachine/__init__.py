"""A session-lifecycle kernel for coding-agent orchestrators.

Provider runtime events go in; one consistent session per thread comes out. The lifecycle is a
spec file (`specs/session_lifecycle.yaml`) run by the `transitions` library, and its core
invariant is proven: a session whose status may not hold a turn never holds one.
"""

from .events import Event, EventError, EventParser
from .machine import LifecycleMachine
from .outcome import Outcome, OutcomeKind
from .projector import SessionProjector
from .session import Session
from .spec import Spec, SpecError, builtin_spec, load_spec

__all__ = [
    "Event",
    "EventError",
    "EventParser",
    "LifecycleMachine",
    "Outcome",
    "OutcomeKind",
    "Session",
    "SessionProjector",
    "Spec",
    "SpecError",
    "builtin_spec",
    "load_spec",
]
__version__ = "0.1.0"
