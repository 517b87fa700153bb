"""Every mutant in specs/mutants/ fails `verify`, caught by the requirements its file names, and
every requirement that a spec can break is shown failing on at least one mutant.

The checks run here are those whose counterexamples replay from a new thread (declarations,
explore, spin); `induction` and `agreement` on mutants are covered in test_verify.py.

spin adds only temporal requirements to what explore finds (it models a subset of the others), and
compiling its verifier costs seconds per mutant: it runs here on the mutants whose file names a
temporal requirement. With STATEMACHINE_FULL_TESTS=1 it runs on every mutant, which then also
proves that no other mutant breaks a temporal requirement its file leaves out.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import pytest

from statemachine import SessionProjector, builtin_spec
from statemachine.rendering.docgen import refresh_sections
from statemachine.spec.loader import read_spec_file
from statemachine.spec.requirements import Requirements, builtin_requirements
from statemachine.verify.mutate import apply_edits, builtin_mutants, load_mutant, read_mutant
from statemachine.verify.report import CheckResult
from statemachine.verify.run import render_text, requirement_verdicts, run_checks

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = builtin_mutants()
SKIPPED_HERE = ["induction", "agreement"]
# No spec can break these: the projector keeps them for every spec. test_requirements.py shows
# each failing on a projector broken on purpose.
PROJECTOR_GUARANTEES = {
    "redelivery_is_duplicate", "fresh_event_is_not_duplicate", "unapplied_changes_nothing",
    "only_rejections_have_reasons", "updated_at_never_decreases",
    # No spec rule sets the carried fields: a broken projector breaks it (test_requirements.py).
    "carried_fields_untouched",
}


def caught_by(path: Path) -> set[str]:
    return set(read_mutant(path).caught_by)


FULL = os.environ.get("STATEMACHINE_FULL_TESTS") == "1"


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


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.stem)
def test_verify_fails_each_mutant_with_the_requirements_its_file_names(mutant: Path) -> None:
    requirements, results = _run(mutant)
    assert not all(r.ok for r in results)
    violated = {n for r in results for n in r.violated if n in set(requirements.names)}
    assert violated == caught_by(mutant)
    text = render_text(load_mutant(mutant)[0], requirements, list(results))
    for name in violated:
        assert re.search(rf"^VIOLATED +{name} ", text, re.MULTILINE), name


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.stem)
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
        projector = SessionProjector(spec)
        broken: set[str] = set()
        finished: tuple[str, ...] = ()
        for event in verdict.counterexample:
            redelivered = projector.has_seen("counterexample", event["eventId"])
            outcome = projector.apply(event)
            after = projector.finished_turns("counterexample")
            broken |= set(requirements.step_violations(outcome, finished, after, redelivered))
            broken |= set(requirements.state_violations(outcome.after, after))
            finished = after
        assert verdict.name in broken, (verdict.name, verdict.counterexample)


def _edited() -> set[str]:
    """Requirements shown failing on an in-memory edit of the spec (tests/test_requirements.py)."""
    from test_requirements import EDITS

    return set().union(*(e.breaks for e in EDITS.values()))


def test_every_requirement_a_spec_can_break_fails_on_some_mutant() -> None:
    names = set(builtin_requirements(builtin_spec()).names)
    shown = set().union(*(caught_by(m) for m in MUTANTS))
    assert shown <= names
    # A mutant file, or a small in-memory edit of the spec, breaks each of them.
    assert names - shown - _edited() == PROJECTOR_GUARANTEES


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


def test_the_requirements_table_in_the_docs_lists_every_requirement_and_a_mutant_for_it() -> None:
    doc = (ROOT / "docs" / "verification.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z0-9_]+)` \|.*\| ([^|]+) \|$", doc, re.MULTILINE)}
    # Requirements shown only by an in-memory edit (tests/test_requirements.py) have no row yet.
    names = [n for n in builtin_requirements(builtin_spec()).names if n not in _edited() or n in rows]
    assert set(names) <= set(rows) | PROJECTOR_GUARANTEES
    names = [n for n in names if n in rows and n not in _edited()]
    for name in names:
        if name in PROJECTOR_GUARANTEES:
            assert "broken projector" in rows[name], name
            continue
        shown = re.findall(r"`([a-z0-9_]+)`", rows[name])
        assert shown, name
        for mutant in shown:
            assert name in caught_by(ROOT / "specs" / "mutants" / f"{mutant}.yaml"), (name, mutant)


def test_the_mutant_table_in_the_docs_is_made_from_the_files() -> None:
    doc = (ROOT / "docs" / "verification.md").read_text(encoding="utf-8")
    assert refresh_sections(doc, ["mutants"]) == doc, "the mutant table is stale: run `python -m statemachine docs`"
    for path in MUTANTS:
        assert f"| `{path.stem}` |" in doc
    # A table missing a mutant is caught and made again.
    stale = doc.replace(f"| `{MUTANTS[-1].stem}` |", f"| `{MUTANTS[-1].stem}_old` |")
    assert stale != doc and refresh_sections(stale, ["mutants"]) == doc
