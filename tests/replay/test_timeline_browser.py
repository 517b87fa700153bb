"""The timeline page in a real headless Chromium (the Debian `chromium` package), driven over the
DevTools protocol: it loads with no console error and no network request, and its DOM holds the
lanes, bands, turns and marks the log implies. Each test saves a screenshot into its temp dir.

Skipped when chromium is absent, except under CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statemachine.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

websocket = pytest.importorskip("websocket", reason="the dev extra installs websocket-client")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = _chromium()
if CHROMIUM is None:
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is required under CI (apt-get install chromium)", pytrace=False)
    pytest.skip("chromium is not installed", allow_module_level=True)


class Browser:
    """One headless Chromium and one page, over the DevTools protocol (flat sessions)."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1400,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=60, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"id": next(self.ids), "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> None:
        if any(e.get("method") == method for e in self.events):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            self.events.append(reply)
            if reply.get("method") == method:
                return
        raise TimeoutError(method)

    def open(self, page: Path) -> None:
        self.events.clear()
        self.call("Page.navigate", session=True, url=page.resolve().as_uri())
        self.wait_for("Page.loadEventFired")
        assert self.js("document.body.dataset.ready") == "1", "the page's script did not finish"

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def set_value(self, element_id: str, value: str, event: str) -> None:
        """Set a control's value as a user would, and fire the event the page listens to."""
        self.js(f"(e => {{ e.value = {json.dumps(value)}; e.dispatchEvent(new Event({json.dumps(event)})); }})"
                f"(document.getElementById({json.dumps(element_id)}))")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, and every request that left the page."""
        found = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"log: {params['entry'].get('text')}")
            elif method == "Network.requestWillBeSent" and not params["request"]["url"].startswith(("file:", "data:")):
                found.append(f"request: {params['request']['url']}")
        return found

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        if hasattr(self, "ws"):
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield b
    finally:
        b.close()


def threads_in_order(log: Path) -> list[str]:
    """The log's threads, in order of first appearance (the page's lane order)."""
    return list(dict.fromkeys(json.loads(line)["threadId"] for line in log.read_text().splitlines() if line.strip()))


def _page(tmp_path: Path, log: Path, *extra: str) -> Path:
    out = tmp_path / (log.stem + ".html")
    assert main(["timeline", str(log), "-o", str(out), *extra]) in (0, 1)
    return out


def _write_log(path: Path, events: list[dict[str, Any] | str]) -> Path:
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events))
    return path


def _ev(eid: str, type_: str, thread: str, at: str, turn: str | None = None, **payload: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"eventId": eid, "type": type_, "provider": "codex", "threadId": thread,
                         "createdAt": f"2026-11-20T{at}Z", "payload": payload}
    if turn is not None:
        e["turnId"] = turn
    return e


@pytest.mark.parametrize("log", sorted(EXAMPLES.glob("*.jsonl")), ids=lambda p: p.name)
def test_every_example_log_loads_cleanly(browser: Browser, log: Path, tmp_path: Path) -> None:
    browser.open(_page(tmp_path, log))
    browser.screenshot(tmp_path / "timeline.png")
    assert browser.problems() == []
    assert browser.js("[...document.querySelectorAll('.lane')].map(l => l.dataset.thread)") == threads_in_order(log)
    # Each lane ends in a visible band of its final status.
    finals = browser.js("[...document.querySelectorAll('.lane')].map(l => {"
                        " const b = l.querySelectorAll('.band'), last = b[b.length - 1];"
                        " return [last.dataset.status, last.getBoundingClientRect().width]; })")
    replayed = json.loads(subprocess.run(
        [sys.executable, "-m", "statemachine", "replay", "--json", str(log)], capture_output=True, check=False,
        cwd=ROOT).stdout)["sessions"]
    assert [status for status, _ in finals] == [replayed[t]["status"] for t in threads_in_order(log)]
    assert all(width >= 5 for _, width in finals)
    assert (tmp_path / "timeline.png").stat().st_size > 10_000


def test_out_of_order_log_shows_its_rejections_and_duplicates(browser: Browser, tmp_path: Path) -> None:
    browser.open(_page(tmp_path, EXAMPLES / "out_of_order.jsonl"))
    browser.screenshot(tmp_path / "out_of_order.png")
    assert browser.problems() == []
    marks = browser.js("[...document.querySelectorAll('#lanes .mark')]"
                       ".map(m => [m.dataset.kind, +m.dataset.line, m.title])")
    rejected = {line: title for kind, line, title in marks if kind == "rejected"}
    assert sorted(rejected) == [3, 5, 6, 8]  # examples/README.md: the four rejections
    assert "turn_finished" in rejected[3] and "other_turn_active" in rejected[5] and "untargeted" in rejected[6]
    assert sorted(line for kind, line, _ in marks if kind == "duplicate") == [9, 10]
    # Status bands in order: ready, then running (turn-y), then error; one turn bar, for turn-y.
    bands = browser.js("[...document.querySelectorAll('#lanes .band')].map(b => b.dataset.status)")
    assert bands == ["ready", "running", "error"]
    assert browser.js("[...document.querySelectorAll('#lanes .turn')].map(b => b.dataset.turn)") == ["turn-y"]
    assert browser.js("document.querySelector('[data-card=\"rejected\"] b').textContent") == "4"


def test_filters_stale_turns_malformed_lines_and_hostile_strings(browser: Browser, tmp_path: Path) -> None:
    hostile = "</script><script>document.title='pwned'</script><!--"
    log = _write_log(tmp_path / "mixed.jsonl", [
        _ev("a1", "session.started", "thr-slow", "10:00:00"),
        _ev("a2", "turn.started", "thr-slow", "10:01:00", "T1"),
        _ev("b1", "turn.started", "thr-fast", "10:02:00", "A"),
        _ev("b2", "turn.completed", "thr-fast", "10:03:00", "A"),
        _ev("a3", "turn.completed", "thr-slow", "10:25:00", "T1", state="failed", errorMessage=hostile),
        _ev("c1", "turn.started", "thr-stuck", "10:04:00", "Z"),
        _ev("c2", "session.state.changed", "thr-stuck", "10:05:00", state="paused"),
        _ev("b3", "turn.completed", f"thr-fast{hostile}", "10:06:00", "B"),
        "{not json",
        _ev("b4", "turn.completed", "thr-fast", "10:30:00", "A"),
    ])
    browser.open(_page(tmp_path, log))
    browser.screenshot(tmp_path / "mixed.png")
    assert browser.problems() == []
    assert browser.js("document.title") == "Timeline of mixed.jsonl"
    lanes = browser.js("[...document.querySelectorAll('.lane')].map(l => l.dataset.thread)")
    assert lanes == ["thr-slow", "thr-fast", "thr-stuck", f"thr-fast{hostile}"]
    # A gap of 24 min in thr-slow's turn, and thr-stuck's turn still held 26 min at the end.
    stale = browser.js("[...document.querySelectorAll('#lanes .stale')]"
                       ".map(s => [s.closest('.lane').dataset.thread, s.dataset.turn])")
    assert stale == [["thr-slow", "T1"], ["thr-stuck", "Z"]]
    malformed = browser.js("document.querySelector('.lane[data-thread=\"thr-stuck\"] .mark.malformed').title")
    assert "payload.state" in malformed
    assert "naming no thread" in browser.js("document.getElementById('orphans').textContent")
    late = browser.js("document.querySelector('.lane[data-thread=\"thr-fast\"] .mark.rejected').title")
    assert "line 10" in late and "turn_finished" in late
    # Filter by thread text.
    browser.set_value("f-thread", "stuck", "input")
    assert browser.js("[...document.querySelectorAll('.lane')].map(l => l.dataset.thread)") == ["thr-stuck"]
    browser.set_value("f-thread", "", "input")
    # Filter by outcome: only threads with a rejected mark.
    browser.js("""(() => {
        for (const box of document.querySelectorAll('#f-kinds input'))
          { box.checked = box.dataset.kind === 'rejected'; box.dispatchEvent(new Event('change')); }
        const only = document.getElementById('f-only'); only.checked = true; only.dispatchEvent(new Event('change'));
      })()""")
    # (the hostile thread's completion names a turn while none is active: applied, not rejected)
    assert browser.js("[...document.querySelectorAll('.lane')].map(l => l.dataset.thread)") == ["thr-fast"]
    assert browser.js("new Set([...document.querySelectorAll('#lanes .mark')].map(m => m.dataset.kind)).size") == 1
    browser.screenshot(tmp_path / "mixed-filtered.png")
    assert browser.problems() == []


def test_ten_thousand_threads_are_paged(browser: Browser, tmp_path: Path) -> None:
    events: list[dict[str, Any] | str] = []
    for i in range(10_000):
        tid = f"thr-{i:05d}"
        events.append(_ev(f"{tid}-1", "session.started", tid, f"10:{i % 60:02d}:00"))
        events.append(_ev(f"{tid}-2", "turn.started", tid, f"10:{i % 60:02d}:05", "T"))
        if i % 3:
            events.append(_ev(f"{tid}-3", "turn.completed", tid, f"10:{i % 60:02d}:30", "T"))
        if i % 100 == 0:
            events.append(_ev(f"{tid}-4", "turn.completed", tid, f"10:{i % 60:02d}:40", "other"))
    page = _page(tmp_path, _write_log(tmp_path / "many.jsonl", events))
    started = time.monotonic()
    browser.open(page)
    assert time.monotonic() - started < 30
    assert browser.problems() == []
    assert browser.js("document.querySelectorAll('.lane').length") == 50
    assert browser.js("document.getElementById('pager-info').textContent").endswith("of 10000 (page 1/200)")
    browser.js("document.getElementById('next').click()")
    assert browser.js("document.querySelector('.lane').dataset.thread") == "thr-00050"
    browser.set_value("f-status", "running", "change")
    running = len(range(0, 10_000, 3))  # the threads whose turn never completes
    assert browser.js("document.getElementById('pager-info').textContent").endswith(f"of {running} (page 1/67)")
    browser.screenshot(tmp_path / "many.png")


@pytest.mark.parametrize("content", ["", "{broken\n[1]\n"], ids=["empty", "only-malformed"])
def test_a_log_without_events_still_loads_cleanly(browser: Browser, content: str, tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(content)
    browser.open(_page(tmp_path, log))
    assert browser.problems() == []
    assert browser.js("document.querySelectorAll('.lane').length") == 0
    assert browser.js("document.querySelector('#lanes .empty').textContent") == "The log holds no event."
    assert browser.js("document.querySelectorAll('#orphans li').length") == content.count("\n")
