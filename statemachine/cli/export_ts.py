"""`export typescript`, `export xstate` and `export xstate-setup`: the formats this module adds to
the `export` subcommand, and their text (`statemachine.rendering.typescript`, `.xstate`)."""

from __future__ import annotations

from statemachine.spec.model import Spec

__all__ = ["FORMATS", "HELP", "render"]

FORMATS = ("typescript", "xstate", "xstate-setup")
HELP = ("`typescript`, a dependency-free TypeScript module with the whole lifecycle (docs/typescript.md); "
        "`xstate`, an XState v5 machine config (JSON) of the statuses and transitions; `xstate-setup`, that "
        "config in a TypeScript module with a typed setup()")


def render(fmt: str, spec: Spec) -> bytes:
    """The export of `spec` in `fmt` (one of FORMATS). Raises `ValueError` (TypeScriptExportError,
    XStateExportError) naming what cannot be exported."""
    if fmt == "typescript":
        from statemachine.rendering.typescript import export_typescript

        return export_typescript(spec).encode("ascii")
    from statemachine.rendering.xstate import config_json, export_setup

    if fmt == "xstate":
        return config_json(spec).encode("ascii")
    if fmt == "xstate-setup":
        return export_setup(spec).encode("ascii")
    raise ValueError(f"unknown export format {fmt!r}")
