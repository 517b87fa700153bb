"""No thread reaches another: interleaved with other threads, a thread's raw lines give the same
events, outcomes and session as the same lines replayed alone.

The threads come from the fixtures in examples/raw/, renamed (tests/raw_streams.py): turn ids,
message ids and uuids stay as they are, so two threads reuse them, as two real threads may
(a Codex turn id seen in one thread, a Claude uuid repeated by a client that copies messages).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from raw_streams import adapt, by_thread, fixtures, format_of, interleave, project, source, units

from statemachine import SessionProjector
from statemachine.adapters import FORMATS, LineClock, make_adapter


def _check_isolated(fmt: str, names: list[str], order: list[int]) -> None:
    pieces = [units(fmt, source(name, slot)) for slot, name in enumerate(names)]
    merged = adapt(fmt, interleave(pieces, order))
    got = by_thread(merged)
    sessions, outcomes = project(merged)
    expected_threads: set[str] = set()
    for piece in pieces:
        alone = adapt(fmt, [line for unit in piece for line in unit])
        want = by_thread(alone)
        alone_sessions, alone_outcomes = project(alone)
        for thread, events in want.items():
            assert got.get(thread) == events, thread
            assert sessions[thread] == alone_sessions[thread], thread
            assert outcomes[thread] == alone_outcomes[thread], thread
        expected_threads |= set(want)
    assert set(got) == expected_threads  # no events for a thread no source has


def _round_robin(sizes: list[int]) -> list[int]:
    order = []
    for i in range(max(sizes)):
        order += [slot for slot, size in enumerate(sizes) if i < size]
    return order


@pytest.mark.parametrize("order", ["round robin", "one after the other"])
@pytest.mark.parametrize("name", [name for fmt in FORMATS for name in fixtures(fmt)])
def test_a_fixture_beside_itself_under_other_thread_ids_gives_each_thread_its_own_story(name: str, order: str) -> None:
    # The hardest pair: every turn id, uuid and message id is reused by the other thread.
    fmt = format_of(name)
    sizes = [len(units(fmt, source(name, slot))) for slot in (0, 1)]
    merge = _round_robin(sizes) if order == "round robin" else [0] * sizes[0] + [1] * sizes[1]
    _check_isolated(fmt, [name, name], merge)


@st.composite
def _interleavings(draw: st.DrawFn) -> tuple[str, list[str], list[int]]:
    fmt = draw(st.sampled_from(FORMATS))
    names = draw(st.lists(st.sampled_from(fixtures(fmt)), min_size=2, max_size=3))
    sizes = [len(units(fmt, source(name, slot))) for slot, name in enumerate(names)]
    order = draw(st.permutations([slot for slot, size in enumerate(sizes) for _ in range(size)]))
    return fmt, names, list(order)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(_interleavings())
def test_any_interleaving_of_threads_gives_each_thread_what_it_gives_alone(
    case: tuple[str, list[str], list[int]],
) -> None:
    _check_isolated(*case)


# -- the leaks, one by one -----------------------------------------------------------------------


def _feed(fmt: str, messages: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    adapter = make_adapter(fmt, clock=LineClock(), **options)
    events = []
    for message in messages:
        events.extend(adapter.feed(json.dumps(message)))
    return events


def _turn(method: str, thread: str, turn: str, status: str = "inProgress") -> dict[str, Any]:
    return {"method": method, "params": {"threadId": thread, "turn": {"id": turn, "status": status}}}


def test_codex_a_turn_id_finished_in_one_thread_still_starts_in_another() -> None:
    approval = {"id": 5, "method": "item/commandExecution/requestApproval",
                "params": {"threadId": "B", "itemId": "i1"}}  # no turnId: the open turn's
    lines = [_turn("turn/started", "A", "T1"), _turn("turn/completed", "A", "T1", "completed"),
             _turn("turn/started", "B", "T1"), approval]
    adapter = make_adapter("codex-app-server", clock=LineClock())
    events = [e for line in lines for e in adapter.feed(json.dumps(line))]
    opened = [e for e in events if e["type"] == "request.opened"]
    assert [e["turnId"] for e in opened] == ["T1"]  # the request keeps its turn
    assert events[-1]["payload"] == {"state": "waiting", "reason": "item/commandExecution/requestApproval"}
    projector = SessionProjector()
    projector.apply_all(events)
    b = projector["B"]
    assert (b.status, b.active_turn_id, b.awaiting) == ("running", "T1", "approval")
    # The stream ends: B's turn is the adapter's to settle, not left running.
    projector.apply_all(adapter.finish())
    assert (projector["B"].status, projector["B"].active_turn_id) == ("interrupted", None)
    assert projector["A"].status == "ready"


def test_claude_a_uuid_seen_in_one_session_is_not_a_redelivery_in_another() -> None:
    def prompt(session: str) -> dict[str, Any]:
        return {"type": "user", "message": {"role": "user", "content": "hi"}, "session_id": session, "uuid": "u-1"}

    events = _feed("claude-stream-json", [prompt("A"), prompt("B")])
    assert [(e["threadId"], e["type"]) for e in events] == [("A", "turn.started"), ("B", "turn.started")]
    # Within one session the same uuid is a redelivery: the same events again.
    again = _feed("claude-stream-json", [prompt("A"), prompt("A")])
    assert again[0] == again[1]


def test_claude_a_message_id_seen_in_one_session_still_opens_a_turn_in_another() -> None:
    def assistant(session: str, uuid: str) -> dict[str, Any]:
        return {"type": "assistant", "message": {"id": "msg_1", "role": "assistant", "content": []},
                "parent_tool_use_id": None, "session_id": session, "uuid": uuid}

    events = _feed("claude-stream-json", [assistant("A", "u-1"), assistant("B", "u-2")])
    assert [(e["threadId"], e["type"]) for e in events] == [("A", "turn.started"), ("B", "turn.started")]


def test_codex_exec_numbers_each_threads_turns_apart() -> None:
    lines = [{"type": "thread.started", "thread_id": "A"}, {"type": "turn.started"},
             {"type": "thread.started", "thread_id": "B"}, {"type": "turn.started"},
             {"type": "turn.completed", "usage": {}},
             {"type": "thread.started", "thread_id": "A"}, {"type": "turn.completed", "usage": {}}]
    starts = [(e["threadId"], e.get("turnId")) for e in _feed("codex-exec", lines) if e["type"].startswith("turn.")]
    assert starts == [("A", "A:turn:1"), ("B", "B:turn:1"), ("B", "B:turn:1"), ("A", "A:turn:1")]
