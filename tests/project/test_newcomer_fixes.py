"""What a newcomer hit first: each test here failed before the fix it names."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
from helpers import Events

import statemachine
from statemachine import (
    INACTIVE_STATUSES,
    OUTCOME_KINDS,
    REJECTION_REASONS,
    STATUSES,
    TURN_STATUSES,
    OutcomeKind,
    RejectionReason,
    SessionProjector,
    SpecError,
    Status,
    builtin_spec,
    load_spec,
)
from statemachine.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SEMANTICS = ROOT / "docs" / "semantics.md"


def _run_into_closed_pipe(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with standard output a pipe whose reader has already gone (`... | head`)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "statemachine", *args], stdout=write_end,
                              stderr=subprocess.PIPE, cwd=cwd, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [
    ["replay", "examples/codex_session.jsonl"],
    ["replay", "--json", "examples/codex_session.jsonl"],
    ["replay", "--trace", "examples/codex_session.jsonl"],
    ["diagram"],
    ["export", "promela"],
    ["docs", "--out", "{tmp}"],
    ["verify", "--skip", "explore", "--skip", "induction", "--skip", "agreement", "--skip", "spin"],
    ["timeline", "examples/codex_session.jsonl"],
    ["audit", "--log", "examples/codex_session.jsonl", "--sessions", "{tmp}/theirs.json"],
    ["--help"],
    ["--version"],
], ids=lambda a: " ".join(a[:2]))
def test_a_closed_standard_output_ends_quietly(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "theirs.json").write_text("{}")
    proc = _run_into_closed_pipe([a.replace("{tmp}", str(tmp_path)) for a in args], ROOT)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert b"BrokenPipeError" not in proc.stderr, proc.stderr.decode()
    assert proc.returncode in (0, 141), proc.stderr.decode()


def test_replay_json_counts_malformed_lines_with_the_outcomes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    log = tmp_path / "log.jsonl"
    ev = Events()
    log.write_text(json.dumps(ev("session.started")) + "\n{broken\n" + json.dumps({"eventId": "x"}) + "\n")
    assert main(["replay", "--json", str(log)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["outcomes"] == {"applied": 1, "ignored": 0, "duplicate": 0, "rejected": 0, "forgotten": 0,
                                "malformed": 2}


@pytest.mark.parametrize("name", ["x.jpg", "x.txt", "lifecycle.svg.bak"])
def test_diagram_refuses_an_unknown_extension(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / name
    assert main(["diagram", "-o", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert "unknown extension" in err and ".mmd" in err and ".svg" in err


def test_diagram_still_writes_mermaid_to_a_known_extension_or_none(tmp_path: Path) -> None:
    for name in ("x.mmd", "noext"):
        assert main(["diagram", "-o", str(tmp_path / name)]) == 0
        assert (tmp_path / name).read_text().startswith(("stateDiagram", "---", "%%"))


def test_usage_names_the_console_script_or_the_module(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay"])  # the console script's entry point: `session-lifecycle`
    err = capsys.readouterr().err
    assert err.startswith("usage: session-lifecycle replay")
    assert "python -m statemachine" not in err
    proc = subprocess.run([sys.executable, "-m", "statemachine", "replay"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: python -m statemachine replay")
    script = Path(sys.executable).with_name("session-lifecycle")
    if script.exists():  # the installed console script itself (scripts/setup.sh installs it)
        proc = subprocess.run([str(script), "replay"], capture_output=True, text=True, timeout=60)
        assert (proc.returncode, proc.stderr.split(" replay")[0]) == (2, "usage: session-lifecycle")


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"session-lifecycle {statemachine.__version__}"


def test_every_subcommand_has_a_description() -> None:
    parser = build_parser()
    actions = [a for a in parser._actions if a.dest == "command"]  # argparse keeps subparsers here
    choices: dict[str, Any] = actions[0].choices  # type: ignore[assignment]
    assert {"replay", "verify", "export", "diagram", "docs", "timeline", "audit"} <= set(choices)
    for name, sub in choices.items():
        assert sub.description and len(sub.description) > 30, name
        assert sub.description.split()[0] in sub.format_help()


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_an_empty_spec_says_so(text: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as exc_info:
        load_spec(path)
    assert exc_info.value.message == "the spec is empty"
    assert exc_info.value.path == "$"
    assert "None" not in str(exc_info.value)


def test_semantics_page_cites_nothing_a_reader_cannot_look_up() -> None:
    text = SEMANTICS.read_text()
    for phrase in ("part B", "part A", "case C", "(C9)", "(C7)"):
        assert phrase not in text, phrase
    for n in range(1, 8):
        assert f"bug {n}" not in text and f"bugs {n}" not in text, n


def test_outcome_to_wire() -> None:
    ev = Events()
    projector = SessionProjector()
    projector.apply(ev("session.started"))
    started = ev("turn.started", "T1")
    wire = projector.apply(started).to_wire()
    assert wire == {
        "kind": "applied", "reason": None, "eventId": started["eventId"], "threadId": "thread-1",
        "type": "turn.started", "session": projector["thread-1"].to_wire(),
    }
    rejected = projector.apply(ev("turn.completed", "T2")).to_wire()
    assert (rejected["kind"], rejected["reason"]) == ("rejected", "other_turn_active")
    json.dumps(rejected)  # JSON as is


from statemachine.core.clock import CREATED_IN_FUTURE  # noqa: E402


def _possible_rejections() -> set[str]:
    spec = builtin_spec()
    reasons = {g.rejects_as for g in spec.guards.values()} | {CREATED_IN_FUTURE}
    for status in spec.status_names:
        if any(not any(status in t.sources for t in spec.transitions_for(trig)) for trig in spec.triggers):
            reasons.add(f"invalid_in_{status}")
    return reasons


def test_vocabulary_equals_the_builtin_spec() -> None:
    spec = builtin_spec()
    assert STATUSES == spec.status_names == get_args(Status)
    assert set(TURN_STATUSES) == set(spec.turn_statuses)
    assert set(INACTIVE_STATUSES) == set(spec.inactive_statuses)
    assert set(REJECTION_REASONS) == _possible_rejections() == set(get_args(RejectionReason))
    assert tuple(k.value for k in OutcomeKind) == OUTCOME_KINDS


def test_async_observers_are_refused_with_a_clear_error() -> None:
    projector = SessionProjector()

    async def on_outcome(outcome: object) -> None:
        pass

    class AsyncCallable:
        async def __call__(self, outcome: object) -> None:
            pass

    for observer in (on_outcome, AsyncCallable(), functools.partial(on_outcome)):
        with pytest.raises(TypeError, match="async"):
            projector.subscribe(observer)
    assert not projector._observers
    # A plain function that hands the outcome to a loop is the supported way.
    seen: list[str] = []
    loop = asyncio.new_event_loop()
    try:
        projector.subscribe(lambda o: loop.call_soon(seen.append, o.kind.value))
        projector.apply(Events()("session.started"))
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    assert seen == ["applied"]


def test_the_license_is_the_mit_license_the_package_declares() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 agent-session-lifecycle contributors\n")
    assert "Permission is hereby granted, free of charge" in text and 'THE SOFTWARE IS PROVIDED "AS IS"' in text
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
