"""`python -m statemachine replay`: output, JSON shape, exit codes, error handling, streaming."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Events, jsonl, stamp

from statemachine import SessionProjector
from statemachine.cli.main import main
from statemachine.replay.lines import replay_lines
from statemachine.verify.mutate import mutant_spec_text

ROOT = Path(__file__).resolve().parents[2]
MUTANT_A = ROOT / "specs" / "mutants" / "a_seed_ready_keeps_turn.yaml"
SESSION_KEYS = {"threadId", "status", "activeTurnId", "lastError", "providerName", "updatedAt",
                "pendingTurn", "awaiting", "openRequests"}


def run(*args: str, stdin: bytes | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([sys.executable, "-m", "statemachine", *args], input=stdin, capture_output=True,
                          cwd=cwd, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    return proc


def one_json_object(stdout: bytes) -> dict[str, Any]:
    """stdout holds exactly one JSON object and nothing else."""
    text = stdout.decode("utf-8")
    data, end = json.JSONDecoder().raw_decode(text)
    assert text[end:].strip() == ""
    assert isinstance(data, dict)
    return data


def assert_shape(data: dict[str, Any]) -> None:
    assert list(data) == ["sessions", "outcomes", "rejected", "errors"]
    for tid, session in data["sessions"].items():
        assert set(session) == SESSION_KEYS
        assert session["threadId"] == tid
    assert set(data["outcomes"]) == {"applied", "ignored", "duplicate", "rejected", "forgotten", "malformed"}
    assert all(isinstance(n, int) for n in data["outcomes"].values())
    for r in data["rejected"]:
        assert set(r) == {"line", "eventId", "reason"}
    for e in data["errors"]:
        assert set(e) == {"line", "error"}


def mixed_log() -> tuple[str, list[dict[str, Any]]]:
    """Two threads; every outcome kind; line 5 names another turn (rejected), line 7 redelivers 2."""
    a, b = Events("thr-a", "codex"), Events("thr-b", "claudeAgent")
    events = [
        a("session.started"),                              # 1 applied: ready
        a("turn.started", "T1"),                           # 2 applied: running/T1
        b("turn.started", "U1"),                           # 3 applied: running/U1
        a("item.started", "T1"),                           # 4 ignored
        a("turn.completed", "T2"),                         # 5 rejected: another turn is active
        b("runtime.error", "U1", message="model overloaded"),  # 6 applied: error/null
    ]
    events.append(dict(events[1]))                          # 7 duplicate
    return jsonl(events), events


# Expected from part B: thr-a running T1 (the completion named another turn); thr-b error with no turn.
MIXED_SESSIONS = {
    "thr-a": {"status": "running", "activeTurnId": "T1", "lastError": None, "providerName": "codex"},
    "thr-b": {"status": "error", "activeTurnId": None, "lastError": "model overloaded", "providerName": "claudeAgent"},
}


def test_json_output_shape_and_values(tmp_path: Path) -> None:
    text, events = mixed_log()
    log = tmp_path / "log.jsonl"
    log.write_text(text)
    proc = run("replay", "--json", str(log))
    assert proc.returncode == 0
    assert proc.stderr == b""
    data = one_json_object(proc.stdout)
    assert_shape(data)
    assert {tid: {k: s[k] for k in MIXED_SESSIONS[tid]} for tid, s in data["sessions"].items()} == MIXED_SESSIONS
    assert data["sessions"]["thr-a"]["updatedAt"] == events[1]["createdAt"]
    assert data["outcomes"] == {"applied": 4, "ignored": 1, "duplicate": 1, "rejected": 1, "forgotten": 0,
                                "malformed": 0}
    assert data["rejected"] == [{"line": 5, "eventId": events[4]["eventId"], "reason": "other_turn_active"}]
    assert data["errors"] == []


def test_human_output_names_sessions_rejections_and_malformed_lines(tmp_path: Path) -> None:
    text, events = mixed_log()
    log = tmp_path / "log.jsonl"
    log.write_text(text + "{not json\n")
    proc = run("replay", str(log))
    assert proc.returncode == 1
    out = proc.stdout.decode()
    line_a = next(line for line in out.splitlines() if line.startswith("thr-a"))
    assert "running" in line_a and "T1" in line_a and "codex" in line_a
    line_b = next(line for line in out.splitlines() if line.startswith("thr-b"))
    assert "error" in line_b and "model overloaded" in line_b
    assert "4 applied" in out and "1 ignored" in out and "1 duplicate" in out and "1 rejected" in out
    assert "1 malformed" in out
    assert any("line 5" in line and events[4]["eventId"] in line and "other_turn_active" in line
               for line in out.splitlines())
    assert any(line.startswith("line 8") and "malformed" in line for line in out.splitlines())


def test_stdin_dash_reads_standard_input() -> None:
    text, _ = mixed_log()
    proc = run("replay", "--json", "-", stdin=text.encode())
    assert proc.returncode == 0
    data = one_json_object(proc.stdout)
    assert_shape(data)
    assert data["sessions"]["thr-a"]["activeTurnId"] == "T1"
    assert data["outcomes"]["duplicate"] == 1


def test_empty_input_and_blank_lines() -> None:
    proc = run("replay", "--json", "-", stdin=b"")
    assert proc.returncode == 0
    assert one_json_object(proc.stdout) == {
        "sessions": {},
        "outcomes": {"applied": 0, "ignored": 0, "duplicate": 0, "rejected": 0, "forgotten": 0, "malformed": 0},
        "rejected": [], "errors": [],
    }
    ev = Events()
    proc = run("replay", "--json", "-", stdin=f"\n  \n{json.dumps(ev('session.started'))}\n\n".encode())
    assert proc.returncode == 0
    data = one_json_object(proc.stdout)
    assert data["outcomes"]["applied"] == 1
    assert data["errors"] == []


# Malformed lines: each is reported with its line number, skipped, and the rest still applies.
MALFORMED_LINES: dict[str, bytes] = {
    "invalid-json": b"{not json",
    "truncated": b'{"eventId": "x", "type": "turn.sta',
    "binary": bytes(range(256)).replace(b"\n", b""),
    "nul-bytes": b"\x00\x00\x00",
    "not-an-object": b"[1, 2, 3]",
    "missing-field": json.dumps({"eventId": "m", "type": "turn.started", "provider": "codex",
                                 "createdAt": stamp(0)}).encode(),
    "unknown-state": json.dumps(Events()("session.state.changed", state="paused")).encode(),
    "deep-nesting": b"[" * 100_000,
}


@pytest.mark.parametrize("name", sorted(MALFORMED_LINES))
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "human"])
def test_a_malformed_line_exits_1_and_the_rest_still_applies(tmp_path: Path, name: str, as_json: bool) -> None:
    ev = Events("thr-m")
    good = [ev("session.started"), ev("turn.started", "T1")]
    log = tmp_path / "log.jsonl"
    log.write_bytes(jsonl(good[:1]).encode() + MALFORMED_LINES[name] + b"\n" + jsonl(good[1:]).encode())
    proc = run("replay", *(["--json"] if as_json else []), str(log))
    assert proc.returncode == 1
    if as_json:
        data = one_json_object(proc.stdout)
        assert_shape(data)
        assert [e["line"] for e in data["errors"]] == [2]
        assert data["outcomes"]["applied"] == 2
        assert data["sessions"]["thr-m"]["status"] == "running"
        assert data["sessions"]["thr-m"]["activeTurnId"] == "T1"
    else:
        assert b"line 2" in proc.stdout


def test_the_error_names_the_field(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(MALFORMED_LINES["unknown-state"] + b"\n" + MALFORMED_LINES["missing-field"] + b"\n")
    data = one_json_object(run("replay", "--json", str(log)).stdout)
    assert "payload.state" in data["errors"][0]["error"]
    assert "threadId" in data["errors"][1]["error"]


def test_a_wholly_binary_file_exits_1_without_a_traceback(tmp_path: Path) -> None:
    log = tmp_path / "garbage.bin"
    log.write_bytes(bytes((i * 7919) % 256 for i in range(20_000)))
    for args in (["--json"], []):
        proc = run("replay", *args, str(log))
        assert proc.returncode == 1
    assert_shape(one_json_object(run("replay", "--json", str(log)).stdout))


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "human"])
def test_strange_strings_print_without_a_traceback(tmp_path: Path, as_json: bool) -> None:
    # JSON may carry any code point. Control characters and line separators are text like any
    # other; a NUL or a lone surrogate is refused at the parser, naming the field (no store could
    # keep it: docs/reliability.md).
    log = tmp_path / "log.jsonl"
    events = [
        {"eventId": "e1", "type": "session.started", "provider": "p\u2028", "threadId": "t\u00e9",
         "createdAt": stamp(1), "payload": {}},
        {"eventId": "e2\n", "type": "runtime.error", "provider": "p", "threadId": "t\u00e9",
         "createdAt": stamp(2), "turnId": "T\u2028", "payload": {"message": "\u001b[31m"}},
        {"eventId": "e\u0000", "type": "turn.aborted", "provider": "p", "threadId": "t\u00e9",
         "createdAt": stamp(3), "turnId": "T", "payload": {"reason": "x"}},
        {"eventId": "e4", "type": "turn.aborted", "provider": "p", "threadId": "t\ud800",
         "createdAt": stamp(4), "turnId": "T", "payload": {"reason": "x"}},
        {"eventId": "e5", "type": "turn.aborted", "provider": "p", "threadId": "t\u00e9",
         "createdAt": stamp(5), "turnId": "\ud83d", "payload": {"reason": "x"}},
    ]
    # Written by hand: json.dumps would escape the backslashes this test wants as JSON escapes.
    log.write_text("".join(json.dumps(e).replace("\\\\", "\\") + "\n" for e in events))
    proc = run("replay", *(["--json"] if as_json else []), str(log))
    assert proc.returncode == 1, proc.stderr  # malformed lines
    assert b"Traceback" not in proc.stderr
    if as_json:
        data = one_json_object(proc.stdout)
        assert data["sessions"]["t\u00e9"]["status"] == "error"
        assert data["sessions"]["t\u00e9"]["lastError"] == "\x1b[31m"
        assert [(e["line"], e["error"]) for e in data["errors"]] == [
            (3, "eventId: holds a NUL character"),
            (4, "threadId: holds a lone surrogate (not Unicode text)"),
            (5, "turnId: holds a lone surrogate (not Unicode text)"),
        ]
    else:
        assert "t\u00e9: error" in proc.stdout.decode()


@pytest.mark.parametrize(
    "args",
    [
        ["replay", "{missing}"],
        ["replay", "--json", "{missing}"],
        ["replay", "{dir}"],
        ["replay"],
        ["replay", "--bogus", "{log}"],
        ["replay", "{log}", "extra"],
        ["replay", "--spec"],
        ["nosuchcommand"],
        [],
        ["replay", "--spec", "{missing}", "{log}"],
        ["replay", "--spec", "{dir}", "{log}"],
        ["replay", "--spec", "{log}", "{log}"],
        ["replay", "--json", "--spec", "{binary}", "{log}"],
    ],
    ids=["missing-file", "missing-file-json", "directory", "no-file", "unknown-option", "extra-argument",
         "spec-without-value", "unknown-command", "no-command", "missing-spec", "spec-is-directory",
         "spec-not-a-spec", "spec-binary"],
)
def test_exit_2_when_the_command_cannot_run(tmp_path: Path, args: list[str]) -> None:
    ev = Events()
    log = tmp_path / "log.jsonl"
    log.write_text(jsonl([ev("session.started")]))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    names = {"missing": str(tmp_path / "missing.jsonl"), "dir": str(tmp_path), "log": str(log),
             "binary": str(binary)}
    proc = run(*(a.format(**names) for a in args))
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert proc.stderr.strip() != b""


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_exit_2_when_the_file_is_not_readable(tmp_path: Path) -> None:
    log = tmp_path / "secret.jsonl"
    log.write_text(jsonl([Events()("session.started")]))
    log.chmod(0)
    proc = run("replay", "--json", str(log))
    assert proc.returncode == 2
    assert proc.stdout == b""


def test_spec_option_runs_another_lifecycle(tmp_path: Path) -> None:
    # Mutant a brings back the seed bug: `ready` keeps the turn. The built-in spec clears it.
    ev = Events("thr-x")
    log = tmp_path / "log.jsonl"
    log.write_text(jsonl([ev("turn.started", "T"), ev("session.state.changed", state="ready")]))
    builtin = one_json_object(run("replay", "--json", str(log)).stdout)["sessions"]["thr-x"]
    spec = tmp_path / "mutant.yaml"
    spec.write_text(mutant_spec_text(MUTANT_A))
    proc = run("replay", "--json", "--spec", str(spec), str(log))
    assert proc.returncode == 0
    mutant = one_json_object(proc.stdout)["sessions"]["thr-x"]
    assert (builtin["status"], builtin["activeTurnId"]) == ("ready", None)
    assert (mutant["status"], mutant["activeTurnId"]) == ("ready", "T")


def test_a_broken_spec_is_reported_with_file_and_path(tmp_path: Path) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(mutant_spec_text(MUTANT_A).replace("dest: ready", "dest: readyish", 1))
    log = tmp_path / "log.jsonl"
    log.write_text(jsonl([Events()("session.started")]))
    proc = run("replay", "--json", "--spec", str(spec), str(log))
    assert proc.returncode == 2
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert str(spec) in err and "transitions[" in err and "readyish" in err


# -- streaming -------------------------------------------------------------------------------------


def _stream(n: int) -> Iterator[str]:
    """n lines for one thread, in blocks of ten: every outcome kind, a malformed line, a new turn.

    Rejections and malformed lines number far more than the report lists in full, so the test
    also covers the caps on those lists.
    """
    for i in range(n):
        k, turn = i % 10, f"T{i - i % 10}"
        event_id = i - 2 if k == 4 else i
        created = f"2026-11-20T10:{(i // 60_000_000) % 60:02d}:{(i // 1_000_000) % 60:02d}.{i % 1_000_000:06d}Z"
        body = [
            f'"type": "turn.started", "turnId": "{turn}", "payload": {{}}',
            f'"type": "item.started", "turnId": "{turn}", "payload": {{}}',
            f'"type": "turn.completed", "turnId": "other-{i}", "payload": {{}}',
            '"type": "session.state.changed", "payload": {"state": "paused"}',
            # A redelivery of the rejected line before it, re-serialized: still a duplicate.
            '"type": "turn.completed", "payload": {}',
            f'"type": "turn.completed", "turnId": "{turn}", "payload": {{"state": "failed"}}',
        ][k] if k < 6 else f'"type": "session.started", "payload": {{"message": "m{i}"}}'
        yield f'{{"eventId": "e{event_id}", "provider": "codex", "threadId": "t", "createdAt": "{created}", {body}}}\n'


def _peak(n: int) -> tuple[int, dict[str, int]]:
    projector = SessionProjector()
    tracemalloc.start()
    try:
        report = replay_lines(projector, _stream(n))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.error_count == n // 10
    return peak, report.to_json(projector)["outcomes"]


def test_replay_memory_does_not_grow_with_the_number_of_lines() -> None:
    _peak(2_000)  # builds the spec, the compiled table and other one-time caches
    small, small_counts = _peak(10_000)
    large, large_counts = _peak(50_000)
    # Five times the lines: the same sessions, so about the same memory.
    assert large < small * 1.25 + 64 * 1024, (small, large)
    assert large_counts == {k: 5 * v for k, v in small_counts.items()}
    # Per ten lines: start, ignored item, rejected completion, malformed, duplicate, failure, 4 starts.
    assert small_counts == {
        "applied": 6_000, "ignored": 1_000, "duplicate": 1_000, "rejected": 1_000, "forgotten": 0, "malformed": 1_000,
    }


def test_the_cli_streams_its_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    peaks = []
    for n in (10_000, 40_000):
        log = tmp_path / f"log{n}.jsonl"
        with log.open("w") as out:
            out.writelines(_stream(n))
        main(["replay", "--json", str(log)])  # warm-up, and the result below
        data = json.loads(capsys.readouterr().out)
        assert data["outcomes"]["rejected"] == n // 10
        assert len(data["errors"]) == min(n // 10, 1000)
        tracemalloc.start()
        try:
            assert main(["replay", "--json", str(log)]) == 1
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        capsys.readouterr()
    small, large = peaks
    assert large < small * 1.25 + 256 * 1024, peaks
