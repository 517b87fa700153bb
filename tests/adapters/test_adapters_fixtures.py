"""Every raw fixture, adapted and replayed by the CLI, gives what docs/adapters.md says it gives.

The expected values are parsed from the doc's two tables (as tests/project/test_examples.py does for
examples/README.md), so the docs and the fixtures cannot drift apart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import markdown_tables

from statemachine import SessionProjector, expire_stale_turns
from statemachine.adapters import LineClock, make_adapter
from statemachine.replay.raw import replay_raw

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "examples" / "raw"
DOC = ROOT / "docs" / "adapters.md"
FIXTURES = sorted(p.name for p in RAW.glob("*.jsonl"))


def _documented() -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    tables = markdown_tables(DOC.read_text(encoding="utf-8"))
    session_rows = next(t for t in tables if t and {"fixture", "thread", "status"} <= set(t[0]))
    outcome_rows = next(t for t in tables if t and {"fixture", "applied", "rejections"} <= set(t[0]))
    sessions: dict[str, dict[str, dict[str, Any]]] = {}
    formats: dict[str, str] = {}
    for row in session_rows:
        formats[row["fixture"]] = row["format"]
        sessions.setdefault(row["fixture"], {})[row["thread"]] = {
            "status": row["status"],
            "activeTurnId": None if row["activeTurnId"] == "null" else row["activeTurnId"],
            "lastError": None if row["lastError"] == "null" else row["lastError"],
        }
    outcomes = {}
    for row in outcome_rows:
        rejections = []
        for item in filter(None, (s.strip() for s in row["rejections"].split(","))):
            line, reason = item.split(":")
            rejections.append((int(line), reason.strip()))
        outcomes[row["fixture"]] = {
            "outcomes": {k: int(row[k]) for k in ("applied", "ignored", "duplicate", "rejected", "forgotten")},
            "malformed": int(row["malformed"]),
            "rejections": rejections,
        }
    return sessions, outcomes, formats


SESSIONS, OUTCOMES, FORMATS = _documented()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "statemachine", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_every_fixture_is_documented_and_every_documented_fixture_exists() -> None:
    assert len(FIXTURES) >= 12
    assert set(SESSIONS) == set(FIXTURES) == set(OUTCOMES)
    # every format has fixtures
    assert set(FORMATS.values()) == {"codex-app-server", "codex-exec", "claude-stream-json", "acp"}


@pytest.mark.parametrize("fixture", FIXTURES)
def test_replay_from_gives_what_the_doc_says_twice_over(fixture: str) -> None:
    runs = [_cli("replay", "--json", "--from", FORMATS[fixture], str(RAW / fixture)) for _ in range(2)]
    assert runs[0].stdout == runs[1].stdout  # deterministic: same log, same output
    proc = runs[0]
    assert "Traceback" not in proc.stderr
    expected = OUTCOMES[fixture]
    assert proc.returncode == (1 if expected["malformed"] else 0), proc.stderr
    data = json.loads(proc.stdout)
    got = {tid: {k: s[k] for k in ("status", "activeTurnId", "lastError")} for tid, s in data["sessions"].items()}
    assert got == SESSIONS[fixture]
    assert data["outcomes"] == {**expected["outcomes"], "malformed": expected["malformed"]}
    assert len(data["errors"]) == expected["malformed"]
    assert [(r["line"], r["reason"]) for r in data["rejected"]] == expected["rejections"]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_adapt_writes_the_events_replay_applies(fixture: str, tmp_path: Path) -> None:
    out_a, out_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (out_a, out_b):
        proc = _cli("adapt", "--from", FORMATS[fixture], str(RAW / fixture), "-o", str(out))
        assert proc.returncode == (1 if OUTCOMES[fixture]["malformed"] else 0), proc.stderr
        assert "Traceback" not in proc.stderr
    assert out_a.read_bytes() == out_b.read_bytes()
    # Replaying the written envelopes gives the same sessions as replaying the raw log.
    proc = _cli("replay", "--json", str(out_a))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    got = {tid: {k: s[k] for k in ("status", "activeTurnId", "lastError")} for tid, s in data["sessions"].items()}
    assert got == SESSIONS[fixture]
    assert data["outcomes"] == {**OUTCOMES[fixture]["outcomes"], "malformed": 0}


MID_TURN = [f for f in FIXTURES if "mid_turn" in f]


@pytest.mark.parametrize("fixture", MID_TURN)
def test_a_stream_ending_mid_turn_is_settled_only_by_the_rule_or_the_stale_bound(fixture: str) -> None:
    def run(on_eof: Any) -> SessionProjector:
        projector = SessionProjector()
        with open(RAW / fixture, "rb") as stream:
            replay_raw(projector, make_adapter(FORMATS[fixture], on_eof=on_eof, clock=LineClock()), stream)
        return projector

    (thread,) = SESSIONS[fixture]
    assert run("interrupted")[thread].status == "interrupted"
    failed = run("error")[thread]
    assert (failed.status, failed.active_turn_id) == ("error", None)
    assert failed.last_error == "The provider stream ended while the turn was open"
    # Left open: the session keeps running its turn until the stale-turn bound settles it.
    left = run("leave")
    held = left[thread]
    assert held.status == "running" and held.active_turn_id is not None
    now = datetime.now(UTC)
    assert expire_stale_turns(left, now - timedelta(days=36500), timedelta(hours=1)) == []
    assert left[thread].status == "running"
    expired = expire_stale_turns(left, now, timedelta(hours=1))
    assert [o.event.turn_id for o in expired] == [held.active_turn_id]
    assert (left[thread].status, left[thread].active_turn_id) == ("interrupted", None)


def test_cli_refuses_unknown_format_and_missing_file_without_traceback(tmp_path: Path) -> None:
    bad = _cli("adapt", "--from", "gemini", str(RAW / FIXTURES[0]))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--from" in bad.stderr
    missing = _cli("replay", "--from", "acp", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and "cannot read" in missing.stderr
    missing = _cli("adapt", "--from", "acp", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    copy_of = tmp_path / "raw.jsonl"
    copy_of.write_bytes((RAW / "acp_turns.jsonl").read_bytes())
    same = _cli("adapt", "--from", "acp", str(copy_of), "-o", str(copy_of))
    assert same.returncode == 2 and copy_of.read_bytes() == (RAW / "acp_turns.jsonl").read_bytes()
    bad_stream = _cli("replay", "--from", "acp", "--stream", "a:b", str(RAW / "acp_turns.jsonl"))
    assert bad_stream.returncode == 2 and "Traceback" not in bad_stream.stderr and "stream name" in bad_stream.stderr
    unwritable = _cli("adapt", "--from", "acp", str(RAW / "acp_turns.jsonl"), "-o", str(tmp_path / "no" / "x.jsonl"))
    assert unwritable.returncode == 2 and "Traceback" not in unwritable.stderr


def test_cli_reports_malformed_raw_lines_and_exits_1(tmp_path: Path) -> None:
    log = tmp_path / "raw.jsonl"
    log.write_bytes(b'{"type":"thread.started","thread_id":"t-1"}\n\xff\xfe\n[1,2]\n{"type":"turn.started"}\n')
    proc = _cli("adapt", "--from", "codex-exec", str(log))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "line 2: malformed" in proc.stderr and "line 3: malformed: message" in proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["type"] for e in events] == ["session.started", "thread.started", "turn.started", "turn.completed"]
    proc = _cli("replay", "--json", "--from", "codex-exec", str(log))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    assert [e["line"] for e in data["errors"]] == [2, 3]
    assert data["sessions"]["t-1"]["status"] == "interrupted"


def test_a_raw_log_in_parts_keeps_its_turns_apart_with_stream_names(tmp_path: Path) -> None:
    lines = (RAW / "claude_turns.jsonl").read_text().splitlines(keepends=True)
    first, second = tmp_path / "part1.jsonl", tmp_path / "part2.jsonl"
    first.write_text("".join(lines[:9]))  # the first turn, through its idle
    second.write_text("".join(lines[9:]))
    whole = json.loads(_cli("replay", "--json", "--from", "claude-stream-json", str(RAW / "claude_turns.jsonl")).stdout)

    def in_parts(*stream: str) -> dict[str, Any]:
        state = tmp_path / "state.json"
        one = _cli("replay", "--from", "claude-stream-json", "--on-eof", "leave", "--snapshot-out", str(state),
                   str(first))
        assert one.returncode == 0, one.stderr
        two = _cli("replay", "--json", "--from", "claude-stream-json", *stream, "--snapshot-in", str(state),
                   str(second))
        assert two.returncode == 0, two.stderr
        return dict(json.loads(two.stdout))

    def brief(data: dict[str, Any]) -> dict[str, Any]:
        return {t: (s["status"], s["activeTurnId"], s["lastError"]) for t, s in data["sessions"].items()}

    named = in_parts("--stream", "part2")
    assert brief(named) == brief(whole) and named["rejected"] == []
    # Unnamed, the second part numbers its turns from 1 again: taken for the first part's finished turn.
    unnamed = in_parts()
    assert [r["reason"] for r in unnamed["rejected"]][:1] == ["turn_finished"]


def test_every_fixture_names_the_documents_its_shapes_come_from() -> None:
    tables = markdown_tables(DOC.read_text(encoding="utf-8"))
    sources = {row["source"] for row in next(t for t in tables if t and {"source", "document"} <= set(t[0]))}
    shows = next(t for t in tables if t and {"fixture", "shows", "source"} <= set(t[0]))
    assert {row["fixture"] for row in shows} == set(FIXTURES)
    for row in shows:
        named = [s.strip() for s in row["source"].split(",") if s.strip()]
        assert named and set(named) <= sources, (row["fixture"], named)
    # Each source names a repository file at a commit.
    document = {row["source"]: row["document"] for t in tables if t and "document" in t[0] for row in t}
    assert all("@" in text and "/" in text for text in document.values())


def _events(fixture: str) -> list[dict[str, Any]]:
    adapter = make_adapter(FORMATS[fixture], on_eof="leave", clock=LineClock())
    with open(RAW / fixture, "rb") as stream:
        return [event for line in stream for event in adapter.feed(line)]


def _run(fixture: str) -> tuple[list[dict[str, Any]], list[Any], SessionProjector]:
    events = _events(fixture)
    projector = SessionProjector()
    return events, projector.apply_all(events), projector


def _one_session(projector: SessionProjector) -> Any:
    (session,) = projector.sessions().values()
    return session


# The protocol corners, one fixture each: what happens on the way, beyond the end state of the rows.


def test_codex_a_failed_turn_is_a_failed_completion_also_after_a_fatal_error() -> None:
    events, outcomes, _ = _run("codex_app_server_failed.jsonl")
    done = [(e["payload"], o.kind.value) for e, o in zip(events, outcomes, strict=True)
            if e["type"] == "turn.completed"]
    assert [(p["state"], kind) for p, kind in done] == [("failed", "applied"), ("failed", "applied")]
    assert done[0][0]["errorMessage"] == "Your input exceeds the context window of this model."


def test_codex_resume_opens_the_turn_in_progress_and_its_replayed_approval_finds_it() -> None:
    events, outcomes, projector = _run("codex_app_server_resume.jsonl")
    kinds = [(e["type"], e.get("turnId"), o.kind.value) for e, o in zip(events, outcomes, strict=True)]
    turn = "019a7d02-8f90-71a2-d3b4-5f6a7b8c9d26"
    assert kinds[:5] == [("session.started", None, "applied"), ("turn.started", turn, "applied"),
                         ("request.opened", turn, "applied"), ("session.state.changed", None, "applied"),
                         ("request.resolved", turn, "applied")]  # resolved names no turn: the request's
    assert _one_session(projector).status == "ready"


def test_codex_after_a_restart_request_0_is_a_new_request() -> None:
    events, outcomes, projector = _run("codex_app_server_restart.jsonl")
    opened = [(e["eventId"], o.kind.value) for e, o in zip(events, outcomes, strict=True)
              if e["type"] == "request.opened"]
    assert [kind for _, kind in opened] == ["applied", "applied"]
    assert opened[0][0] != opened[1][0]
    session = _one_session(projector)
    assert (session.status, session.awaiting) == ("running", "approval")


def test_codex_requests_1_and_quoted_1_are_two_requests() -> None:
    events, _, projector = _run("codex_app_server_request_ids.jsonl")
    projector = SessionProjector()
    seen = []
    for event in events:
        projector.apply(event)
        if event["type"] in ("request.resolved", "request.opened", "user-input.requested"):
            session = _one_session(projector)
            seen.append((event["type"], event["payload"]["requestId"], session.awaiting, session.open_requests))
    # Resolving "1" leaves request 1 open: the projector keeps each request by its id.
    assert seen == [("request.opened", 1, "approval", ((1, "approval"),)),
                    ("user-input.requested", "1", "user-input", ((1, "approval"), ("1", "user-input"))),
                    ("request.resolved", "1", "approval", ((1, "approval"),)),
                    ("request.resolved", 1, None, ())]


def test_claude_injected_turns_run_and_settle_and_later_results_do_not_resettle() -> None:
    events, outcomes, _ = _run("claude_injected_turns.jsonl")
    starts = [e["payload"].get("origin") for e in events if e["type"] == "turn.started"]
    assert starts == [None, "task-notification", "auto-continuation"]
    assert {o.kind.value for o in outcomes} == {"applied"}
    events, outcomes, projector = _run("claude_several_results.jsonl")
    late = [(o.kind.value, o.reason) for e, o in zip(events, outcomes, strict=True) if e["payload"].get("repeated")]
    assert late == [("rejected", "turn_finished"), ("rejected", "turn_finished")]
    assert _one_session(projector).status == "ready"


def test_claude_a_failed_resume_is_an_error_and_an_aborted_tool_turn_is_interrupted() -> None:
    _, _, projector = _run("claude_failed_resume.jsonl")
    assert _one_session(projector).status == "error"
    events, _, _ = _run("claude_aborted_tools.jsonl")
    assert events[-1]["payload"]["state"] == "interrupted"


def test_acp_withdrawn_and_cancelled_permissions_are_resolved_once() -> None:
    for fixture, outcomes in (("acp_withdrawn.jsonl", ["withdrawn", "cancelled"]),
                              ("acp_cancel_pending.jsonl", ["cancelled", "cancelled"]),
                              ("acp_cancel.jsonl", ["cancelled"])):
        events, _, _ = _run(fixture)
        assert [e["payload"]["outcome"] for e in events if e["type"] == "request.resolved"] == outcomes, fixture


def test_acp_answers_to_agent_requests_do_not_take_the_ids_of_client_requests() -> None:
    events, outcomes, projector = _run("acp_terminal_ids.jsonl")
    assert [e["type"] for e in events] == ["session.started", "thread.started", "turn.started", "turn.completed"]
    assert "duplicate" not in {o.kind.value for o in outcomes}
    assert _one_session(projector).status == "ready"


def test_acp_stop_reasons_and_updates_while_idle() -> None:
    events, _, projector = _run("acp_stop_reasons.jsonl")
    ends = [(e["type"], e["payload"].get("state")) for e in events
            if e["type"] in ("turn.completed", "runtime.warning")]
    assert ends == [("runtime.warning", None), ("turn.completed", "completed"),
                    ("runtime.warning", None), ("turn.completed", "completed"), ("turn.completed", "failed")]
    events, _, projector = _run("acp_v2_idle.jsonl")
    assert events[-1]["type"] == "turn.completed"  # nothing after the refusal: background work and idle
    assert _one_session(projector).last_error == "The agent stopped: refusal"


def test_acp_requests_after_the_turn_keep_the_session_running_until_answered() -> None:
    events, outcomes, _ = _run("acp_request_after_turn.jsonl")
    assert {o.kind.value for o in outcomes} == {"applied"}
    projector = SessionProjector()
    shown = []
    for event in events:
        projector.apply(event)
        session = _one_session(projector)
        shown.append((event["type"], session.status, session.active_turn_id, [r[0] for r in session.open_requests]))
    # After the prompt's answer the session is ready; each request outside a turn makes it run
    # again (no turn), and it is ready only once neither waits.
    assert shown[-5:] == [("turn.completed", "ready", None, []),
                          ("request.opened", "running", None, [7]),
                          ("request.opened", "running", None, [7, "perm-8"]),
                          ("request.resolved", "running", None, ["perm-8"]),
                          ("request.resolved", "ready", None, [])]
