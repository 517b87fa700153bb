"""`replay --trace`: one JSON line per input line, streamed, to standard output or a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Events

from statemachine import SessionProjector
from statemachine.cli.main import main
from statemachine.observing.trace import trace_lines

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _mixed_log(path: Path) -> list[str]:
    ev = Events("t1")
    started = ev("turn.started", "T1")
    lines = [
        json.dumps(ev("session.started")),
        json.dumps(started),
        "",  # blank: no record
        json.dumps(ev("item.started", "T1")),
        json.dumps(started),  # redelivery
        json.dumps(ev("turn.completed", "T2")),
        json.dumps({**ev("session.state.changed", state="paused")}),  # malformed: bad state
        "[1, 2]",  # JSON, but not an object
        json.dumps(ev("turn.completed", "T1", state="failed", errorMessage="boom")),
    ]
    path.write_text("\n".join(lines) + "\n")
    return lines


def test_trace_has_one_record_per_non_blank_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.jsonl"
    lines = _mixed_log(log)
    assert main(["replay", "--trace", str(log)]) == 1  # a malformed line, as without --trace
    records = [json.loads(r) for r in capsys.readouterr().out.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 4, 5, 6, 7, 8, 9]
    assert [r["outcome"] for r in records] == [
        "applied", "applied", "ignored", "duplicate", "rejected", "malformed", "malformed", "applied"]
    rejected = records[4]
    assert (rejected["reason"], rejected["turnId"]) == ("other_turn_active", "T2")
    assert rejected["session"]["activeTurnId"] == "T1"
    assert records[1]["session"]["status"] == "running" and records[1]["eventId"] == json.loads(lines[1])["eventId"]
    bad_state = records[5]
    assert bad_state["error"].startswith("payload.state") and "session" not in bad_state
    assert (bad_state["eventId"], bad_state["threadId"]) == (json.loads(lines[6])["eventId"], "t1")
    assert "eventId" not in records[6] and records[6]["error"].startswith("event")
    assert records[-1]["session"] == {"threadId": "t1", "status": "error", "providerName": "codex",
                                      "activeTurnId": None, "lastError": "boom",
                                      "updatedAt": json.loads(lines[8])["createdAt"],
                                      "pendingTurn": None, "awaiting": None, "openRequests": []}


def test_trace_out_writes_the_file_and_keeps_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "trace.jsonl"
    assert main(["replay", "--json", "--trace-out", str(out), str(EXAMPLES / "codex_session.jsonl")]) == 0
    summary = json.loads(capsys.readouterr().out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 14
    assert records[-1]["session"] == summary["sessions"]["thr-codex-01"]
    assert [r["outcome"] for r in records].count("ignored") == summary["outcomes"]["ignored"] == 4


def test_trace_out_that_cannot_be_written_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--trace-out", str(tmp_path / "no" / "t.jsonl"), str(EXAMPLES / "codex_session.jsonl")]) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_trace_file_that_fills_up_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--trace-out", "/dev/full", str(EXAMPLES / "codex_session.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "cannot write /dev/full" in err and "cannot read" not in err


def test_trace_and_json_on_standard_output_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["replay", "--trace", "--json", str(EXAMPLES / "codex_session.jsonl")])
    assert exit_info.value.code == 2


def test_trace_lines_streams_and_matches_the_final_sessions() -> None:
    projector = SessionProjector()
    seen: list[int] = []
    report = trace_lines(projector, (EXAMPLES / "out_of_order.jsonl").open("rb"), lambda r: seen.append(r["line"]))
    assert seen == list(range(1, 11))
    assert report.outcomes == {"applied": 4, "ignored": 0, "duplicate": 2, "rejected": 4, "forgotten": 0}


def test_trace_survives_strings_stdout_cannot_encode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "s.jsonl"
    ev = Events("t\udc80")
    log.write_text(json.dumps(ev("runtime.error", message="bad \udc80 byte")) + "\n")
    # A lone surrogate is refused at the parser (docs/reliability.md): the trace says so, as JSON
    # stdout can always encode, instead of failing to print it.
    assert main(["replay", "--trace", str(log)]) == 1
    (record,) = [json.loads(r) for r in capsys.readouterr().out.splitlines()]
    assert record["outcome"] == "malformed" and record["threadId"] == "t\udc80"
    assert record["error"] == "eventId: holds a lone surrogate (not Unicode text)"
