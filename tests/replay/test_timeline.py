"""`timeline` without a browser: the data the page embeds, its escaping, the stale-turn rule, and
the command's exit codes. tests/replay/test_timeline_browser.py loads the pages in Chromium."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from statemachine.cli.main import main
from statemachine.observing.timeline import KINDS, render_timeline, timeline_data

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _ev(eid: str, type_: str, thread: str, at: str, turn: str | None = None, **payload: Any) -> str:
    e: dict[str, Any] = {"eventId": eid, "type": type_, "provider": "codex", "threadId": thread,
                         "createdAt": f"2026-11-20T{at}Z", "payload": payload}
    if turn is not None:
        e["turnId"] = turn
    return json.dumps(e) + "\n"


def _embedded(page: str) -> Any:
    match = re.search(r'<script type="application/json" id="timeline-data">(.*?)</script>', page, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_the_page_is_self_contained() -> None:
    page = render_timeline((EXAMPLES / "codex_session.jsonl").read_bytes().splitlines(keepends=True))
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(?:src|href)\s*=", page)  # nothing to fetch: no script, style or image links
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert page.isascii()


def test_hostile_event_strings_cannot_leave_the_data_element() -> None:
    hostile = "</script><script>alert(1)</script><!--&amp;\u2028\u2029\ufeff"
    lines = [_ev("e1", "turn.started", f"t{hostile}", "10:00:00", hostile),
             _ev("e2", "runtime.error", f"t{hostile}", "10:00:01", hostile, message=hostile)]
    page = render_timeline(lines, title=hostile)
    assert page.count("</script>") == 2  # the data element's and the script's, nothing else
    assert "<!--" not in page and "alert(1)</script>" not in page
    data = _embedded(page)
    (thread,) = data["threads"]
    assert thread["id"] == f"t{hostile}"  # JSON.parse, like json.loads, gets the strings back exactly
    assert thread["error"] == hostile
    assert f"<title>{'&lt;/script&gt;'}" in page


def test_out_of_order_data_matches_the_examples_readme() -> None:
    data = timeline_data((EXAMPLES / "out_of_order.jsonl").read_bytes().splitlines(keepends=True))
    (thread,) = data["threads"]
    kinds = [(e[1], KINDS[e[3]], data["reasons"][e[4]] if e[4] >= 0 else None) for e in thread["ev"]]
    assert [(line, why) for line, kind, why in kinds if kind == "rejected"] == [
        (3, "turn_finished"), (5, "other_turn_active"), (6, "untargeted"), (8, "turn_finished")]
    assert [line for line, kind, _ in kinds if kind == "duplicate"] == [9, 10]
    assert data["statuses"][thread["final"]] == "error" and thread["error"] == "model overloaded"
    # Positions never go backwards within a lane, even where createdAt does (the redeliveries).
    xs = [e[0] for e in thread["ev"]]
    assert xs == sorted(xs)
    assert thread["stale"] == []


def test_stale_turns_follow_the_operations_rule() -> None:
    lines = [
        _ev("a1", "turn.started", "slow", "10:00:00", "T1"),
        _ev("a2", "content.delta", "slow", "10:09:00", "T1"),   # an ignored event still counts as activity
        _ev("a3", "content.delta", "slow", "10:19:59", "T1"),   # 10:59 since the last: stale
        _ev("a4", "turn.completed", "slow", "10:20:00", "T1"),
        _ev("b1", "turn.started", "held", "10:05:00", "H"),     # never settles: stale at the log's end
        _ev("c1", "turn.started", "fresh", "10:15:00", "F"),    # held 5 min at the end: not stale
    ]
    data = timeline_data(lines, stale_after=timedelta(minutes=10))
    stale = {t["id"]: t["stale"] for t in data["threads"]}
    ms = 60_000
    assert [(s[1] - s[0], s[2], s[3]) for s in stale["slow"]] == [(10 * ms + 59_000, "T1", False)]
    assert [(s[1] - s[0], s[2], s[3]) for s in stale["held"]] == [(15 * ms, "H", True)]
    assert stale["fresh"] == []
    assert timeline_data(lines, stale_after=timedelta(minutes=16))["threads"][1]["stale"] == []


def test_malformed_lines_are_placed_on_their_thread_when_it_can_be_read() -> None:
    lines = [_ev("a1", "turn.started", "t1", "10:00:00", "T"),
             json.dumps({"eventId": "a2", "threadId": "t1", "type": "turn.aborted", "provider": "codex",
                         "createdAt": "2026-11-20T10:00:05Z", "payload": {}}) + "\n",
             "[1, 2]\n", "{nope\n"]
    data = timeline_data(lines)
    (thread,) = data["threads"]
    last = thread["ev"][-1]
    assert (last[1], KINDS[last[3]], last[7]) == (2, "malformed", "a2")
    assert "payload.reason" in data["reasons"][last[4]]
    assert [line for line, _ in data["orphans"]] == [3, 4]
    assert data["outcomes"]["malformed"] == 3


def test_cli_writes_the_page_and_says_when_it_cannot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.html"
    assert main(["timeline", str(EXAMPLES / "claude_interrupted.jsonl"), "-o", str(out)]) == 0
    data = _embedded(out.read_text())
    assert data["source"] == "claude_interrupted.jsonl" and [t["id"] for t in data["threads"]] == ["thr-claude-01"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    assert main(["timeline", str(bad), "-o", str(out)]) == 1  # written, but a line was malformed
    assert _embedded(out.read_text())["orphans"] == [[1, _embedded(out.read_text())["orphans"][0][1]]]
    assert main(["timeline", str(tmp_path / "missing.jsonl"), "-o", str(out)]) == 2
    assert main(["timeline", str(bad), "-o", str(tmp_path / "no" / "dir.html")]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "cannot write" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["timeline", str(bad), "--stale-after", "-5"])
    assert exit_info.value.code == 2


def test_cli_reads_standard_input(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    fake = io.TextIOWrapper(io.BytesIO((EXAMPLES / "codex_session.jsonl").read_bytes()))
    monkeypatch.setattr(sys, "stdin", fake)
    out = tmp_path / "stdin.html"
    assert main(["timeline", "-", "-o", str(out), "--title", "Codex run"]) == 0
    page = out.read_text()
    assert "<title>Codex run</title>" in page and _embedded(page)["source"] == "standard input"


def _title(page: str) -> str:
    match = re.search(r"<title>(.*?)</title>", page, re.S)
    assert match is not None
    return match.group(1)


@pytest.mark.parametrize("title", ["{{DATA}}", "{{TITLE}}", "x {{DATA}} {{TITLE}} y"])
def test_a_title_holding_a_placeholder_is_text_not_a_second_fill(title: str) -> None:
    page = render_timeline([_ev("e1", "turn.started", "thr-1", "10:00:00", "T1")], title=title)
    assert _title(page) == title  # the placeholder itself, not the data pasted into the title
    assert page.count('id="timeline-data"') == 1
    assert _embedded(page)["threads"][0]["id"] == "thr-1"


def test_a_non_ascii_or_controlling_title_is_escaped_not_a_traceback(tmp_path: Path) -> None:
    out = tmp_path / "t.html"
    assert main(["timeline", str(EXAMPLES / "codex_session.jsonl"), "-o", str(out),
                 "--title", "naïve \x1b[2J <b>"]) == 0
    assert _title(out.read_text(encoding="ascii")) == "na&#239;ve \\x1b[2J &lt;b&gt;"


@pytest.mark.parametrize("value", ["1e300", "nan", "inf", "-inf", "0", str(10 * 365 * 86400 + 1)])
def test_stale_after_out_of_range_is_an_argument_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["timeline", str(EXAMPLES / "codex_session.jsonl"), "--stale-after", value])
    assert exit_info.value.code == 2
    assert "argument --stale-after" in capsys.readouterr().err
