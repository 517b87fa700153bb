"""Pure bookkeeping the benchmark peers share. Each peer still restates the lifecycle itself, on
purpose (that is what is measured and what `run.py`'s agreement check compares); these helpers
hold nothing of the lifecycle, only memory and the `??` chain every peer needs."""

from __future__ import annotations

from typing import Any

__all__ = ["fallback", "remember"]


def remember(memory: dict[str, None], key: str, cap: int) -> None:
    """Add `key` to a bounded insertion-ordered set, forgetting the oldest entry when full."""
    memory[key] = None
    if len(memory) > cap:
        del memory[next(iter(memory))]


def fallback(value: Any, previous: str | None, default: str) -> str:
    """T3's `value ?? previous ?? default`, as text: only a missing or null value falls through."""
    if value is not None:
        return str(value)
    return previous if previous is not None else default
