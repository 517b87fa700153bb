"""The proofs: each holds on the built-in spec and each fails on every mutant."""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from statemachine import SessionProjector, builtin_spec, load_spec
from statemachine import compiled as compiled_module
from statemachine.compiled import CompiledMachine, compiled_for
from statemachine.invariants import state_violations
from statemachine.verify.explore import explore
from statemachine.verify.report import CheckResult
from statemachine.verify.run import CHECKS, run_checks

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = sorted((ROOT / "specs" / "mutants").glob("*.yaml"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "statemachine", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def builtin_results() -> dict[str, CheckResult]:
    return {r.name: r for r in run_checks(builtin_spec())}


@pytest.fixture(scope="module")
def mutant_results() -> dict[str, dict[str, CheckResult]]:
    return {m.stem: {r.name: r for r in run_checks(load_spec(m))} for m in MUTANTS}


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.stem)
def test_each_mutant_is_the_spec_with_one_change(mutant: Path) -> None:
    # Mutants are copies of the spec plus their bug: a stale copy would test another lifecycle.
    def body(path: Path) -> list[str]:
        lines = path.read_text().splitlines()
        return lines[next(i for i, line in enumerate(lines) if line.startswith("spec_version")):]

    diff = [d for d in difflib.ndiff(body(ROOT / "specs" / "session_lifecycle.yaml"), body(mutant))
            if d[:2] in ("- ", "+ ")]
    assert 1 <= len(diff) <= 2, diff


def test_there_are_mutants_for_each_door() -> None:
    names = {m.stem[0] for m in MUTANTS}
    assert {"a", "b", "c", "d"} <= names


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_every_check_holds_on_the_builtin_spec(builtin_results: dict[str, CheckResult], check: str) -> None:
    result = builtin_results[check]
    assert not result.skipped, result.detail
    assert result.ok, result.detail
    assert result.violated == ()
    assert result.counterexample is None


def test_explore_reaches_a_fixpoint_taking_every_spec_transition(builtin_results: dict[str, CheckResult]) -> None:
    covered = builtin_results["explore"].covered
    assert covered["states"] > 100
    assert covered["spec_transitions_taken"] == covered["spec_transitions"] == len(builtin_spec().transitions)


# `agreement` proves the compiled table equal to the machine it was recorded from; on a mutant both
# are equally wrong, so its failure is shown by corrupting the table instead (test at the end).
INVARIANT_CHECKS = sorted(set(CHECKS) - {"agreement"})


@pytest.mark.parametrize("mutant", [m.stem for m in MUTANTS])
@pytest.mark.parametrize("check", INVARIANT_CHECKS)
def test_every_check_fails_on_every_mutant(
    mutant_results: dict[str, dict[str, CheckResult]], mutant: str, check: str
) -> None:
    result = mutant_results[mutant][check]
    assert not result.skipped, result.detail
    assert not result.ok, f"{check} accepted the broken spec {mutant}"
    assert result.violated


def test_behavioural_checks_agree_on_every_spec(
    builtin_results: dict[str, CheckResult], mutant_results: dict[str, dict[str, CheckResult]]
) -> None:
    # Same verdict from the explorer, the induction and spin, broken spec or not; where they
    # fail, spin names an invariant the explorer also found broken.
    for name, results in {"builtin": builtin_results, **mutant_results}.items():
        verdicts = {check: results[check].ok for check in ("explore", "induction", "spin")}
        assert len(set(verdicts.values())) == 1, (name, verdicts)
        if not results["explore"].ok:
            assert set(results["explore"].violated) & set(results["spin"].violated), name


def test_seed_bug_counterexample_is_the_two_event_path(mutant_results: dict[str, dict[str, CheckResult]]) -> None:
    result = mutant_results["a_seed_ready_keeps_turn"]["explore"]
    path = result.counterexample
    assert path is not None and len(path) == 2
    assert [e["type"] for e in path] == ["turn.started", "session.state.changed"]
    assert path[1]["payload"] == {"state": "ready"}
    # Replaying it on the broken spec reproduces the impossible pair; on the real spec it does not.
    for spec_path, broken in ((MUTANTS[0], True), (None, False)):
        projector = SessionProjector(load_spec(spec_path))
        for event in path:
            projector.apply(event)
        session = projector["counterexample"]
        assert session.status == "ready"
        assert bool(state_violations(projector.spec, session, projector.finished_turns("counterexample"))) is broken


@pytest.mark.parametrize("mutant", [m.stem for m in MUTANTS])
def test_explore_counterexamples_replay_into_a_violation(
    mutant_results: dict[str, dict[str, CheckResult]], mutant: str
) -> None:
    path = mutant_results[mutant]["explore"].counterexample
    assert path
    projector = SessionProjector(load_spec(ROOT / "specs" / "mutants" / f"{mutant}.yaml"))
    for event in path:
        projector.apply(event)
    session = projector["counterexample"]
    assert state_violations(projector.spec, session, projector.finished_turns("counterexample"))


def test_verify_command_exits_0_on_the_builtin_spec() -> None:
    proc = _run("verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in CHECKS:
        assert f"\n{name}" in proc.stdout
    assert f"all {len(CHECKS)} checks hold" in proc.stdout


def test_verify_command_prints_a_replayable_counterexample(tmp_path: Path) -> None:
    mutant = str(MUTANTS[0])
    proc = _run("verify", "--spec", mutant, "--skip", "spin")
    assert proc.returncode == 1
    events = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(events) == 2
    log = tmp_path / "cx.jsonl"
    log.write_text("\n".join(events) + "\n")
    replay = _run("replay", "--json", "--spec", mutant, str(log))
    assert replay.returncode == 0
    session = json.loads(replay.stdout)["sessions"]["counterexample"]
    assert session["status"] == "ready" and session["activeTurnId"] is not None


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.stem)
def test_verify_command_exits_1_on_every_mutant(mutant: Path) -> None:
    proc = _run("verify", "--json", "--spec", str(mutant))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    assert {c["name"] for c in report["checks"]} == set(CHECKS)
    assert all(not c["ok"] for c in report["checks"] if c["name"] in INVARIANT_CHECKS)
    assert report["counterexample"]


def test_verify_command_usage_errors() -> None:
    assert _run("verify", "--skip", "nonsense").returncode == 2
    missing = _run("verify", "--spec", "/nonexistent/spec.yaml")
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr


def test_agreement_fails_when_the_compiled_table_differs_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = builtin_spec()
    table = dict(compiled_for(spec).table)
    key = ("session.state.changed[ready]", "running")
    plan = table[key]
    # A table that sends `ready` to `interrupted` breaks no invariant: only the agreement sees it.
    table[key] = replace(plan, entries=tuple(replace(e, status="interrupted") for e in plan.entries))
    corrupted = CompiledMachine(spec, table)
    monkeypatch.setattr(compiled_module, "compiled_for", lambda _: corrupted)
    assert explore(spec).ok
    result = explore(spec, reference="transitions", name="agreement")
    assert not result.ok
    assert result.violated == ("compiled_equals_transitions",)
    assert result.counterexample is not None and result.counterexample[-1]["payload"] == {"state": "ready"}
