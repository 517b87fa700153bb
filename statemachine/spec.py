"""The lifecycle spec: load a file, check it against a vocabulary, get a typed `Spec`.

Three layers, each in its own module: the typed model (`spec_model`, knows no implementation),
the hardened reader (`spec_loader`: size, YAML, schema) and the checker (`spec_check`: references
and reachability, against the guards and effects of a `Vocabulary`). No string from a spec is
ever evaluated: guard and effect names are looked up in the vocabulary.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from . import spec_loader
from .semantics import Vocabulary
from .spec_check import build_spec
from .spec_loader import BUILTIN_SPEC_NAME, MAX_SPEC_BYTES, MAX_SPEC_DEPTH, read_spec_file, read_spec_text
from .spec_model import (
    EffectRef,
    EffectSpec,
    EventType,
    GuardSpec,
    Invariant,
    PayloadField,
    Spec,
    SpecError,
    Status,
    TransitionSpec,
    Trigger,
    no_transition_reason,
)

__all__ = [
    "BUILTIN_SPEC",
    "MAX_SPEC_BYTES",
    "MAX_SPEC_DEPTH",
    "SCHEMA_PATH",
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
    "builtin_spec",
    "load_spec",
    "no_transition_reason",
    "parse_spec",
]


if TYPE_CHECKING:
    from pathlib import Path

    BUILTIN_SPEC: Path
    SCHEMA_PATH: Path


def __getattr__(name: str) -> Any:
    # BUILTIN_SPEC and SCHEMA_PATH are `Path`s, made on first use (see `spec_loader`).
    if name in ("BUILTIN_SPEC", "SCHEMA_PATH"):
        return getattr(spec_loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_spec(path: str | Path | None = None, *, vocabulary: Vocabulary | None = None) -> Spec:
    """Load and check a spec file (the built-in one when `path` is None)."""
    raw, name = read_spec_file(path)
    return build_spec(raw, name, vocabulary)


def parse_spec(text: str, source: str = "<memory>", *, vocabulary: Vocabulary | None = None) -> Spec:
    """Check spec text (YAML) and build the typed Spec."""
    return build_spec(read_spec_text(text, source), source, vocabulary)


@cache
def builtin_spec() -> Spec:
    """The built-in spec, loaded once per process; its checked data comes from the start-up cache
    when this very file was read before (`statemachine.startup_cache`)."""
    from .startup_cache import builtin_spec_data

    return build_spec(builtin_spec_data(), BUILTIN_SPEC_NAME)
