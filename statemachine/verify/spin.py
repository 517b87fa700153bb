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

from statemachine.engine.machine import vocabulary_of
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.invariants import state_violations
from statemachine.spec.model import Spec
from statemachine.spec.requirements import Requirements
from statemachine.verify.promela import (
    DEFAULT_TURN_IDS,
    PromelaError,
    claim_name,
    export_promela,
    option_field,
    request_id,
    request_id_field,
    requirement_coverage,
    violation_names,
)
from statemachine.verify.report import CheckResult

__all__ = ["PROVIDER", "THREAD", "check_spin", "counterexample_events"]

NAME = "spin"
THREAD = "counterexample"
PROVIDER = "codex"
MODEL = "model.pml"
TEMPORAL_MODEL = "temporal.pml"
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

# The search is a few hundred states: compiling pan.c dominates, and -O0 compiles it fastest.
CFLAGS = ("-O0", "-DSAFETY", "-DBFS", "-DPRINTF", "-w")
# LTL claims need the nested depth-first search (acceptance cycles): no -DSAFETY, no -DBFS.
# Nor -DPRINTF: only the trail's replay (`spin -t`) is read, and the search would print every
# event it executes (tens of MB per claim).
LTL_CFLAGS = ("-O0", "-w")
PAN_ARGS = ("-w18",)  # hash table of 2^18 slots: a few MB, ample for models this size
# The temporal model's product with a claim holds about 1.7 million states (the open requests
# multiply it): 2^20 slots (8 MB) keep the hash chains short.
LTL_PAN_ARGS = ("-w20",)

# `@event <trigger index> <turn> <rid> <opt> <label>`
_EVENT = re.compile(r"^@event (\d+) (\d+) (\d+) (\d+) ", re.MULTILINE)
_TAKEN = re.compile(r"^@taken (\d+)$", re.MULTILINE)
_VIOLATED = re.compile(r"^@violated (\d+)$", re.MULTILINE)


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


# One event of a path: (trigger, turn, rid, opt), as the model sent it.
Step = tuple[str, int, int, int]


def counterexample_events(spec: Spec, path: Sequence[Step]) -> list[dict[str, Any]]:
    """(trigger, turn, rid, opt) -> wire events: turn 0 names no turn, n names `turn-n`; rid 0
    carries no request id, n the id it stands for (`promela.request_id`); opt 1 sets the payload
    field the model's `opt` stands for."""
    vocabulary = vocabulary_of(spec)
    id_field, opt_field = request_id_field(vocabulary), option_field(vocabulary)
    events: list[dict[str, Any]] = []
    for i, (trigger, turn, rid, opt) in enumerate(path, 1):
        type_, _, variant = trigger.partition("[")
        event_type = spec.event_type(type_)
        if event_type is None:
            raise ValueError(f"trigger {trigger!r} has no event type in the spec")
        payload: dict[str, Any] = {}
        for f in event_type.payload:
            if f.name == event_type.variant_by:
                payload[f.name] = variant.rstrip("]")
            elif f.name == id_field and rid:
                payload[f.name] = request_id(rid)
            elif f.name == opt_field and opt:
                payload[f.name] = True
            elif f.required:
                # Any valid value will do: no guard reads the other payload fields.
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


def _reproduces(spec: Spec, events: list[dict[str, Any]], requirements: Requirements | None) -> list[str]:
    """The state invariants and requirements the real projector breaks on the path (a cross-check)."""
    projector = SessionProjector(spec)
    broken: list[str] = []
    finished: frozenset[str] = frozenset()
    for event in events:
        outcome = projector.apply(event)
        after = frozenset(projector.finished_turns(THREAD))
        broken += state_violations(spec, outcome.after, after)
        if requirements is not None:
            broken += requirements.state_violations(outcome.after, after)
            broken += requirements.step_violations(outcome, finished, after)
        finished = after
    return broken


def _skipped(started: float, detail: str) -> CheckResult:
    return CheckResult(NAME, False, time.perf_counter() - started, detail=detail, skipped=True)


def _labels(path: Sequence[Step]) -> str:
    return ", ".join(trigger + (f"(turn-{turn})" if turn else "") + (f"[request {request_id(rid)!r}]" if rid else "")
                     + ("[opt]" if opt else "") for trigger, turn, rid, opt in path)


def _path(spec: Spec, trail: str) -> list[Step]:
    return [(spec.triggers[int(k)], int(turn), int(rid), int(opt)) for k, turn, rid, opt in _EVENT.findall(trail)]


def _temporal(
    spec: Spec, requirements: Requirements, tools: tuple[str, str], work: Path, turn_ids: int, timeout: float
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """Each temporal requirement's LTL claim over the temporal model: {violated name: its path}, and coverage."""
    spin, cc = tools
    model = export_promela(spec, requirements, turn_ids=turn_ids, temporal=True)
    (work / TEMPORAL_MODEL).write_text(model, encoding="utf-8")
    _run([spin, "-a", TEMPORAL_MODEL], work, timeout)
    _run([cc, *LTL_CFLAGS, "-o", "pan_ltl", "pan.c"], work, timeout)
    violated: dict[str, list[dict[str, Any]]] = {}
    states = 0
    for req in requirements.of_form("temporal"):
        trail_file = work / f"{TEMPORAL_MODEL}.trail"
        trail_file.unlink(missing_ok=True)
        claim = claim_name(req.index)  # the model names no requirement: its claim is numbered
        report = _run(["./pan_ltl", "-a", "-N", claim, *LTL_PAN_ARGS], work, timeout)
        states = max(states, _count(r"(\d+) states, stored", report))
        if _count(r"errors: (\d+)", report) == 0:
            continue
        if not trail_file.is_file():
            raise _Failed(f"pan found a violation of {req.name} but wrote no trail")
        # Replayed on a copy of the model with only this claim: `spin -t` takes the model's claim.
        single = f"{claim}.pml"
        (work / single).write_text("\n".join(line for line in model.splitlines()
                                             if not line.startswith("ltl ") or line.startswith(f"ltl {claim} ")),
                                   encoding="utf-8")
        trail_file.rename(work / f"{single}.trail")
        trail = _run([spin, "-T", "-t", single], work, timeout)
        violated[req.name] = counterexample_events(spec, _path(spec, trail))
    return violated, {"ltl_states": states, "ltl_claims": len(requirements.of_form("temporal"))}


def check_spin(
    spec: Spec, requirements: Requirements | None = None, *, turn_ids: int = DEFAULT_TURN_IDS, timeout: float = 60.0
) -> CheckResult:
    """Exhaustive search of the spec's Promela model against the spec's state invariants and the
    requirements spin can model (assertions), then each temporal requirement's LTL claim."""
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
        model = export_promela(spec, requirements, turn_ids=turn_ids)
    except PromelaError as exc:
        return failed(f"cannot export the spec to Promela: {exc}")
    modelled, left_out = requirement_coverage(spec, requirements) if requirements is not None else ([], [])

    trail = ""
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
            if errors:
                if not (work / f"{MODEL}.trail").is_file():
                    return failed(f"pan found {errors} error(s) but wrote no trail", covered)
                trail = _run([spin, "-T", "-t", MODEL], work, timeout)
            ltl: dict[str, list[dict[str, Any]]] = {}
            if requirements is not None and requirements.of_form("temporal"):
                ltl, ltl_covered = _temporal(spec, requirements, (spin, cc), work, turn_ids, timeout)
                covered.update(ltl_covered)
        except (_Failed, PromelaError) as exc:
            return failed(str(exc))

    scope = (f"turn ids 1..{turn_ids}; {len(modelled)} requirements modelled, {len(left_out)} not modelled "
             "because they read what the model leaves out (lastError, updatedAt, provider, reasons, duplicates; "
             "explore and induction check those)")
    if not errors and not ltl:
        untaken = [t.index for t in spec.transitions if t.index not in taken]
        detail = (f"no assertion or LTL claim violated in {covered['states']} states x {covered['events']} events "
                  f"({scope})")
        if untaken:
            detail += f"; spec transitions never taken: {untaken}"
        return CheckResult(NAME, True, time.perf_counter() - started, covered, detail, checked=tuple(modelled))

    violated_here: tuple[str, ...] = ()
    counterexamples: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    events: list[dict[str, Any]] | None = None
    if errors:
        path = _path(spec, trail)
        names = violation_names(spec, requirements)
        violated_here = tuple(dict.fromkeys(names[int(n)] for n in _VIOLATED.findall(trail) if int(n) < len(names)))
        events = counterexample_events(spec, path)
        counterexamples = {name: events for name in violated_here}
        note = f"{', '.join(violated_here) or 'an assertion'} violated after {len(path)} event(s): {_labels(path)}"
        # The path is spin's; say whether the real projector agrees, since the two implement the
        # guard and effect names independently.
        if set(violated_here) & set(_reproduces(spec, events, requirements)):
            note += "; the projector reproduces it"
        else:
            note += ("; the projector does NOT reproduce it (statemachine.spec.semantics and the Promela"
                     " rendering disagree)")
        notes.append(note)
    for name, path_events in ltl.items():
        counterexamples[name] = path_events
        notes.append(f"LTL {name} violated by a run of {len(path_events)} event(s) (its cycle repeats forever)")
    violated = (*violated_here, *ltl)
    # A safety search stops at its first violation: only the temporal claims were decided in full.
    checked = tuple(n for n in modelled if n in violated or (not errors and n not in ltl)
                    or requirements is None or requirements.get(n).form == "temporal")
    return CheckResult(NAME, False, time.perf_counter() - started, covered, "; ".join(notes), violated,
                       events if events is not None else next(iter(ltl.values())), counterexamples, checked=checked)
