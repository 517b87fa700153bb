"""`audit`: another orchestrator's sessions against our replay of the same log.

Their sessions are built by a small reducer written here from T3 Code's current rules (the table
in docs/semantics.md, "Event by event, against T3 Code"): no de-duplication, `runtime.error`
keeping the turn it names, `turn.aborted` never settling, `interrupted`/`cancelled` completions
reported as `ready`, `updatedAt` copied from `createdAt` as is. Audit must find where they differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from statemachine.cli.main import main
from statemachine.core.session import FIELDS
from statemachine.observing.audit import AuditError, audit_log, load_sessions
from statemachine.replay.lines import replay_lines
from statemachine.runtime.projector import SessionProjector

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def t3_sessions(lines: Iterable[str]) -> dict[str, dict[str, Any]]:
    """T3 Code's projection, as its main branch does it today."""
    sessions: dict[str, dict[str, Any]] = {}
    for line in lines:
        if not line.strip():
            continue
        ev = json.loads(line)
        s = sessions.setdefault(ev["threadId"], {"status": "idle", "activeTurnId": None, "lastError": None,
                                                 "providerName": ev["provider"], "updatedAt": None})
        kind, turn, payload = ev["type"], ev.get("turnId"), ev.get("payload") or {}
        active = s["activeTurnId"]
        if kind in ("session.started", "thread.started"):
            s["status"] = "running" if active else "ready"
            if not active:
                s["lastError"] = None
        elif kind == "session.state.changed":
            state = "running" if payload["state"] == "waiting" else payload["state"]
            s["status"] = state
            if state not in ("starting", "running"):
                s["activeTurnId"] = None
            if state == "error":
                s["lastError"] = payload.get("reason") or s["lastError"] or "Provider session error"
            elif state == "ready":
                s["lastError"] = None
        elif kind == "session.exited":
            s["status"], s["activeTurnId"] = "stopped", None
        elif kind == "turn.started":
            if active and turn != active:
                continue  # another turn while one is active: rejected
            s["status"], s["activeTurnId"] = "running", turn
        elif kind == "turn.completed":
            if turn is None or (active and turn != active):
                continue  # untargeted, or for another turn: rejected
            if payload.get("state") == "failed":
                s["status"], s["lastError"] = "error", payload.get("errorMessage") or s["lastError"] or "Turn failed"
            else:  # completed, interrupted and cancelled alike
                s["status"], s["lastError"] = "ready", None
            s["activeTurnId"] = None
        elif kind == "runtime.error":
            if active and turn is not None and turn != active:
                continue
            s["status"], s["activeTurnId"], s["lastError"] = "error", turn, payload["message"]
        else:
            continue  # turn.aborted, runtime.warning and the rest: unchanged
        s["providerName"], s["updatedAt"] = ev["provider"], ev["createdAt"]
    return sessions


def _ev(eid: str, type_: str, thread: str, second: int, turn: str | None = None, **payload: Any) -> str:
    e: dict[str, Any] = {"eventId": eid, "type": type_, "provider": "codex", "threadId": thread,
                         "createdAt": f"2026-11-20T10:00:{second:02d}Z", "payload": payload}
    if turn is not None:
        e["turnId"] = turn
    return json.dumps(e)


# runtime.error naming the active turn: T3 writes `error` with that turn (an impossible state).
ERROR_KEEPS_TURN = [
    _ev("k1", "session.started", "thr-kept", 1),
    _ev("k2", "turn.started", "thr-kept", 2, "T1"),
    _ev("k3", "content.delta", "thr-kept", 3, "T1"),
    _ev("k4", "runtime.error", "thr-kept", 4, "T1", message="boom"),
]
# A late event: T3's updatedAt moves back to it, ours never does.
LATE_EVENT = [
    _ev("l1", "session.started", "thr-late", 9),
    _ev("l2", "session.state.changed", "thr-late", 5, state="running"),
]


def _all_lines() -> list[str]:
    lines = []
    for name in ("codex_session", "claude_interrupted", "out_of_order"):
        lines += (EXAMPLES / f"{name}.jsonl").read_text().splitlines()
    return lines + ERROR_KEEPS_TURN + LATE_EVENT


def test_audit_finds_every_seeded_divergence_of_t3s_rules() -> None:
    lines = _all_lines()
    report = audit_log(lines, t3_sessions(lines))
    found = {t.thread_id: t for t in report.threads}
    # The Codex session projects the same under both rules.
    assert set(found) == {"thr-claude-01", "thr-replay-01", "thr-kept", "thr-late"}
    assert report.differs and report.compared == 5

    # Out of order: T3 accepts the early completion of turn-x, then lets turn-x start and keeps it.
    # After line 2 (relative to the whole input: the codex log's 14 lines come first) our session
    # remembers turn-x as finished, so it can never hold it again.
    replay = found["thr-replay-01"]
    assert replay.differences == {
        "status": {"ours": "error", "theirs": "running"},
        "activeTurnId": {"ours": None, "theirs": "turn-x"},
        "lastError": {"ours": "model overloaded", "theirs": None},
        "updatedAt": {"ours": "2026-11-20T10:00:07.000Z", "theirs": "2026-11-20T10:00:03.000Z"},
    }
    offset = 14 + 9
    assert replay.divergence is not None and replay.divergence["line"] == offset + 2
    assert replay.divergence["event"]["eventId"] == "thr-replay-01-evt-002"
    assert replay.impossible is None

    # runtime.error keeping its turn: impossible, and the line that cleared the turn is named.
    kept = found["thr-kept"]
    assert kept.impossible is not None and "may not hold a turn" in kept.impossible
    assert kept.differences == {"activeTurnId": {"ours": None, "theirs": "T1"}}
    assert kept.divergence is not None and kept.divergence["event"]["eventId"] == "k4"
    assert "impossible" in kept.divergence["basis"]

    # Claude: T3 never settles the abort, and its late completion revives the stopped session.
    # Theirs (ready) is still reachable from ours (stopped), so no line is blamed; ours was last
    # ready after the first line.
    claude = found["thr-claude-01"]
    assert claude.differences["status"] == {"ours": "stopped", "theirs": "ready"}
    assert claude.divergence is None
    assert claude.last_held["status"] == 14 + 1

    # The late event: only updatedAt differs, and ours passed theirs on its first line for good.
    late = found["thr-late"]
    assert set(late.differences) == {"updatedAt"}
    assert late.divergence is not None and late.divergence["event"]["eventId"] == "l1"


def test_cli_exit_codes_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(_all_lines()) + "\n")
    theirs = tmp_path / "theirs.json"
    theirs.write_text(json.dumps(t3_sessions(_all_lines())))
    assert main(["audit", "--log", str(log), "--sessions", str(theirs)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("audit: 4 thread(s) differ of 5 compared (1 impossible)")
    assert "thr-replay-01:\n  status: ours \"error\", theirs \"running\"" in out
    assert "first divergence: line 25, turn.completed turn-x thr-replay-01-evt-002, applied" in out
    assert "thr-codex-01" not in out

    assert main(["audit", "--json", "--log", str(log), "--sessions", str(theirs)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["differing"], data["impossible"], data["lines"]) == (4, 1, len(_all_lines()))

    # Our own replay as theirs (the whole `replay --json` report is accepted): no difference.
    assert main(["replay", "--json", str(log)]) == 0
    (tmp_path / "ours.json").write_text(capsys.readouterr().out)
    assert main(["audit", "--log", str(log), "--sessions", str(tmp_path / "ours.json")]) == 0
    assert capsys.readouterr().out.startswith("audit: 0 thread(s) differ of 5 compared")


def test_threads_on_one_side_only_differ(capsys: pytest.CaptureFixture[str]) -> None:
    lines = (EXAMPLES / "codex_session.jsonl").read_text().splitlines()
    theirs = {**t3_sessions(lines), "thr-ghost": {"status": "error", "activeTurnId": "T9", "lastError": "x"}}
    report = audit_log(lines, theirs)
    (ghost,) = report.threads
    assert ghost.thread_id == "thr-ghost" and ghost.ours is None and ghost.impossible
    report = audit_log(lines, {})
    (missing,) = report.threads
    assert missing.thread_id == "thr-codex-01" and missing.theirs is None


@pytest.mark.parametrize(("text", "where"), [
    ("{not json", "$"),
    ("[]", "$"),
    ('{"t": 3}', "t"),
    ('{"t": {}}', "t.status"),
    ('{"t": {"status": 1}}', "t.status"),
    ('{"t": {"status": "ready", "activeTurnId": 5}}', "t.activeTurnId"),
    ('{"t": {"status": "ready", "updatedAt": "yesterday"}}', "t.updatedAt"),
    ('{"t": {"status": "ready", "openRequests": null}}', "t.openRequests"),
    ('{"t": {"status": "ready", "openRequests": [7]}}', "t.openRequests[0]"),
    ('{"t": {"status": "ready", "openRequests": [{"requestId": true, "kind": "approval"}]}}',
     "t.openRequests[0].requestId"),
    ('{"t": {"status": "ready", "openRequests": [{"requestId": 1}]}}', "t.openRequests[0].kind"),
])
def test_unusable_sessions_are_named_and_exit_2(text: str, where: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AuditError) as exc_info:
        load_sessions(text)
    assert exc_info.value.path == where
    path = tmp_path / "theirs.json"
    path.write_text(text)
    assert main(["audit", "--log", str(EXAMPLES / "codex_session.jsonl"), "--sessions", str(path)]) == 2
    assert where in capsys.readouterr().err


def test_unreadable_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    theirs = tmp_path / "theirs.json"
    theirs.write_text("{}")
    assert main(["audit", "--log", str(tmp_path / "missing.jsonl"), "--sessions", str(theirs)]) == 2
    assert main(["audit", "--log", str(EXAMPLES / "codex_session.jsonl"), "--sessions", str(tmp_path / "no.json")]) == 2
    assert capsys.readouterr().err.count("cannot read") == 2


def test_unknown_status_is_impossible() -> None:
    lines = (EXAMPLES / "codex_session.jsonl").read_text().splitlines()
    (t,) = audit_log(lines, {"thr-codex-01": {"status": "paused", "activeTurnId": None}}).threads
    assert t.impossible is not None and "unknown status 'paused'" in t.impossible


def test_every_session_field_but_the_thread_id_is_compared() -> None:
    # The compared fields come from the one field table: one of theirs changed is one difference.
    lines = (EXAMPLES / "codex_session.jsonl").read_text().splitlines()
    projector = SessionProjector()
    replay_lines(projector, lines)
    (tid,) = list(projector)
    ours = projector[tid].to_wire()
    other = {"pendingTurn": {"turnId": "other"}, "updatedAt": "2099-01-01T00:00:00Z", "status": "error"}
    for f in FIELDS:
        if f.attr == "thread_id":
            continue
        theirs = {**ours, f.wire: other.get(f.wire, "other")}
        (thread,) = audit_log(lines, {tid: theirs}).threads
        assert set(thread.differences) == {f.wire}, f.wire


def test_open_requests_are_compared_as_lists_whose_ids_keep_their_type() -> None:
    # `replay --json` writes openRequests as a list; audit read it as text and refused the report.
    lines = [json.dumps({"eventId": f"e{n}", "type": kind, "provider": "codex", "threadId": "t", "turnId": "A",
                         "createdAt": f"2026-11-20T10:00:0{n}Z", "payload": payload})
             for n, (kind, payload) in enumerate([("turn.started", {}), ("request.opened", {"requestId": 1})])]
    ours = [{"requestId": 1, "kind": "approval"}]
    same = load_sessions(json.dumps({"t": {"status": "running", "activeTurnId": "A", "openRequests": ours}}))
    assert audit_log(lines, same).threads == []
    theirs = [{"requestId": "1", "kind": "approval"}]
    text_id = {"t": {"status": "running", "activeTurnId": "A", "openRequests": theirs}}
    (thread,) = audit_log(lines, load_sessions(json.dumps(text_id))).threads
    assert thread.differences == {"openRequests": {"ours": ours, "theirs": theirs}}
