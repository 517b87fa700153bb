"""The mutant files and their edit language: each edit does what it says, a wrong edit or file is a
`SpecError` naming the file and the field, and every single-edit mutant of a spec is generated."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from statemachine import builtin_spec
from statemachine.spec.load import load_spec
from statemachine.spec.loader import read_spec_file
from statemachine.spec.model import SpecError
from statemachine.verify.mutate import (
    OPERATORS,
    apply_edits,
    builtin_mutants,
    edit_label,
    load_mutant,
    mutant_data,
    mutant_spec_text,
    parse_edit,
    read_mutant,
    single_edit_mutants,
    spec_from_data,
)

T = "transitions"


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return read_spec_file(None)[0]


def _apply(data: dict[str, Any], *edits: dict[str, Any]) -> dict[str, Any]:
    return apply_edits(data, [parse_edit(e, f"edits[{i}]", "test.yaml") for i, e in enumerate(edits)], "test.yaml")


def test_each_operation_edits_what_its_path_names(data: dict[str, Any]) -> None:
    first_start = {"trigger": "turn.started", "nth": 1}
    out = _apply(data, {"at": [T, first_start, "guards"], "remove": "turn_not_finished"})
    starts = [t for t in out[T] if t["trigger"] == "turn.started"]
    assert starts[0]["guards"] == ["targeted", "turn_matches"]
    assert starts[1]["guards"] == ["targeted", "turn_not_finished", "turn_expected"]  # the second is untouched
    assert data[T][14]["guards"] == ["targeted", "turn_not_finished", "turn_matches"]  # the input is not changed
    out = _apply(data, {"at": [T, first_start, "sources"], "add": "stopped", "before": "error"})
    assert next(t for t in out[T] if t["trigger"] == "turn.started")["sources"][-2:] == ["stopped", "error"]
    out = _apply(data, {"at": ["statuses", {"name": "ready"}, "holds_turn"], "set": True})
    assert next(s for s in out["statuses"] if s["name"] == "ready")["holds_turn"] is True
    out = _apply(data, {"at": [T], "swap": [{"trigger": "session.started", "nth": 1},
                                            {"trigger": "session.started", "nth": 3}]})
    assert [t["dest"] for t in out[T][:3]] == ["ready", "starting", "running"]
    # A mapping item is picked by its fields: the set_error effect of runtime.error, its field.
    error = {"set_error": {"field": "message", "default": "Runtime error"}}
    at = [T, {"trigger": "runtime.error"}, "effects", error, "set_error", "field"]
    out = _apply(data, {"at": at, "set": "class"})
    assert next(t for t in out[T] if t["trigger"] == "runtime.error")["effects"][1]["set_error"]["field"] == "class"
    out = _apply(data, {"at": ["invariants"], "remove": {"name": "active_turn_not_finished"}})
    assert "active_turn_not_finished" not in {i["name"] for i in out["invariants"]}
    out = _apply(data, {"at": [T, {"trigger": "thread.turn.start", "nth": 1}], "remove": "guards"})
    assert "guards" not in next(t for t in out[T] if t["trigger"] == "thread.turn.start")


@pytest.mark.parametrize(("edit", "where", "message"), [
    ({"at": [T, {"trigger": "turn.started"}, "guards"], "remove": "targeted"}, "edits[0].at[1]",
     "exactly one item; 3 match"),
    ({"at": [T, {"trigger": "turn.started", "nth": 4}], "remove": "guards"}, "edits[0].at[1]", "picks item 4"),
    ({"at": [T, {"trigger": "no.such"}], "remove": "guards"}, "edits[0].at[1]", "0 match"),
    ({"at": ["statuses", {"name": "ready"}, "on_enter"], "remove": "set_turn"}, "edits[0].remove", "0 match"),
    ({"at": ["nothing"], "set": 1}, "$", "Additional properties"),
    ({"at": ["statuses", {"name": "ready"}, "holds_turn"], "add": "x"}, "edits[0].at[2]", "needs a list"),
    ({"at": ["on_applied"], "add": "x", "before": "a", "after": "b"}, "edits[0]", "not both"),
    ({"at": ["on_applied"], "set": [], "remove": "x"}, "edits[0]", "exactly one of"),
    ({"at": [], "set": 1}, "edits[0].at", "non-empty list"),
    ({"at": ["on_applied"], "sett": 1}, "edits[0].sett", "unknown key"),
    ({"at": [T, {"nth": 2}]}, "edits[0]", "exactly one of"),
    ({"at": [T], "swap": [{"trigger": "thread.delete"}, {"trigger": "thread.delete"}]}, "edits[0].swap",
     "the same item"),
])
def test_a_wrong_edit_is_a_spec_error_naming_it(data: dict[str, Any], edit: dict[str, Any], where: str,
                                                message: str) -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_data(_apply(data, edit), "test.yaml")
    assert caught.value.file == "test.yaml" and caught.value.path == where, caught.value
    assert message in caught.value.message


def _mutant_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


GOOD = """mutant_version: 1
class: guard dropped
breaks: turn.started forgets to check finished turns.
caught_by: [active_turn_never_finished]
before_requirements: the agreement check passes.
edits:
  - at: [transitions, {trigger: turn.started, nth: 1}, guards]
    remove: turn_not_finished
"""


@pytest.mark.parametrize(("change", "where"), [
    (("mutant_version: 1", "mutant_version: 2"), "mutant_version"),
    (("caught_by: [active_turn_never_finished]", "caught_by: []"), "caught_by"),
    (("class: guard dropped\n", ""), "class"),
    (("breaks:", "broken:"), "broken"),
    (("    remove: turn_not_finished", "    remove: turn_not_finishd"), "edits[0].remove"),
    (("edits:\n", "edits: &a\n"), "line 6"),
    (("at: [transitions,", "at: [transitionz,"), "edits[0].at[0]"),
])
def test_a_wrong_mutant_file_is_a_spec_error_naming_the_field(tmp_path: Path, change: tuple[str, str],
                                                             where: str) -> None:
    assert load_mutant(_mutant_file(tmp_path, GOOD))[0].source.endswith("m.yaml")
    path = _mutant_file(tmp_path, GOOD.replace(*change))
    with pytest.raises(SpecError) as caught:
        load_mutant(path)
    assert caught.value.file == str(path) and caught.value.path == where, caught.value


def test_a_mutant_written_out_whole_loads_as_the_same_spec(tmp_path: Path) -> None:
    for path in builtin_mutants()[:5]:
        spec, info = load_mutant(path)
        whole = tmp_path / path.name
        whole.write_text(mutant_spec_text(path))
        again = load_spec(whole)
        assert (again.statuses, again.transitions, again.events, again.invariants, again.digest) == (
            spec.statuses, spec.transitions, spec.events, spec.invariants, spec.digest)
        assert info.name in whole.read_text().splitlines()[0]
        assert mutant_data(path)[0] == read_spec_file(whole)[0]


def test_every_mutant_file_reads_and_names_real_requirements() -> None:
    from statemachine.spec.requirements import builtin_requirements

    names = set(builtin_requirements(builtin_spec()).names)
    for path in builtin_mutants():
        info = read_mutant(path)
        assert set(info.caught_by) <= names, info.name
        assert all(edit_label(e) for e in info.edits)


def test_every_single_edit_mutant_is_generated_once(data: dict[str, Any]) -> None:
    mutations = single_edit_mutants(data)
    counts = Counter(m.operator for m in mutations)
    assert set(counts) == set(OPERATORS)
    labels = [m.label() for m in mutations]
    assert len(set(labels)) == len(labels)
    spec = builtin_spec()
    guards = sum(len(t.guards) for t in spec.transitions)
    assert counts["drop guard"] == guards
    assert counts["drop effect"] == sum(len(t.effects) for t in spec.transitions)
    assert counts["change destination"] == sum(len(spec.statuses) - 1 for t in spec.transitions if t.dest)
    assert counts["flip flag"] == 2 * len(spec.statuses)
    assert counts["drop on-applied effect"] == len(spec.on_applied)
    assert counts["replace guard"] == sum(len(spec.guards) - len(t.guards) for t in spec.transitions
                                          for _ in t.guards)
    by_trigger = Counter(t.trigger for t in spec.transitions)
    assert counts["swap transitions"] == sum(n * (n - 1) // 2 for n in by_trigger.values())
    # Each is one edit that changes the data; the built-in spec's are all specs the checker takes.
    for m in mutations[::7]:
        mutated = apply_edits(data, [m.edit])
        assert mutated != data, m.label()
        spec_from_data(mutated, m.label())


@pytest.mark.parametrize(("text", "where", "message"), [
    ("mutant_version: &v 1\n", "line 1", "anchor &v refused"),
    ("mutant_version: !!python/name:os.system 1\n", "line 1", "tag"),
    ("mutant_version: 1\n1: x\n", "$", "key 1 must be a string"),
    ("#" * (300 * 1024), "$", "MAX_SPEC_BYTES"),
])
def test_a_mutant_file_is_read_by_the_spec_loaders_hardened_rules(tmp_path: Path, text: str, where: str,
                                                                  message: str) -> None:
    # The same reader as the spec's and the requirements' (`read_yaml_file`), not a copy of it.
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        read_mutant(path)
    assert (caught.value.file, caught.value.path) == (str(path), where)
    assert message in caught.value.message
