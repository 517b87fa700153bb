"""Raw provider logs across the commands: the timeline draws them through their adapter, and the
commands that read envelope logs only (the store's resumable replay, the trace) say so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "examples" / "raw"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "statemachine", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_timeline_from_a_raw_log_draws_the_threads_its_replay_gives(tmp_path: Path) -> None:
    page = tmp_path / "raw.html"
    proc = _cli("timeline", "--from", "claude-stream-json", str(RAW / "claude_turns.jsonl"), "-o", str(page))
    assert proc.returncode == 0, proc.stderr
    replay = _cli("replay", "--json", "--from", "claude-stream-json", str(RAW / "claude_turns.jsonl"))
    threads = json.loads(replay.stdout)["sessions"]
    html = page.read_text(encoding="ascii")
    assert threads and all(json.dumps(tid)[1:-1] in html for tid in threads)


def test_timeline_from_the_wrong_format_reports_each_line_and_exits_1(tmp_path: Path) -> None:
    proc = _cli("timeline", "--from", "codex-exec", str(RAW / "acp_turns.jsonl"), "-o", str(tmp_path / "x.html"))
    assert proc.returncode == 1
    assert "line 1: malformed" in proc.stderr and "Traceback" not in proc.stderr


def test_store_and_trace_refuse_a_raw_log_and_say_what_to_do(tmp_path: Path) -> None:
    raw = str(RAW / "codex_exec_turns.jsonl")
    for extra in (["--store", str(tmp_path / "s.db")], ["--trace"]):
        proc = _cli("replay", "--from", "codex-exec", *extra, raw)
        assert proc.returncode == 2, extra
        assert "adapt the raw log first" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s.db").exists()
