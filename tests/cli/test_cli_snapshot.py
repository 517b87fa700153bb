"""`replay --snapshot-in/--snapshot-out`: a log processed in parts ends where the whole log ends."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from statemachine import SessionProjector
from statemachine.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.jsonl"))


def one_log() -> list[str]:
    """Every example log, one after the other: several threads, rejections and duplicates."""
    lines = [line for path in EXAMPLES for line in path.read_text(encoding="utf-8").splitlines(keepends=True)]
    assert len(lines) > 20
    return lines


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_parts_end_where_the_whole_log_ends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = one_log()
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(lines), encoding="utf-8")
    code, out, _ = run(capsys, "replay", "--json", str(whole), "--snapshot-out", str(tmp_path / "whole.json"))
    assert code == 0
    expected_sessions = json.loads(out)["sessions"]

    snapshot = tmp_path / "state.json"
    cuts = [0, 7, len(lines) // 2, len(lines) - 3, len(lines)]
    counts: dict[str, int] = {}
    for n, (start, end) in enumerate(itertools.pairwise(cuts)):
        part = tmp_path / f"part{n}.jsonl"
        part.write_text("".join(lines[start:end]), encoding="utf-8")
        args = ["replay", "--json", str(part), "--snapshot-out", str(snapshot)]
        if n:
            args += ["--snapshot-in", str(snapshot)]  # the same file in and out
        code, out, err = run(capsys, *args)
        assert (code, err) == (0, "")
        for kind, count in json.loads(out)["outcomes"].items():
            counts[kind] = counts.get(kind, 0) + count
    assert json.loads(out)["sessions"] == expected_sessions
    assert json.loads(snapshot.read_text()) == json.loads((tmp_path / "whole.json").read_text())
    assert sum(counts.values()) == len(lines)
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed into place


def test_the_snapshot_written_is_one_restore_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "s.json"
    assert run(capsys, "replay", str(EXAMPLES[0]), "--snapshot-out", str(out_file))[0] == 0
    p = SessionProjector.restore(out_file.read_bytes())
    assert len(p) >= 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "bad snapshot"),
        ('{"format": "session-lifecycle-snapshot", "version": 9}', "version: unsupported snapshot version 9"),
        ('{"format": "session-lifecycle-snapshot", "version": 1, "spec": "session-lifecycle", '
         '"maxEventIds": 4, "maxFinishedTurns": 4, "threads": [{"session": {"threadId": "t", "status": "odd", '
         '"providerName": null, "activeTurnId": null, "lastError": null, "updatedAt": null}, '
         '"seenEventIds": [], "finishedTurns": []}]}', "threads[0].session.status: unknown status 'odd'"),
    ],
)
def test_a_bad_snapshot_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "replay", str(EXAMPLES[0]), "--snapshot-in", str(bad))
    assert code == 2 and out == ""
    assert message in err and str(bad) in err
    assert "Traceback" not in err


def test_unreadable_and_unwritable_snapshots_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "replay", str(EXAMPLES[0]), "--snapshot-in", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read snapshot" in err
    code, out, err = run(capsys, "replay", str(EXAMPLES[0]), "--snapshot-out", str(tmp_path / "no" / "dir.json"))
    assert code == 2 and "cannot write snapshot" in err and out == ""


def test_from_the_command_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "statemachine", "replay", str(EXAMPLES[0]), "--snapshot-in", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"replay: bad snapshot {bad}: snapshot: must be a JSON object, got list"
