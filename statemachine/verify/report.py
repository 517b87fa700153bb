"""The shape every check returns, and how `verify` prints them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult"]


@dataclass(frozen=True)
class CheckResult:
    name: str  # "explore", "induction", "static", "spin", ...
    ok: bool
    seconds: float
    covered: dict[str, int] = field(default_factory=dict)  # e.g. {"states": 812, "transitions": 9440}
    detail: str = ""  # one line for humans: what was checked, or what broke
    violated: tuple[str, ...] = ()  # names of the invariants, requirements or static rules that failed
    # Shortest known path to the violation, as wire events `replay` accepts (None if ok or n/a).
    counterexample: list[dict[str, Any]] | None = None
    # Per violated name, the shortest path this check found to it (wire events).
    counterexamples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    skipped: bool = False  # the check could not run here (e.g. spin not installed); never ok
    # Requirement names this check evaluated (held unless listed in `violated`).
    checked: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 4),
            "covered": dict(self.covered),
            "detail": self.detail,
            "violated": list(self.violated),
            "counterexample": self.counterexample,
        }
