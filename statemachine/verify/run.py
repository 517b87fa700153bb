"""Run every check on one spec against the requirements, and render the report (text or JSON)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statemachine.spec.model import Spec
from statemachine.spec.requirements import Requirements
from statemachine.verify import declarations as declarations_module
from statemachine.verify import explore as explore_module
from statemachine.verify import induction as induction_module
from statemachine.verify.declarations import declarations
from statemachine.verify.explore import explore, explore_and_agree
from statemachine.verify.induction import induction
from statemachine.verify.report import CheckResult
from statemachine.verify.static import static_check
from statemachine.verify.vacuity import Exercise, StateTap, VacuityResult, vacuity, vacuity_result

__all__ = [
    "CHECKS",
    "RequirementVerdict",
    "coverage",
    "render_text",
    "report_json",
    "requirement_verdicts",
    "run_checks",
    "shortest_counterexample",
    "write_counterexamples",
]

Check = Callable[[Spec, Requirements], CheckResult]


def _static(spec: Spec, _: Requirements) -> CheckResult:
    return static_check(spec)


def _spin(spec: Spec, requirements: Requirements) -> CheckResult:
    from statemachine.verify.spin import check_spin  # needs the `spin` program; imported only when asked for

    return check_spin(spec, requirements)


def _agreement(spec: Spec, _: Requirements) -> CheckResult:
    # The same walk as `explore`, which already checks the invariants on it: only compare here.
    return explore(spec, engine="compiled", reference="transitions", name="agreement", check_invariants=False)


# Cheapest first; each is independent of the others (vacuity counts on explore's walk when both run).
CHECKS: dict[str, Check] = {
    "static": _static,
    "declarations": declarations,
    "explore": explore,
    "vacuity": vacuity,
    "induction": induction,
    "agreement": _agreement,
    "spin": _spin,
}
# Where a requirement's counterexample is taken from, best first: the explorer's is a shortest
# replayable log; spin's replays too; the induction's is one step from a state that may be unreachable.
PREFERENCE = ("declarations", "explore", "spin", "induction")


def run_checks(spec: Spec, requirements: Requirements, skip: Iterable[str] = ()) -> list[CheckResult]:
    skipped = set(skip)
    shared: dict[str, CheckResult] = {}
    # The vacuity counts need the explorer's states: its walk reports them to a tap.
    tap = StateTap(requirements) if "vacuity" not in skipped and "explore" not in skipped else None
    walked = tap.as_requirements() if tap is not None else requirements
    if not {"explore", "agreement"} & skipped:
        # Both walk the same states and edges: one walk serves both (see explore_and_agree).
        shared = dict(zip(("explore", "agreement"), explore_and_agree(spec, walked), strict=True))
    elif "explore" not in skipped:
        shared["explore"] = explore(spec, walked)
    if tap is not None:
        shared["vacuity"] = vacuity_result(spec, requirements, tap.states, shared["explore"].covered.get("edges", -1))
    return [shared[name] if name in shared else check(spec, requirements)
            for name, check in CHECKS.items() if name not in skipped]


def coverage(spec: Spec, requirements: Requirements) -> dict[str, tuple[str, ...]]:
    """Requirement name -> the checks that evaluate it (in `CHECKS` order), found without running
    any: what `checked_by` says of each when every check runs and holds. Each check's own
    `covers` decides (spin's: what its model can state)."""
    from statemachine.verify.promela import PromelaError, requirement_coverage  # no spin program needed

    try:
        modelled: tuple[str, ...] = tuple(requirement_coverage(spec, requirements)[0])
    except PromelaError:
        modelled = ()  # a spec spin cannot model: its check fails, and covers nothing
    by_check = {
        "declarations": declarations_module.covers(requirements),
        "explore": explore_module.covers(requirements),
        "induction": induction_module.covers(requirements),
        "spin": modelled,
    }
    return {r.name: tuple(c for c in CHECKS if r.name in by_check.get(c, ())) for r in requirements.items}


@dataclass(frozen=True)
class RequirementVerdict:
    name: str
    form: str
    description: str
    checked_by: tuple[str, ...]  # the checks that ran and evaluated it
    violated_by: tuple[str, ...]
    counterexample: list[dict[str, Any]] | None  # the best one found (None when held)
    source: str | None  # the check the counterexample comes from
    replayable: bool  # True when it is a log from a new thread
    exercised: Exercise | None = None  # where its condition held in the explored system (vacuity)

    @property
    def held(self) -> bool:
        return bool(self.checked_by) and not self.violated_by

    @property
    def verdict(self) -> str:
        if self.violated_by == ("vacuity",):
            return "VACUOUS"  # held, but never tested: its condition holds nowhere
        if self.violated_by:
            return "VIOLATED"
        return "held" if self.checked_by else "NOT CHECKED"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "form": self.form,
            "verdict": self.verdict.lower(),
            "checked_by": list(self.checked_by),
            "violated_by": list(self.violated_by),
            "counterexample": self.counterexample,
            "counterexample_from": self.source,
            "replayable": self.replayable,
            "exercised": self.exercised.to_json() if self.exercised is not None else None,
        }


def requirement_verdicts(requirements: Requirements, results: list[CheckResult]) -> list[RequirementVerdict]:
    ran = [r for r in results if not r.skipped]
    exercised = {e.name: e for r in ran if isinstance(r, VacuityResult) for e in r.exercises}
    out = []
    for req in requirements.items:
        checked_by = tuple(r.name for r in ran if req.name in r.checked)
        violated_by = tuple(r.name for r in ran if req.name in r.violated)
        cx, source = None, None
        for name in sorted(violated_by, key=lambda n: PREFERENCE.index(n) if n in PREFERENCE else len(PREFERENCE)):
            found = next(r for r in ran if r.name == name).counterexamples.get(req.name)
            if found is not None:
                cx, source = found, name
                break
        out.append(RequirementVerdict(req.name, req.form, req.description, checked_by, violated_by, cx, source,
                                      source in ("explore", "spin"), exercised.get(req.name)))
    return out


def shortest_counterexample(results: list[CheckResult]) -> list[dict[str, Any]] | None:
    """The explorer's path when it failed (shortest by construction), else any other one."""
    candidates = [r for r in results if not r.ok and r.counterexample]
    candidates.sort(key=lambda r: (r.name != "explore", len(r.counterexample or [])))
    return candidates[0].counterexample if candidates else None


def _covered(result: CheckResult) -> str:
    return " ".join(f"{k}={v}" for k, v in result.covered.items())


def _replay_hint(spec: Spec) -> str:
    return f"`python -m statemachine replay --spec {spec.source} FILE`"


def render_text(spec: Spec, requirements: Requirements, results: list[CheckResult]) -> str:
    forms = {f: len(requirements.of_form(f)) for f in ("state", "contract", "temporal")}
    lines = [
        f"spec: {spec.source} ({len(spec.statuses)} statuses, {len(spec.events)} event types, "
        f"{len(spec.transitions)} transitions, {len(spec.invariants)} invariants)",
        f"requirements: {requirements.source} ({len(requirements.items)}: "
        + ", ".join(f"{n} {f}" for f, n in forms.items()) + ")",
    ]
    for r in results:
        verdict = "SKIPPED" if r.skipped else ("ok" if r.ok else "FAILED")
        lines.append(f"{r.name:<12} {verdict:<8} {r.seconds:7.3f}s  {_covered(r)}")
        lines.append(f"{'':<12} {r.detail}")
    verdicts = requirement_verdicts(requirements, results)
    width = max(len(v.name) for v in verdicts)
    lines.append("requirements, one per line (verdict, form, the checks that evaluated it); a violated one is "
                 "followed by its shortest counterexample as JSONL: save it as a .jsonl file and run "
                 + _replay_hint(spec))
    for v in verdicts:
        exercised = f"  [{v.exercised.label()}]" if v.exercised is not None else ""
        lines.append(f"{v.verdict:<11} {v.name:<{width}}  {v.form:<8}  {', '.join(v.checked_by) or '-'}{exercised}")
        if v.verdict == "VACUOUS":
            lines.append("  never exercised: its condition holds on no explored state or edge, so no check ever "
                         "tested it (an impossible combination, or one the universe never reaches)")
        elif v.violated_by:
            where = "" if v.replayable else (
                " (from the induction: one event from a state that may be unreachable, not a log from a new thread)"
                if v.source == "induction" else " (the spec's declarations alone: no event needed)")
            lines.append(f"  violated by {', '.join(v.violated_by)}; counterexample from {v.source}{where}:")
            lines.extend(json.dumps(e) for e in v.counterexample or [])
    unchecked = [v.name for v in verdicts if not v.checked_by]
    if unchecked:
        lines.append(f"NOT CHECKED (a check that covers them was left out or could not run): {', '.join(unchecked)}")
    failed = [r.name for r in results if not r.ok]
    if not failed:
        lines.append(f"all {len(results)} checks hold; {sum(v.held for v in verdicts)} of {len(verdicts)} "
                     "requirements held")
        return "\n".join(lines) + "\n"
    lines.append(f"NOT PROVEN: {', '.join(failed)}")
    if not any(v.violated_by for v in verdicts):
        path = shortest_counterexample(results)
        if path:
            lines.append(f"shortest counterexample ({len(path)} event(s)); save as a .jsonl file and run "
                         f"{_replay_hint(spec)} to reproduce:")
            lines.extend(json.dumps(e) for e in path)
    return "\n".join(lines) + "\n"


def report_json(spec: Spec, requirements: Requirements, results: list[CheckResult]) -> dict[str, Any]:
    return {
        "spec": spec.source,
        "requirements_file": requirements.source,
        "ok": all(r.ok for r in results),
        "checks": [r.to_json() for r in results],
        "requirements": [v.to_json() for v in requirement_verdicts(requirements, results)],
        "counterexample": shortest_counterexample(results),
    }


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".jsonl"


def write_counterexamples(
    directory: Path, requirements: Requirements, results: list[CheckResult], spec: Spec | None = None
) -> list[Path]:
    """Per violated requirement, named after it: its counterexample as JSONL, replayable with
    `replay --spec`, and that replay as an HTML timeline (`statemachine.observing.timeline`) beside it."""
    from statemachine.observing.timeline import render_timeline  # only when there is something to draw

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for v in requirement_verdicts(requirements, results):
        if not v.violated_by or v.counterexample is None:
            continue
        lines = [json.dumps(e) for e in v.counterexample]
        path = directory / _file_name(v.name)
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        page = path.with_suffix(".html")
        page.write_text(render_timeline(lines, spec=spec, title=f"counterexample: {v.name}", source=path.name),
                        encoding="ascii")
        written += [path, page]
    return written
