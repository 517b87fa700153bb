"""The spec's declarations against the requirements: a status flag may not weaken a requirement,
and the spec must list the invariants that state the requirements it restates.

A state requirement may name statuses that never hold a turn (`no_turn_statuses`). The spec
declares its own `holds_turn` flags, and other parts of the package trust them (the stale-turn and
reconciliation operations, the diagrams). A spec that marks one of those statuses as holding a
turn contradicts the requirement even when no event happens to expose it, so it fails here.
"""

from __future__ import annotations

import time

from statemachine.spec.model import Spec
from statemachine.spec.requirements import Requirements
from statemachine.verify.report import CheckResult

__all__ = ["covers", "declarations"]


def covers(requirements: Requirements) -> tuple[str, ...]:
    """The requirements this check evaluates: the state requirements that name statuses or invariants."""
    return tuple(r.name for r in requirements.of_form("state") if r.no_turn_statuses or r.spec_invariant)


def declarations(spec: Spec, requirements: Requirements) -> CheckResult:
    started = time.perf_counter()
    bad = requirements.declaration_violations()
    checked = covers(requirements)
    covered = {"statuses": len(spec.statuses), "requirements": len(checked)}
    if bad:
        return CheckResult("declarations", False, time.perf_counter() - started, covered,
                           "; ".join(f"{name}: {why}" for name, why in bad.items()), tuple(bad),
                           counterexamples={name: [] for name in bad}, checked=checked)
    return CheckResult("declarations", True, time.perf_counter() - started, covered,
                       f"the spec's holds_turn flags and invariants agree with {len(checked)} requirement(s)",
                       checked=checked)
