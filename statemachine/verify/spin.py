"""Model-check the spec with spin: export Promela, build pan, search, and read the answer.

Runs in a temporary directory (never in the repository): `spin -a`, then `gcc` on pan.c, then a
breadth-first search, so that an error trail is a shortest path. pan is built with `-DPRINTF`:
every event it executes prints which spec transition it took, which yields coverage of the spec's
transitions. On an error the trail is replayed (`spin -t`) to recover the events, which become
wire events that `python -m statemachine replay` accepts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..invariants import state_violations
from ..outcome import OutcomeKind
from ..projector import SessionProjector
from ..spec import Spec
from .promela import DEFAULT_TURN_IDS, PromelaError, export_promela
from .report import CheckResult

__all__ = ["PROVIDER", "THREAD", "check_spin", "counterexample_events"]

NAME = "spin"
THREAD = "counterexample"
PROVIDER = "codex"
MODEL = "model.pml"
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

# The search is a few hundred states: compiling pan.c dominates, and -O0 compiles it fastest.
CFLAGS = ("-O0", "-DSAFETY", "-DBFS", "-DPRINTF", "-w")
PAN_ARGS = ("-w18",)  # hash table of 2^18 slots: a few MB, ample for models this size

_EVENT = re.compile(r"^@event (\d+) (\d+) ", re.MULTILINE)
_TAKEN = re.compile(r"^@taken (\d+)$", re.MULTILINE)
_VIOLATED = re.compile(r"^@violated (\S+)$", re.MULTILINE)


class _Failed(Exception):
    """A step of the tool chain failed; the message says which and why."""


def _run(argv: Sequence[str], cwd: Path, timeout: float) -> str:
    try:
        proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise _Failed(f"{argv[0]} did not finish within {timeout:g}s") from None
    except OSError as exc:
        raise _Failed(f"cannot run {argv[0]}: {exc}") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise _Failed(f"{Path(argv[0]).name} exited with {proc.returncode}: {' | '.join(tail)}")
    return proc.stdout


def _count(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    if match is None:
        raise _Failed(f"pan's report has no {pattern!r}")
    return int(match.group(1))


def counterexample_events(spec: Spec, path: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """(trigger, turn) pairs -> wire events: turn 0 names no turn, n names `turn-n`."""
    events: list[dict[str, Any]] = []
    for i, (trigger, turn) in enumerate(path, 1):
        type_, _, variant = trigger.partition("[")
        event_type = spec.event_type(type_)
        if event_type is None:
            raise ValueError(f"trigger {trigger!r} has no event type in the spec")
        payload: dict[str, Any] = {}
        for f in event_type.payload:
            if f.name == event_type.variant_by:
                payload[f.name] = variant.rstrip("]")
            elif f.required:
                # Any valid value will do: no guard reads payload fields.
                payload[f.name] = f.enum[0] if f.enum else (True if f.type == "boolean" else f"{f.name} from spin")
        event: dict[str, Any] = {
            "eventId": f"spin-{i}",
            "type": type_,
            "provider": PROVIDER,
            "threadId": THREAD,
            "createdAt": (_EPOCH + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
        if turn:
            event["turnId"] = f"turn-{turn}"
        event["payload"] = payload
        events.append(event)
    return events


def _reproduces(spec: Spec, events: list[dict[str, Any]]) -> list[str]:
    """The state invariants the real projector breaks at the end of the path (a cross-check)."""
    projector = SessionProjector(spec)
    outcomes = projector.apply_all(events)
    if not outcomes or outcomes[-1].kind is not OutcomeKind.APPLIED:
        return []
    return state_violations(spec, outcomes[-1].after, frozenset(projector.finished_turns(THREAD)))


def _skipped(started: float, detail: str) -> CheckResult:
    return CheckResult(NAME, False, time.perf_counter() - started, detail=detail, skipped=True)


def check_spin(spec: Spec, *, turn_ids: int = DEFAULT_TURN_IDS, timeout: float = 60.0) -> CheckResult:
    """Exhaustive search of the spec's Promela model; fails on the first violated state invariant."""
    started = time.perf_counter()
    spin = shutil.which("spin")
    if spin is None:
        return _skipped(started, "spin is not installed (Debian/Ubuntu: apt-get install spin)")
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return _skipped(started, "no C compiler to build spin's verifier (Debian/Ubuntu: apt-get install gcc)")

    def failed(detail: str, covered: dict[str, int] | None = None) -> CheckResult:
        return CheckResult(NAME, False, time.perf_counter() - started, covered or {}, detail)

    try:
        model = export_promela(spec, turn_ids=turn_ids)
    except PromelaError as exc:
        return failed(f"cannot export the spec to Promela: {exc}")

    with tempfile.TemporaryDirectory(prefix="statemachine-spin-") as tmp:
        work = Path(tmp)
        (work / MODEL).write_text(model, encoding="utf-8")
        try:
            _run([spin, "-a", MODEL], work, timeout)
            _run([cc, *CFLAGS, "-o", "pan", "pan.c"], work, timeout)
            report = _run(["./pan", *PAN_ARGS], work, timeout)
            errors = _count(r"errors: (\d+)", report)
            covered = {
                "states": _count(r"(\d+) states, stored", report),
                "transitions": _count(r"(\d+) transitions \(= stored\+matched\)", report),
                "depth": _count(r"depth reached (\d+)", report),
                "events": len(spec.triggers) * (turn_ids + 1),
            }
            taken = {int(n) - 1 for n in _TAKEN.findall(report) if int(n) > 0}
            covered["spec_transitions_taken"] = len(taken)
            covered["spec_transitions"] = len(spec.transitions)
            if errors == 0:
                untaken = [t.index for t in spec.transitions if t.index not in taken]
                detail = (
                    f"no assertion violated in {covered['states']} states x {covered['events']} events "
                    f"(turn ids 1..{turn_ids}; lastError, updatedAt, provider and step invariants not modelled)"
                )
                if untaken:
                    detail += f"; spec transitions never taken: {untaken}"
                return CheckResult(NAME, True, time.perf_counter() - started, covered, detail)
            if not (work / f"{MODEL}.trail").is_file():
                return failed(f"pan found {errors} error(s) but wrote no trail", covered)
            trail = _run([spin, "-T", "-t", MODEL], work, timeout)
        except _Failed as exc:
            return failed(str(exc))

    triggers = spec.triggers
    path = [(triggers[int(k)], int(turn)) for k, turn in _EVENT.findall(trail)]
    violated = tuple(dict.fromkeys(_VIOLATED.findall(trail)))
    events = counterexample_events(spec, path)
    labels = ", ".join(f"{trigger}{f'(turn-{turn})' if turn else ''}" for trigger, turn in path)
    detail = f"{', '.join(violated) or 'an assertion'} violated after {len(path)} event(s): {labels}"
    # The path is spin's; say whether the real projector agrees, since the two implement the
    # guard and effect names independently.
    if set(violated) & set(_reproduces(spec, events)):
        detail += "; the projector reproduces it"
    else:
        detail += "; the projector does NOT reproduce it (statemachine.semantics and the Promela rendering disagree)"
    return CheckResult(NAME, False, time.perf_counter() - started, covered, detail, violated, events)
