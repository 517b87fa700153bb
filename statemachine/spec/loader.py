"""Read a spec file safely: size limits, a hardened YAML loader, string keys, the JSON Schema.

What comes out is plain data (the schema's shape) for `statemachine.spec.check` to build into a
`Spec`. Nothing here knows what a guard or effect means. The other YAML files beside the spec
(requirements, mutants) are read by the same rules: `read_yaml_file`, `read_yaml_text`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from statemachine.spec.model import SpecError

if TYPE_CHECKING:
    from pathlib import Path

    import yaml

__all__ = [
    "BUILTIN_SPEC",
    "MAX_SPEC_BYTES",
    "MAX_SPEC_DEPTH",
    "SCHEMA_PATH",
    "check_spec_data",
    "read_spec_file",
    "read_spec_text",
    "read_yaml_file",
    "read_yaml_text",
    "schema_violation",
    "specs_dir",
]

SPEC_FILE = "session_lifecycle.yaml"
SCHEMA_FILE = "session_lifecycle.schema.json"

# A spec is a few kilobytes; anything near these limits is not a lifecycle but an attack or an
# accident, refused before it can cost time or memory.
MAX_SPEC_BYTES = 256 * 1024
MAX_SPEC_DEPTH = 32


def _specs_dir_name() -> str:
    # Installed wheels carry the spec inside the package; a source checkout keeps it in specs/.
    # (Plain os.path, not importlib.resources or pathlib: their imports cost start-up time.)
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # the package
    packaged = os.path.join(here, "specs")
    if os.path.isfile(os.path.join(packaged, SPEC_FILE)):
        return packaged
    return os.path.join(os.path.dirname(here), "specs")


def specs_dir() -> Path:
    """The directory of the built-in spec, its schema, the requirements and the mutants."""
    from pathlib import Path

    return Path(_SPECS_DIR)


_SPECS_DIR = _specs_dir_name()
# The same files as BUILTIN_SPEC and SCHEMA_PATH, as strings (what a replay needs).
BUILTIN_SPEC_NAME = os.path.join(_SPECS_DIR, SPEC_FILE)
SCHEMA_NAME = os.path.join(_SPECS_DIR, SCHEMA_FILE)


def __getattr__(name: str) -> Any:
    # BUILTIN_SPEC and SCHEMA_PATH are `Path`s, made on first use: pathlib costs start-up time.
    if name in ("BUILTIN_SPEC", "SCHEMA_PATH"):
        from pathlib import Path

        value = Path(BUILTIN_SPEC_NAME if name == "BUILTIN_SPEC" else SCHEMA_NAME)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    BUILTIN_SPEC: Path
    SCHEMA_PATH: Path


@cache
def _schema() -> dict[str, Any]:
    with open(SCHEMA_NAME, encoding="utf-8") as f:
        loaded: dict[str, Any] = json.load(f)
    return loaded


def _json_path(parts: Iterator[Any] | Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@cache
def _spec_loader() -> type[yaml.SafeLoader]:
    """The YAML loader class, built on first use: a replay from the start-up cache never imports
    PyYAML (`statemachine.core.diskcache`)."""
    import yaml

    class _SpecLoader(yaml.SafeLoader):
        """The safe loader, minus what a lifecycle never needs and an attacker would use: explicit
        tags (`!!python/...`, `!foo`), anchors and aliases (the "billion laughs" expansion), and deep
        nesting (recursion in the composer)."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0

        def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
            event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            if isinstance(event, yaml.AliasEvent):
                raise _Refused(line, f"alias *{event.anchor} refused: a spec may not use anchors or aliases")
            if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
                raise _Refused(line, f"anchor &{event.anchor} refused: a spec may not use anchors or aliases")
            tag = getattr(event, "tag", None)
            if tag is not None:
                raise _Refused(line, f"tag {tag} refused: a spec may not use explicit YAML tags")
            if self._depth >= MAX_SPEC_DEPTH:
                raise _Refused(line, f"nested deeper than {MAX_SPEC_DEPTH} levels (MAX_SPEC_DEPTH)")
            self._depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    return _SpecLoader


def _too_big(source: str, size: str) -> SpecError:
    return SpecError(source, "$", f"the file is {size} bytes; the limit is {MAX_SPEC_BYTES} (MAX_SPEC_BYTES)")


def _read_bounded(name: str) -> str:
    try:
        with open(name, "rb") as stream:
            # Read one byte past the limit, never the whole file: it may be huge or endless.
            data = stream.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            raise _too_big(name, f"more than {MAX_SPEC_BYTES}")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(name, "$", f"cannot read the file: {exc}") from None


def read_spec_file(path: str | Path | None = None) -> tuple[dict[str, Any], str]:
    """Read a spec file (the built-in one when `path` is None): its data and its name."""
    if path is None:
        name = BUILTIN_SPEC_NAME
    else:
        from pathlib import Path

        name = str(Path(path))  # the name as before: Path's normal form
    return read_spec_text(_read_bounded(name), name), name


def _check_keys(value: Any, path: str, source: str) -> None:
    # YAML allows keys of any type (`1:`, `null:`, `2024-01-01:`); the schema and the builder
    # assume strings. Depth is already bounded by the loader.
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpecError(source, path, f"key {key!r} must be a string, got {type(key).__name__}")
            _check_keys(item, f"{path}.{key}" if path != "$" else key, source)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_keys(item, f"{path}[{i}]", source)


def read_yaml_text(text: str, source: str = "<memory>") -> Any:
    """YAML text -> plain data, by the spec's hardened rules: the size limit, a safe loader without
    tags, anchors or aliases, bounded depth, string keys. `SpecError` names the place; no schema."""
    if len(text) > MAX_SPEC_BYTES:  # more characters than the limit is more bytes too
        raise _too_big(source, f"more than {MAX_SPEC_BYTES}")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_BYTES:
        raise _too_big(source, str(size))
    import yaml

    try:
        raw = yaml.load(text, Loader=_spec_loader())  # a SafeLoader: plain data only
    except _Refused as exc:
        raise SpecError(source, f"line {exc.line}", exc.message) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "$"
        raise SpecError(source, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    _check_keys(raw, "$", source)
    return raw


def read_yaml_file(path: str | Path) -> Any:
    """A YAML file's data, read as `read_yaml_text` reads text, the file never read past the limit."""
    name = str(path)
    return read_yaml_text(_read_bounded(name), name)


def schema_violation(schema: dict[str, Any], data: Any) -> tuple[str, str] | None:
    """The most relevant place where `data` breaks the JSON Schema, and what: (path, message), or
    None. The message is shortened: the schema's quotes the offending value, which may be the whole file."""
    import jsonschema  # only when a file is checked: keeps `import statemachine` light

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if error is None:
        return None
    message = error.message if len(error.message) <= 300 else error.message[:300] + "... (shortened)"
    return _json_path(error.absolute_path), message


def check_spec_data(data: Any, source: str) -> dict[str, Any]:
    """Spec data (read or edited) checked as a file's would be: string keys, the JSON Schema."""
    _check_keys(data, "$", source)
    violation = schema_violation(_schema(), data)
    if violation is not None:
        raise SpecError(source, *violation)
    checked: dict[str, Any] = data
    return checked


def read_spec_text(text: str, source: str = "<memory>") -> dict[str, Any]:
    """Spec text (YAML) -> its data, checked against the JSON Schema."""
    raw = read_yaml_text(text, source)
    if raw is None:
        raise SpecError(source, "$", "the spec is empty")
    return check_spec_data(raw, source)
