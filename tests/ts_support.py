"""Node for the TypeScript and XState tests: a workspace per test module, the type check, one
driver process answering every case, and the explored edges both sides are run on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from statemachine.core.session import Session
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.load import builtin_spec
from statemachine.spec.model import Spec
from statemachine.spec.requirements import builtin_requirements
from statemachine.verify.explore import THREAD, least_form
from statemachine.verify.universe import event_universe

ROOT = Path(__file__).resolve().parent.parent
TS = ROOT / "ts"
BIN = TS / "node_modules" / ".bin"


def require_node() -> None:
    """Skip without Node or the ts/ packages (scripts/setup.sh installs both), but fail under CI."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node (apt-get install nodejs npm)")
    for tool in ("tsc", "tsx"):
        if not (BIN / tool).exists():
            missing.append(f"ts/node_modules/.bin/{tool} (npm ci --prefix ts)")
    if not (TS / "node_modules" / "xstate").is_dir():
        missing.append("xstate (npm ci --prefix ts)")
    if not missing:
        return
    message = "missing: " + ", ".join(missing) + "; bash scripts/setup.sh installs them"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def canonical(value: Any) -> str:
    """What the drivers write (ts/drivers/canonical.ts), for the same value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def workspace(directory: Path, files: Mapping[str, str], drivers: tuple[str, ...]) -> Path:
    """A directory tsc and tsx run in: `drivers` (from ts/drivers, with what they share),
    ts/tsconfig.json, the packages, and `files`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "node_modules").symlink_to(TS / "node_modules", target_is_directory=True)
    (directory / "package.json").write_text('{"type": "module"}\n')
    shutil.copy(TS / "tsconfig.json", directory / "tsconfig.json")
    for driver in ("canonical.ts", "io.ts", *drivers):
        shutil.copy(TS / "drivers" / driver, directory / driver)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def typecheck(directory: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """`tsc --strict --noEmit` over the workspace (or only `files`, with the same options)."""
    if files:
        config = json.loads((directory / "tsconfig.json").read_text())
        config.pop("include", None)
        config["files"] = list(files)
        (directory / "tsconfig.only.json").write_text(json.dumps(config))
        project = directory / "tsconfig.only.json"
    else:
        project = directory
    return subprocess.run([str(BIN / "tsc"), "-p", str(project), "--strict", "--noEmit", "--pretty", "false"],
                          capture_output=True, text=True, timeout=300, cwd=directory)


class Driver:
    """One Node process running a driver; `ask` sends one case and returns its answer line."""

    def __init__(self, directory: Path, driver: str) -> None:
        self.process = subprocess.Popen([str(BIN / "tsx"), str(directory / driver)], cwd=directory,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, encoding="utf-8")

    def ask(self, request: Mapping[str, Any]) -> str:
        stdin: IO[str] | None = self.process.stdin
        stdout: IO[str] | None = self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(request, ensure_ascii=True) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            self.process.wait(timeout=30)
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"the driver stopped (exit {self.process.returncode}): {stderr[-2000:]}")
        assert "driverError" not in line[:20], line[:4000]
        return line.rstrip("\n")

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            for stream in (self.process.stdout, self.process.stderr):
                if stream:
                    stream.close()


State = tuple[Session, frozenset[str]]


@dataclass
class Explored:
    """The explorer's walk, written out: the universe's wire events (one eventId, one thread, as
    `statemachine.verify.explore` uses them), and each state it leaves with what every event did."""

    wires: list[dict[str, Any]]
    states: list[State | None]  # None: a thread before its first event
    rows: list[list[dict[str, Any]]]  # per state, per event: {"outcome", "finished"} (or the edge data)


def explored_builtin() -> Explored:
    """`explored` for the built-in spec and requirements, walked once per process (both test
    modules use it)."""
    global _BUILTIN
    if _BUILTIN is None:
        spec = builtin_spec()
        _BUILTIN = explored(spec, builtin_requirements(spec))
    return _BUILTIN


_BUILTIN: Explored | None = None


def explored(spec: Spec, requirements: Any = None) -> Explored:
    """Breadth-first over the states `explore` visits (kept in their least form under renamings of
    turn ids, as it keeps them), through the public projector API; every edge recorded as the
    outcome's wire form and the finished turns after it."""
    universe = event_universe(spec, requirements)
    wires = [t.wire("e", THREAD) for t in universe]
    seeded = SessionProjector(spec, max_clock_skew=None)
    events = [seeded.parse(w) for w in wires]
    states: list[State | None] = []
    rows: list[list[dict[str, Any]]] = []
    known: set[State] = set()
    least: dict[State, State] = {}
    frontier: deque[State | None] = deque([None])
    while frontier:
        state = frontier.popleft()
        states.append(state)
        row = []
        for wire, event in zip(wires, events, strict=True):
            if state is None:
                projector = SessionProjector(spec, max_clock_skew=None)
                outcome = projector.apply(wire)
            else:
                projector = seeded
                projector.seed(state[0], finished_turns=sorted(state[1]))
                outcome = projector.apply(event)
            finished = projector.finished_turns(THREAD)
            row.append({"outcome": outcome.to_wire(), "finished": list(finished),
                        "kind": outcome.kind.value, "transition": outcome.transition, "before": outcome.before,
                        "after": outcome.after})
            reached = (outcome.after, frozenset(finished))
            nxt = least.get(reached)
            if nxt is None:  # many edges reach the same state: its least form once
                nxt = least[reached] = least_form(reached)[0]
            if nxt not in known:
                known.add(nxt)
                frontier.append(nxt)
        rows.append(row)
    return Explored(wires, states, rows)


def state_wire(state: State | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {"session": state[0].to_wire(), "finished": sorted(state[1])}


def lines_of(path: Path) -> Iterator[str]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield line
