"""`verify --mutate`: each mutant's verdict is what the full checks say, a survivor's trace shows
where it differs, and the command prints the score (a small sample here; the whole set is a command)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from statemachine import SessionProjector, builtin_spec
from statemachine.spec.loader import read_spec_file
from statemachine.spec.model import Spec
from statemachine.spec.requirements import Requirements, builtin_requirements, parse_requirements
from statemachine.verify.explore import explore
from statemachine.verify.induction import induction
from statemachine.verify.mutate import Edit, Mutation, apply_edits, single_edit_mutants, spec_from_data
from statemachine.verify.mutation import (
    MutantVerdict,
    _judge,
    _Original,
    affected_triggers,
    mutation_report,
    render_mutation_text,
    sample_mutations,
)

ROOT = Path(__file__).resolve().parents[2]
T = "transitions"

# One mutant of each verdict, and what the full checks must say about it.
CASES = {
    # ready never holds a turn: a source that can never pass `has_active_turn` changes nothing.
    "equivalent": Mutation("add source", Edit((T, {"trigger": "turn.completed[interrupted]", "nth": 1}, "sources"),
                                              "add", "ready")),
    # A turn that starts no longer ends the pending request: only the requirement WEAKENED leaves
    # out says it must (judged without it).
    "survived": Mutation("drop effect", Edit((T, {"trigger": "turn.started", "nth": 1}, "effects"), "remove",
                                             "consume_pending_turn")),
    # A late start revives a finished turn.
    "killed": Mutation("drop guard", Edit((T, {"trigger": "turn.started", "nth": 1}, "guards"), "remove",
                                          "turn_not_finished")),
    # The flag alone: the requirements name the statuses without a turn.
    "declarations": Mutation("flip flag", Edit(("statuses", {"name": "stopped"}, "holds_turn"), "set", True)),
    # A status renamed away: its references no longer resolve.
    "invalid": Mutation("set", Edit(("statuses", {"name": "stopped"}, "name"), "set", "halted")),
}


# The built-in requirements kill every single-edit mutant; without this one, "survived" lives.
WEAKENED = "turn_start_consumes_its_request"


def _weakened(spec: Spec) -> Requirements:
    raw = yaml.safe_load((ROOT / "specs" / "requirements.yaml").read_text(encoding="utf-8"))
    raw["requirements"] = [r for r in raw["requirements"] if r["name"] != WEAKENED]
    assert len(raw["requirements"]) == len(builtin_requirements(spec).names) - 1
    return parse_requirements(yaml.safe_dump(raw), spec, "weakened")


@pytest.fixture(scope="module")
def setup() -> tuple[dict[str, Any], Requirements, _Original]:
    spec = builtin_spec()
    requirements = builtin_requirements(spec)
    return read_spec_file(None)[0], requirements, _Original.walk(spec, requirements)


@pytest.fixture(scope="module")
def weakened() -> tuple[Requirements, _Original]:
    spec = builtin_spec()
    requirements = _weakened(spec)
    return requirements, _Original.walk(spec, requirements)


@pytest.fixture(scope="module")
def verdicts(setup: tuple[dict[str, Any], Requirements, _Original],
             weakened: tuple[Requirements, _Original]) -> dict[str, MutantVerdict]:
    data, requirements, original = setup
    out = {name: _judge(original, builtin_spec(), data, requirements, m, spin=False) for name, m in CASES.items()
           if name != "survived"}
    out["survived"] = _judge(weakened[1], builtin_spec(), data, weakened[0], CASES["survived"], spin=False)
    out["survived, all requirements"] = _judge(original, builtin_spec(), data, requirements, CASES["survived"],
                                               spin=False)
    return out


def _mutant(data: dict[str, Any], mutation: Mutation) -> Any:
    return spec_from_data(apply_edits(data, [mutation.edit]), mutation.label())


def test_each_verdict_is_what_the_full_checks_say(setup: tuple[dict[str, Any], Requirements, _Original],
                                                  verdicts: dict[str, MutantVerdict]) -> None:
    data, requirements, original = setup
    assert {n: v.verdict for n, v in verdicts.items()} == {
        "equivalent": "equivalent", "survived": "survived", "killed": "killed", "declarations": "killed",
        "invalid": "invalid", "survived, all requirements": "killed"}
    assert verdicts["survived, all requirements"].violated == (WEAKENED,)
    assert verdicts["declarations"].check == "declarations"
    assert verdicts["declarations"].violated == ("no_turn_in_inactive_status",)
    assert "halted" in verdicts["invalid"].note or "stopped" in verdicts["invalid"].note
    # Killed by the walk that stops at the first violation: the full explorer finds it too.
    killed = verdicts["killed"]
    assert killed.check == "explore" and killed.violated
    full = explore(_mutant(data, CASES["killed"]), requirements)
    assert not full.ok and set(killed.violated) <= set(full.violated)
    # Equivalent: the full explorer reaches the same states, and everything holds.
    same = explore(_mutant(data, CASES["equivalent"]), requirements)
    assert same.ok and same.covered["states"] == len(original.states) - 1
    # Survived: every check holds on it, yet it differs from the spec.
    survivor = _mutant(data, CASES["survived"])
    weaker = _weakened(builtin_spec())
    assert explore(survivor, weaker).ok and induction(survivor, weaker).ok
    assert not explore(survivor, requirements).ok


def test_a_survivors_trace_replays_into_the_difference(verdicts: dict[str, MutantVerdict],
                                                       setup: tuple[dict[str, Any], Requirements, _Original]) -> None:
    data = setup[0]
    survivor = verdicts["survived"]
    trace = survivor.difference
    assert trace is not None and len(trace) == 2  # a turn request of unknown id, then a turn starts
    assert [e["type"] for e in trace] == ["thread.turn.start", "turn.started"]
    spec_side = SessionProjector(builtin_spec()).apply_all(trace)[-1]
    mutant_side = SessionProjector(_mutant(data, CASES["survived"])).apply_all(trace)[-1]
    assert (spec_side.after.pending_turn, mutant_side.after.pending_turn) == (None, "")
    assert "the spec:" in survivor.note and "the mutant:" in survivor.note
    # Every prefix gives the same outcome on both: the trace is where they first part.
    for n in range(1, len(trace)):
        a = SessionProjector(builtin_spec()).apply_all(trace[:n])[-1]
        b = SessionProjector(_mutant(data, CASES["survived"])).apply_all(trace[:n])[-1]
        assert (a.kind, a.after) == (b.kind, b.after)


def test_an_edit_touches_only_the_triggers_it_can_change(setup: tuple[dict[str, Any], Requirements, _Original]) -> None:
    data = setup[0]
    spec = builtin_spec()
    assert affected_triggers(spec, _mutant(data, CASES["killed"])) == {"turn.started"}
    assert affected_triggers(spec, _mutant(data, CASES["declarations"])) == frozenset()
    hook = Mutation("drop on-enter effect", Edit(("statuses", {"name": "ready"}, "on_enter"), "remove", "clear_turn"))
    into_ready = {t.trigger for t in spec.transitions if t.dest == "ready"}
    assert affected_triggers(spec, _mutant(data, hook)) == into_ready
    applied = Mutation("drop on-applied effect", Edit(("on_applied",), "remove", "advance_updated_at"))
    assert affected_triggers(spec, _mutant(data, applied)) == set(spec.triggers)


def test_a_sample_is_drawn_with_its_seed() -> None:
    mutations = single_edit_mutants(read_spec_file(None)[0])
    first = sample_mutations(mutations, 10, seed=4)
    assert first == sample_mutations(mutations, 10, seed=4) != sample_mutations(mutations, 10, seed=5)
    assert len(first) == 10 and all(m in mutations for m in first)
    assert sample_mutations(mutations, None, 0) == mutations


def test_a_broken_spec_is_not_mutated() -> None:
    from statemachine.verify.mutate import load_mutant, mutant_data

    path = ROOT / "specs" / "mutants" / "a_seed_ready_keeps_turn.yaml"
    spec, _ = load_mutant(path)
    report = mutation_report(spec, mutant_data(path)[0], builtin_requirements(spec), sample=3)
    assert not report.original_ok and report.verdicts == ()
    assert "NOT RUN: the spec itself fails explore" in render_mutation_text(report)


def test_the_command_prints_the_score_of_a_sample() -> None:
    proc = subprocess.run([sys.executable, "-m", "statemachine", "verify", "--mutate-sample", "5", "--mutate-seed",
                           "11", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert report["sample"] == 5 and report["seed"] == 11 and report["original_ok"]
    counts = report["counts"]
    assert sum(counts.values()) == 5
    assert proc.returncode == (1 if counts["survived"] else 0)
    judged = counts["killed"] + counts["survived"]
    assert report["score"] == (counts["killed"] / judged if judged else None)
    for entry in report["mutants_judged"]:
        assert entry["verdict"] in ("invalid", "equivalent", "killed", "survived")
        if entry["verdict"] == "survived":
            assert entry["difference"]
    bad = subprocess.run([sys.executable, "-m", "statemachine", "verify", "--mutate-sample", "0"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
