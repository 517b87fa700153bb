"""The lifecycle spec as typed values: what a spec file says, and nothing about how it runs.

This module knows no implementation: guard and effect names are plain strings here. Loading a
file is `statemachine.spec.loader`; checking it against a vocabulary of implementations and
building these values is `statemachine.spec.check`; `statemachine.spec.load` gathers the three.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "EffectRef",
    "EffectSpec",
    "EventType",
    "GuardSpec",
    "Invariant",
    "PayloadField",
    "Spec",
    "SpecError",
    "Status",
    "TransitionSpec",
    "Trigger",
    "no_transition_reason",
]


def no_transition_reason(status: str) -> str:
    """The rejection reason when no transition for the event's trigger leaves `status`."""
    return f"invalid_in_{status}"


class Trigger(NamedTuple):
    """A machine trigger: an event type, and the value of its `variant_by` field if it has one.
    `name` (`type` or `type[variant]`) is the one spelling used in spec files and tables."""

    type: str
    variant: str | None = None

    @property
    def name(self) -> str:
        return self.type if self.variant is None else f"{self.type}[{self.variant}]"

    @classmethod
    def parse(cls, name: str) -> Trigger:
        if name.endswith("]") and "[" in name:
            type_, _, variant = name[:-1].partition("[")
            return cls(type_, variant)
        return cls(name)


class SpecError(ValueError):
    """A spec file that cannot be used. `file` and `path` (e.g. `transitions[3].guards[0]`) say where."""

    def __init__(self, file: str, path: str, message: str) -> None:
        super().__init__(f"{file}: {path}: {message}")
        self.file = file
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class EffectRef:
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def param_map(self) -> dict[str, Any]:
        return dict(self.params)

    def label(self) -> str:
        if not self.params:
            return self.name
        args = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.name}({args})"


@dataclass(frozen=True, slots=True)
class Status:
    name: str
    holds_turn: bool
    on_enter: tuple[EffectRef, ...]
    description: str = ""
    reapable: bool = False  # the reaper may stop an idle session in this status


@dataclass(frozen=True, slots=True)
class PayloadField:
    name: str
    type: str
    required: bool = False
    default: str | None = None
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class EventType:
    type: str
    payload: tuple[PayloadField, ...]
    variant_by: str | None = None
    # Who sends it: "provider" (runtime events) or "command" (the orchestrator's requests).
    source: str = "provider"
    # An applied event of this type drops the thread and its memories (the outcome is FORGOTTEN).
    forgets_thread: bool = False

    @property
    def is_command(self) -> bool:
        return self.source == "command"

    def field(self, name: str) -> PayloadField | None:
        return next((f for f in self.payload if f.name == name), None)

    @property
    def trigger_values(self) -> tuple[Trigger, ...]:
        """The machine triggers this event type can become: one, or one per variant value."""
        if self.variant_by is None:
            return (Trigger(self.type),)
        selector = self.field(self.variant_by)
        assert selector is not None and selector.enum is not None  # checked at load
        return tuple(Trigger(self.type, v) for v in selector.enum)

    @property
    def triggers(self) -> tuple[str, ...]:
        """The names of `trigger_values` (`type`, or `type[value]` per variant)."""
        return tuple(t.name for t in self.trigger_values)


@dataclass(frozen=True, slots=True)
class GuardSpec:
    name: str
    rejects_as: str
    description: str = ""  # the declaration's (`statemachine.spec.semantics`), not the spec file's


@dataclass(frozen=True, slots=True)
class EffectSpec:
    name: str
    params: tuple[str, ...] = ()
    description: str = ""  # the declaration's (`statemachine.spec.semantics`), not the spec file's


@dataclass(frozen=True, slots=True)
class TransitionSpec:
    index: int  # position in the file: transitions are tried in this order
    trigger: str
    sources: tuple[str, ...]
    dest: str | None  # None for an internal transition (no exit, no on-enter)
    guards: tuple[str, ...] = ()
    effects: tuple[EffectRef, ...] = ()

    @property
    def internal(self) -> bool:
        return self.dest is None


@dataclass(frozen=True, slots=True)
class Invariant:
    name: str
    kind: str
    description: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Spec:
    """A checked lifecycle. Compared by identity; `digest` identifies its content (two loads of
    the same file have the same digest), which is what caches key on."""

    name: str
    initial: str
    statuses: tuple[Status, ...]
    events: tuple[EventType, ...]
    guards: Mapping[str, GuardSpec]
    effects: Mapping[str, EffectSpec]
    on_applied: tuple[EffectRef, ...]
    transitions: tuple[TransitionSpec, ...]
    invariants: tuple[Invariant, ...]
    source: str = field(default="<memory>", compare=False)
    digest: str = field(default="", compare=False)
    # The vocabulary (guard and effect implementations) the spec was checked against; opaque here.
    vocabulary: Any = field(default=None, compare=False, repr=False)
    _status_index: Mapping[str, Status] = field(default_factory=dict, compare=False, repr=False)
    _event_index: Mapping[str, EventType] = field(default_factory=dict, compare=False, repr=False)

    def status(self, name: str) -> Status:
        return self._status_index[name]

    def has_status(self, name: str) -> bool:
        return name in self._status_index

    def event_type(self, type_: str) -> EventType | None:
        return self._event_index.get(type_)

    @property
    def status_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.statuses)

    @property
    def reapable_statuses(self) -> tuple[str, ...]:
        """Statuses the reaper may stop once the session has been idle long enough."""
        return tuple(s.name for s in self.statuses if s.reapable)

    @property
    def turn_statuses(self) -> tuple[str, ...]:
        """Statuses that may hold a turn."""
        return tuple(s.name for s in self.statuses if s.holds_turn)

    @property
    def inactive_statuses(self) -> tuple[str, ...]:
        """Statuses that may not hold a turn."""
        return tuple(s.name for s in self.statuses if not s.holds_turn)

    @property
    def triggers(self) -> tuple[str, ...]:
        return tuple(t for e in self.events for t in e.triggers)

    def transitions_for(self, trigger: str) -> Iterator[TransitionSpec]:
        return (t for t in self.transitions if t.trigger == trigger)


