"""statemachine/cli/replay.py (and the --from option it shares with adapt and timeline): what a
newcomer's first mistakes give. A raw log under the wrong --from, a raw log without --from, a
flag that would be ignored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from statemachine.adapters import FORMATS

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "examples" / "raw"
LOG = ROOT / "examples" / "codex_session.jsonl"

# Each fixture's own format, from its name (examples/raw/README.md).
_PREFIXES = {"codex_app_server_": "codex-app-server", "codex_exec_": "codex-exec", "claude_": "claude-stream-json",
             "acp_": "acp"}
FIXTURES = {path: next(f for p, f in _PREFIXES.items() if path.name.startswith(p))
            for path in sorted(RAW.glob("*.jsonl"))}


def run(*args: str, stdin: bytes | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "statemachine", *args], input=stdin, capture_output=True,
                          cwd=cwd, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def test_every_fixture_is_named_after_a_format() -> None:
    assert len(FIXTURES) >= 12 and set(FIXTURES.values()) == set(FORMATS)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_every_wrong_format_pairing_says_so_and_names_the_right_one(fixture: Path) -> None:
    right = FIXTURES[fixture]
    for wrong in FORMATS:
        if wrong == right:
            continue
        proc = run("replay", "--from", wrong, str(fixture))
        assert proc.returncode == 1, (wrong, proc.stdout)
        assert proc.stderr.endswith(f"try --from {right}\n"), (wrong, proc.stderr)
        assert f"is {wrong} output" in proc.stderr


@pytest.mark.parametrize("command", ["adapt", "timeline"])
def test_adapt_and_timeline_say_so_too_and_write_nothing(command: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run(command, "--from", "claude-stream-json", "-o", str(out), str(RAW / "codex_exec_turns.jsonl"))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1].endswith("try --from codex-exec")
    assert not out.exists()


def test_standard_input_under_the_wrong_format_is_named_too() -> None:
    proc = run("replay", "--from", "acp", "-", stdin=(RAW / "claude_turns.jsonl").read_bytes())
    assert proc.returncode == 1
    assert proc.stderr.startswith("replay: standard input: ") and "try --from claude-stream-json" in proc.stderr


def test_the_right_format_and_an_empty_file_say_nothing(tmp_path: Path) -> None:
    for fixture, right in FIXTURES.items():
        if "mid_turn" in fixture.name:
            continue  # ends with a cut line: malformed on purpose
        proc = run("replay", "--from", right, str(fixture))
        assert proc.returncode == 0 and proc.stderr == "", fixture
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert run("replay", "--from", "acp", str(empty)).returncode == 0


def test_a_line_no_format_reads_names_the_formats(tmp_path: Path) -> None:
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"hello": "world"}\n')
    proc = run("replay", "--from", "codex-exec", str(odd))
    assert proc.returncode == 1
    assert f"no format reads its first lines (formats: {', '.join(FORMATS)})" in proc.stderr


@pytest.mark.parametrize("fixture", [RAW / "codex_exec_turns.jsonl", RAW / "claude_turns.jsonl",
                                     RAW / "acp_turns.jsonl", RAW / "codex_app_server_turns.jsonl"],
                         ids=lambda p: p.stem)
def test_a_raw_log_without_from_is_one_hint_not_a_line_per_line(fixture: Path) -> None:
    proc = run("replay", str(fixture))
    assert proc.returncode == 1
    assert proc.stderr == (f"replay: {fixture} holds no lifecycle events but reads as raw "
                           f"{FIXTURES[fixture]} output: give --from {FIXTURES[fixture]}\n")
    assert "is required" not in proc.stdout and len(proc.stdout.splitlines()) == 1  # the counts only
    assert "malformed" in proc.stdout


def test_an_envelope_log_with_bad_lines_still_lists_them(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"eventId": "x"}\nnot json\n')
    proc = run("replay", str(bad))
    assert proc.returncode == 1 and proc.stderr == ""
    assert "line 1: malformed: type: is required" in proc.stdout and "line 2: malformed" in proc.stdout


def test_the_from_help_lists_the_formats() -> None:
    for command in ("replay", "adapt", "timeline"):
        text = " ".join(run(command, "--help").stdout.split())
        assert f"format ({', '.join(FORMATS)})" in text.replace("- ", "-"), command


@pytest.mark.parametrize(("args", "said"), [
    (["--batch", "5"], "--batch only applies with --store URL"),
    (["--log-key", "k"], "--log-key only applies with --store URL"),
    (["--batch", "5", "--log-key", "k"], "--batch and --log-key only apply with --store URL"),
    (["--on-eof", "error"], "--on-eof only applies with --from FORMAT"),
    (["--stream", "part2"], "--stream only applies with --from FORMAT"),
    (["--on-eof", "interrupted", "--stream", "s"], "--on-eof and --stream only apply with --from FORMAT"),
    (["--store", "s.db", "--trace"], "--store cannot be combined with --trace"),
    (["--store", "s.db", "--trace-out", "t.jsonl"], "--store cannot be combined with --trace-out"),
    (["--trace", "--trace-out", "t.jsonl"], "--trace writes the trace to standard output"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_a_flag_that_would_be_ignored_is_an_argparse_error(args: list[str], said: str, tmp_path: Path) -> None:
    proc = run("replay", *args, str(LOG), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("usage: ") and f"replay: error: {said}" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no store, trace or snapshot made


def test_timeline_refuses_adapter_options_without_from(tmp_path: Path) -> None:
    proc = run("timeline", "--on-eof", "leave", "-o", str(tmp_path / "t.html"), str(LOG))
    assert proc.returncode == 2 and "--on-eof only applies with --from FORMAT" in proc.stderr
    assert not (tmp_path / "t.html").exists()


def test_the_defaults_of_the_adapter_options_still_apply() -> None:
    default = run("replay", "--json", "--from", "codex-exec", str(RAW / "codex_exec_mid_turn.jsonl"))
    explicit = run("replay", "--json", "--from", "codex-exec", "--on-eof", "interrupted", "--stream", "",
                   str(RAW / "codex_exec_mid_turn.jsonl"))
    assert default.stdout == explicit.stdout and '"interrupted"' in default.stdout
