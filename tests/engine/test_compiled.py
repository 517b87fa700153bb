"""The compiled engine's code generation: complete, spec text never becomes code, and the parsed
updatedAt it keeps per thread stays in step with the session however the session got there.

That the generated functions mean what the `transitions` machine means is `verify`'s agreement
check (tests/verify/test_verify.py), on every reachable state x every event.
"""

from __future__ import annotations

import dataclasses
import json
import linecache
from pathlib import Path

import pytest
from helpers import Events, seeded

from statemachine import EventError, Session, SessionProjector, builtin_spec
from statemachine.engine import registry
from statemachine.engine.compiled import CompiledMachine, settled
from statemachine.engine.registry import compiled_for
from statemachine.spec.load import load_spec, parse_spec
from statemachine.spec.semantics import VOCABULARY, Effect
from statemachine.verify.explore import explore

SPEC_FILE = Path(__file__).resolve().parents[2] / "specs" / "session_lifecycle.yaml"


def test_every_status_and_trigger_has_a_step_function() -> None:
    spec = builtin_spec()
    compiled = compiled_for(spec)
    assert set(compiled.dispatch) == set(spec.status_names)
    for status, steps in compiled.dispatch.items():
        assert set(steps) == set(spec.triggers), status


def test_a_pair_no_transition_leaves_compiles_to_its_rejection() -> None:
    p = seeded("stopped", active_turn_id=None)
    outcome = p.apply(Events()("turn.started", "T1"))
    assert (outcome.kind, outcome.reason) == ("rejected", "invalid_in_stopped")
    assert "invalid_in_stopped" not in compiled_for(builtin_spec()).sources[("turn.started", "stopped")]


def test_guards_that_change_nothing_are_not_tested() -> None:
    # session.state.changed[stopped] has no guard: its function is straight-line code.
    source = compiled_for(builtin_spec()).sources[("session.state.changed[stopped]", "running")]
    assert "\n    if turn is not None:" in source  # clear_turn's own test, not a guard
    assert "else:" not in source
    # turn.started reads five guards; its function branches on them.
    assert compiled_for(builtin_spec()).sources[("turn.started", "ready")].count("else:") >= 3


HOSTILE_DEFAULT = 'x"))\nraise SystemExit("injected")  # {field} \\'


def test_spec_text_is_data_never_code() -> None:
    # A JSON string is a YAML double-quoted scalar with the same escapes.
    text = SPEC_FILE.read_text(encoding="utf-8")
    text = text.replace("default: Turn failed", "default: " + json.dumps(HOSTILE_DEFAULT))
    spec = parse_spec(text)
    assert any(HOSTILE_DEFAULT in e.param_map.values() for t in spec.transitions for e in t.effects)
    compiled = CompiledMachine(spec)
    assert not any("injected" in source for source in compiled.sources.values())
    p = SessionProjector(spec)
    ev = Events()
    p.apply(ev("turn.started", "T1"))
    outcome = p.apply(ev("turn.completed", "T1", state="failed"))
    assert outcome.after.status == "error"
    assert outcome.after.last_error == HOSTILE_DEFAULT


@pytest.mark.parametrize("engine", ["compiled", "transitions"])
def test_seeded_updated_at_is_what_later_events_are_compared_with(engine: str) -> None:
    p = seeded("running", engine=engine, active_turn_id="T1", updated_at="2026-03-01T12:00:00Z")
    ev = Events()
    earlier = p.apply(ev("turn.completed", "T1", created_at="2026-03-01T11:00:00Z"))
    assert earlier.kind == "applied" and earlier.after.updated_at == "2026-03-01T12:00:00Z"
    later = p.apply(ev("session.state.changed", created_at="2026-03-01T12:00:01+00:00", state="running"))
    assert later.after.updated_at == "2026-03-01T12:00:01+00:00"
    # Compared as instants, not as text: 13:00+02:00 is 11:00 UTC, before the stored one.
    behind = p.apply(ev("session.state.changed", created_at="2026-03-01T13:00:00+02:00", state="ready"))
    assert behind.after.updated_at == "2026-03-01T12:00:01+00:00"


@pytest.mark.parametrize("engine", ["compiled", "transitions"])
def test_restored_updated_at_is_what_later_events_are_compared_with(engine: str) -> None:
    p = seeded("ready", updated_at="2026-03-01T12:00:00Z")
    restored = SessionProjector.restore(p.snapshot(), engine=engine)  # type: ignore[arg-type]
    outcome = restored.apply(Events()("session.state.changed", created_at="2026-03-01T09:00:00Z", state="running"))
    assert outcome.kind == "applied"
    assert outcome.after.updated_at == "2026-03-01T12:00:00Z"


@pytest.mark.parametrize("bad", ["yesterday", "", "2026-13-01T00:00:00Z"])
def test_seeding_an_unreadable_updated_at_is_refused_and_changes_nothing(bad: str) -> None:
    p = SessionProjector()
    with pytest.raises(EventError) as info:
        p.seed(Session("thread-1", "ready", "codex", updated_at=bad))
    assert info.value.field == "updatedAt"
    assert "thread-1" not in p


# The compiled engine alone reads the guards' declared relations (to test a guard only where its
# value can still differ); a wrong relation must make it disagree with the machine.
WRONG_RELATIONS = [
    ("turn_matches", {"implied_by": ("targeted",)}),
    ("turn_matches", {"implied_by": ("untargeted", "has_active_turn")}),
    ("no_active_turn", {"negates": "targeted"}),
]


@pytest.mark.parametrize(
    ("name", "change"), WRONG_RELATIONS, ids=["implied_by_targeted", "implied_by_active", "negates_targeted"]
)
def test_agreement_catches_a_wrong_guard_relation(
    monkeypatch: pytest.MonkeyPatch, name: str, change: dict[str, object]
) -> None:
    guard = VOCABULARY.guards[name]
    wrong = VOCABULARY.extended(guards=(dataclasses.replace(guard, **change),))  # type: ignore[arg-type]
    spec = dataclasses.replace(builtin_spec(), vocabulary=wrong, digest="")
    corrupted = CompiledMachine(spec)
    monkeypatch.setattr(registry, "compiled_for", lambda _: corrupted)
    result = explore(spec, reference="transitions", name="agreement", check_invariants=False)
    assert not result.ok
    assert result.violated == ("compiled_equals_transitions",)


@pytest.mark.parametrize(
    ("code", "reads", "writes", "complaint"),
    [
        ("err = None", (), (), "assigns slot 'err'"),
        ("if turn is not None:\n    remember(turn)", (), (), "reads slot 'turn'"),
        ("turn = t", ("turn",), ("turn",), "reads slot 't'"),
    ],
)
def test_an_effect_whose_code_and_declaration_differ_is_refused(
    code: str, reads: tuple[str, ...], writes: tuple[str, ...], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        Effect("wrong", code, reads, writes, "declared wrong on purpose")


def test_the_generated_source_is_shown_in_tracebacks() -> None:
    compiled = compiled_for(builtin_spec())
    lines = linecache.getlines(compiled.filename)
    assert lines and "def step_" in "".join(lines)
    function = compiled.dispatch["running"]["turn.started"]
    assert function.__code__.co_filename == compiled.filename
    first = lines[function.__code__.co_firstlineno - 1]
    assert first.startswith("def step_") and "turn_started" in first


def test_the_same_spec_loaded_twice_compiles_once_and_the_cache_is_bounded() -> None:
    first, second = load_spec(SPEC_FILE), load_spec(SPEC_FILE)
    assert first is not second and first.digest == second.digest
    assert compiled_for(first) is compiled_for(second)
    text = SPEC_FILE.read_text(encoding="utf-8")
    variants = [parse_spec(text.replace("default: Turn failed", f"default: Turn failed {i}")) for i in range(12)]
    built = [compiled_for(v) for v in variants]
    assert len({id(b) for b in built}) == 12
    assert len(registry._COMPILED) <= registry._COMPILED.maxsize


def test_a_second_build_of_the_same_spec_keeps_its_source_when_the_first_is_collected() -> None:
    import gc

    first = CompiledMachine(builtin_spec())
    second = CompiledMachine(builtin_spec())
    assert first.filename == second.filename
    del first
    gc.collect()
    assert "def step_" in "".join(linecache.getlines(second.filename))


def test_an_earlier_build_keeps_its_source_when_a_later_one_is_collected() -> None:
    import gc

    first = CompiledMachine(builtin_spec())
    second = CompiledMachine(builtin_spec())
    del second
    gc.collect()
    assert "def step_" in "".join(linecache.getlines(first.filename))


@pytest.mark.parametrize(("name", "tested", "value"), [
    ("no_active_turn", {"has_active_turn": True}, False),  # negation
    ("has_active_turn", {"no_active_turn": False}, True),  # negation, the other way
    ("turn_matches", {"targeted": False}, True),  # negation, then implied_by
    ("untargeted", {"turn_matches": False}, False),  # implied_by, read backwards
    ("turn_matches", {"has_active_turn": True}, None),  # nothing said: the guard is tested
    ("turn_matches", {}, None),
])
def test_settled_closes_the_tested_guards_over_the_declarations(name: str, tested: dict[str, bool],
                                                                value: bool | None) -> None:
    # One answer for the compiled engine and the TypeScript export alike.
    assert settled(VOCABULARY, name, tested) is value
