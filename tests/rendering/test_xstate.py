"""The XState export (`statemachine.rendering.xstate`): the config, run through XState's own
`transition()` under Node, reaches the Python projector's status on every explored edge a lifecycle
event makes, running the effects the recorded table lists; a mutant's config is caught."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ts_support import ROOT, Driver, Explored, explored_builtin, require_node, typecheck, workspace

from statemachine.engine.compiled import record_table
from statemachine.rendering.xstate import XStateExportError, config_json, export_setup, machine_config
from statemachine.spec.load import builtin_spec, load_spec
from statemachine.spec.model import Spec
from statemachine.spec.semantics import VOCABULARY, Guard
from statemachine.verify.mutate import load_mutant, mutant_spec_text

MUTANT = ROOT / "specs" / "mutants" / "o_exit_to_ready.yaml"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_node()
    return workspace(tmp_path_factory.mktemp("xstate"), {
        "lifecycle_xstate.ts": export_setup(builtin_spec()),
        "mutant_xstate.ts": export_setup(load_mutant(MUTANT)[0]),
        "renamed.ts": export_setup(builtin_spec()).replace('"guard": "has_active_turn"',
                                                           '"guard": "has_an_active_turn"'),
    }, ("xstate.ts",))


@pytest.fixture(scope="module")
def node(work: Path) -> Iterator[Driver]:
    driver = Driver(work, "xstate.ts")
    yield driver
    driver.close()


@pytest.fixture(scope="module")
def edges() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    return _cases(builtin_spec(), explored_builtin())


@pytest.fixture(scope="module")
def checked(work: Path) -> set[str]:
    """One `tsc --strict --noEmit` over the workspace: the files with errors."""
    result = typecheck(work)
    files = {m.group(1) for m in re.finditer(r"^([^(\s]+)\(\d+,\d+\): error", result.stdout, re.M)}
    assert (result.returncode == 0) == (not files), result.stdout + result.stderr
    return files


def test_the_setup_modules_and_the_driver_type_check(checked: set[str]) -> None:
    assert checked == {"renamed.ts"}


def test_a_config_naming_an_unknown_guard_does_not_type_check(checked: set[str]) -> None:
    # The typed setup() knows its guards: a config naming another fails the type check.
    assert "renamed.ts" in checked


def test_the_json_config_is_the_one_the_setup_module_embeds() -> None:
    spec = builtin_spec()
    config = json.loads(config_json(spec))
    assert config == machine_config(spec)
    assert f"export const config = {config_json(spec).rstrip()} as const;" in export_setup(spec)
    assert set(config["states"]) == set(spec.status_names)


def _context(session: Any, finished: frozenset[str]) -> dict[str, Any]:
    return {"activeTurnId": session.active_turn_id, "lastError": session.last_error, "updatedAt": session.updated_at,
            "providerName": session.provider_name, "pendingTurn": session.pending_turn, "awaiting": session.awaiting,
            "openRequests": [{"requestId": rid, "kind": kind} for rid, kind in session.open_requests],
            "finishedTurns": sorted(finished)}


def _cases(spec: Spec, walk: Explored) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The cases the explored lifecycle edges present to XState (status, context, event), the
    answer the Python side gives to each (the status after, the effects the table lists for the
    transition taken), and the trigger of each.

    XState's answer depends on the status, the trigger and what the guards of the transitions
    leaving that status on that trigger read (the actions and targets are fixed per transition; a
    guard reads only its declared slots): edges alike in those
    are one case, sent with the full context and event of the first. That every edge of a case
    expects the same answer is checked here."""
    table = record_table(spec)
    effects_of: dict[tuple[str, str, int], list[list[Any]]] = {}
    for (trigger, status), plan in table.items():
        for entry in plan.entries:
            if entry.applied and entry.transition is not None:
                effects_of[(trigger, status, entry.transition)] = [
                    [name, dict(params)] if params else [name] for name, params in entry.effects]
    vocabulary = VOCABULARY
    # Per (status, trigger): the slots its candidates' guards read (most read neither `req` nor `ev`,
    # whose values multiply the cases).
    read: dict[tuple[str, str], list[str]] = {}
    cases, expected, triggers = [], [], []
    answers: dict[str, dict[str, Any]] = {}
    for state, row in zip(walk.states, walk.rows, strict=True):
        for wire, edge in zip(walk.wires, row, strict=True):
            before = edge["before"]
            trigger = _trigger(spec, wire)
            if trigger is None:
                continue  # not a lifecycle event: XState never sees it
            case = {"status": before.status, "context": _context(before, state[1] if state else frozenset()),
                    "event": {"type": trigger, "turnId": wire.get("turnId"), "payload": wire["payload"],
                              "provider": wire["provider"], "createdAt": wire["createdAt"]}}
            if edge["kind"] in ("applied", "forgotten"):
                answer = {"status": edge["after"].status,
                          "actions": effects_of[(trigger, before.status, edge["transition"])]}
            else:
                assert edge["kind"] == "rejected"
                answer = {"status": before.status, "actions": []}
            slots = {"turn": case["context"]["activeTurnId"], "err": before.last_error, "upd": before.updated_at,
                     "prov": before.provider_name, "pend": before.pending_turn, "aw": before.awaiting,
                     "req": before.open_requests, "fin": case["context"]["finishedTurns"], "t": wire.get("turnId"),
                     "ev": wire}
            used = read.get((before.status, trigger))
            if used is None:
                used = read[(before.status, trigger)] = sorted(
                    {slot for t in spec.transitions_for(trigger) if before.status in t.sources for g in t.guards
                     for slot in vocabulary.guards[g].reads})
            key = json.dumps([before.status, trigger, [slots[name] for name in used]], sort_keys=True)
            if key in answers:
                assert answers[key] == answer, f"edges alike for XState expect different answers: {case}"
                continue
            answers[key] = answer
            cases.append(case)
            expected.append(answer)
            triggers.append(trigger)
    return cases, expected, triggers


def _trigger(spec: Spec, wire: dict[str, Any]) -> str | None:
    event_type = spec.event_type(wire["type"])
    if event_type is None:
        return None
    if event_type.variant_by is None:
        return event_type.type
    field = event_type.field(event_type.variant_by)
    assert field is not None
    return f"{event_type.type}[{wire['payload'].get(field.name, field.default)}]"


def _answers(node: Driver, module: str, cases: list[dict[str, Any]]) -> list[Any]:
    got: list[Any] = []
    for start in range(0, len(cases), 4000):
        got += json.loads(node.ask({"module": module, "cases": cases[start:start + 4000]}))
    return got


Cases = tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]


def test_every_explored_lifecycle_edge_reaches_the_same_status(node: Driver, edges: Cases) -> None:
    spec = builtin_spec()
    cases, expected, triggers = edges
    assert len(cases) > 1_000
    assert set(triggers) == set(spec.triggers)
    got = _answers(node, "lifecycle_xstate", cases)
    wrong = [(c, g, e) for c, g, e in zip(cases, got, expected, strict=True) if g != e]
    assert not wrong, f"{len(wrong)} of {len(cases)} differ, e.g. {wrong[:3]}"
    # Both outcomes are there: transitions taken and events no transition accepts.
    assert any(e["actions"] for e in expected) and any(not e["actions"] for e in expected)


def test_a_mutant_config_is_caught(node: Driver, edges: Cases) -> None:
    # The mutant's session.exited goes to ready instead of stopped: XState, running it, parts from
    # the built-in Python projector on exactly those edges.
    cases, expected, triggers = edges
    got = _answers(node, "mutant_xstate", cases)
    differing = {t for t, g, e in zip(triggers, got, expected, strict=True) if g != e}
    assert differing == {"session.exited"}


def test_a_guard_without_a_rendering_or_reading_a_parsed_time_is_refused() -> None:
    bare = Guard("has_active_turn", "turn is not None", ("turn",), "The session holds an active turn.",
                 negates="no_active_turn")
    spec = load_spec(ROOT / "specs" / "session_lifecycle.yaml", vocabulary=VOCABULARY.extended(guards=(bare,)))
    with pytest.raises(XStateExportError, match="has_active_turn"):
        export_setup(spec)
    timed = Guard("has_active_turn", "upd_dt is not None", ("upd_dt",), "Reads the parsed updatedAt.",
                  negates="no_active_turn", ts="upd_dt !== null")
    spec = load_spec(ROOT / "specs" / "session_lifecycle.yaml", vocabulary=VOCABULARY.extended(guards=(timed,)))
    with pytest.raises(XStateExportError, match="parsed time"):
        export_setup(spec)


def test_export_xstate_from_the_command_line(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "statemachine", "export", *args], capture_output=True,
                              text=True, cwd=ROOT, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})

    printed = cli("xstate")
    assert printed.returncode == 0 and json.loads(printed.stdout) == machine_config(builtin_spec())
    out = tmp_path / "machine.ts"
    whole = tmp_path / "mutant.yaml"
    whole.write_text(mutant_spec_text(MUTANT), encoding="utf-8")
    written = cli("xstate-setup", "--spec", str(whole), "-o", str(out))
    assert written.returncode == 0 and out.read_text() == export_setup(load_spec(whole))
    failed = cli("xstate", "-o", str(tmp_path / "no" / "such" / "dir.json"))
    assert failed.returncode == 2 and "cannot write" in failed.stderr and "Traceback" not in failed.stderr
