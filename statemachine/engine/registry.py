"""Which engine steps a spec: `engine_for`, the bounded per-spec cache of compiled engines, and
the built-in spec's compiled engine kept in the start-up cache (`statemachine.core.diskcache`)."""

from __future__ import annotations

import os
import sys
from types import CodeType
from typing import Any

from statemachine.core.diskcache import cached, file_bytes, key_of, runtime_parts, source_parts
from statemachine.engine.boundary import ENGINES, Engine, EngineName
from statemachine.engine.compiled import CompiledMachine, Generated
from statemachine.spec.cache import SpecCache
from statemachine.spec.loader import BUILTIN_SPEC_NAME
from statemachine.spec.model import Spec
from statemachine.spec.semantics import VOCABULARY

__all__ = ["ENGINE_LAYERS", "compiled_for", "engine_for", "engine_key"]

# The layers whose code decides what a compiled engine is: a change to any module in them is a
# new start-up cache key (see `source_parts`).
ENGINE_LAYERS = ("core", "spec", "engine")


def _transitions_source() -> bytes:
    """The installed `transitions` core (recording runs it), found on sys.path as the import system
    would find a plain package, without importing it (or importlib.util)."""
    for entry in sys.path:
        core = os.path.join(entry or ".", "transitions", "core.py")
        if os.path.isfile(core):
            return file_bytes(core)[0]
    return b""


def engine_key(spec: Spec, *, root: str | None = None) -> str:
    """The start-up cache key of `spec`'s compiled engine. `root`: another copy of the package."""
    vocabulary = spec.vocabulary
    fingerprint = repr(vocabulary.fingerprint if vocabulary is not None else None).encode("utf-8", "surrogatepass")
    sources = source_parts(*ENGINE_LAYERS, root=root)
    return key_of([b"engine", spec.digest.encode(), fingerprint, *sources, _transitions_source(), *runtime_parts()])


def _dump_generated(g: Generated) -> dict[str, Any]:
    return {"source": g.source, "filename": g.filename, "code": g.code, "constants": [list(c) for c in g.constants],
            "names": [[trigger, status, name] for (trigger, status), name in g.names.items()],
            "functions": list(g.functions)}


def _dump_engine(engine: CompiledMachine) -> dict[str, Any]:
    # Both modules: `apply`'s step functions and the batch path's (a replay uses the latter).
    return {"step": _dump_generated(engine.generated), "batch": _dump_generated(engine.batch_generated)}


def _load_generated(spec: Spec, stored: Any) -> Generated | None:

    if not isinstance(stored, dict):
        return None
    source, filename, code = stored["source"], stored["filename"], stored["code"]
    constants, names, functions = stored["constants"], stored["names"], stored["functions"]
    if not (isinstance(source, str) and isinstance(filename, str) and isinstance(code, CodeType)):
        return None
    if not all(isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) for c in constants):
        return None
    if not all(isinstance(n, list) and len(n) == 3 and all(isinstance(x, str) for x in n) for n in names):
        return None
    by_pair = {(t, s): n for t, s, n in names}
    # Every (trigger, status) of this spec, each function's text, nothing else.
    if set(by_pair) != {(t, s) for t in spec.triggers for s in spec.status_names} or len(by_pair) != len(names):
        return None
    if not isinstance(functions, list) or len(functions) != len(names):
        return None
    if not all(isinstance(f, str) for f in functions):
        return None
    return Generated(source, filename, code, tuple((c[0], c[1]) for c in constants), by_pair, tuple(functions))


def builtin_engine(spec: Spec, factory: type[CompiledMachine]) -> CompiledMachine:
    """The compiled engine for `spec`: from the cache when `spec` is the built-in one (with the
    built-in vocabulary), else built (`factory(spec)`), as always."""
    if spec.vocabulary is not VOCABULARY or spec.source != BUILTIN_SPEC_NAME or not spec.digest:
        return factory(spec)

    def load(stored: Any) -> CompiledMachine | None:
        if not isinstance(stored, dict):
            return None
        generated = _load_generated(spec, stored.get("step"))
        batch = _load_generated(spec, stored.get("batch"))
        if generated is None or batch is None:
            return None
        return factory(spec, generated=generated, batch_generated=batch)

    return cached(lambda: engine_key(spec), lambda: factory(spec), _dump_engine, load)


def _build(spec: Spec) -> CompiledMachine:
    # The built-in spec's engine comes from disk when cached.
    return builtin_engine(spec, CompiledMachine)


_COMPILED: SpecCache[CompiledMachine] = SpecCache(_build)


def compiled_for(spec: Spec) -> CompiledMachine:
    """One compiled machine per spec content per process (a bounded cache)."""
    return _COMPILED.get(spec)


def engine_for(spec: Spec, name: EngineName) -> Engine:
    """The named engine for `spec` (each is built once per spec content and cached)."""
    if name == "compiled":
        return compiled_for(spec)
    if name == "transitions":
        from statemachine.engine.machine import machine_for  # imports `transitions`: only when asked

        return machine_for(spec)
    raise ValueError(f"engine must be one of {list(ENGINES)}, got {name!r}")
