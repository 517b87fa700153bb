"""The lifecycle spec: load a file, check it against a vocabulary, get a typed `Spec`.

Three layers, each in its own module: the typed model (`spec_model`, knows no implementation),
the hardened reader (`spec_loader`: size, YAML, schema) and the checker (`spec_check`: references
and reachability, against the guards and effects of a `Vocabulary`). No string from a spec is
ever evaluated: guard and effect names are looked up in the vocabulary.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from statemachine.core.diskcache import cached, file_bytes, key_of, runtime_parts, source_parts
from statemachine.spec import loader as spec_loader
from statemachine.spec.check import build_spec
from statemachine.spec.loader import (
    BUILTIN_SPEC_NAME,
    MAX_SPEC_BYTES,
    MAX_SPEC_DEPTH,
    SCHEMA_NAME,
    read_spec_file,
    read_spec_text,
)
from statemachine.spec.model import (
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
from statemachine.spec.semantics import Vocabulary

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
    when this very file was read before (`statemachine.core.diskcache`)."""

    return build_spec(builtin_spec_data(), BUILTIN_SPEC_NAME)


# The layers whose code decides what the built-in spec's data is (see `source_parts`).
SPEC_LAYERS = ("core", "spec")


def builtin_spec_data() -> dict[str, Any]:
    """The built-in spec's data, read and checked against the JSON Schema (`read_spec_file`), or
    as stored the last time this exact file was."""
    try:
        with open(BUILTIN_SPEC_NAME, "rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        data = b""
    if not data or len(data) > MAX_SPEC_BYTES:
        return read_spec_file(None)[0]  # the usual reader says what is wrong

    def load(stored: Any) -> dict[str, Any] | None:
        return stored if isinstance(stored, dict) and all(isinstance(k, str) for k in stored) else None

    return cached(lambda: spec_data_key(data), lambda: read_spec_text(text, BUILTIN_SPEC_NAME), lambda raw: raw, load)


def spec_data_key(data: bytes, *, root: str | None = None) -> str:
    """The start-up cache key of a spec file's checked data (`data`: its bytes). `root`: another
    copy of the package."""
    sources = [*file_bytes(SCHEMA_NAME), *source_parts(*SPEC_LAYERS, root=root)]
    return key_of([b"spec", data, *sources, *runtime_parts()])


