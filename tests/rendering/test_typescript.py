"""The TypeScript export (`statemachine.rendering.typescript`), run under Node against the Python
projector: the same outcomes and sessions, byte for byte, on the example logs, on random 10k-event
logs, on every edge the explorer visits; each guard's and effect's two renderings agree on the
verification universe; a mutant spec's export is caught. One Node process answers every case."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from ts_support import (
    ROOT,
    Driver,
    Explored,
    canonical,
    explored_builtin,
    lines_of,
    require_node,
    state_wire,
    typecheck,
    workspace,
)

from statemachine.core.event import EventError, parse_timestamp
from statemachine.core.record import event_digest_hex
from statemachine.core.session import Session
from statemachine.rendering.typescript import TypeScriptExportError, export_typescript
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.load import builtin_spec, load_spec
from statemachine.spec.semantics import VOCABULARY, Cursor, Guard
from statemachine.verify.explore import THREAD
from statemachine.verify.mutate import load_mutant, mutant_spec_text

sys.path.insert(0, str(ROOT / "benchmarks"))
from stream import generate_stream

MUTANT = ROOT / "specs" / "mutants" / "n_runtime_error_wrong_field.yaml"
DOC = ROOT / "docs" / "typescript.md"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def doc_example() -> str:
    """The first TypeScript block of docs/typescript.md."""
    match = re.search(r"```ts\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match, "docs/typescript.md has no ```ts block"
    return match.group(1)


def sloppy_spec() -> Any:
    """The built-in spec over a vocabulary whose has_active_turn renders wrongly: `turn` may be null,
    and under --strict its length cannot be read without a check."""
    sloppy = Guard("has_active_turn", "turn is not None", ("turn",), "The session holds an active turn.",
                   negates="no_active_turn", ts="turn.length > 0")
    return load_spec(ROOT / "specs" / "session_lifecycle.yaml", vocabulary=VOCABULARY.extended(guards=(sloppy,)))


# A variant value that would end a comment, a string or a line if written as it is.
HOSTILE = "*/ \"'`${x}\u2028\\"


def hostile_spec(directory: Path) -> Any:
    text = (ROOT / "specs" / "session_lifecycle.yaml").read_text(encoding="utf-8")
    text = text.replace("enum: [completed, failed, interrupted, cancelled]",
                        "enum: [completed, failed, interrupted, cancelled, " + json.dumps(HOSTILE) + "]")
    path = directory / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    return load_spec(path)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_node()
    return workspace(tmp_path_factory.mktemp("ts"), {
        "lifecycle.ts": export_typescript(builtin_spec()),
        "hostile.ts": export_typescript(hostile_spec(tmp_path_factory.mktemp("spec"))),
        "mutant.ts": export_typescript(load_mutant(MUTANT)[0]),
        "doc_example.ts": doc_example(),
        "sloppy.ts": export_typescript(sloppy_spec()),
    }, ("reducer.ts",))


@pytest.fixture(scope="module")
def checked(work: Path) -> dict[str, list[str]]:
    """One `tsc --strict --noEmit` over the workspace: its errors by file."""
    result = typecheck(work)
    errors: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        match = re.match(r"([^(]+)\(\d+,\d+\): error", line)
        if match:
            errors.setdefault(match.group(1), []).append(line)
    assert (result.returncode == 0) == (not errors), result.stdout + result.stderr
    return errors


@pytest.fixture(scope="module")
def node(work: Path) -> Iterator[Driver]:
    driver = Driver(work, "reducer.ts")
    yield driver
    driver.close()


# -- the type check ---------------------------------------------------------------------------------


def test_the_module_the_drivers_and_the_docs_example_type_check(checked: dict[str, list[str]]) -> None:
    # The built-in spec's module, a mutant's, the drivers and the example of docs/typescript.md;
    # only the module rendered wrongly on purpose has errors.
    assert set(checked) == {"sloppy.ts"}


def test_the_type_check_fails_on_a_rendering_that_is_wrong(checked: dict[str, list[str]]) -> None:
    assert checked["sloppy.ts"] and all("possibly 'null'" in e for e in checked["sloppy.ts"])


def test_a_declaration_without_a_typescript_rendering_is_refused() -> None:
    bare = Guard("has_active_turn", "turn is not None", ("turn",), "The session holds an active turn.",
                 negates="no_active_turn")
    spec = load_spec(ROOT / "specs" / "session_lifecycle.yaml", vocabulary=VOCABULARY.extended(guards=(bare,)))
    with pytest.raises(TypeScriptExportError, match="guard has_active_turn"):
        export_typescript(spec)


def test_spec_strings_become_json_literals_only(work: Path, checked: dict[str, list[str]]) -> None:
    source = (work / "hostile.ts").read_text(encoding="utf-8")
    assert "\u2028" not in source and HOSTILE not in source
    assert json.dumps("turn.completed[" + HOSTILE + "]") in source
    assert source.isascii()
    assert "hostile.ts" not in checked  # and it type-checks


# -- behaviour: the same outcomes and sessions as Python ---------------------------------------------


def python_log(lines: list[str], options: dict[str, Any]) -> dict[str, Any]:
    """What the driver answers for a log, computed by the Python projector."""
    skew = options.get("maxClockSkewMs")
    clock_ms = options.get("clockMs")
    projector = SessionProjector(
        max_event_ids=options.get("maxEventIds", 1024), max_finished_turns=options.get("maxFinishedTurns", 256),
        max_clock_skew=None if skew is None else timedelta(milliseconds=skew),
        clock=None if clock_ms is None else (lambda: EPOCH + timedelta(milliseconds=clock_ms)),
    )
    results: list[Any] = []
    ids: dict[str, str] = {}
    for line in lines:
        try:
            outcome = projector.apply(line)
        except EventError as exc:
            results.append({"error": exc.field})
            continue
        ids[event_digest_hex(outcome.event.event_id)] = outcome.event.event_id
        results.append(outcome.to_wire())
    threads = {tid: {"session": session.to_wire(), "finished": list(projector.finished_turns(tid)),
                     "seen": [ids[d] for d in projector.seen_event_digests(tid)]}
               for tid, session in projector.sessions().items()}
    return {"results": results, "threads": threads}


def assert_same(node_line: str, expected: Any, what: str) -> None:
    wanted = canonical(expected)
    if node_line == wanted:
        return
    got = json.loads(node_line)
    if isinstance(expected, dict) and "results" in expected:
        for i, (a, b) in enumerate(zip(got["results"], expected["results"], strict=True)):
            assert a == b, f"{what}: line {i + 1} differs:\n node:   {a}\n python: {b}"
    assert got == expected, f"{what}: differs"
    raise AssertionError(f"{what}: same values, different bytes:\n{node_line[:500]}\n{wanted[:500]}")


def log_case(node: Driver, lines: list[str], options: dict[str, Any], what: str) -> set[str]:
    """Compare, and say what the log exercised: outcome kinds, rejection reasons, `error`."""
    answer = node.ask({"kind": "log", "options": options, "lines": lines})
    expected = python_log(lines, options)
    assert_same(answer, expected, what)
    return {r.get("reason") or r.get("kind") or "error" for r in expected["results"]}


def test_every_example_log_gives_the_same_outcomes_and_sessions(node: Driver) -> None:
    logs = sorted((ROOT / "examples").glob("*.jsonl"))
    assert len(logs) >= 5
    for path in logs:
        lines = list(lines_of(path))
        log_case(node, lines, {}, path.name)
        # Small memories: eviction in the same order; a clock that makes later events too new.
        log_case(node, lines, {"maxEventIds": 2, "maxFinishedTurns": 1, "maxClockSkewMs": 3_600_000,
                               "clockMs": _ms("2026-11-20T09:30:00Z")}, f"{path.name} (small memories, clock)")


def _ms(text: str) -> int:
    return int((datetime.fromisoformat(text) - EPOCH) / timedelta(milliseconds=1))


# Spellings of createdAt the Python parser reads in its own ways (offsets, separators, fractions).
def _retimed(rng: random.Random, created_at: str) -> str:
    dt = datetime.fromisoformat(created_at)
    r = rng.random()
    if r < 0.3:
        offset = timedelta(minutes=rng.choice([-720, -330, -1, 1, 90, 345, 840]))
        return dt.astimezone(timezone(offset)).isoformat()
    if r < 0.4:
        return created_at.replace("T", rng.choice([" ", "t", "\u00e9", "_"]))
    if r < 0.5:
        return created_at.replace("Z", "").replace(".", ",")  # no zone: UTC; a comma before the fraction
    if r < 0.6:
        return created_at.replace("Z", "1234Z")  # seven fraction digits: the seventh is dropped
    if r < 0.7:
        return dt.strftime("%Y%m%dT%H%M%S") + "Z"
    return created_at


COMMANDS = ("thread.turn.start", "thread.session.stop", "thread.session.start", "request.opened",
            "user-input.requested", "request.resolved", "thread.delete")


def random_log(seed: int, events: int = 10_000) -> list[str]:
    """The benchmark's stream (duplicates, late and out-of-order events, rejections), with commands,
    provider requests, createdAt spellings, malformed lines and redeliveries mixed in."""
    rng = random.Random(seed)
    out: list[str] = []
    turns: dict[str, list[str]] = {}
    for i, wire in enumerate(generate_stream(events, 24, seed)):
        if len(out) >= events:
            break
        thread = wire["threadId"]
        if wire.get("turnId"):
            turns.setdefault(thread, []).append(wire["turnId"])
        r = rng.random()
        if r < 0.08:
            known = turns.get(thread, [])
            command = {"eventId": f"cmd-{seed}-{i}", "type": rng.choice(COMMANDS), "provider": wire["provider"],
                       "threadId": thread, "createdAt": wire["createdAt"], "payload": {}}
            pick = rng.random()
            if pick < 0.5 and known:
                command["turnId"] = rng.choice(known[-3:])
            elif pick < 0.7:
                command["turnId"] = f"new-{i}"
            if command["type"] == "thread.session.stop":
                command["payload"] = rng.choice([{}, {"onlyIfSettled": True}, {"onlyIfSettled": False},
                                                 {"onlyIfSettled": None}])
            if command["type"] in ("request.opened", "user-input.requested", "request.resolved") and rng.random() < 0.8:
                command["payload"] = {"requestId": rng.choice([1, "1", 2, "2", 0, f"r{i % 7}"])}
            if command["type"] == "thread.delete" and rng.random() < 0.7:
                command["type"] = "thread.session.start"
            out.append(json.dumps(command))
        wire = dict(wire)
        wire["createdAt"] = _retimed(rng, wire["createdAt"])
        r = rng.random()
        if r < 0.01:
            wire.pop(rng.choice(["eventId", "type", "provider", "threadId", "createdAt"]))
        elif r < 0.015:
            wire["turnId"] = rng.choice(["", 7, ["t"], "x" * 257, "\U0001f600" * 200])
        elif r < 0.02:
            wire["payload"] = rng.choice([[], "text", {"state": "sideways"}, {"state": 3}, {"message": None}])
        elif r < 0.022:
            wire["eventId"] = "~lifecycle:forged"
        elif r < 0.025:
            wire["createdAt"] = rng.choice(["2026-13-01T00:00:00Z", "yesterday", "2026-11-20T25:00Z", ""])
        line = json.dumps(wire, ensure_ascii=rng.random() < 0.5)
        out.append(line)
        if rng.random() < 0.03:
            out.append(rng.choice(out[-50:]))  # a redelivery, verbatim
        if rng.random() < 0.003:
            # Not JSON, not an object, a field of the wrong type, nested one level too deep.
            out.append(rng.choice(["not json", "[]", "null", '{"eventId": 1}', "[" * 200 + "]" * 200,
                                   "[" * 201 + "]" * 201, '{"payload": ' + "[" * 200 + "]" * 200 + "}"]))
    return out[:events]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_10k_logs_give_the_same_outcomes_and_sessions(node: Driver, seed: int) -> None:
    lines = random_log(seed)
    assert len(lines) == 10_000
    seen = log_case(node, lines, {}, f"random log {seed}")
    assert {"applied", "ignored", "duplicate", "forgotten", "error", "turn_finished", "other_turn_active",
            "invalid_in_stopped"} <= seen
    # The stream spans one day from 2026-11-20T00:00Z: a clock at noon with an hour's skew refuses
    # about the last half as created in the future; small memories evict all the time.
    seen = log_case(node, lines, {"maxEventIds": 3, "maxFinishedTurns": 2, "maxClockSkewMs": 3_600_000,
                                  "clockMs": _ms("2026-11-20T12:00:00Z")}, f"random log {seed} (small memories, clock)")
    assert "created_in_future" in seen


def _request_log() -> list[str]:
    """Requests by id on one thread: ids of every accepted shape and of every refused one, a
    request asked again, more than fit, resolutions by id and without one, a request after its
    turn ended (the session runs until it is answered)."""
    n = 0

    def line(type_: str, payload: dict[str, Any], turn: str | None = None, raw: str | None = None) -> str:
        nonlocal n
        n += 1
        event = {"eventId": f"r{n}", "type": type_, "provider": "codex", "threadId": "req",
                 "createdAt": f"2026-11-20T10:{n // 60:02d}:{n % 60:02d}Z", "payload": payload}
        if turn is not None:
            event["turnId"] = turn
        text = json.dumps(event)
        # A JSON spelling Python's json.dumps never writes (-0), spliced in as the raw id.
        return text if raw is None else text.replace('"requestId": "RAW"', f'"requestId": {raw}')

    big = 2**53 - 1
    lines = [line("session.started", {}), line("turn.started", {}, "t1")]
    for rid in [1, "1", big, -big, "\U0001f600" * 256, None, 1, "x" * 256]:
        lines.append(line("request.opened", {} if rid is None else {"requestId": rid}, "t1"))
    lines.append(line("request.opened", {"requestId": "RAW"}, "t1", raw="-0"))
    for rid in [True, False, 1.5, big + 1, -big - 1, 2**64, "", "x" * 257, "\U0001f600" * 257, [1], {"a": 1},
                "a\x00", "\ud800", "a\udc00b", "\udc00\ud800"]:
        lines.append(line("user-input.requested", {"requestId": rid}, "t1"))
    lines += [line("user-input.requested", {"requestId": f"u{i}"}, "t1") for i in range(30)]
    lines += [line("request.resolved", {"requestId": rid}, "t1") for rid in ["1", 1, 0, "u29", "nope", big]]
    # Text no store can keep is refused wherever the envelope checks read it, the id a pair spells is not.
    lines += [line("request.opened", {"requestId": "ok", "detail": "\ud83d"}, "t1"),
              line("request.opened", {"requestId": "\ud83d\ude00"}, "t1"), line("turn.started", {}, "t\x00"),
              line("turn.started\x00", {}, "t1"), line("runtime.error", {"message": "\udfff"}, "t1")]
    lines += [line("request.resolved", {}, "t1"), line("turn.completed", {}, "t1")]
    # After the turn: the ready session runs again until its last request is answered.
    lines += [line("request.opened", {"requestId": 7}), line("user-input.requested", {"requestId": "7"}),
              line("request.resolved", {"requestId": 7}), line("request.resolved", {"requestId": "7"}),
              line("user-input.requested", {"requestId": 8}), line("request.resolved", {})]
    return lines


def test_request_ids_are_checked_and_tracked_as_python_does(node: Driver) -> None:
    seen = log_case(node, _request_log(), {}, "requests by id")
    assert {"applied", "error", "too_many_open_requests"} <= seen


@pytest.fixture(scope="module")
def walk() -> Explored:
    return explored_builtin()


def edge_rows(node: Driver, walk: Any, module: str, states: range) -> Iterator[tuple[list[int], str]]:
    """(state indexes, the node's answer line for their rows), in chunks of states. Node answers
    the next chunk while the caller checks this one (the walk has some 266k edges; the two sides
    one after the other took most of the test's time)."""
    chosen = list(states)
    chunks = [chosen[start:start + 64] for start in range(0, len(chosen), 64)]

    def ask(chunk: list[int]) -> str:
        return node.ask({"kind": "edges", "module": module, "states": [state_wire(walk.states[i]) for i in chunk],
                         "events": walk.wires})

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(ask, chunks[0]) if chunks else None
        for k, chunk in enumerate(chunks):
            assert pending is not None
            line = pending.result()
            pending = pool.submit(ask, chunks[k + 1]) if k + 1 < len(chunks) else None
            yield chunk, line


def python_row(walk: Any, index: int) -> list[dict[str, Any]]:
    return [{"outcome": e["outcome"], "finished": e["finished"]} for e in walk.rows[index]]


def test_every_explored_edge_gives_the_same_outcome_and_memory(node: Driver, walk: Any) -> None:
    assert len(walk.states) > 700
    edges = 0
    for chunk, line in edge_rows(node, walk, "lifecycle", range(len(walk.states))):
        expected = [python_row(walk, i) for i in chunk]
        edges += sum(len(row) for row in expected)
        if line == canonical(expected):
            continue
        for i, got, want in zip(chunk, json.loads(line), expected, strict=True):
            for k, (a, b) in enumerate(zip(got, want, strict=True)):
                assert a == b, (f"state {state_wire(walk.states[i])}, event {walk.wires[k]}:\n"
                                f" node:   {a}\n python: {b}")
        raise AssertionError("same values, different bytes")
    assert edges > 90_000


def test_a_session_stored_without_open_requests_steps_as_one_with_none_open(node: Driver, walk: Any) -> None:
    # A session stored before sessions carried openRequests: seed() gives it an empty list.
    chosen = [i for i, state in enumerate(walk.states) if state is not None and not state[0].open_requests][:64]
    states = [state_wire(walk.states[i]) for i in chosen]
    for state in states:
        assert state is not None
        del state["session"]["openRequests"]
    line = node.ask({"kind": "edges", "module": "lifecycle", "states": states, "events": walk.wires})
    assert line == canonical([python_row(walk, i) for i in chosen])


def test_a_mutant_export_fails_the_differential(node: Driver, walk: Any) -> None:
    # The mutant reads runtime.error's `class` where the built-in spec reads `message`: its
    # TypeScript disagrees with the built-in Python engine, exactly on runtime.error edges.
    differing = set()
    for chunk, line in edge_rows(node, walk, "mutant", range(0, len(walk.states), 4)):
        for i, got in zip(chunk, json.loads(line), strict=True):
            for k, (a, b) in enumerate(zip(got, python_row(walk, i), strict=True)):
                if a != b:
                    differing.add(walk.wires[k]["type"])
    assert differing == {"runtime.error"}


# -- timestamps --------------------------------------------------------------------------------------


def python_instant(text: str) -> str | None:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return str((dt - EPOCH) // timedelta(microseconds=1))


def timestamp_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    dates = ["{y}-{m}-{d}", "{y}{m}{d}", "{y}-W{w}", "{y}W{w}", "{y}-W{w}-{u}", "{y}W{w}{u}"]
    times = ["", "{H}", "{H}:{M}", "{H}{M}", "{H}:{M}:{S}", "{H}{M}{S}", "{H}:{M}:{S}.{f}", "{H}:{M}:{S},{f}",
             "{H}{M}{S}.{f}", "{H}.{f}", "{H}:{M}.{f}", "{H}:{M}:{S}:{f}", "{H}:"]
    zones = ["", "Z", "z", "+{h}", "-{h}{mm}", "+{h}:{mm}", "-{h}:{mm}:{ss}", "+{h}:{mm}:{ss}.{f}", "+{h}{mm}{ss}",
             "Z{h}", "+", "+{h}:", "-00:00", "+00:00:00.{f}"]
    separators = ["T", " ", "t", "\u00e9", "\ud800", "\u20ac", "\U0001f600", "1", "-", "W", ":", "\x00"]
    alphabet = "0123456789-:TW .,Z+z\u00e9\x00"

    def two(top: int) -> str:
        return f"{rng.randint(0, top):02d}"

    texts = []
    for _ in range(count):
        year = rng.choice(["2026", "0000", "0001", "9999", "2020", "2015", "1970", f"{rng.randint(0, 9999):04d}"])
        fields = {"y": year,
                  "m": two(13), "d": two(32), "w": two(54), "u": str(rng.randint(0, 9)), "H": two(25),
                  "M": two(60), "S": two(60), "h": two(25), "mm": two(99), "ss": two(60),
                  "f": "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))}
        time_part = rng.choice(times)
        text = rng.choice(dates).format(**fields)
        if time_part:
            text += rng.choice(separators) + time_part.format(**fields) + rng.choice(zones).format(**fields)
        if rng.random() < 0.3:  # a random edit: insert, delete or replace a character
            chars = list(text)
            at = rng.randrange(len(chars) + 1)
            op = rng.random()
            if op < 0.33:
                chars.insert(at, rng.choice(alphabet))
            elif op < 0.66 and at < len(chars):
                del chars[at]
            elif at < len(chars):
                chars[at] = rng.choice(alphabet)
            text = "".join(chars)
        texts.append(text)
    return texts


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the port reads timestamps as CPython 3.11 does")
def test_timestamps_read_as_python_reads_them(node: Driver) -> None:
    texts = timestamp_texts(7, 30_000)
    texts += ["2026-01-01T12.5", "2026-01-01T12:00:00:123", "2026-01-01T12:+05:00", "2026-01-01T00:00:00Z\x00x",
              "2026-01-01T00:00:00+00:00:00.5", "2026-01-01T00:00:00+05:00:00.5", "2026-W53-1", "9999-W52-6",
              "2026-01-01T00:00:00+23:59:59.999999", "2026-01-01T00:00:00+24:00", "0001-01-01T00:00:00+01:00",
              "9999-12-31T23:59:59.999999-23:59"]
    expected = [python_instant(t) for t in texts]
    accepted = sum(e is not None for e in expected)
    assert 0.2 * len(texts) < accepted < 0.8 * len(texts)  # both kinds, plenty of each
    got = json.loads(node.ask({"kind": "timestamps", "texts": texts}))
    wrong = [(t, g, e) for t, g, e in zip(texts, got, expected, strict=True) if g != e]
    assert not wrong, f"{len(wrong)} differ, e.g. {wrong[:5]}"


# -- each rendering alone -------------------------------------------------------------------------------


def _slots_in(session: Session, finished: frozenset[str], wire: dict[str, Any]) -> dict[str, Any]:
    return {"turn": session.active_turn_id, "err": session.last_error, "upd": session.updated_at,
            "prov": session.provider_name, "pend": session.pending_turn, "aw": session.awaiting,
            "req": [list(r) for r in session.open_requests], "finished": sorted(finished), "event": wire}


def _effect_out(cursor: Cursor) -> dict[str, Any]:
    upd_dt = cursor.updated_dt
    return {"turn": cursor.active_turn, "err": cursor.last_error, "upd": cursor.updated_at,
            "upd_dt": None if upd_dt is None else str((upd_dt - EPOCH) // timedelta(microseconds=1)),
            "prov": cursor.provider, "pend": cursor.pending_turn, "aw": cursor.awaiting,
            "req": [list(r) for r in cursor.open_requests], "remembered": list(cursor.newly_finished)}


# The slots an event gives; every other slot comes from the state.
EVENT_SLOTS = frozenset({"t", "ev"})


def _firsts(values: list[dict[str, Any]], slots: list[str]) -> list[int]:
    """The index of the first of `values` for each distinct projection on `slots`."""
    picked: dict[tuple[Any, ...], int] = {}
    for i, value in enumerate(values):
        picked.setdefault(tuple(value[s] for s in slots), i)
    return list(picked.values())


def test_each_guard_and_effect_renders_the_same_on_the_universe(node: Driver, walk: Any) -> None:
    """Every (state, event) of the walk, projected on the slots each declaration reads and writes:
    its Python code (the declaration's `fn`) and its TypeScript rendering give the same value, the
    same slots after it and the same remembered turns."""
    spec = builtin_spec()
    projector = SessionProjector(spec, max_clock_skew=None)
    pairs = [(w, e) for w, e in zip(walk.wires, (projector.parse(w) for w in walk.wires), strict=True)
             if e.trigger is not None]
    refs = [*(e for t in spec.transitions for e in t.effects), *(e for s in spec.statuses for e in s.on_enter),
            *spec.on_applied]
    uses = sorted({(e.name, tuple(sorted(e.param_map.items()))) for e in refs})
    guards = sorted({g for t in spec.transitions for g in t.guards})
    cases: list[dict[str, Any]] = []
    expected: list[Any] = []
    states = [s for s in walk.states if s is not None] + [(Session(THREAD, spec.initial), frozenset())]
    state_values = [{"turn": session.active_turn_id, "err": session.last_error, "upd": session.updated_at,
                     "upd_dt": session.updated_at, "prov": session.provider_name, "fin": tuple(sorted(finished)),
                     "pend": session.pending_turn, "aw": session.awaiting, "req": session.open_requests}
                    for session, finished in states]
    event_values = [{"t": event.turn_id, "ev": canonical(wire)} for wire, event in pairs]
    declarations: list[tuple[str, tuple[tuple[str, Any], ...] | None, tuple[str, ...]]] = [
        *((name, None, VOCABULARY.guards[name].reads) for name in guards),
        *((name, params, (*VOCABULARY.effects[name].reads, *VOCABULARY.effects[name].writes))
          for name, params in uses)]
    # Every state meets every event: a declaration's distinct inputs are the distinct values of the
    # state's slots it uses times those of the event's (each from the first state or event with them),
    # not the 266k (state, event) pairs one by one.
    for name, params, used in declarations:
        chosen_events = _firsts(event_values, [s for s in used if s in EVENT_SLOTS])
        for i in _firsts(state_values, [s for s in used if s not in EVENT_SLOTS]):
            session, finished = states[i]
            updated_dt = None if session.updated_at is None else parse_timestamp(session.updated_at)
            for j in chosen_events:
                wire, event = pairs[j]
                cursor = Cursor(session, updated_dt, finished, event)
                if params is None:
                    cases.append({"guard": name, "input": _slots_in(session, finished, wire)})
                    expected.append(VOCABULARY.guards[name].fn(cursor))
                else:
                    VOCABULARY.effects[name].fn(cursor, dict(params))
                    cases.append({"effect": name, "params": dict(params), "input": _slots_in(session, finished, wire)})
                    expected.append(_effect_out(cursor))
    assert {c.get("guard") for c in cases} >= set(guards)
    assert {c.get("effect") for c in cases} >= {n for n, _ in uses}
    got: list[Any] = []
    for start in range(0, len(cases), 5000):
        got += json.loads(node.ask({"kind": "renderings", "cases": cases[start:start + 5000]}))
    wrong = [(c, g, e) for c, g, e in zip(cases, got, expected, strict=True) if canonical(g) != canonical(e)]
    assert not wrong, f"{len(wrong)} of {len(cases)} differ, e.g. {wrong[:3]}"


# -- the command line and the docs ---------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "statemachine", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_export_typescript_writes_the_module(tmp_path: Path) -> None:
    out = tmp_path / "lifecycle.ts"
    result = _cli("export", "typescript", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == export_typescript(builtin_spec())
    whole = tmp_path / "mutant.yaml"
    whole.write_text(mutant_spec_text(MUTANT), encoding="utf-8")
    printed = _cli("export", "typescript", "--spec", str(whole))
    assert printed.returncode == 0 and printed.stdout == export_typescript(load_spec(whole))
    unwritable = _cli("export", "typescript", "-o", str(tmp_path / "missing" / "x.ts"))
    assert unwritable.returncode == 2 and "cannot write" in unwritable.stderr and "Traceback" not in unwritable.stderr


def test_the_docs_name_the_regenerate_command_and_the_guarantee() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "python -m statemachine export typescript -o lifecycle.ts" in text
    assert 'from "./lifecycle.js"' in doc_example()
