"""The stateful machine holds on the built-in spec and catches every mutant.

The built-in run uses the active settings profile (see conftest.py). Mutant runs stop at the
first failing example: shrinking a stateful failure costs far more than finding it, and whether
a run finds the bug does not depend on it.

Every mutant of specs/mutants/ costs about 2 s of CPU here, more than the suite can spend on all
of them: by default the mutant test runs on a fixed sample (the seed bugs a-d, and each mutant
whose name's CRC-32 is a multiple of 4, so a new file never changes whether another is chosen); with
STATEMACHINE_FULL_TESTS=1 it runs on every mutant.
"""

from __future__ import annotations

import os
import random
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import Phase, seed, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test
from stateful_lifecycle import InvariantViolation, make_lifecycle_machine

from statemachine import EventError, Outcome, SessionProjector, builtin_spec
from statemachine.spec.requirements import builtin_requirements
from statemachine.verify.mutate import builtin_mutants, load_mutant

MUTANTS = builtin_mutants()
# What each classic mutant breaks (by its letter); the others break a requirement their header names.
# What each seed bug breaks first; a late start that revives a finished turn breaks the contract
# on late starts on the step itself, or the invariant on the state it leaves, whichever the search meets.
EXPECTED = {"a": {"no_turn_in_inactive_status"}, "b": {"no_turn_in_inactive_status"},
            "c": {"no_turn_in_inactive_status"}, "d": {"active_turn_never_finished", "late_turn_start_rejected"}}
FULL = os.environ.get("STATEMACHINE_FULL_TESTS") == "1"
SAMPLE = [m for m in MUTANTS if FULL or m.stem[0] in EXPECTED or zlib.crc32(m.stem.encode()) % 8 == 0]
COLD_RUNS = 30
# A mutant run stops at its first failure, so a generous budget costs nothing when all is well.
MUTANT_MAX_EXAMPLES = 1000

TestBuiltinLifecycle = make_lifecycle_machine(builtin_spec()).TestCase


def _find_only(base: settings) -> settings:
    return settings(base, database=None, derandomize=False, phases=[Phase.explicit, Phase.generate],
                    report_multiple_bugs=False, print_blob=False)


def _violation(
    machine: type[RuleBasedStateMachine], config: settings, run_seed: int | None = None
) -> tuple[InvariantViolation | None, int]:
    """Run the machine once; return the invariant violation it found (or None) and the examples run."""
    examples = 0

    def factory() -> RuleBasedStateMachine:
        nonlocal examples
        examples += 1
        return machine()

    if run_seed is not None:
        factory = seed(run_seed)(factory)
    try:
        run_state_machine_as_test(factory, settings=config)
    except InvariantViolation as exc:
        return exc, examples
    return None, examples


@pytest.mark.parametrize("path", SAMPLE, ids=[m.stem for m in SAMPLE])
def test_the_machine_fails_on_each_mutant_with_an_invariant_violation(path: Path) -> None:
    spec, _ = load_mutant(path)
    try:
        config = _find_only(settings(max_examples=MUTANT_MAX_EXAMPLES))
        found, examples = _violation(make_lifecycle_machine(spec), config)
    except Exception as exc:  # anything but the spec's invariants (those are returned)
        pytest.fail(f"{path.stem}: the machine failed for another reason than an invariant: {exc!r}")
    assert found is not None, f"{path.stem}: no invariant violation in {examples} examples"
    invariant_names = {inv.name for inv in spec.invariants} | set(builtin_requirements(spec).names)
    assert found.violated and set(found.violated) <= invariant_names, found
    expected = EXPECTED.get(path.stem[0])
    if expected is not None:
        assert expected & set(found.violated), found


class _LenientProjector(SessionProjector):
    """Broken on purpose: swallows malformed input instead of raising."""

    def apply(self, event: object) -> Outcome:  # type: ignore[override]
        try:
            return super().apply(event)  # type: ignore[arg-type]
        except EventError:
            return None  # type: ignore[return-value]


def test_the_machine_catches_a_projector_that_breaks_a_contract_with_a_plain_assertion() -> None:
    # The contract checks (outcomes, de-duplication, malformed input) bite, and are told apart
    # from the spec's invariants.
    machine = make_lifecycle_machine(builtin_spec(), projector=_LenientProjector)
    with pytest.raises(AssertionError, match="malformed event accepted") as caught:
        _violation(machine, _find_only(settings(max_examples=MUTANT_MAX_EXAMPLES)))
    assert not isinstance(caught.value, InvariantViolation)


def test_the_seed_bug_is_found_on_every_cold_run_at_the_ci_profile() -> None:
    # Mutant a is the bug that started the project; the ci profile must catch it every time,
    # with no example database and a different random seed on each run.
    machine = make_lifecycle_machine(load_mutant(next(m for m in MUTANTS if m.stem.startswith("a_")))[0])
    config = _find_only(settings.get_profile("ci"))
    seeds = random.SystemRandom().sample(range(2**32), COLD_RUNS)
    started, missed, examples = time.perf_counter(), [], []
    for run_seed in seeds:
        found, count = _violation(machine, config, run_seed)
        examples.append(count)
        if found is None or "no_turn_in_inactive_status" not in found.violated:
            missed.append(run_seed)
    elapsed = time.perf_counter() - started
    print(f"\nseed bug: {COLD_RUNS - len(missed)}/{COLD_RUNS} cold runs found it in {elapsed:.1f}s; "
          f"examples per run: median {sorted(examples)[COLD_RUNS // 2]}, max {max(examples)} "
          f"(ci: max_examples={config.max_examples}, stateful_step_count={config.stateful_step_count})")
    assert not missed, f"missed with seeds {missed} (reproduce with @seed)"
