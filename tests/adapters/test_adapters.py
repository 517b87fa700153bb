"""The adapters: identity, mapping choices, end of stream, and that no raw line ever makes them raise."""

from __future__ import annotations

import copy
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hostile
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachine import EventError, SessionProjector, builtin_spec
from statemachine.adapters import FORMATS, Adapter, LineClock, make_adapter
from statemachine.adapters.base import BoundedMap, BoundedSet

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "specs" / "event.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
PARSER = SessionProjector().parser


def _adapter(fmt: str, **options: Any) -> Adapter:
    """A replay adapter: the line clock, so the same lines give the same events."""
    options.setdefault("clock", LineClock())
    return make_adapter(fmt, **options)


def _lines(*messages: dict[str, Any]) -> list[str]:
    return [json.dumps(m) for m in messages]


def _feed_all(adapter: Adapter, lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        out.extend(adapter.feed(line))
    return out + adapter.finish()


def _check_envelopes(events: list[dict[str, Any]]) -> None:
    for event in events:
        VALIDATOR.validate(event)
        PARSER.parse(event)


def _state(adapter: Adapter) -> Any:
    """Everything the adapter remembers about the stream (not its counters and error reports)."""
    kept = {}
    for name, value in vars(adapter).items():
        if name in ("stats", "errors", "last_error", "clock", "_touched", "_journal"):
            continue
        if isinstance(value, BoundedSet):
            kept[name] = list(value)
        elif isinstance(value, BoundedMap):
            kept[name] = value.items()
        elif isinstance(value, dict) and any(isinstance(v, BoundedMap) for v in value.values()):
            kept[name] = {k: v.items() for k, v in value.items()}
        else:
            kept[name] = copy.deepcopy(value)
    return kept


# -- identity ------------------------------------------------------------------------------------

EXEC_TWO_TURNS = _lines(
    {"type": "thread.started", "thread_id": "th-1"},
    {"type": "turn.started"}, {"type": "turn.completed", "usage": {}},
    {"type": "turn.started"}, {"type": "turn.completed", "usage": {}},
)


def test_identical_codex_exec_turn_lines_are_two_turns_not_a_redelivery() -> None:
    events = _feed_all(_adapter("codex-exec"), EXEC_TWO_TURNS)
    starts = [e for e in events if e["type"] == "turn.started"]
    assert [e["turnId"] for e in starts] == ["th-1:turn:1", "th-1:turn:2"]
    assert len({e["eventId"] for e in events}) == len(events)
    projector = SessionProjector()
    assert [o.kind.value for o in projector.apply_all(events)].count("applied") == 6
    assert projector["th-1"].status == "ready"


def test_adapting_twice_gives_identical_events_and_a_stream_name_keeps_streams_apart() -> None:
    first = _feed_all(_adapter("codex-exec"), EXEC_TWO_TURNS)
    assert _feed_all(_adapter("codex-exec"), EXEC_TWO_TURNS) == first
    resumed = _feed_all(_adapter("codex-exec", stream="run2"), EXEC_TWO_TURNS)
    assert resumed[2]["turnId"] == "th-1:run2:turn:1"
    projector = SessionProjector()
    projector.apply_all(first)
    kinds = [o.kind.value for o in projector.apply_all(resumed)]
    assert "duplicate" not in kinds and "rejected" not in kinds
    # Without a stream name the second run's events are taken for the first's.
    projector = SessionProjector()
    projector.apply_all(first)
    assert {o.kind.value for o in projector.apply_all(first)} == {"duplicate"}
    with pytest.raises(ValueError, match="stream name"):
        _adapter("codex-exec", stream="a:b")


CLAUDE_PROMPT = {"type": "user", "message": {"role": "user", "content": "hi"}, "session_id": "s-1", "uuid": "u-1"}
CLAUDE_INIT = {"type": "system", "subtype": "init", "session_id": "s-1", "uuid": "u-0"}


def _result(uuid: str, **fields: Any) -> dict[str, Any]:
    return {"type": "result", "subtype": "success", "is_error": False, "num_turns": 1, "session_id": "s-1",
            "uuid": uuid, **fields}


def test_a_redelivered_claude_message_gives_the_same_events_and_moves_nothing() -> None:
    adapter = _adapter("claude-stream-json")
    adapter.feed(json.dumps(CLAUDE_INIT))
    first = adapter.feed(json.dumps(CLAUDE_PROMPT))
    before = _state(adapter)
    again = adapter.feed(json.dumps(CLAUDE_PROMPT))
    assert again == first and first[0]["eventId"] == "claude:u-1:0"
    assert adapter.stats.redelivered == 1 and _state(adapter) == before
    done = adapter.feed(json.dumps(_result("u-2")))
    assert [(e["type"], e["turnId"]) for e in done] == [("turn.completed", "s-1:turn:1")]
    projector = SessionProjector()
    outcomes = projector.apply_all(first + again + done)
    assert [o.kind.value for o in outcomes] == ["applied", "duplicate", "applied"]


def test_codex_app_server_names_turn_events_by_turn_and_takes_its_times() -> None:
    started = {"method": "turn/started", "params": {"threadId": "t", "turn": {"id": "T1", "startedAt": 1795680003}}}
    events = _feed_all(_adapter("codex-app-server", on_eof="leave"), _lines(started, started))
    assert events[0] == events[1]
    assert events[0]["eventId"] == "codex:t:turn/started:T1:0"
    assert events[0]["createdAt"] == datetime.fromtimestamp(1795680003, UTC).isoformat().replace("+00:00", "Z")


def test_a_caller_clock_stamps_events_without_a_protocol_time() -> None:
    times = iter([datetime(2026, 11, 20, 10, 0, s, tzinfo=UTC) for s in range(10)])
    adapter = _adapter("codex-exec", clock=lambda: next(times))
    events = _feed_all(adapter, EXEC_TWO_TURNS[:2])
    assert [e["createdAt"] for e in events] == ["2026-11-20T10:00:00Z"] * 2 + ["2026-11-20T10:00:01Z",
                                                                                "2026-11-20T10:00:02Z"]


def test_a_live_adapter_stamps_the_wall_clock_and_replay_asks_for_the_line_clock() -> None:
    # The default is the time events arrive: a live caller who forgets `clock=` gets true times,
    # not January 1970 (which would make every session look idle for decades to the reaper).
    before = datetime.now(UTC)
    live = make_adapter("codex-exec").feed(EXEC_TWO_TURNS[0])
    after = datetime.now(UTC)
    stamps = {datetime.fromisoformat(e["createdAt"].replace("Z", "+00:00")) for e in live}
    assert all(before <= t <= after for t in stamps) and stamps
    # Replay asks for the line clock, and then the same lines give the same events.
    replayed = [_feed_all(make_adapter("codex-exec", clock=LineClock()), EXEC_TWO_TURNS) for _ in range(2)]
    assert replayed[0] == replayed[1] and replayed[0][0]["createdAt"] == "1970-01-01T00:00:00Z"
    with pytest.raises(TypeError, match="clock"):
        make_adapter("codex-exec", clock="now")


def test_the_commands_that_read_saved_logs_pass_the_line_clock(tmp_path: Path) -> None:
    import subprocess

    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join(EXEC_TWO_TURNS) + "\n")
    runs = [subprocess.run([sys.executable, "-m", "statemachine", "adapt", "--from", "codex-exec", str(raw)],
                           capture_output=True, text=True, cwd=ROOT, timeout=120) for _ in range(2)]
    assert runs[0].returncode == 0 and runs[0].stdout == runs[1].stdout
    assert json.loads(runs[0].stdout.splitlines()[0])["createdAt"] == "1970-01-01T00:00:00Z"


# -- mapping choices -----------------------------------------------------------------------------


def test_claude_api_error_reported_as_success_is_a_failed_turn() -> None:
    error = _result("u-2", is_error=True, result="API Error: 500 internal", api_error_status=500)
    events = _feed_all(_adapter("claude-stream-json"), _lines(CLAUDE_INIT, CLAUDE_PROMPT, error))
    assert events[-1]["payload"]["state"] == "failed"
    assert events[-1]["payload"]["errorMessage"] == "API Error: 500 internal"


def test_claude_idle_after_a_result_does_not_erase_the_error() -> None:
    failed = _result("u-2", subtype="error_max_turns", is_error=True, errors=["Reached maximum number of turns"])
    idle = {"type": "system", "subtype": "session_state_changed", "state": "idle", "session_id": "s-1", "uuid": "u-3"}
    projector = SessionProjector()
    projector.apply_all(_feed_all(_adapter("claude-stream-json"), _lines(CLAUDE_INIT, CLAUDE_PROMPT, failed, idle)))
    assert (projector["s-1"].status, projector["s-1"].last_error) == ("error", "Reached maximum number of turns")


ACP_OPEN = [
    {"jsonrpc": "2.0", "id": 1, "method": "session/new", "params": {"cwd": "/", "mcpServers": []}},
    {"jsonrpc": "2.0", "id": 1, "result": {"sessionId": "S"}},
    {"jsonrpc": "2.0", "id": 2, "method": "session/prompt", "params": {"sessionId": "S", "prompt": []}},
]


@pytest.mark.parametrize(("reason", "status"), [("end_turn", "ready"), ("refusal", "error"),
                                                ("cancelled", "interrupted"), ("_vendor_reason", "ready")])
def test_acp_stop_reasons(reason: str, status: str) -> None:
    adapter = _adapter("acp")
    answer = {"jsonrpc": "2.0", "id": 2, "result": {"stopReason": reason}}
    projector = SessionProjector()
    projector.apply_all(_feed_all(adapter, _lines(*ACP_OPEN, answer)))
    assert projector["S"].status == status
    assert adapter.stats.unknown == (1 if reason.startswith("_") else 0)


def test_acp_permission_request_opens_a_request_and_waits() -> None:
    ask = {"jsonrpc": "2.0", "id": 0, "method": "session/request_permission",
           "params": {"sessionId": "S", "toolCall": {"toolCallId": "c1"}, "options": []}}
    answer = {"jsonrpc": "2.0", "id": 0, "result": {"outcome": {"outcome": "selected", "optionId": "allow"}}}
    events = _feed_all(_adapter("acp", on_eof="leave"), _lines(*ACP_OPEN, ask, answer))
    assert [e["type"] for e in events[3:]] == ["request.opened", "session.state.changed", "request.resolved"]
    assert events[4]["payload"]["state"] == "waiting"
    # The id as the protocol gave it (an integer stays one).
    assert events[5]["payload"] == {"requestId": 0, "requestType": "session/request_permission", "outcome": "selected"}


# -- end of stream -------------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "state"), [("interrupted", "interrupted"), ("error", "failed"), ("leave", None)])
def test_finish_settles_open_turns_by_the_rule_once(rule: Any, state: str | None) -> None:
    adapter = _adapter("codex-exec", on_eof=rule)
    for line in EXEC_TWO_TURNS[:2]:
        adapter.feed(line)
    settled = adapter.finish()
    assert [e["payload"].get("state") for e in settled] == ([state] if state else [])
    assert all(e["turnId"] == "th-1:turn:1" for e in settled)
    assert adapter.finish() == []
    with pytest.raises(ValueError, match="on_eof"):
        _adapter("acp", on_eof="explode")  # type: ignore[arg-type]


# -- malformed input -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("raw", [b"\xff\xfe\x00", "{", "[]", "null", "1e999999", '{"a":' * 5000 + "1" + "}" * 5000,
                                 '{"type": 5}', '{"method": 7}', '{"type":"result","session_id":"' + "x" * 500 + '"}',
                                 '{"id": null, "result": {"userAgent": "x"}}',
                                 '{"id": null, "error": {"code": -32700}}'])
def test_malformed_lines_are_reported_never_raised(fmt: str, raw: str | bytes) -> None:
    adapter = _adapter(fmt)
    before = _state(adapter)
    events = adapter.feed(raw)
    _check_envelopes(events)
    if adapter.last_error is not None:
        assert events == [] and _state(adapter) == before
        assert adapter.stats.malformed == 1 and adapter.errors == [adapter.last_error]
        assert adapter.last_error.line == 1 and adapter.last_error.field


def test_a_line_that_fails_half_way_leaves_the_adapter_as_it_was() -> None:
    adapter = _adapter("acp")
    adapter.feed(json.dumps(ACP_OPEN[0]))
    before = _state(adapter)
    # The pending session/new request is looked up before the bad sessionId is found.
    assert adapter.feed(json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"sessionId": 5}})) == []
    assert adapter.last_error is not None and adapter.last_error.field == "result.sessionId"
    assert _state(adapter) == before
    events = adapter.feed(json.dumps(ACP_OPEN[1]))
    assert [e["type"] for e in events] == ["session.started", "thread.started"]


# A vocabulary of the formats' own field names and values, so random messages reach deep paths.
_WORDS = ["thread.started", "turn.started", "turn.completed", "turn.failed", "error", "item.started", "system",
          "init", "user", "assistant", "result", "success", "session_state_changed", "running", "idle",
          "requires_action", "turn/started", "turn/completed", "thread/started", "thread/status/changed",
          "thread/closed", "serverRequest/resolved", "item/commandExecution/requestApproval", "initialize",
          "session/new", "session/prompt", "session/update", "session/request_permission", "session/close",
          "session/load", "state_update", "end_turn", "refusal", "cancelled", "failed", "completed", "interrupted",
          "systemError", "aborted_streaming", "t", "s", "S", "T1", ""]
_KEYS = ["type", "subtype", "method", "id", "params", "result", "error", "session_id", "sessionId", "threadId",
         "thread_id", "thread", "turn", "turnId", "uuid", "state", "stopReason", "update", "sessionUpdate", "status",
         "is_error", "message", "content", "num_turns", "willRetry", "requestId", "outcome", "startedAt",
         "terminal_reason", "errors", "parent_tool_use_id", "toolCall", "usage"]
_SCALARS = st.one_of(st.sampled_from(_WORDS), st.integers(-3, 3), st.booleans(), st.none(), st.floats(allow_nan=True),
                     st.text(max_size=8))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(st.sampled_from(_KEYS), inner, max_size=6)),
                       max_leaves=20)
_MESSAGES = st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=8)
_LINES = st.one_of(_MESSAGES.map(json.dumps), st.binary(max_size=64), st.text(max_size=64),
                   st.from_type(type(None)).map(lambda _: "null"))


# Real shapes, from the fixtures: mutated, reordered and repeated, they reach every mapping.
_FIXTURE_FORMATS = {"codex_app_server": "codex-app-server", "codex_exec": "codex-exec", "claude": "claude-stream-json",
                    "acp": "acp"}
_SHAPES: dict[str, list[Any]] = {fmt: [] for fmt in FORMATS}
for _path in sorted((ROOT / "examples" / "raw").glob("*.jsonl")):
    _fmt = next(f for prefix, f in _FIXTURE_FORMATS.items() if _path.name.startswith(prefix))
    for _line in _path.read_text(encoding="utf-8").splitlines():
        try:
            _SHAPES[_fmt].append(json.loads(_line))
        except ValueError:
            continue


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


@st.composite
def _mutated(draw: st.DrawFn, fmt: str) -> str:
    message = copy.deepcopy(draw(st.sampled_from(_SHAPES[fmt])))
    for _ in range(draw(st.integers(0, 2))):
        path = draw(st.sampled_from(_paths(message)))
        if not path:
            message = draw(_VALUES)
            break
        parent = message
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_VALUES)
        if not isinstance(message, (dict, list)):
            break
    return json.dumps(message)


@st.composite
def _streams(draw: st.DrawFn) -> tuple[str, list[Any]]:
    fmt = draw(st.sampled_from(FORMATS))
    lines = draw(st.lists(st.one_of(_mutated(fmt), _mutated(fmt), _mutated(fmt), _LINES), max_size=25))
    return fmt, lines


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(_streams(), st.sampled_from(["interrupted", "error", "leave"]))
def test_random_lines_never_raise_and_every_event_is_a_valid_envelope(stream: tuple[str, list[Any]], rule: Any) -> None:
    fmt, lines = stream
    adapter = _adapter(fmt, on_eof=rule)
    projector = SessionProjector()
    for line in lines:
        before = _state(adapter)
        events = adapter.feed(line)
        if adapter.last_error is not None:
            assert events == [] and _state(adapter) == before
        _check_envelopes(events)
        projector.apply_all(events)
    final = adapter.finish()
    _check_envelopes(final)
    projector.apply_all(final)
    if rule != "leave":
        # After the end-of-stream rule no turn the adapter opened is still open.
        assert all(t.open_turn is None for t in adapter._threads.values())


# -- the envelope schema -------------------------------------------------------------------------


def test_every_example_event_is_valid_against_the_schema() -> None:
    count = 0
    for log in sorted((ROOT / "examples").glob("*.jsonl")):
        for line in log.read_text(encoding="utf-8").splitlines():
            if line.strip():
                event = json.loads(line)
                PARSER.parse(event)
                VALIDATOR.validate(event)
                count += 1
    assert count > 20


GOOD = {"eventId": "e1", "type": "turn.completed", "provider": "codex", "threadId": "t",
        "createdAt": "2026-11-20T10:00:00Z", "turnId": "T", "payload": {"state": "failed", "errorMessage": "x"}}


@pytest.mark.parametrize("broken", [
    {k: v for k, v in GOOD.items() if k != "eventId"},
    {**GOOD, "threadId": ""},
    {**GOOD, "provider": 3},
    {**GOOD, "createdAt": "yesterday"},
    {**GOOD, "turnId": ""},
    {**GOOD, "eventId": "x" * 257},
    {**GOOD, "payload": ["state", "failed"]},
    {**GOOD, "payload": {"state": "exploded"}},
    {**GOOD, "payload": {"state": "failed", "errorMessage": 7}},
    {**GOOD, "type": "session.state.changed", "payload": {}},
    {**GOOD, "type": "session.state.changed", "payload": {"state": "paused"}},
    {**GOOD, "type": "session.state.changed", "payload": None},
    {**GOOD, "type": "turn.aborted", "payload": {}},
    {**GOOD, "type": "runtime.error", "payload": {"message": None}},
    {**GOOD, "type": "session.exited", "payload": {"exitKind": "crash"}},
])
def test_the_schema_rejects_broken_envelopes_that_the_parser_rejects(broken: dict[str, Any]) -> None:
    VALIDATOR.validate(GOOD)
    assert not VALIDATOR.is_valid(broken)
    with pytest.raises(EventError):
        PARSER.parse(broken)


def test_the_schema_lists_the_spec_lifecycle_types_and_enums() -> None:
    rules = {r["if"]["properties"]["type"]["const"]: r["then"] for r in SCHEMA["allOf"]}
    spec = builtin_spec()
    assert set(rules) == {e.type for e in spec.events}
    for event in spec.events:
        then = rules[event.type]
        props = then["properties"]["payload"].get("properties", {})
        required = set(then["properties"]["payload"].get("required", []))
        assert required == {f.name for f in event.payload if f.required}, event.type
        for f in event.payload:
            if f.enum is not None:
                assert [v for v in props[f.name]["enum"] if v is not None] == list(f.enum), (event.type, f.name)


def test_a_closed_codex_thread_starts_again_on_resume() -> None:
    thread = {"id": "t", "status": {"type": "idle"}}
    lines = _lines(
        {"method": "thread/started", "params": {"thread": thread}},
        {"method": "thread/closed", "params": {"threadId": "t"}},
        {"id": 3, "result": {"thread": thread}},
        {"method": "turn/started", "params": {"threadId": "t", "turn": {"id": "T9"}}},
    )
    projector = SessionProjector()
    outcomes = projector.apply_all(_feed_all(_adapter("codex-app-server", on_eof="leave"), lines))
    assert [o.after.status for o in outcomes] == ["ready", "ready", "stopped", "ready", "running"]
    assert projector["t"].active_turn_id == "T9"


def test_every_mapping_table_entry_is_documented() -> None:
    from statemachine.adapters import acp, claude_stream_json, codex_app_server, codex_exec

    doc = (ROOT / "docs" / "adapters.md").read_text(encoding="utf-8")
    tables = [codex_app_server.CODEX_TURN_STATUSES, codex_app_server.CODEX_SERVER_REQUESTS,
              codex_exec.TURN_ENDS, claude_stream_json.CLAUDE_SESSION_STATES, acp.ACP_STOP_REASONS, acp.ACP_V2_STATES,
              {reason: "interrupted" for reason in claude_stream_json.CLAUDE_ABORTED_REASONS},
              {reason: "runtime.warning" for reason in acp.ACP_STOP_WARNINGS}]
    for table in tables:
        for raw, mapped in table.items():
            assert f"`{raw}`" in doc, raw
            assert mapped in doc, mapped
    for name in sorted(codex_app_server.CODEX_UNATTENDED_REQUESTS):
        assert f"`{name}`" in doc, name


def test_a_bounded_memory_undoes_one_line_including_what_it_evicted() -> None:
    memory = BoundedSet(2)
    memory.begin()
    memory.add("a")
    memory.add("b")
    memory.begin()
    memory.add("c")  # evicts "a"
    memory.add("b")  # already there: no change
    assert "a" not in memory and len(memory) == 2
    memory.rollback()
    assert list(memory) == ["a", "b"]


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(st.one_of(hostile.valid_events(), hostile.malformed_events()))
def test_the_schema_and_the_parser_agree_on_envelopes(event: Any) -> None:
    event = hostile.materialize(event)
    try:
        PARSER.parse(event)
        accepted = True
    except EventError as exc:
        accepted, field = False, exc.field
    if accepted:
        VALIDATOR.validate(event)
    elif VALIDATOR.is_valid(event):
        # The only looser spot: the pattern checks the shape of a date, not the calendar.
        assert field == "createdAt", (field, event)


# -- cost per line -------------------------------------------------------------------------------


def _acp_with_pending_prompts(pending: int, cls: type[Adapter] | None = None) -> Adapter:
    fixed = datetime(2026, 11, 20, tzinfo=UTC)
    adapter = (cls or type(_adapter("acp")))(on_eof="leave", clock=lambda: fixed)
    for n in range(pending):
        adapter.feed(json.dumps({"jsonrpc": "2.0", "id": n, "method": "session/prompt",
                                 "params": {"sessionId": f"S{n}", "prompt": []}}))
    return adapter


_CHUNK = json.dumps({"jsonrpc": "2.0", "method": "session/update", "params": {
    "sessionId": "S0", "update": {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "x"}}}})


def _answer(n: int) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": n, "result": {"stopReason": "end_turn"}})


def _line_cost(adapter: Adapter, line: str) -> tuple[int, int, list[Any]]:
    """The function calls made (Python and built-in) and the undo steps written while the adapter
    reads one line, and its events: a count of the work, where a timing would measure the machine."""
    calls = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        events = adapter.feed(line)
    finally:
        sys.setprofile(None)
    return calls, len(adapter._journal), events  # type: ignore[attr-defined]


def test_a_line_costs_the_same_however_many_requests_are_pending() -> None:
    few, many = _acp_with_pending_prompts(8), _acp_with_pending_prompts(4096)
    tables = {side: (table, table._data) for side, table in many._pending.items()}  # type: ignore[attr-defined]
    for line in (_CHUNK, _answer(3), _CHUNK, "not json"):
        cost_few, cost_many = _line_cost(few, line), _line_cost(many, line)
        assert cost_few == cost_many, line  # the same calls, the same undo steps, the same events
    # Nothing was replaced either: the tables the lines worked on are the ones that were there.
    assert all(many._pending[side] is t and t._data is d for side, (t, d) in tables.items())  # type: ignore[attr-defined]
    assert len(many._pending["client"]) == 4095  # type: ignore[attr-defined]


def test_the_cost_check_sees_a_table_copied_per_line() -> None:
    # The check above can fail: an adapter that saves its pending table by copy on every line.
    class Copying(type(_adapter("acp"))):  # type: ignore[misc]
        def _save_extra(self) -> Any:
            return copy.deepcopy(self._pending["client"].items()), super()._save_extra()

        def _restore_extra(self, extra: Any) -> None:
            super()._restore_extra(extra[1])

    few, many = _acp_with_pending_prompts(8, Copying), _acp_with_pending_prompts(512, Copying)
    assert _line_cost(few, _CHUNK)[0] < _line_cost(many, _CHUNK)[0]
