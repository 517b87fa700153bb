"""The verification universe is derived from the declarations and the requirements: every field
something reads takes two values, providers included; a field nothing reads takes one."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path

from statemachine import Session, builtin_spec
from statemachine.spec.check import build_spec
from statemachine.spec.load import builtin_spec_data
from statemachine.spec.requirements import BUILTIN_REQUIREMENTS, builtin_requirements, parse_requirements
from statemachine.spec.semantics import VOCABULARY, Guard
from statemachine.verify.explore import explore, least_form
from statemachine.verify.induction import abstract_states, induction
from statemachine.verify.mutate import load_mutant
from statemachine.verify.universe import (
    PROVIDERS,
    TIMES,
    event_fields_read,
    event_universe,
    field_values,
    paired_envelope,
    session_fields_read,
)

MUTANTS = Path(__file__).resolve().parents[2] / "specs" / "mutants"


def test_what_is_read_comes_from_the_declarations_and_the_requirements() -> None:
    spec = builtin_spec()
    # record_provider (on_applied) reads the event's provider and writes providerName; advance_updated_at
    # reads its createdAt: every trigger reads both.
    assert all({"provider", "createdAt"} <= event_fields_read(spec, t) for t in spec.triggers)
    assert "turnId" in event_fields_read(spec, "turn.started")
    assert "turnId" not in event_fields_read(spec, "session.exited")
    assert event_fields_read(spec, "thread.session.stop") >= {"payload.onlyIfSettled"}
    assert "provider_name" in session_fields_read(spec)
    # The carried fields are read by requirements only (carried_fields_untouched, and whole sessions).
    assert "runtime_mode" not in session_fields_read(spec)
    assert "runtime_mode" in session_fields_read(spec, builtin_requirements(spec))


def test_a_field_nothing_reads_takes_one_value_and_a_requirement_that_reads_it_brings_two_back() -> None:
    # No declaration reads the event's provider any more.
    spec, _ = load_mutant(MUTANTS / "zza_provider_not_recorded.yaml")
    assert {t.provider for t in event_universe(spec)} == {PROVIDERS[0]}
    # applied_records_provider reads event.provider: the requirement keeps both providers in the universe.
    assert {t.provider for t in event_universe(spec, builtin_requirements(spec))} == set(PROVIDERS)


def test_the_timestamp_and_the_provider_vary_in_pairs_when_nothing_relates_them() -> None:
    spec = builtin_spec()
    requirements = builtin_requirements(spec)
    assert paired_envelope(spec, requirements)
    universe = event_universe(spec, requirements)
    lifecycle = [t for t in universe if spec.event_type(t.type) is not None]
    assert {(t.created_at, t.provider) for t in lifecycle} == set(zip(TIMES, PROVIDERS, strict=True))
    # Every shape (type, turn, payload) at both timestamps, each from one provider.
    shapes: dict[tuple[object, ...], set[tuple[str, str]]] = {}
    for t in lifecycle:
        shapes.setdefault((t.type, t.turn_id, t.payload), set()).add((t.created_at, t.provider))
    assert all(len(v) == 2 for v in shapes.values())
    assert len(universe) == 149


def test_a_requirement_relating_the_provider_and_the_time_brings_the_product_back() -> None:
    spec = builtin_spec()
    text = BUILTIN_REQUIREMENTS.read_text(encoding="utf-8") + (
        "  - name: codex_sessions_are_dated\n    form: contract\n    description: d\n"
        "    then: {implies: [{eq: [after.providerName, codex]}, {not: {is_null: after.updatedAt}}]}\n")
    related = parse_requirements(text, spec)
    assert not paired_envelope(spec, related)
    universe = event_universe(spec, related)
    assert len(universe) == 2 * 149 - 1  # every lifecycle event four ways instead of two
    assert {(t.created_at, t.provider) for t in universe if t.type == "session.exited"} == {
        (at, p) for at in TIMES for p in PROVIDERS}


def test_a_guard_reading_the_provider_brings_the_product_back() -> None:
    # A guard that reads the provider makes it decide which transition is taken.
    by_codex = Guard("from_codex", "ev.provider == 'codex'", ("ev",), "The event comes from Codex.")
    data = deepcopy(builtin_spec_data())
    data["guards"]["from_codex"] = {"rejects_as": "not_codex"}
    exited = next(t for t in data["transitions"] if t["trigger"] == "session.exited")
    exited["guards"] = ["from_codex"]
    spec = build_spec(data, "<guarded>", VOCABULARY.extended(guards=(by_codex,)))
    assert not paired_envelope(spec)
    assert paired_envelope(builtin_spec())


def test_explore_and_induction_vary_every_field_they_read() -> None:
    spec = builtin_spec()
    requirements = builtin_requirements(spec)
    explored = explore(spec, requirements)
    # No event writes the carried fields: explore meets them null only, and says so.
    assert explored.covered["fields_read"] - explored.covered["fields_varied"] == 2
    assert "read but never varied here: session.providerInstanceId, session.runtimeMode" in explored.detail
    inducted = induction(spec, requirements)
    assert inducted.covered["fields_varied"] == inducted.covered["fields_read"] == explored.covered["fields_read"]
    values = field_values(spec, requirements, (s for s, _ in abstract_states(spec, requirements)),
                          event_universe(spec, requirements))
    assert values["event.provider"] == set(PROVIDERS)
    assert values["session.runtimeMode"] == {"carried"}  # the induction's states all carry it


def test_states_are_kept_up_to_a_renaming_of_providers() -> None:
    session = Session("t", "running", PROVIDERS[1], "turn-3", None, TIMES[0])
    (least, finished), renaming = least_form((session, frozenset({"turn-2"})))
    assert least.provider_name == PROVIDERS[0] and least.active_turn_id == "turn-1" and finished == {"turn-2"}
    assert renaming[PROVIDERS[1]] == PROVIDERS[0]
    # Two providers, and the walk is no larger than with one: a state's provider is always the first.
    assert explore(builtin_spec(), builtin_requirements(builtin_spec())).covered["states"] == 1787
