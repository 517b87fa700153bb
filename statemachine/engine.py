"""The engine boundary: what the projector asks of an engine, and nothing else.

An engine answers one lifecycle event on one thread: given the thread's record and an event
whose trigger the spec knows, it returns the `Outcome` and, when the event is applied, commits
the step through `ThreadRecord.commit` (the one method that changes a record's session and
finished turns). Two engines implement it: the compiled one (`statemachine.compiled`, the
default) and the `transitions` reference (`statemachine.machine`). `verify`'s agreement check
proves they give the same outcome, session and memory on every reachable state and event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from .events import Event
    from .outcome import Outcome
    from .record import ThreadRecord
    from .spec_model import Spec

__all__ = ["ENGINES", "Engine", "EngineName", "StepFn", "engine_for"]

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


def engine_for(spec: Spec, name: EngineName) -> Engine:
    """The named engine for `spec` (each is built once per spec content and cached)."""
    if name == "compiled":
        from .compiled import compiled_for

        return compiled_for(spec)
    if name == "transitions":
        from .machine import machine_for

        return machine_for(spec)
    raise ValueError(f"engine must be one of {list(ENGINES)}, got {name!r}")
