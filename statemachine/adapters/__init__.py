"""Provider adapters: raw Codex, Claude and ACP output in, lifecycle envelope events out.

One adapter per stream: `feed()` each raw line, apply what it returns with
`SessionProjector.apply`, and call `finish()` at the end of the stream. See docs/adapters.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from statemachine.adapters.acp import AcpAdapter
    from statemachine.adapters.base import (
        EOF_SETTLEMENTS,
        Adapter,
        AdapterError,
        AdapterStats,
        Clock,
        Envelope,
        EofSettlement,
        LineClock,
        wall_clock,
    )
    from statemachine.adapters.claude_stream_json import ClaudeStreamJsonAdapter
    from statemachine.adapters.codex_app_server import CodexAppServerAdapter
    from statemachine.adapters.codex_exec import CodexExecAdapter

__all__ = [
    "ADAPTERS",
    "EOF_SETTLEMENTS",
    "FORMATS",
    "AcpAdapter",
    "Adapter",
    "AdapterError",
    "AdapterStats",
    "ClaudeStreamJsonAdapter",
    "Clock",
    "CodexAppServerAdapter",
    "CodexExecAdapter",
    "Envelope",
    "EofSettlement",
    "LineClock",
    "make_adapter",
    "wall_clock",
]

# Imported on first use (PEP 562): every `replay` builds the --from option, and a replay of an
# envelope log needs no adapter.
_EXPORTS = {
    "AcpAdapter": "acp", "ClaudeStreamJsonAdapter": "claude_stream_json", "CodexAppServerAdapter": "codex_app_server",
    "CodexExecAdapter": "codex_exec", "EOF_SETTLEMENTS": "base", "Adapter": "base", "AdapterError": "base",
    "AdapterStats": "base", "Clock": "base", "Envelope": "base", "EofSettlement": "base", "LineClock": "base",
    "wall_clock": "base",
}


def _adapters() -> dict[str, type[Adapter]]:
    """The raw formats, by the name the CLI's --from takes."""
    from statemachine.adapters.acp import AcpAdapter
    from statemachine.adapters.claude_stream_json import ClaudeStreamJsonAdapter
    from statemachine.adapters.codex_app_server import CodexAppServerAdapter
    from statemachine.adapters.codex_exec import CodexExecAdapter

    return {cls.format: cls for cls in (CodexAppServerAdapter, CodexExecAdapter, ClaudeStreamJsonAdapter, AcpAdapter)}


def __getattr__(name: str) -> Any:
    if name == "ADAPTERS":
        value: Any = _adapters()
    elif name == "FORMATS":
        value = tuple(__getattr__("ADAPTERS"))
    elif name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


if TYPE_CHECKING:
    ADAPTERS: dict[str, type[Adapter]]
    FORMATS: tuple[str, ...]


def make_adapter(format_name: str, **options: Any) -> Adapter:
    """A fresh adapter for `format_name` (one of FORMATS); options go to `Adapter.__init__`.

    Events the protocol gives no time for are stamped by `clock=`: the wall clock unless told
    otherwise (a live stream's events happened now). Replaying a saved log passes
    `clock=LineClock()`, which gives the same times on every run."""
    adapters: dict[str, type[Adapter]] = __getattr__("ADAPTERS")
    cls = adapters.get(format_name)
    if cls is None:
        raise ValueError(f"unknown format {format_name!r}; known: {', '.join(__getattr__('FORMATS'))}")
    return cls(**options)
