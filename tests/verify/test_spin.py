"""spin: the Promela model exported from the spec holds on the built-in spec and fails on every
mutant, with a counterexample the real projector reproduces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import spec_of

from statemachine import SessionProjector, builtin_spec
from statemachine.spec.invariants import state_violations
from statemachine.spec.model import Spec
from statemachine.spec.requirements import builtin_requirements
from statemachine.spec.semantics import EFFECTS as IMPLEMENTED_EFFECTS
from statemachine.spec.semantics import GUARDS as IMPLEMENTED_GUARDS
from statemachine.verify.promela import (
    EFFECTS,
    GUARDS,
    PromelaError,
    claim_name,
    export_promela,
    requirement_coverage,
    violation_names,
)
from statemachine.verify.report import CheckResult
from statemachine.verify.spin import THREAD, check_spin

ROOT = Path(__file__).resolve().parents[2]
MUTANT_DIR = ROOT / "specs" / "mutants"
SEED_BUG = MUTANT_DIR / "a_seed_ready_keeps_turn.yaml"

# Which spec invariant each classic mutant breaks first (see the comment at the top of each file).
EXPECTED = {
    "a_seed_ready_keeps_turn": "inactive_status_holds_no_turn",
    "b_runtime_error_sets_turn": "inactive_status_holds_no_turn",
    "c_internal_turn_in_ready": "inactive_status_holds_no_turn",
    "d_late_start_revives_turn": "active_turn_not_finished",
}
MUTANTS = [MUTANT_DIR / f"{m}.yaml" for m in EXPECTED]
# Mutants only an LTL claim of spin's sees among spin's checks, and the claim.
TEMPORAL = {
    "p_interrupted_completion_errors": "quiet_active_turn_settles",
    "o_exit_to_ready": "exited_stays_stopped",
}

HAVE_SPIN = shutil.which("spin") is not None and (shutil.which("gcc") or shutil.which("cc")) is not None


@pytest.fixture(scope="module")
def spin_available() -> None:
    if HAVE_SPIN:
        return
    message = "spin or gcc is not installed (Debian/Ubuntu: apt-get install spin gcc)"
    if os.environ.get("CI"):
        pytest.fail(message)  # CI must run the model check, never skip it silently
    pytest.skip(message)


def _spin(spec: Spec) -> CheckResult:
    return check_spin(spec, builtin_requirements(spec))


@pytest.fixture(scope="module")
def builtin_result(spin_available: None) -> CheckResult:
    return _spin(builtin_spec())


@pytest.fixture(scope="module")
def mutant_results(spin_available: None) -> dict[str, CheckResult]:
    return {m.stem: _spin(spec_of(m)) for m in MUTANTS}


@pytest.fixture(scope="module")
def temporal_results(spin_available: None) -> dict[str, CheckResult]:
    return {m: _spin(spec_of(MUTANT_DIR / f"{m}.yaml")) for m in TEMPORAL}


def _replay(spec: Spec, events: list[dict[str, Any]]) -> tuple[SessionProjector, list[str]]:
    projector = SessionProjector(spec)
    projector.apply_all(events)
    session = projector[THREAD]
    return projector, state_violations(spec, session, frozenset(projector.finished_turns(THREAD)))


def test_spin_checks_the_requirements_it_can_model_and_every_temporal_one(builtin_result: CheckResult) -> None:
    reqs = builtin_requirements(builtin_spec())
    modelled, left_out = requirement_coverage(builtin_spec(), reqs)
    assert set(builtin_result.checked) == set(modelled)
    assert {r.name for r in reqs.of_form("temporal")} <= set(modelled)
    assert "no_turn_in_inactive_status" in modelled and "completion_settles_turn" in modelled
    # The open requests are modelled per id: what reads their ids is checked too.
    assert {"awaiting_shows_open_requests", "request_never_outlives_its_turn",
            "request_outside_a_turn_keeps_session_working"} <= set(modelled)
    # Reasons, lastError, updatedAt and redeliveries are outside the model: said, not passed.
    assert {"foreign_completion_rejected", "applied_advances_updated_at", "redelivery_is_duplicate"} <= set(left_out)
    assert builtin_result.covered["ltl_claims"] == 3


def test_every_guard_and_effect_name_has_a_promela_rendering() -> None:
    assert set(GUARDS) == set(IMPLEMENTED_GUARDS)
    assert set(EFFECTS) == set(IMPLEMENTED_EFFECTS)


def test_spin_holds_on_the_builtin_spec_taking_every_transition(builtin_result: CheckResult) -> None:
    assert not builtin_result.skipped, builtin_result.detail
    assert builtin_result.ok, builtin_result.detail
    assert builtin_result.violated == ()
    assert builtin_result.counterexample is None
    covered = builtin_result.covered
    assert covered["states"] > 20
    assert covered["transitions"] > covered["states"]
    # Not vacuous: every transition of the spec fires somewhere in the search.
    assert covered["spec_transitions_taken"] == covered["spec_transitions"] == len(builtin_spec().transitions)


@pytest.mark.parametrize("mutant", sorted(EXPECTED))
def test_spin_fails_on_every_mutant_with_the_right_invariant(
    mutant_results: dict[str, CheckResult], mutant: str
) -> None:
    result = mutant_results[mutant]
    assert not result.skipped, result.detail
    assert not result.ok, f"spin accepted the broken spec {mutant}"
    assert EXPECTED[mutant] in result.violated, result.detail
    assert result.counterexample, result.detail


@pytest.mark.parametrize("mutant", sorted(TEMPORAL))
def test_an_ltl_claim_fails_with_a_run_the_projector_reproduces(
    temporal_results: dict[str, CheckResult], mutant: str
) -> None:
    result = temporal_results[mutant]
    claim = TEMPORAL[mutant]
    assert claim in result.violated, result.detail
    events = result.counterexamples[claim]
    assert events
    projector = SessionProjector(spec_of(MUTANT_DIR / f"{mutant}.yaml"))
    outcomes = projector.apply_all(events)
    if claim == "exited_stays_stopped":
        # Some session.exited in the run does not leave the session stopped.
        assert any(o.event.type == "session.exited" and o.after.status != "stopped" for o in outcomes)
    else:
        # The run ends with the stale-turn expiry settling the turn, but not as interrupted.
        last = outcomes[-1]
        assert (last.event.type, last.event.payload.get("state")) == ("turn.completed", "interrupted")
        assert last.after.status != "interrupted"


@pytest.mark.parametrize("mutant", sorted(EXPECTED))
def test_every_counterexample_reproduces_on_the_projector(mutant_results: dict[str, CheckResult], mutant: str) -> None:
    events = mutant_results[mutant].counterexample
    assert events is not None
    _, broken = _replay(spec_of(MUTANT_DIR / f"{mutant}.yaml"), events)
    assert EXPECTED[mutant] in broken
    # The same events on the real spec break nothing: the path shows the mutant's own bug.
    _, fine = _replay(builtin_spec(), events)
    assert fine == []


def test_seed_bug_counterexample_is_the_shortest_path(mutant_results: dict[str, CheckResult]) -> None:
    events = mutant_results["a_seed_ready_keeps_turn"].counterexample
    assert events is not None
    assert [(e["type"], e.get("turnId"), e["payload"]) for e in events] == [
        ("turn.started", "turn-1", {}),
        ("session.state.changed", None, {"state": "ready"}),
    ]
    projector, broken = _replay(spec_of(SEED_BUG), events)
    session = projector[THREAD]
    assert (session.status, session.active_turn_id) == ("ready", "turn-1")
    assert broken == ["inactive_status_holds_no_turn"]


def test_counterexample_events_are_valid_wire_events(mutant_results: dict[str, CheckResult]) -> None:
    for mutant, result in mutant_results.items():
        events = result.counterexample or []
        stamps = [e["createdAt"] for e in events]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), mutant
        assert len({e["eventId"] for e in events}) == len(events), mutant
        for e in events:
            assert e["provider"] == "codex" and e["threadId"] == THREAD
        # runtime.error requires `message`: the parser would raise on a missing one.
        projector = SessionProjector(spec_of(MUTANT_DIR / f"{mutant}.yaml"))
        for e in events:
            projector.parse(e)


def test_counterexample_replays_through_the_command(mutant_results: dict[str, CheckResult], tmp_path: Path) -> None:
    events = mutant_results["a_seed_ready_keeps_turn"].counterexample or []
    log = tmp_path / "cx.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    proc = _cli("replay", "--json", "--spec", str(SEED_BUG), str(log))
    assert proc.returncode == 0, proc.stderr
    session = json.loads(proc.stdout)["sessions"][THREAD]
    assert (session["status"], session["activeTurnId"]) == ("ready", "turn-1")


def test_spin_leaves_no_files_behind(spin_available: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(cwd)
    result = check_spin(spec_of(SEED_BUG))
    assert not result.ok and result.counterexample
    assert list(scratch.iterdir()) == []
    assert list(cwd.iterdir()) == []


def test_missing_spin_is_skipped_never_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "spin" else real_which(name, *a, **k))
    result = check_spin(builtin_spec())
    assert result.skipped and not result.ok
    assert "apt-get install spin" in result.detail


def test_a_name_without_a_rendering_is_a_clear_error() -> None:
    spec = builtin_spec()
    t = spec.transitions[0]
    broken = replace(spec, transitions=(replace(t, guards=(*t.guards, "phase_of_moon")), *spec.transitions[1:]))
    with pytest.raises(PromelaError, match=r"transitions\[0\].*phase_of_moon"):
        export_promela(broken)
    effect = replace(t.effects[0] if t.effects else spec.on_applied[0], name="ring_bell")
    broken = replace(spec, on_applied=(effect,))
    with pytest.raises(PromelaError, match="ring_bell"):
        export_promela(broken)
    check = check_spin(broken) if HAVE_SPIN else None
    if check is not None:
        assert not check.ok and not check.skipped and "ring_bell" in check.detail


def test_model_is_derived_from_the_spec() -> None:
    model = export_promela(builtin_spec())
    seed_bug = export_promela(spec_of(SEED_BUG))
    assert model != seed_bug
    for trigger in builtin_spec().triggers:
        assert f" {trigger}\\n" in model  # each trigger is an event of the model
    assert model.count("taken = ") >= len(builtin_spec().transitions)
    # Two turn ids still give a model; the event loop grows with them (and a trigger whose guards
    # read the payload is sent with each value of it: the stop request's onlyIfSettled; a
    # resolution with no request id and with each of the two the requests are opened with).
    reads_payload, resolution_ids = 1, 2
    assert export_promela(builtin_spec(), turn_ids=2).count(":: d_step") == 3 * (len(builtin_spec().triggers)
                                                                                 + reads_payload + resolution_ids)


def test_temporal_model_has_the_environment_and_one_claim_per_temporal_requirement() -> None:
    spec = builtin_spec()
    reqs = builtin_requirements(spec)
    model = export_promela(spec, reqs, temporal=True)
    for req in reqs.of_form("temporal"):
        assert f"ltl {claim_name(req.index)} {{" in model  # numbered: no requirement name reaches the model
    assert ":: !quiet -> printf" in model and ":: turn != 0 && pend == 0 -> d_step { ev = turn" in model
    assert ":: pend != 0 -> d_step { ev = 0" in model  # a requested turn that never started expires too
    assert "assert(" not in model  # the temporal model judges by its claims only
    # No claim reads what the provider awaits or the open requests: the temporal model leaves them
    # out, and the guards that read the requests (request_room; closes_last_request settles a
    # session that ran only for them) are guessed per event, both ways.
    assert "rq[rid] = AW_approval" not in model and "skip; /* open_request */" in model
    assert "nor are awaiting and the open requests" in model
    assert "bit nd = 0;" in model and "(nd == 1)" in model
    assert "nd = 1" in model  # some event is sent with the other guess
    reading = {"request_room", "closes_last_request"}
    without = replace(spec, transitions=tuple(replace(t, guards=tuple(g for g in t.guards if g not in reading))
                                              for t in spec.transitions))
    assert "bit nd" not in export_promela(without, reqs, temporal=True)  # nothing left to guess
    safety = export_promela(spec, reqs)
    number = violation_names(spec, reqs).index("no_turn_in_inactive_status")
    assert "ltl " not in safety and f'printf("@violated {number}\\n")' in safety
    assert "inline contracts_" in safety


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "statemachine", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_export_command_prints_and_writes_the_model(tmp_path: Path) -> None:
    printed = _cli("export", "promela")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == export_promela(builtin_spec())
    out = tmp_path / "mutant.pml"
    written = _cli("export", "promela", "--spec", str(SEED_BUG), "-o", str(out))
    assert written.returncode == 0, written.stderr
    assert written.stdout == ""
    assert out.read_text() == export_promela(spec_of(SEED_BUG))
    bad = _cli("export", "promela", "--spec", str(tmp_path / "missing.yaml"))
    assert bad.returncode == 2


def test_exported_model_runs_under_spin(spin_available: None, tmp_path: Path) -> None:
    # What a user does by hand: export, then let spin simulate a few random steps.
    model = tmp_path / "model.pml"
    assert _cli("export", "promela", "-o", str(model)).returncode == 0
    sim = subprocess.run(["spin", "-T", "-u2000", "-n7", str(model)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert sim.returncode == 0, sim.stderr
    assert sim.stdout.count("@event ") >= 20
    assert "@violated" not in sim.stdout


def test_a_request_counterexample_carries_its_request_id(spin_available: None) -> None:
    # A ready session that keeps what it awaited: shown by the requirements on open requests, on a
    # path whose request carries the id the model gave it, which the projector reproduces.
    from statemachine.spec.check import build_spec
    from statemachine.spec.loader import read_spec_file

    data = read_spec_file(None)[0]
    for status in data["statuses"]:
        if status["name"] == "ready":
            status["on_enter"] = [e for e in status["on_enter"] if e != "clear_awaiting"]
    spec = build_spec(data, "ready_keeps_requests.yaml")
    result = _spin(spec)
    assert {"awaiting_shows_open_requests", "settled_has_nothing_pending"} <= set(result.violated), result.detail
    assert "the projector reproduces it" in result.detail
    events = result.counterexample or []
    opened = [e for e in events if e["type"] in ("request.opened", "user-input.requested")]
    assert opened and all(e["payload"]["requestId"] in (1, "1") for e in opened)
    projector, _ = _replay(spec, events)
    session = projector[THREAD]
    assert session.status == "ready" and session.awaiting is not None


# Mutants only the orchestrator's fields show: what spin must name now that the safety model keeps
# the pending turn and what the provider awaits (the requirements reading them were left out before).
ORCHESTRATOR_SIDE = {
    "zt_request_without_turn_awaits": {"awaiting_shows_open_requests", "request_never_outlives_its_turn"},
    "zm_ready_keeps_pending_turn": {"settled_has_nothing_pending"},
    "zs_reconnect_goes_ready": {"session_start_with_pending_turn_keeps_starting"},
}


@pytest.mark.parametrize("mutant", sorted(ORCHESTRATOR_SIDE))
def test_spin_fails_on_the_pending_turn_and_request_mutants(spin_available: None, mutant: str) -> None:
    result = _spin(spec_of(MUTANT_DIR / f"{mutant}.yaml"))
    assert not result.ok
    assert ORCHESTRATOR_SIDE[mutant] <= set(result.violated), result.detail
    assert result.counterexample, result.detail
