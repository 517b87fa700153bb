"""Input limits: identifier length in the parser, line length in replay."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from statemachine import EventError, EventParser, SessionProjector, builtin_spec
from statemachine.core.event import MAX_ID_LENGTH
from statemachine.core.record import event_digest_hex
from statemachine.replay.lines import MAX_LINE_BYTES, replay_lines


def wire(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventId": "e1",
        "type": "turn.started",
        "provider": "codex",
        "threadId": "t1",
        "createdAt": "2026-01-01T00:00:00Z",
        "turnId": "T1",
        "payload": {},
    }
    event.update(changes)
    return event


def line(**changes: Any) -> bytes:
    return json.dumps(wire(**changes)).encode() + b"\n"


@pytest.mark.parametrize("field", ["eventId", "type", "provider", "threadId", "turnId", "createdAt"])
def test_an_identifier_past_the_limit_is_an_error_naming_the_field(field: str) -> None:
    parser = EventParser(builtin_spec())
    with pytest.raises(EventError) as caught:
        parser.parse(wire(**{field: "x" * (MAX_ID_LENGTH + 1)}))
    assert caught.value.field == field
    assert str(MAX_ID_LENGTH) in caught.value.message


@pytest.mark.parametrize("field", ["eventId", "provider", "threadId", "turnId"])
def test_an_identifier_at_the_limit_is_accepted(field: str) -> None:
    event = EventParser(builtin_spec()).parse(wire(**{field: "x" * MAX_ID_LENGTH}))
    assert event.to_wire()[field] == "x" * MAX_ID_LENGTH


def test_the_identifier_limit_is_configurable() -> None:
    parser = EventParser(builtin_spec(), max_id_length=10)
    short = {"type": "x.y", "createdAt": "2026-01-01"}
    assert parser.parse(wire(eventId="e" * 10, **short)).event_id == "e" * 10
    with pytest.raises(EventError, match="eventId: is 11 characters long; the limit is 10"):
        parser.parse(wire(eventId="e" * 11, **short))
    with pytest.raises(ValueError):
        EventParser(builtin_spec(), max_id_length=0)


def test_a_too_long_identifier_changes_nothing() -> None:
    projector = SessionProjector()
    projector.apply(wire())
    before = (projector.sessions(), projector.seen_event_digests("t1"), projector.finished_turns("t1"))
    with pytest.raises(EventError):
        projector.apply(wire(eventId="e2", turnId="T" * 10_000))
    after = (projector.sessions(), projector.seen_event_digests("t1"), projector.finished_turns("t1"))
    assert after == before


class CountingStream(io.BytesIO):
    """Records the largest single read, to show a long line is never read whole."""

    largest = 0

    def readline(self, size: int | None = -1) -> bytes:
        chunk = super().readline(size)
        self.largest = max(self.largest, len(chunk))
        return chunk


def test_a_line_past_the_limit_is_an_error_and_the_rest_still_applies() -> None:
    limit = 1000
    long_line = line(eventId="e2", payload={"junk": "x" * 50_000})
    stream = CountingStream(line() + long_line + line(eventId="e3", type="turn.completed"))
    projector = SessionProjector()
    report = replay_lines(projector, stream, max_line_bytes=limit)
    assert report.lines == 3
    assert report.error_count == 1
    assert report.errors[0]["line"] == 2
    assert "line length limit" in report.errors[0]["error"]
    assert str(limit) in report.errors[0]["error"]
    assert report.outcomes["applied"] == 2
    assert projector["t1"].status == "ready"
    assert projector.seen_event_digests("t1") == (event_digest_hex("e1"), event_digest_hex("e3"))
    # Bounded reads: never more than the limit plus one, even for the 50 kB line.
    assert stream.largest <= limit + 1


def test_a_line_exactly_at_the_limit_is_read() -> None:
    text = line()
    limit = len(text) - 1  # without its "\n"
    report = replay_lines(SessionProjector(), io.BytesIO(text + text.rstrip(b"\n")), max_line_bytes=limit)
    assert report.error_count == 0
    assert report.outcomes["applied"] == 1 and report.outcomes["duplicate"] == 1
    report = replay_lines(SessionProjector(), io.BytesIO(text), max_line_bytes=limit - 1)
    assert report.error_count == 1


def test_the_limit_applies_to_lists_and_text_streams_too() -> None:
    text = line().decode()
    long_text = line(eventId="e2", payload={"junk": "x" * 5000}).decode()
    for source in ([text, long_text], io.StringIO(text + long_text)):
        report = replay_lines(SessionProjector(), source, max_line_bytes=1000)
        assert (report.lines, report.error_count, report.outcomes["applied"]) == (2, 1, 1)


def test_a_long_last_line_without_newline_is_an_error() -> None:
    stream = io.BytesIO(line() + b"{" + b" " * 5000)
    report = replay_lines(SessionProjector(), stream, max_line_bytes=1000)
    assert (report.lines, report.error_count) == (2, 1)


def test_the_default_line_limit_is_one_mebibyte() -> None:
    assert MAX_LINE_BYTES == 1 << 20
    with pytest.raises(ValueError):
        replay_lines(SessionProjector(), [], max_line_bytes=0)
