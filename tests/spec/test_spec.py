"""The spec loader: the built-in spec and the mutants load; every broken spec is a `SpecError`
naming its file and the path inside it.

Broken specs are built here from the built-in YAML (load, change one thing, dump), so each test
shows the one change that breaks it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import Events

from statemachine import SessionProjector, Spec, SpecError, builtin_spec, load_spec
from statemachine.spec.load import BUILTIN_SPEC, parse_spec
from statemachine.verify.mutate import load_mutant

ROOT = Path(__file__).resolve().parents[2]
MUTANTS = sorted((ROOT / "specs" / "mutants").glob("*.yaml"))
SOURCE = "broken.yaml"

Raw = dict[str, Any]


class _PlainDumper(yaml.SafeDumper):
    # Spell every node out: the loader refuses anchors and aliases.
    def ignore_aliases(self, data: Any) -> bool:
        return True


def builtin_raw() -> Raw:
    raw: Raw = yaml.safe_load(BUILTIN_SPEC.read_text(encoding="utf-8"))
    return raw


def dump(raw: Raw) -> str:
    return yaml.dump(raw, Dumper=_PlainDumper, sort_keys=False)


def spec_error(change: Callable[[Raw], object]) -> SpecError:
    raw = builtin_raw()
    change(raw)
    with pytest.raises(SpecError) as caught:
        parse_spec(dump(raw), SOURCE)
    error = caught.value
    assert error.file == SOURCE
    assert SOURCE in str(error) and error.path in str(error)
    return error


def transition(raw: Raw, trigger: str) -> tuple[int, Raw]:
    return next((i, t) for i, t in enumerate(raw["transitions"]) if t["trigger"] == trigger)


def status_index(raw: Raw, name: str) -> int:
    return next(i for i, s in enumerate(raw["statuses"]) if s["name"] == name)


def event_index(raw: Raw, type_: str) -> int:
    return next(i for i, e in enumerate(raw["events"]) if e["type"] == type_)


# -- what loads ------------------------------------------------------------------------------------


def test_the_builtin_spec_loads_with_the_reference_vocabulary() -> None:
    spec = load_spec()
    assert isinstance(spec, Spec)
    # Part A's orchestration statuses; part B's no-turn statuses; a new thread starts idle.
    assert set(spec.status_names) == {"idle", "starting", "running", "ready", "interrupted", "stopped", "error"}
    assert set(spec.inactive_statuses) == {"idle", "ready", "interrupted", "stopped", "error"}
    assert spec.initial == "idle"
    lifecycle = {"session.started", "thread.started", "session.state.changed", "session.exited", "turn.started",
                 "turn.completed", "turn.aborted", "runtime.error", "request.opened", "user-input.requested",
                 "request.resolved"}
    commands = {"thread.turn.start", "thread.session.stop", "thread.session.start", "thread.delete"}
    assert {e.type for e in spec.events if not e.is_command} == lifecycle
    assert {e.type for e in spec.events if e.is_command} == commands
    state = spec.event_type("session.state.changed").field("state")  # type: ignore[union-attr]
    assert state is not None and state.required
    assert set(state.enum or ()) == {"starting", "ready", "running", "waiting", "stopped", "error"}
    completed = spec.event_type("turn.completed").field("state")  # type: ignore[union-attr]
    assert completed is not None and completed.default == "completed"


def test_the_builtin_spec_survives_a_dump_and_reload() -> None:
    spec = parse_spec(dump(builtin_raw()), SOURCE)
    assert spec.source == SOURCE
    assert spec.statuses == builtin_spec().statuses
    assert spec.transitions == builtin_spec().transitions


def test_there_are_mutants() -> None:
    assert MUTANTS


@pytest.mark.parametrize("path", MUTANTS, ids=[m.stem for m in MUTANTS])
def test_every_mutant_is_well_formed(path: Path) -> None:
    # Wrong on purpose, but well-formed: the loader accepts them, the proofs reject them.
    spec, _ = load_mutant(path)
    assert spec.source == str(path)
    assert set(spec.status_names) == set(builtin_spec().status_names)
    builtin = builtin_spec()
    assert (spec.initial, spec.statuses, spec.transitions, spec.on_applied, spec.events) != (
        builtin.initial, builtin.statuses, builtin.transitions, builtin.on_applied, builtin.events)


def test_a_user_spec_file_is_loaded_and_used(tmp_path: Path) -> None:
    # The reasons come from the spec: rename one, and the projector reports the new name.
    raw = builtin_raw()
    raw["guards"]["turn_matches"]["rejects_as"] = "not_the_active_turn"
    path = tmp_path / "mine.yaml"
    path.write_text(dump(raw), encoding="utf-8")
    spec = load_spec(path)
    assert spec.source == str(path)
    projector = SessionProjector(spec)
    ev = Events()
    projector.apply(ev("turn.started", "T1"))
    outcome = projector.apply(ev("turn.completed", "T2"))
    assert outcome.reason == "not_the_active_turn"


# -- unreadable and invalid YAML -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "directory", "not-utf8"])
def test_an_unreadable_file_is_a_spec_error(tmp_path: Path, kind: str) -> None:
    path = {"missing": tmp_path / "missing.yaml", "directory": tmp_path, "not-utf8": tmp_path / "latin1.yaml"}[kind]
    if kind == "not-utf8":
        path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.file == str(path)
    assert caught.value.path == "$"


@pytest.mark.parametrize("text", ["statuses: [\n", "name: a\n  bad: indent\n", "key: 'unclosed\n", "\t- tab\n"])
def test_invalid_yaml_is_a_spec_error_with_a_line(text: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, SOURCE)
    assert caught.value.file == SOURCE
    assert caught.value.path.startswith("line ") or caught.value.path == "$"
    assert "YAML" in caught.value.message


@pytest.mark.parametrize("text", ["", "just text", "- a\n- list\n", "42"])
def test_yaml_that_is_not_a_spec_mapping_is_a_schema_error(text: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, SOURCE)
    assert caught.value.path == "$"


# -- schema violations -----------------------------------------------------------------------------


def _drop_initial(raw: Raw) -> None:
    del raw["initial"]


def _bool_as_text(raw: Raw) -> None:
    raw["statuses"][0]["holds_turn"] = "yes"


def _version(raw: Raw) -> None:
    raw["spec_version"] = 2


def _extra_key(raw: Raw) -> None:
    raw["extras"] = {}


def _guard_without_reason(raw: Raw) -> None:
    del raw["guards"]["turn_matches"]["rejects_as"]


def _dest_and_internal(raw: Raw) -> None:
    raw["transitions"][0]["internal"] = True


def _sources_not_a_list(raw: Raw) -> None:
    raw["transitions"][1]["sources"] = "running"


def _payload_type(raw: Raw) -> None:
    raw["events"][0]["payload"]["message"]["type"] = "number"


def _bad_name(raw: Raw) -> None:
    raw["statuses"][0]["name"] = "Idle Status"


@pytest.mark.parametrize(
    ("change", "path", "mentions"),
    [
        (_drop_initial, "$", "initial"),
        (_bool_as_text, "statuses[0].holds_turn", "yes"),
        (_version, "spec_version", "1"),
        (_extra_key, "$", "extras"),
        (_guard_without_reason, "guards.turn_matches", "rejects_as"),
        (_dest_and_internal, "transitions[0]", ""),
        (_sources_not_a_list, "transitions[1].sources", "running"),
        (_payload_type, "events[0].payload.message.type", "number"),
        (_bad_name, "statuses[0].name", "Idle Status"),
    ],
)
def test_a_schema_violation_names_the_path(change: Callable[[Raw], object], path: str, mentions: str) -> None:
    error = spec_error(change)
    assert error.path == path
    assert mentions in error.message


# -- references ------------------------------------------------------------------------------------


def test_unknown_initial_status() -> None:
    error = spec_error(lambda raw: raw.update(initial="nowhere"))
    assert (error.path, "nowhere" in error.message) == ("initial", True)


def test_unknown_status_in_sources() -> None:
    i, _ = transition(builtin_raw(), "turn.started")
    error = spec_error(lambda r: transition(r, "turn.started")[1].update(sources=["ready", "nowhere"]))
    assert error.path == f"transitions[{i}].sources[1]"
    assert "nowhere" in error.message


def test_unknown_status_as_dest() -> None:
    i, _ = transition(builtin_raw(), "session.exited")
    error = spec_error(lambda r: transition(r, "session.exited")[1].update(dest="gone"))
    assert error.path == f"transitions[{i}].dest"
    assert "gone" in error.message


def test_unknown_guard_in_a_transition() -> None:
    i, t = transition(builtin_raw(), "turn.aborted")
    k = len(t["guards"])
    error = spec_error(lambda r: transition(r, "turn.aborted")[1]["guards"].append("is_sunny"))
    assert error.path == f"transitions[{i}].guards[{k}]"
    assert "is_sunny" in error.message


def test_declared_guard_without_an_implementation() -> None:
    error = spec_error(lambda r: r["guards"].update(is_sunny={"rejects_as": "cloudy"}))
    assert error.path == "guards.is_sunny"


def test_unknown_effect_in_a_transition() -> None:
    i, t = transition(builtin_raw(), "runtime.error")
    k = len(t["effects"])
    error = spec_error(lambda r: transition(r, "runtime.error")[1]["effects"].append("page_someone"))
    assert error.path == f"transitions[{i}].effects[{k}]"
    assert "page_someone" in error.message


def test_unknown_effect_on_enter() -> None:
    i = status_index(builtin_raw(), "ready")
    error = spec_error(lambda r: r["statuses"][status_index(r, "ready")]["on_enter"].append("page_someone"))
    assert error.path == f"statuses[{i}].on_enter[{len(builtin_raw()['statuses'][i]['on_enter'])}]"


def test_unknown_effect_on_applied() -> None:
    error = spec_error(lambda r: r["on_applied"].insert(0, "page_someone"))
    assert error.path == "on_applied[0]"


def test_declared_effect_without_an_implementation() -> None:
    error = spec_error(lambda r: r["effects"].update(page_someone={}))
    assert error.path == "effects.page_someone"


@pytest.mark.parametrize(
    "params",
    [
        {"field": "message"},
        {"field": "message", "default": "x", "colour": "red"},
        {"fields": "message", "default": "x"},
    ],
    ids=["missing", "extra", "misspelt"],
)
def test_wrong_effect_parameters(params: dict[str, str]) -> None:
    raw = builtin_raw()
    i, t = transition(raw, "runtime.error")
    k = next(k for k, e in enumerate(t["effects"]) if isinstance(e, dict) and "set_error" in e)

    def change(r: Raw) -> None:
        transition(r, "runtime.error")[1]["effects"][k] = {"set_error": params}

    error = spec_error(change)
    assert error.path == f"transitions[{i}].effects[{k}]"
    assert "set_error" in error.message


def test_parameters_for_an_effect_that_takes_none() -> None:
    i, t = transition(builtin_raw(), "session.state.changed[ready]")
    k = t["effects"].index("clear_error")

    def change(r: Raw) -> None:
        transition(r, "session.state.changed[ready]")[1]["effects"][k] = {"clear_error": {"field": "x"}}

    assert spec_error(change).path == f"transitions[{i}].effects[{k}]"


@pytest.mark.parametrize("trigger", ["turn.exploded", "session.state.changed[paused]", "turn.completed",
                                     "turn.started[x]"])
def test_unknown_trigger(trigger: str) -> None:
    error = spec_error(lambda r: r["transitions"][2].update(trigger=trigger))
    assert error.path == "transitions[2].trigger"
    assert trigger in error.message


def test_unknown_invariant_kind() -> None:
    error = spec_error(lambda r: r["invariants"].append({"name": "be_nice", "kind": "niceness"}))
    assert error.path == f"invariants[{len(builtin_raw()['invariants'])}].kind"
    assert "niceness" in error.message


def test_duplicate_status() -> None:
    def change(r: Raw) -> None:
        r["statuses"].append(copy.deepcopy(r["statuses"][status_index(r, "ready")]))

    error = spec_error(change)
    assert error.path == f"statuses[{len(builtin_raw()['statuses'])}].name"
    assert "ready" in error.message


def test_duplicate_event_type() -> None:
    def change(r: Raw) -> None:
        r["events"].append(copy.deepcopy(r["events"][0]))

    assert spec_error(change).path == f"events[{len(builtin_raw()['events'])}].type"


# -- variant_by ------------------------------------------------------------------------------------


def _variant_missing_field(r: Raw) -> None:
    r["events"][event_index(r, "turn.completed")]["variant_by"] = "mood"


def _variant_without_enum(r: Raw) -> None:
    del r["events"][event_index(r, "turn.completed")]["payload"]["state"]["enum"]


def _variant_neither_required_nor_default(r: Raw) -> None:
    del r["events"][event_index(r, "turn.completed")]["payload"]["state"]["default"]


def _variant_default_not_in_enum(r: Raw) -> None:
    r["events"][event_index(r, "turn.completed")]["payload"]["state"]["default"] = "finished"


@pytest.mark.parametrize(
    ("change", "suffix"),
    [
        (_variant_missing_field, "variant_by"),
        (_variant_without_enum, "variant_by"),
        (_variant_neither_required_nor_default, "variant_by"),
        (_variant_default_not_in_enum, "payload.state.default"),
    ],
)
def test_variant_by_problems(change: Callable[[Raw], object], suffix: str) -> None:
    i = event_index(builtin_raw(), "turn.completed")
    assert spec_error(change).path == f"events[{i}].{suffix}"


# -- reachability ----------------------------------------------------------------------------------


def test_a_status_with_no_way_in_is_unreachable() -> None:
    def change(r: Raw) -> None:
        r["statuses"].append({"name": "limbo", "holds_turn": False, "reapable": True, "on_enter": ["clear_turn"]})

    error = spec_error(change)
    assert error.path == f"statuses[{len(builtin_raw()['statuses'])}]"
    assert "limbo" in error.message


def test_a_status_whose_only_ways_in_are_removed_is_unreachable() -> None:
    def change(r: Raw) -> None:
        r["transitions"] = [t for t in r["transitions"] if t.get("dest") != "interrupted"]

    raw = builtin_raw()
    error = spec_error(change)
    assert error.path == f"statuses[{status_index(raw, 'interrupted')}]"


def test_a_status_reachable_only_from_an_unreachable_one_is_unreachable() -> None:
    # limbo -> purgatory: neither is reachable from idle.
    def change(r: Raw) -> None:
        r["statuses"] += [
            {"name": "limbo", "holds_turn": False, "reapable": False, "on_enter": []},
            {"name": "purgatory", "holds_turn": False, "reapable": False, "on_enter": []},
        ]
        r["transitions"].append({"trigger": "session.exited", "sources": ["limbo"], "dest": "purgatory"})

    error = spec_error(change)
    assert error.path == f"statuses[{len(builtin_raw()['statuses'])}]"


def test_a_guard_or_effect_is_described_by_its_declaration_alone() -> None:
    # The spec says where a name applies; what it means, in words too, is its declaration's.
    from statemachine.spec.semantics import VOCABULARY

    spec = builtin_spec()
    assert all(g.description and g.description == VOCABULARY.guards[n].description for n, g in spec.guards.items())
    assert all(e.description and e.description == VOCABULARY.effects[n].description for n, e in spec.effects.items())
    # A second description in the spec file is refused, naming the place, not kept beside the first.
    assert spec_error(lambda r: r["guards"]["targeted"].update(description="x")).path == "guards.targeted"
    assert spec_error(lambda r: r["effects"]["set_turn"].update(description="x")).path == "effects.set_turn"
