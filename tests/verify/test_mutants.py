"""Every mutant in specs/mutants/ fails `verify`, caught by the requirements its file names, and
every requirement that a spec can break is shown failing on at least one mutant.

The checks run here are those whose counterexamples replay from a new thread (declarations,
explore, spin); `induction` and `agreement` on mutants are covered in test_verify.py. A file's
`caught_by` lists what these checks find VIOLATED: a requirement the mutant only makes vacuous
(`vacuity`) is not caught by it.

spin adds only temporal requirements to what explore finds (it models a subset of the others), and
compiling its verifier costs seconds per mutant: it runs here on the mutants whose file names a
temporal requirement. With STATEMACHINE_FULL_TESTS=1 it runs on every mutant, which then also
proves that no other mutant breaks a temporal requirement its file leaves out.

The checks cost about 10 s per mutant, more than the suite can spend on all of them: by default
those tests run on a fixed sample (the seed bugs a-d, every mutant that edits a request's
transition, effect or guard, and each other mutant whose name's CRC-32 is a multiple of 8, so a new
file never changes whether another is chosen); with STATEMACHINE_FULL_TESTS=1 on every mutant. The
tests that read only the files (their edits, and that every requirement is caught by some mutant's
`caught_by`) cover every file: the full run is what proves each `caught_by` exact.
"""

from __future__ import annotations

import os
import re
import zlib
from functools import cache
from pathlib import Path

import pytest
from helpers import markdown_tables, replay_violations

from statemachine import builtin_spec
from statemachine.rendering.docgen import BLOCK_END, BLOCK_START, blocks
from statemachine.spec.loader import read_spec_file
from statemachine.spec.requirements import Requirements, builtin_requirements
from statemachine.verify.mutate import (
    PROJECTOR_GUARANTEES,
    apply_edits,
    builtin_mutants,
    edit_label,
    load_mutant,
    read_mutant,
)
from statemachine.verify.report import CheckResult
from statemachine.verify.run import coverage, render_text, requirement_verdicts, run_checks

ROOT = Path(__file__).resolve().parents[2]
MUTANTS = builtin_mutants()
SKIPPED_HERE = ["induction", "agreement", "vacuity"]


def caught_by(path: Path) -> set[str]:
    return set(read_mutant(path).caught_by)


FULL = os.environ.get("STATEMACHINE_FULL_TESTS") == "1"


def _about_requests(path: Path) -> bool:
    # The request events (request.opened, user-input.requested, request.resolved), their effects
    # (open_request, close_request, clear_awaiting) and guards (request_room, closes_last_request).
    return any("request" in label or "awaiting" in label for label in map(edit_label, read_mutant(path).edits))


def _one_per_request_requirement() -> set[str]:
    """For each requirement about requests (its name says request or awaiting), the first mutant
    about requests that it catches: every request rule is shown failing in CI, at the least cost."""
    chosen: set[str] = set()
    names = sorted({r for m in MUTANTS for r in caught_by(m) if "request" in r or "awaiting" in r})
    for name in names:
        if not any(name in caught_by(m) for m in MUTANTS if m.stem in chosen):
            chosen |= next(({m.stem} for m in MUTANTS if name in caught_by(m) and _about_requests(m)), set())
    return chosen


SEED_BUGS = ("a_", "b_", "c_", "d_")
_REQUESTS = _one_per_request_requirement()
SAMPLE = [m for m in MUTANTS
          if FULL or m.stem.startswith(SEED_BUGS) or m.stem in _REQUESTS or zlib.crc32(m.stem.encode()) % 8 == 0]


@cache
def _run(path: Path) -> tuple[Requirements, tuple[CheckResult, ...]]:
    spec, _ = load_mutant(path)
    requirements = builtin_requirements(spec)
    temporal = {r.name for r in requirements.of_form("temporal")}
    spin = FULL or bool(caught_by(path) & temporal)
    return requirements, tuple(run_checks(spec, requirements, skip=SKIPPED_HERE + ([] if spin else ["spin"])))


def test_there_are_mutants_for_each_requirement_class() -> None:
    assert len(MUTANTS) >= 12
    classes = {read_mutant(m).kind for m in MUTANTS}
    text = " ".join(classes)
    for kind in ("guard dropped", "memory effect dropped", "status flag flipped", "spec invariant deleted",
                 "source set widened", "destination changed", "on_applied effect dropped", "on_enter hook added",
                 "error field changed"):
        assert kind in text, kind


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.stem)
def test_each_mutant_is_the_spec_with_one_small_change(mutant: Path) -> None:
    # A few edits of the built-in spec's data, each of which changes it (so none is stale), and a
    # file that says what it breaks and which requirements catch it.
    info = read_mutant(mutant)
    assert 1 <= len(info.edits) <= 2, info.edits
    base = read_spec_file(None)[0]
    for edit in info.edits:
        assert apply_edits(base, [edit]) != base, edit
    assert info.breaks and info.caught_by and info.kind
    assert "agreement check passes" in info.before_requirements
    assert load_mutant(mutant)[0].source == str(mutant)


@pytest.mark.parametrize("mutant", SAMPLE, ids=lambda m: m.stem)
def test_verify_fails_each_mutant_with_the_requirements_its_file_names(mutant: Path) -> None:
    requirements, results = _run(mutant)
    assert not all(r.ok for r in results)
    violated = {n for r in results for n in r.violated if n in set(requirements.names)}
    assert violated == caught_by(mutant)
    text = render_text(load_mutant(mutant)[0], requirements, list(results))
    for name in violated:
        assert re.search(rf"^VIOLATED +{name} ", text, re.MULTILINE), name


@pytest.mark.parametrize("mutant", SAMPLE, ids=lambda m: m.stem)
def test_each_counterexample_replays_into_its_violation(mutant: Path) -> None:
    requirements, results = _run(mutant)
    spec, _ = load_mutant(mutant)
    for verdict in requirement_verdicts(requirements, list(results)):
        if not verdict.violated_by:
            continue
        assert verdict.counterexample is not None
        if verdict.source == "declarations":
            assert verdict.counterexample == []  # the declaration alone breaks it
            continue
        if requirements.get(verdict.name).form == "temporal":
            continue  # a lasso of spin's: replaying its prefix cannot show "forever" (test_spin.py)
        assert verdict.replayable
        broken = replay_violations(spec, requirements, verdict.counterexample)
        assert verdict.name in broken, (verdict.name, verdict.counterexample)


def test_every_requirement_a_spec_can_break_fails_on_some_mutant() -> None:
    names = set(builtin_requirements(builtin_spec()).names)
    shown = set().union(*(caught_by(m) for m in MUTANTS))
    assert shown <= names
    # A mutant file breaks each of them; the others, no spec can break.
    assert names - shown == PROJECTOR_GUARANTEES


def test_a_spec_that_only_flips_a_flag_fails() -> None:
    mutant = ROOT / "specs" / "mutants" / "h_stopped_flag_flipped.yaml"
    _, results = _run(mutant)
    failed = {r.name: r.violated for r in results if not r.ok}
    assert failed == {"declarations": ("no_turn_in_inactive_status",)}


def test_a_spec_that_deletes_an_invariant_still_fails_on_its_bug() -> None:
    mutant = ROOT / "specs" / "mutants" / "i_invariant_deleted_late_start.yaml"
    spec, _ = load_mutant(mutant)
    assert "active_turn_not_finished" not in {i.name for i in spec.invariants}
    _, results = _run(mutant)
    explored = next(r for r in results if r.name == "explore")
    assert "active_turn_never_finished" in explored.violated
    assert "active_turn_not_finished" not in explored.violated  # the spec no longer promises it


def _block(name: str) -> str:
    doc = (ROOT / "docs" / "verification.md").read_text(encoding="utf-8")
    return doc.split(BLOCK_START.format(name=name) + "\n")[1].split(BLOCK_END.format(name=name))[0]


def test_the_requirements_table_in_the_docs_lists_every_requirement_and_a_mutant_for_it() -> None:
    block = _block("requirements")
    assert block.rstrip("\n") == blocks(builtin_spec())["requirements"], "stale: run `python -m statemachine docs`"
    rows = {row["requirement"]: row for table in markdown_tables(block) for row in table}
    requirements = builtin_requirements(builtin_spec())
    assert list(rows) == list(requirements.names)
    checked = coverage(builtin_spec(), requirements)
    for name, row in rows.items():
        assert row["form"] == requirements.get(name).form
        if name in PROJECTOR_GUARANTEES:
            assert row["shown failing on"] == "a broken projector (tests/spec/test_requirements.py)", name
            continue
        shown = re.findall(r"[a-z][a-z0-9_]*", row["shown failing on"])  # the names, not "(+2)"
        assert shown, name
        for mutant in shown:
            assert name in caught_by(ROOT / "specs" / "mutants" / f"{mutant}.yaml"), (name, mutant)
        if requirements.get(name).form != "temporal":
            assert row["checked by"] == ", ".join([*checked[name], "Hypothesis"]), name


def test_the_mutant_table_in_the_docs_is_made_from_the_files() -> None:
    block = _block("mutants")
    assert block.rstrip("\n") == blocks(builtin_spec())["mutants"], "stale: run `python -m statemachine docs`"
    rows = [row["mutant"] for table in markdown_tables(block) for row in table]
    assert rows == [path.stem for path in MUTANTS]
