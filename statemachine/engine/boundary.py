"""The engine boundary: what the projector asks of an engine, and nothing else.

An engine answers one lifecycle event on one thread: given the thread's record and an event
whose trigger the spec knows, it returns the `Outcome` and, when the event is applied, commits
the step through `ThreadRecord.commit` (the one method that changes a record's session and
finished turns). Two engines implement it: the compiled one (`statemachine.engine.compiled`, the
default) and the `transitions` reference (`statemachine.engine.machine`). `verify`'s agreement check
proves they give the same outcome, session and memory on every reachable state and event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from statemachine.core.event import Event
    from statemachine.core.outcome import Outcome
    from statemachine.core.record import ThreadRecord
    from statemachine.spec.model import Spec

__all__ = ["ENGINES", "Engine", "EngineName", "StepFn"]

# One step: (the thread's record, a lifecycle event) -> its outcome, the record already updated
# when applied.
StepFn = Callable[["ThreadRecord", "Event"], "Outcome"]
EngineName = Literal["compiled", "transitions"]
ENGINES: tuple[EngineName, ...] = ("compiled", "transitions")


class Engine(Protocol):
    """A step function for every (status, trigger) of one spec."""

    spec: Spec

    @property
    def dispatch(self) -> Mapping[str, Mapping[str, StepFn]]:
        """status -> trigger name -> step; every pair of the spec is present."""
        ...
