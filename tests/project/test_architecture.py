"""A guard added in one declaration reaches every consumer: both engines, the static rules, the
verification universe, the lifecycle page, the TypeScript and XState exports.

The "where to add" table of docs/architecture.md promises this; the test follows a new guard
(declared once, named in the spec) through each consumer's public API."""

from __future__ import annotations

import json
from pathlib import Path

from statemachine.engine.registry import compiled_for
from statemachine.rendering.docgen import lifecycle_markdown
from statemachine.rendering.typescript import export_typescript
from statemachine.rendering.xstate import config_json
from statemachine.spec.load import parse_spec
from statemachine.spec.semantics import VOCABULARY, Guard
from statemachine.verify.explore import explore
from statemachine.verify.static import static_check
from statemachine.verify.universe import reads_event_turn

ROOT = Path(__file__).resolve().parents[2]
SPEC_TEXT = (ROOT / "specs" / "session_lifecycle.yaml").read_text(encoding="utf-8")

# One declaration: its Python code, the slots it reads, its description, its TypeScript rendering.
NAMED = Guard("turn_named_by_provider", "t is None or not t.startswith('~')", ("t",),
              "The event's turn is not one the library names itself.", ts="t === null || !t.startsWith('~')")


def spec_with_the_guard() -> object:
    text = SPEC_TEXT.replace(
        "guards:\n",
        "guards:\n  turn_named_by_provider:\n    rejects_as: turn_named_by_library\n",
        1,
    ).replace(
        "    guards: [targeted, turn_not_finished, turn_matches]\n    effects: [set_turn, consume_pending_turn]",
        "    guards: [targeted, turn_not_finished, turn_matches, turn_named_by_provider]\n"
        "    effects: [set_turn, consume_pending_turn]",
    )
    assert text.count("turn_named_by_provider") == 2, "the spec text this test edits has changed"
    return parse_spec(text, vocabulary=VOCABULARY.extended(guards=(NAMED,)))


def test_a_guard_declared_once_reaches_every_consumer() -> None:
    spec = spec_with_the_guard()
    # The static rules know it.
    assert static_check(spec).ok  # type: ignore[arg-type]
    # The compiled engine writes its code into the steps of the transitions that use it.
    sources = compiled_for(spec).sources  # type: ignore[arg-type]
    assert any("t.startswith('~')" in source for source in sources.values())
    # The reference engine runs it, and the two engines agree on every reachable edge.
    agreement = explore(spec, reference="transitions", name="agreement", check_invariants=False)  # type: ignore[arg-type]
    assert agreement.ok, agreement
    # The verification universe varies what it reads.
    assert reads_event_turn(spec, "turn.started")  # type: ignore[arg-type]
    # The lifecycle page prints its name, description and code: the description is the
    # declaration's, which the spec does not repeat.
    page = lifecycle_markdown(spec)  # type: ignore[arg-type]
    assert "turn_named_by_provider" in page and "not one the library names itself" in page
    # The TypeScript export renders it from the same declaration; XState names it.
    assert "!t.startsWith('~')" in export_typescript(spec)  # type: ignore[arg-type]
    assert "turn_named_by_provider" in json.dumps(json.loads(config_json(spec)))  # type: ignore[arg-type]


def test_the_guard_changes_what_the_engines_do() -> None:
    """Not a guard nobody reads: a turn the library would name is refused by both engines."""
    from statemachine import SessionProjector

    spec = spec_with_the_guard()
    for engine in ("compiled", "transitions"):
        p = SessionProjector(spec, engine=engine)  # type: ignore[arg-type]
        p.apply({"eventId": "e1", "type": "session.started", "provider": "codex", "threadId": "t",
                 "createdAt": "2026-11-20T10:00:00Z", "payload": {}})
        out = p.apply({"eventId": "e2", "type": "turn.started", "provider": "codex", "threadId": "t",
                       "createdAt": "2026-11-20T10:00:01Z", "turnId": "~x", "payload": {}})
        assert (out.kind.value, out.reason) == ("rejected", "turn_named_by_library"), engine
