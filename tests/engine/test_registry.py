"""One declaration per guard and effect: add one to a vocabulary, use it in a spec, and every
consumer (both engines, the static check, the verification universe, the generated docs) sees it."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Events

from statemachine import SessionProjector
from statemachine.engine.registry import compiled_for
from statemachine.rendering.docgen import lifecycle_markdown
from statemachine.spec.load import parse_spec
from statemachine.spec.model import SpecError
from statemachine.spec.semantics import EXCLUDES_FINISHED, VOCABULARY, Effect, Guard
from statemachine.verify.static import static_check
from statemachine.verify.universe import event_universe, fields_read

SPEC_TEXT = (Path(__file__).resolve().parents[2] / "specs" / "session_lifecycle.yaml").read_text(encoding="utf-8")

FRESH = Guard("turn_is_fresh", "t is None or t not in fin", ("t", "fin"),
              "The event's turn was never finished.", implied_by=("untargeted",),
              classes=frozenset({EXCLUDES_FINISHED}))
NOTE = Effect("note_reason", "value = ev.payload.get(field)\nif value is not None:\n    err = 'stopped: ' + str(value)",
              ("ev",), ("err",), "Note why the session stopped.", params=("field",), payload_params=("field",))


def _spec_text() -> str:
    text = SPEC_TEXT.replace(
        "guards:\n",
        "guards:\n  turn_is_fresh:\n    rejects_as: stale_turn\n",
        1,
    ).replace(
        "effects:\n",
        "effects:\n  note_reason:\n    params: [field]\n",
        1,
    )
    # turn.started (targeted) now guards with the new name; stopped notes its reason.
    text = text.replace(
        "    guards: [targeted, turn_not_finished, turn_matches]\n    effects: [set_turn, consume_pending_turn]",
        "    guards: [targeted, turn_is_fresh, turn_matches]\n    effects: [set_turn, consume_pending_turn]",
    ).replace(
        "    guards: [targeted, turn_not_finished, turn_expected]\n",
        "    guards: [targeted, turn_is_fresh, turn_expected]\n",
    )
    return text.replace(
        '{trigger: "session.state.changed[stopped]", sources: "*", dest: stopped}',
        '{trigger: "session.state.changed[stopped]", sources: "*", dest: stopped, '
        "effects: [{note_reason: {field: reason}}]}",
    )


def _vocabulary(guard: Guard = FRESH) -> object:
    return VOCABULARY.extended(guards=(guard,), effects=(NOTE,))


def test_the_spec_cannot_name_a_guard_the_vocabulary_lacks() -> None:
    with pytest.raises(SpecError, match="no implementation for guard 'turn_is_fresh'"):
        parse_spec(_spec_text())


@pytest.mark.parametrize("engine", ["compiled", "transitions"])
def test_both_engines_run_the_new_declarations(engine: str) -> None:
    spec = parse_spec(_spec_text(), vocabulary=_vocabulary())  # type: ignore[arg-type]
    p = SessionProjector(spec, engine=engine)  # type: ignore[arg-type]
    ev = Events()
    p.apply(ev("turn.started", "T1"))
    p.apply(ev("turn.completed", "T1"))
    again = p.apply(ev("turn.started", "T1"))
    assert (again.kind, again.reason) == ("rejected", "stale_turn")
    stopped = p.apply(ev("session.state.changed", state="stopped", reason="shutdown"))
    assert (stopped.after.status, stopped.after.last_error) == ("stopped", "stopped: shutdown")


def test_the_compiled_engine_writes_the_declared_code() -> None:
    spec = parse_spec(_spec_text(), vocabulary=_vocabulary())  # type: ignore[arg-type]
    compiled = compiled_for(spec)
    assert "t not in fin" in compiled.sources[("turn.started", "ready")]
    assert "'stopped: ' + str(value)" in compiled.sources[("session.state.changed[stopped]", "running")]
    assert compiled is not compiled_for(parse_spec(SPEC_TEXT))  # another vocabulary, another build


def test_the_static_check_reads_the_new_guards_class() -> None:
    spec = parse_spec(_spec_text(), vocabulary=_vocabulary())  # type: ignore[arg-type]
    assert static_check(spec).ok
    unclassed = Guard(FRESH.name, FRESH.expr, FRESH.reads, FRESH.description, implied_by=FRESH.implied_by)
    weak = parse_spec(_spec_text(), vocabulary=_vocabulary(unclassed))  # type: ignore[arg-type]
    result = static_check(weak)
    assert not result.ok and result.violated == ("S4",)


def test_the_universe_varies_the_payload_field_the_new_effect_reads() -> None:
    spec = parse_spec(_spec_text(), vocabulary=_vocabulary())  # type: ignore[arg-type]
    assert fields_read(spec, "session.state.changed[stopped]") == ("reason",)
    assert fields_read(parse_spec(SPEC_TEXT), "session.state.changed[stopped]") == ()
    stopped = {t.payload for t in event_universe(spec) if ("state", "stopped") in t.payload}
    assert stopped == {(("state", "stopped"),), (("state", "stopped"), ("reason", "payload text"))}


def test_code_reads_the_events_turn_only_through_its_slot() -> None:
    with pytest.raises(ValueError, match=r"reads ev\.turn_id"):
        Guard("sneaky", "ev.turn_id is None", ("ev",), "Reads the turn behind the slot's back.")
    with pytest.raises(ValueError, match="other than by reading one of its attributes"):
        Effect("leak", "err = str(ev)", ("ev",), ("err",), "Passes the whole event on.")


def test_the_universe_sends_a_turn_only_to_triggers_where_something_reads_it() -> None:
    spec = parse_spec(SPEC_TEXT)
    turns = {(t.type, t.turn_id) for t in event_universe(spec)}
    assert {turn for type_, turn in turns if type_ == "session.exited"} == {None}
    assert {turn for type_, turn in turns if type_ == "turn.started"} == {None, "turn-1", "turn-2", "turn-3"}
    # A guard reading the event's turn on session.exited brings the turn ids back for it.
    targeted = SPEC_TEXT.replace('{trigger: session.exited, sources: "*", dest: stopped}',
                                 '{trigger: session.exited, sources: "*", dest: stopped, guards: [turn_matches]}')
    assert {t.turn_id for t in event_universe(parse_spec(targeted)) if t.type == "session.exited"} == {
        None, "turn-1", "turn-2", "turn-3"}


def test_a_contract_keeps_the_payload_field_it_reads_in_the_universe_when_the_spec_stops_reading_it() -> None:
    from statemachine.spec.requirements import builtin_requirements

    # The stop request's guard is the only code reading onlyIfSettled; with it gone, the spec
    # alone would no longer vary the field, but the requirement about it still does.
    text = SPEC_TEXT.replace("dest: stopped, guards: [stop_unconditional]}", "dest: stopped}")
    assert text != SPEC_TEXT
    spec = parse_spec(text)
    assert fields_read(spec, "thread.session.stop") == ()
    requirements = builtin_requirements(spec)
    assert fields_read(spec, "thread.session.stop", requirements) == ("onlyIfSettled",)
    stops = {t.payload for t in event_universe(spec, requirements) if t.type == "thread.session.stop"}
    assert (("onlyIfSettled", True),) in stops and () in stops
    # ... and only where a contract can read it once the trigger is known: the reason of a
    # state change matters to the requirements only for state error.
    assert fields_read(spec, "session.state.changed[ready]", requirements) == ()
    assert fields_read(spec, "session.state.changed[error]", requirements) == ("reason",)


def test_the_generated_docs_show_the_new_declarations() -> None:
    spec = parse_spec(_spec_text(), vocabulary=_vocabulary())  # type: ignore[arg-type]
    page = lifecycle_markdown(spec)
    assert "`turn_is_fresh`" in page and "`stale_turn`" in page and "`t is None or t not in fin`" in page
    assert "`note_reason`" in page and "`stopped: shutdown`" not in page
    assert "`stopped: payload.reason`" in page.split("### `session.state.changed[stopped]`")[1].split("###")[0]


def test_a_trigger_reading_too_many_payload_fields_is_refused_with_a_clear_message() -> None:
    many = tuple(f"f{i}" for i in range(7))
    wide = Effect("note_all", "\n".join(f"value = ev.payload.get({p})" for p in many), ("ev",), (),
                  "Reads seven fields.", params=many, payload_params=many)
    text = SPEC_TEXT.replace(
        "effects:\n", f"effects:\n  note_all:\n    params: [{', '.join(many)}]\n", 1
    ).replace(
        '{trigger: session.exited, sources: "*", dest: stopped}',
        '{trigger: session.exited, sources: "*", dest: stopped, effects: [{note_all: {'
        + ", ".join(f"{p}: {p}" for p in many) + "}}]}",
    )
    spec = parse_spec(text, vocabulary=VOCABULARY.extended(effects=(wide,)))
    with pytest.raises(SpecError, match="reads 7 payload fields"):
        event_universe(spec)


def test_promelas_independent_rendering_covers_exactly_the_registry() -> None:
    from statemachine.verify.promela import EFFECTS, GUARDS

    assert set(GUARDS) == set(VOCABULARY.guards)
    assert set(EFFECTS) == set(VOCABULARY.effects)
