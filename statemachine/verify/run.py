"""Run every check on one spec and render the report (text or JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from ..spec import Spec
from .explore import explore
from .induction import induction
from .report import CheckResult
from .static import static_check

__all__ = ["CHECKS", "render_text", "report_json", "run_checks", "shortest_counterexample"]


def _spin(spec: Spec) -> CheckResult:
    from .spin import check_spin  # needs the `spin` program; imported only when asked for

    return check_spin(spec)


def _agreement(spec: Spec) -> CheckResult:
    # The same walk as `explore`, which already checks the invariants on it: only compare here.
    return explore(spec, engine="compiled", reference="transitions", name="agreement", check_invariants=False)


# Cheapest first; each is independent of the others.
CHECKS: dict[str, Callable[[Spec], CheckResult]] = {
    "static": static_check,
    "explore": explore,
    "induction": induction,
    "agreement": _agreement,
    "spin": _spin,
}


def run_checks(spec: Spec, skip: Iterable[str] = ()) -> list[CheckResult]:
    skipped = set(skip)
    return [check(spec) for name, check in CHECKS.items() if name not in skipped]


def shortest_counterexample(results: list[CheckResult]) -> list[dict[str, Any]] | None:
    """The explorer's path when it failed (shortest by construction), else any other one."""
    candidates = [r for r in results if not r.ok and r.counterexample]
    candidates.sort(key=lambda r: (r.name != "explore", len(r.counterexample or [])))
    return candidates[0].counterexample if candidates else None


def _covered(result: CheckResult) -> str:
    return " ".join(f"{k}={v}" for k, v in result.covered.items())


def render_text(spec: Spec, results: list[CheckResult]) -> str:
    lines = [
        f"spec: {spec.source} ({len(spec.statuses)} statuses, {len(spec.events)} event types, "
        f"{len(spec.transitions)} transitions, {len(spec.invariants)} invariants)"
    ]
    for r in results:
        verdict = "SKIPPED" if r.skipped else ("ok" if r.ok else "FAILED")
        lines.append(f"{r.name:<10} {verdict:<8} {r.seconds:7.3f}s  {_covered(r)}")
        lines.append(f"{'':<10} {r.detail}")
    failed = [r.name for r in results if not r.ok]
    if not failed:
        lines.append(f"all {len(results)} checks hold")
        return "\n".join(lines) + "\n"
    lines.append(f"NOT PROVEN: {', '.join(failed)}")
    path = shortest_counterexample(results)
    if path:
        lines.append(f"shortest counterexample ({len(path)} event(s)); save as a .jsonl file and run "
                     f"`python -m statemachine replay --spec {spec.source} FILE` to reproduce:")
        lines.extend(json.dumps(e) for e in path)
    return "\n".join(lines) + "\n"


def report_json(spec: Spec, results: list[CheckResult]) -> dict[str, Any]:
    return {
        "spec": spec.source,
        "ok": all(r.ok for r in results),
        "checks": [r.to_json() for r in results],
        "counterexample": shortest_counterexample(results),
    }
