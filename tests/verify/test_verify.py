"""The proofs: each holds on the built-in spec, and each behavioural one fails on the four classic
mutants (the doors into the impossible pair). test_mutants.py runs every mutant against the
requirements."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import spec_of

from statemachine import SessionProjector, builtin_spec
from statemachine.engine import registry
from statemachine.engine.compiled import CompiledMachine
from statemachine.engine.registry import compiled_for
from statemachine.spec.invariants import state_violations
from statemachine.spec.requirements import builtin_requirements
from statemachine.verify.explore import explore
from statemachine.verify.report import CheckResult
from statemachine.verify.run import CHECKS, coverage, requirement_verdicts, run_checks

ROOT = Path(__file__).resolve().parents[2]
# The original doors into "status without a turn, but a turn": each breaks a spec invariant too.
# Every check runs on each (spin included), so by default two of the four: the first and the one
# that breaks a different invariant; all four with STATEMACHINE_FULL_TESTS=1.
MUTANTS = [ROOT / "specs" / "mutants" / f"{n}.yaml" for n in
           ("a_seed_ready_keeps_turn", "b_runtime_error_sets_turn", "c_internal_turn_in_ready",
            "d_late_start_revives_turn")
           if os.environ.get("STATEMACHINE_FULL_TESTS") == "1" or n[0] in "ad"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "statemachine", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def _checks(spec_path: Path | None) -> dict[str, CheckResult]:
    spec = spec_of(spec_path)
    return {r.name: r for r in run_checks(spec, builtin_requirements(spec))}


@pytest.fixture(scope="module")
def builtin_results() -> dict[str, CheckResult]:
    return _checks(None)


@pytest.fixture(scope="module")
def mutant_results() -> dict[str, dict[str, CheckResult]]:
    return {m.stem: _checks(m) for m in MUTANTS}


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_every_check_holds_on_the_builtin_spec(builtin_results: dict[str, CheckResult], check: str) -> None:
    result = builtin_results[check]
    assert not result.skipped, result.detail
    assert result.ok, result.detail
    assert result.violated == ()
    assert result.counterexample is None


def test_coverage_says_what_each_check_reports_it_evaluated(builtin_results: dict[str, CheckResult]) -> None:
    # The requirements table of docs/verification.md shows `coverage`: it must be what verify says.
    spec = builtin_spec()
    requirements = builtin_requirements(spec)
    verdicts = requirement_verdicts(requirements, list(builtin_results.values()))
    assert coverage(spec, requirements) == {v.name: v.checked_by for v in verdicts}


def test_explore_reaches_a_fixpoint_taking_every_spec_transition(builtin_results: dict[str, CheckResult]) -> None:
    covered = builtin_results["explore"].covered
    assert covered["states"] > 100
    assert covered["spec_transitions_taken"] == covered["spec_transitions"] == len(builtin_spec().transitions)


# `agreement` proves the compiled table equal to the machine it was recorded from; on a mutant both
# are equally wrong, so its failure is shown by corrupting the table instead (test at the end).
# `declarations` judges flags only, which these four leave alone; `vacuity` judges the requirements
# (is each exercised?), which these four leave exercised (test_vacuity.py shows it failing).
INVARIANT_CHECKS = sorted(set(CHECKS) - {"agreement", "declarations", "vacuity"})


@pytest.mark.parametrize("mutant", [m.stem for m in MUTANTS])
def test_agreement_passes_on_a_mutant_and_declarations_too(
    mutant_results: dict[str, dict[str, CheckResult]], mutant: str
) -> None:
    assert mutant_results[mutant]["agreement"].ok
    assert mutant_results[mutant]["declarations"].ok
    assert mutant_results[mutant]["vacuity"].ok


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
    path = result.counterexamples["no_turn_in_inactive_status"]
    assert path == result.counterexamples["inactive_status_holds_no_turn"]  # the spec's own, same path
    assert len(path) == 2
    assert [e["type"] for e in path] == ["turn.started", "session.state.changed"]
    assert path[1]["payload"] == {"state": "ready"}
    # Replaying it on the broken spec reproduces the impossible pair; on the real spec it does not.
    for spec_path, broken in ((MUTANTS[0], True), (None, False)):
        projector = SessionProjector(spec_of(spec_path))
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
    projector = SessionProjector(spec_of(ROOT / "specs" / "mutants" / f"{mutant}.yaml"))
    for event in path:
        projector.apply(event)
    session = projector["counterexample"]
    assert state_violations(projector.spec, session, projector.finished_turns("counterexample"))


def test_verify_command_exits_0_on_the_builtin_spec_with_every_requirement_held() -> None:
    proc = _run("verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in CHECKS:
        assert f"\n{name}" in proc.stdout
    names = builtin_requirements(builtin_spec()).names
    assert f"all {len(CHECKS)} checks hold; {len(names)} of {len(names)} requirements held" in proc.stdout
    for name in names:
        assert re.search(rf"^held +{name} ", proc.stdout, re.MULTILINE), name


def test_verify_says_which_requirements_a_skipped_check_leaves_unchecked() -> None:
    proc = _run("verify", "--skip", "spin")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    temporal = [r.name for r in builtin_requirements(builtin_spec()).of_form("temporal")]
    for name in temporal:
        assert re.search(rf"^NOT CHECKED +{name} ", proc.stdout, re.MULTILINE), name
    assert "NOT CHECKED (a check that covers them was left out or could not run): " + ", ".join(temporal) \
        in proc.stdout


def _block(text: str, name: str) -> list[str]:
    """The JSONL lines printed under a violated requirement."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"VIOLATED +{name} ", line))
    out = []
    for line in lines[start + 2:]:
        if not line.startswith("{"):
            break
        out.append(line)
    return out


def test_verify_command_prints_a_replayable_counterexample_per_requirement(tmp_path: Path) -> None:
    mutant = str(MUTANTS[0])
    out_dir = tmp_path / "cx"
    proc = _run("verify", "--spec", mutant, "--skip", "spin", "--counterexample-out", str(out_dir))
    assert proc.returncode == 1
    events = _block(proc.stdout, "no_turn_in_inactive_status")
    assert len(events) == 2
    written = out_dir / "no_turn_in_inactive_status.jsonl"
    assert written.read_text() == "\n".join(events) + "\n"
    replay = _run("replay", "--json", "--spec", mutant, str(written))
    assert replay.returncode == 0
    session = json.loads(replay.stdout)["sessions"]["counterexample"]
    assert session["status"] == "ready" and session["activeTurnId"] is not None
    violated = {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("VIOLATED")}
    assert {p.stem for p in out_dir.iterdir()} == violated
    # Beside each JSONL, its timeline: the mutant's own replay, drawn (the page holds its data).
    assert {p.name for p in out_dir.iterdir()} == {f"{n}.{ext}" for n in violated for ext in ("jsonl", "html")}
    page = (out_dir / "no_turn_in_inactive_status.html").read_text(encoding="ascii")
    assert "counterexample: no_turn_in_inactive_status" in page and '"counterexample"' in page


def test_counterexample_out_that_cannot_be_written_is_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = _run("verify", "--spec", str(MUTANTS[0]), "--skip", "spin", "--skip", "agreement",
                "--counterexample-out", str(blocker / "dir"))
    assert proc.returncode == 2
    assert "cannot write counterexamples" in proc.stderr and "Traceback" not in proc.stderr


def test_verify_command_exits_1_on_a_mutant(tmp_path: Path) -> None:
    # The command's report and exit code; what each check says on each mutant is tested above and
    # in test_mutants.py, on the same functions the command calls.
    proc = _run("verify", "--json", "--spec", str(MUTANTS[0]))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    assert {c["name"] for c in report["checks"]} == set(CHECKS)
    assert all(not c["ok"] for c in report["checks"] if c["name"] in INVARIANT_CHECKS)
    assert report["counterexample"]
    violated = [r for r in report["requirements"] if r["verdict"] == "violated"]
    assert violated and all(r["counterexample"] is not None for r in violated)


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
    monkeypatch.setattr(registry, "compiled_for", lambda _: corrupted)
    assert explore(spec).ok
    result = explore(spec, reference="transitions", name="agreement")
    assert not result.ok
    assert result.violated == ("compiled_equals_transitions",)
    assert result.counterexample is not None and result.counterexample[-1]["payload"] == {"state": "ready"}


def test_induction_starts_from_pending_turns_and_open_requests_too() -> None:
    from statemachine.spec.requirements import BUILTIN_REQUIREMENTS, parse_requirements
    from statemachine.verify.induction import abstract_states, induction

    spec = builtin_spec()
    requirements = builtin_requirements(spec)
    states = abstract_states(spec, requirements)
    assert any(s.pending_turn == "" for s, _ in states) and any(s.pending_turn == "turn-1" for s, _ in states)
    assert {s.awaiting for s, _ in states} == {None, "approval", "user-input"}
    # Every list of open requests the universe can make (none, either, both in either order), with
    # awaiting what the newest asks.
    assert {s.open_requests for s, _ in states} == {(), ((1, "approval"),), (("1", "user-input"),),
                                                    ((1, "approval"), ("1", "user-input")),
                                                    (("1", "user-input"), (1, "approval"))}
    assert all(s.awaiting == (s.open_requests[-1][1] if s.open_requests else None) for s, _ in states)
    # Without the state requirement that a settled session has nothing pending, the contracts are
    # not inductive: from an (unreachable) settled state with a pending turn, events keep it so.
    text = BUILTIN_REQUIREMENTS.read_text(encoding="utf-8")
    start = text.index("  - name: settled_has_nothing_pending")
    end = text.index("\n\n", start) + 1  # the requirement's block ends at a blank line
    weaker = parse_requirements(text[:start] + text[end:], spec)
    assert "settled_has_nothing_pending" not in weaker.names
    result = induction(spec, weaker)
    assert not result.ok and "session_start_with_pending_turn_keeps_starting" in result.violated
    assert induction(spec, requirements).ok
