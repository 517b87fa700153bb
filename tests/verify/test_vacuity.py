"""Vacuity: every requirement is exercised by the explored states and edges, and a requirement
whose condition can never hold fails `verify`, named, instead of passing unseen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from statemachine import builtin_spec
from statemachine.spec.requirements import BUILTIN_REQUIREMENTS, Requirements, builtin_requirements, parse_requirements
from statemachine.verify.explore import explore
from statemachine.verify.run import render_text, report_json, requirement_verdicts, run_checks
from statemachine.verify.vacuity import StateTap, VacuityResult, vacuity, vacuity_result

ROOT = Path(__file__).resolve().parents[2]

# A stopped session never holds a turn (no_turn_in_inactive_status): a contract about one is never tested.
IMPOSSIBLE_CONTRACT = """
  - name: stopped_turn_is_kept
    form: contract
    description: An event on a stopped session that holds a turn keeps the turn.
    when:
      all:
        - {eq: [before.status, stopped]}
        - {not: {is_null: before.activeTurnId}}
    then: {same: [before.activeTurnId, after.activeTurnId]}
"""
# Nor does an idle one have an error: the implication below is never put to the test.
IMPOSSIBLE_STATE = """
  - name: idle_error_is_short
    form: state
    description: An idle session's error is short.
    holds:
      implies:
        - all: [{eq: [session.status, idle]}, {not: {is_null: session.lastError}}]
        - {eq: [session.lastError, short]}
"""


def _with(*blocks: str) -> Requirements:
    text = BUILTIN_REQUIREMENTS.read_text(encoding="utf-8").rstrip("\n") + "\n" + "".join(blocks)
    return parse_requirements(text, builtin_spec(), "with-impossible.yaml")


@pytest.fixture(scope="module")
def builtin_vacuity() -> tuple[VacuityResult, int, int]:
    spec = builtin_spec()
    tap = StateTap(builtin_requirements(spec))
    explored = explore(spec, tap.as_requirements())
    result = vacuity_result(spec, builtin_requirements(spec), tap.states, explored.covered["edges"])
    return result, len(tap.states), explored.covered["states"]


def test_every_builtin_requirement_is_exercised(builtin_vacuity: tuple[VacuityResult, int, int]) -> None:
    result, tapped, reachable = builtin_vacuity
    assert result.ok and result.violated == (), result.detail
    # The tap saw the first state and every state the explorer reached, once each.
    assert tapped == reachable + 1 == result.covered["states"]
    by_name = {e.name: e for e in result.exercises}
    assert set(by_name) == set(builtin_requirements(builtin_spec()).names)
    for e in by_name.values():
        if e.condition == "when":
            assert 0 < e.edges < e.of_edges and 0 < e.states <= e.of_states, e
        elif e.condition == "antecedent":
            assert 0 < e.states < e.of_states, e
    # The seed bug's requirement speaks of the five statuses without a turn: they are reached.
    assert by_name["no_turn_in_inactive_status"].condition == "antecedent"
    assert by_name["superseded_turn_is_finished"].edges > 0
    assert by_name["quiet_active_turn_settles"].condition == "spin"


def test_an_impossible_contract_and_state_requirement_fail_vacuity() -> None:
    spec = builtin_spec()
    reqs = _with(IMPOSSIBLE_CONTRACT, IMPOSSIBLE_STATE)
    results = run_checks(spec, reqs, skip=["spin", "agreement", "induction"])
    by_check = {r.name: r for r in results}
    # explore holds them (vacuously); only the vacuity check says they were never tested.
    assert by_check["explore"].ok
    assert not by_check["vacuity"].ok
    assert set(by_check["vacuity"].violated) == {"stopped_turn_is_kept", "idle_error_is_short"}
    verdicts = {v.name: v for v in requirement_verdicts(reqs, results)}
    assert verdicts["stopped_turn_is_kept"].verdict == "VACUOUS"
    assert verdicts["idle_error_is_short"].verdict == "VACUOUS"
    assert verdicts["no_turn_in_inactive_status"].verdict == "held"
    text = render_text(spec, reqs, results)
    assert "VACUOUS     stopped_turn_is_kept" in text and "never exercised" in text
    report = report_json(spec, reqs, results)
    assert report["ok"] is False
    entry = next(r for r in report["requirements"] if r["name"] == "stopped_turn_is_kept")
    assert entry["verdict"] == "vacuous" and entry["exercised"]["edges"] == 0


def test_the_vacuity_check_alone_walks_for_itself() -> None:
    spec = builtin_spec()
    reqs = _with(IMPOSSIBLE_CONTRACT)
    alone = vacuity(spec, reqs)
    assert not alone.ok and alone.violated == ("stopped_turn_is_kept",)
    # Without explore, run_checks still counts (vacuity walks on its own).
    results = {r.name: r for r in run_checks(spec, reqs, skip=["explore", "agreement", "induction", "spin"])}
    assert results["vacuity"].violated == ("stopped_turn_is_kept",)


def test_counts_refuse_a_walk_that_does_not_match_its_states(builtin_vacuity: tuple[VacuityResult, int, int]) -> None:
    spec = builtin_spec()
    result = vacuity_result(spec, builtin_requirements(spec), [], 10)
    assert not result.ok and "cannot count" in result.detail


def test_verify_command_exits_1_on_a_vacuous_requirement(tmp_path: Path) -> None:
    file = tmp_path / "requirements.yaml"
    file.write_text(BUILTIN_REQUIREMENTS.read_text(encoding="utf-8").rstrip("\n") + "\n" + IMPOSSIBLE_CONTRACT)
    proc = subprocess.run([sys.executable, "-m", "statemachine", "verify", "--skip", "spin", "--requirements",
                           str(file)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "VACUOUS     stopped_turn_is_kept" in proc.stdout
    assert "NOT PROVEN: vacuity" in proc.stdout
