"""Provider adapters: raw Codex, Claude and ACP output in, lifecycle envelope events out.

One adapter per stream: `feed()` each raw line, apply what it returns with
`SessionProjector.apply`, and call `finish()` at the end of the stream. See docs/adapters.md.
"""

from __future__ import annotations

from typing import Any

from .acp import AcpAdapter
from .base import (
    EOF_SETTLEMENTS,
    Adapter,
    AdapterError,
    AdapterStats,
    Clock,
    Envelope,
    EofSettlement,
    LineClock,
)
from .claude_stream_json import ClaudeStreamJsonAdapter
from .codex_app_server import CodexAppServerAdapter
from .codex_exec import CodexExecAdapter

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
]

# The raw formats, by the name the CLI's --from takes.
ADAPTERS: dict[str, type[Adapter]] = {
    cls.format: cls for cls in (CodexAppServerAdapter, CodexExecAdapter, ClaudeStreamJsonAdapter, AcpAdapter)
}
FORMATS: tuple[str, ...] = tuple(ADAPTERS)


def make_adapter(format_name: str, **options: Any) -> Adapter:
    """A fresh adapter for `format_name` (one of FORMATS); options go to `Adapter.__init__`."""
    cls = ADAPTERS.get(format_name)
    if cls is None:
        raise ValueError(f"unknown format {format_name!r}; known: {', '.join(FORMATS)}")
    return cls(**options)
