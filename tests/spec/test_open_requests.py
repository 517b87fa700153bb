"""Open requests per requestId: what the exhaustive checks do not reach (their universe opens two
requests, one per kind): the bound, the id types the parser takes, and a request asked again."""

from __future__ import annotations

from typing import Any

import pytest

from statemachine import EventError, SessionProjector
from statemachine.core.session import MAX_OPEN_REQUESTS
from statemachine.spec.semantics import VOCABULARY

ENGINES = ("compiled", "transitions")


class _Thread:
    def __init__(self, engine: str) -> None:
        self.projector = SessionProjector(engine=engine)  # type: ignore[arg-type]
        self.n = 0

    def send(self, type_: str, turn: str | None = None, **payload: Any) -> tuple[str, str | None]:
        self.n += 1
        event: dict[str, Any] = {"eventId": f"e{self.n}", "type": type_, "provider": "codex", "threadId": "t",
                                 "createdAt": "2026-01-01T00:00:00Z", "payload": payload}
        if turn is not None:
            event["turnId"] = turn
        outcome = self.projector.apply(event)
        return outcome.kind.value, outcome.reason

    @property
    def session(self) -> Any:
        return self.projector.get("t")


def _running(engine: str) -> _Thread:
    thread = _Thread(engine)
    thread.send("session.started")
    thread.send("turn.started", "turn-1")
    return thread


def test_the_guard_states_the_session_bound() -> None:
    # A declaration's code reads only its slots: the bound is written out there; it must be this one.
    assert f"len(req) < {MAX_OPEN_REQUESTS} " in VOCABULARY.guards["request_room"].expr
    assert f"req.length < {MAX_OPEN_REQUESTS} " in VOCABULARY.guards["request_room"].ts


@pytest.mark.parametrize("engine", ENGINES)
def test_one_request_more_than_the_bound_is_refused_and_changes_nothing(engine: str) -> None:
    thread = _running(engine)
    for i in range(MAX_OPEN_REQUESTS):
        assert thread.send("request.opened", "turn-1", requestId=i) == ("applied", None)
    before = thread.session
    assert thread.send("user-input.requested", "turn-1", requestId="one more") == ("rejected",
                                                                                  "too_many_open_requests")
    assert thread.projector.get("t")._replace(updated_at=None) == before._replace(updated_at=None)
    # Asked again under an open id, a request is not one more: it moves to the end with its new kind.
    assert thread.send("user-input.requested", "turn-1", requestId=0) == ("applied", None)
    assert thread.session.open_requests[-1] == (0, "user-input")
    assert len(thread.session.open_requests) == MAX_OPEN_REQUESTS
    assert thread.session.awaiting == "user-input"
    # Answered, one makes room for another.
    assert thread.send("request.resolved", "turn-1", requestId=5)[0] == "applied"
    assert thread.send("request.opened", "turn-1", requestId="one more") == ("applied", None)


@pytest.mark.parametrize("engine", ENGINES)
def test_ids_1_and_quoted_1_are_two_requests_and_a_resolution_without_id_ends_all(engine: str) -> None:
    thread = _running(engine)
    thread.send("request.opened", "turn-1", requestId=1)
    thread.send("request.opened", "turn-1", requestId="1")
    thread.send("request.opened", "turn-1")  # no id: open under null
    assert [r[0] for r in thread.session.open_requests] == [1, "1", None]
    thread.send("request.resolved", "turn-1", requestId="1")
    assert [r[0] for r in thread.session.open_requests] == [1, None]
    thread.send("request.resolved", "turn-1", requestId="unknown")  # not open: nothing ends
    assert [r[0] for r in thread.session.open_requests] == [1, None]
    thread.send("request.resolved", "turn-1")
    assert thread.session.open_requests == () and thread.session.awaiting is None
    assert thread.session.status == "running" and thread.session.active_turn_id == "turn-1"


@pytest.mark.parametrize("value", [True, 1.5, 2**53, -(2**53), "", "x" * 257, [1], {"id": 1}])
def test_a_request_id_that_is_not_a_string_or_a_safe_integer_is_refused_naming_the_field(value: Any) -> None:
    thread = _running("compiled")
    before = thread.session
    with pytest.raises(EventError) as caught:
        thread.send("request.opened", "turn-1", requestId=value)
    assert caught.value.field == "payload.requestId"
    assert thread.session == before


@pytest.mark.parametrize("engine", ENGINES)
def test_a_stop_ends_every_request_outside_a_turn(engine: str) -> None:
    thread = _Thread(engine)
    thread.send("session.started")
    assert thread.send("request.opened", requestId=7) == ("applied", None)
    assert (thread.session.status, thread.session.awaiting) == ("running", "approval")
    thread.send("thread.session.stop")
    assert (thread.session.status, thread.session.open_requests, thread.session.awaiting) == ("stopped", (), None)
