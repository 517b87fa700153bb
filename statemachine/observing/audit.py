"""Audit another orchestrator's sessions against this package's replay of the same log.

`audit_log(lines, theirs)` replays the log and compares, thread by thread, the sessions another
orchestrator projected (`theirs`: threadId -> {status, activeTurnId, lastError, ...}, the shape of
`replay --json`'s `sessions`) with ours. It reports, for each thread that differs:

- the differing fields, ours and theirs side by side. Only fields their session gives are
  compared (`status`, `activeTurnId`, `lastError`, `providerName`, `updatedAt`,
  `providerInstanceId`, `runtimeMode`, `pendingTurn`, `awaiting`, `openRequests`); `updatedAt` is
  compared as a point in time, `openRequests` as the list it is (oldest first; 1 and "1" differ);
- whether their state is impossible: an unknown status, or a status that may not hold a turn
  (the spec's `holds_turn: false`) holding one;
- the first divergence: the line of the log after which our session could no longer have become
  theirs (decided as described in docs/observing.md and in `_Reach`);
- per differing field, the last line after which our session still had their value.

A thread in one side only differs too: theirs lacks a thread the log has, or has a thread the log
never names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from statemachine.core.event import parse_timestamp
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.core.session import FIELDS, Session
from statemachine.observing.text import visible
from statemachine.replay.lines import MAX_LINE_BYTES, replay_lines
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.model import Spec

__all__ = ["COMPARED_FIELDS", "AuditError", "AuditReport", "ThreadAudit", "audit_log", "parse_sessions"]

# Wire fields compared when their session gives them, from the one field table: the three that
# decide divergence first, then the rest in the table's order.
_LIFECYCLE = ("status", "activeTurnId", "lastError")
COMPARED_FIELDS = (*_LIFECYCLE, *(f.wire for f in FIELDS if f.wire not in _LIFECYCLE and f.wire != "threadId"))
# Those that are text or null on the wire: status is required text, pendingTurn an object,
# openRequests a list (`_check_requests`).
_NULLABLE_TEXT = tuple(name for name in COMPARED_FIELDS if name not in ("status", "pendingTurn", "openRequests"))


class AuditError(ValueError):
    """Their sessions file is unusable. `path` names where (e.g. `thr-1.status`)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def parse_sessions(data: object) -> dict[str, dict[str, Any]]:
    """Check their sessions: a JSON object of threadId -> session object. A whole `replay --json`
    report (with `sessions` and `outcomes`) is accepted too, and its `sessions` taken."""
    if isinstance(data, dict) and isinstance(data.get("sessions"), dict) and isinstance(data.get("outcomes"), dict):
        data = data["sessions"]
    if not isinstance(data, dict):
        raise AuditError("$", f"must be a JSON object of threadId -> session, got {type(data).__name__}")
    sessions: dict[str, dict[str, Any]] = {}
    for tid, raw in data.items():
        if not isinstance(raw, dict):
            raise AuditError(tid, f"must be a session object, got {type(raw).__name__}")
        if "status" not in raw:
            raise AuditError(f"{tid}.status", "is required")
        if not isinstance(raw["status"], str):
            raise AuditError(f"{tid}.status", f"must be a string, got {type(raw['status']).__name__}")
        for name in _NULLABLE_TEXT:
            if name in raw and raw[name] is not None and not isinstance(raw[name], str):
                raise AuditError(f"{tid}.{name}", f"must be a string or null, got {type(raw[name]).__name__}")
        if "openRequests" in raw:
            _check_requests(raw["openRequests"], f"{tid}.openRequests")
        if isinstance(raw.get("updatedAt"), str):
            try:
                parse_timestamp(raw["updatedAt"])
            except ValueError:
                raise AuditError(f"{tid}.updatedAt", f"not an ISO 8601 timestamp: {raw['updatedAt'][:64]!r}") from None
        sessions[tid] = raw
    return sessions


def _check_requests(value: object, path: str) -> None:
    """Their `openRequests`: a list of {requestId: string, integer or null, kind: string}, as
    `Session.to_wire()` writes it. A boolean id is refused: in Python it would equal 1."""
    if not isinstance(value, list):
        raise AuditError(path, f"must be a list of {{requestId, kind}}, got {type(value).__name__}")
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise AuditError(f"{path}[{i}]", f"must be an object {{requestId, kind}}, got {type(entry).__name__}")
        rid = entry.get("requestId")
        if type(rid) not in (str, int, type(None)):
            raise AuditError(f"{path}[{i}].requestId", f"must be a string, an integer or null, got "
                                                       f"{type(rid).__name__}")
        if not isinstance(entry.get("kind"), str):
            raise AuditError(f"{path}[{i}].kind", f"must be a string, got {type(entry.get('kind')).__name__}")


def _time(value: str | None) -> datetime | None:
    return parse_timestamp(value) if value is not None else None


def _same(name: str, ours: Any, theirs: Any) -> bool:
    if name == "updatedAt" and ours is not None and theirs is not None:
        return _time(ours) == _time(theirs)
    return bool(ours == theirs)


# -- can our session still become theirs? ------------------------------------------------------

# Stand-ins: the machine only compares ids and error texts for equality, so their turn, some other
# turn and a fresh one, and their error text or another, are all a search needs.
_THEIR_TURN, _OTHER_TURN, _FRESH_TURN = "audit:their-turn", "audit:other-turn", "audit:fresh-turn"
_THEIR_ERROR, _OTHER_ERROR = "audit:their-error", "audit:other-error"

# (status, turn: None | "theirs" | "other", error: None | "theirs" | "other", their turn finished)
_Abstract = tuple[str, str | None, str | None, bool]


def _role(value: str | None, theirs: str | None) -> str | None:
    if value is None:
        return None
    return "theirs" if value == theirs else "other"


class _Reach:
    """Which (status, turn, error) our session can still get to, from a given state.

    The state is abstracted to the status, whether the active turn is theirs, another or none,
    whether lastError is theirs, another or none, and whether their turn is remembered as finished.
    From each abstract state every lifecycle trigger is tried, naming no turn, their turn, the
    active one and a fresh one, with every free-text payload field set to their error text, through
    a real projector of the same spec; the closure of those steps (any number of events) is the
    reachable set. It is computed once per abstract start and cached. Finished turns are taken as
    remembered for good (the memory cap, 256 by default, is not modelled).
    """

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.cache: dict[_Abstract, frozenset[tuple[str, str | None, str | None]]] = {}
        self.probes = list(self._probes())
        self.projector = SessionProjector(spec)  # reseeded before every probe

    def _probes(self) -> Iterable[dict[str, Any]]:
        for trigger in self.spec.triggers:
            type_, _, variant = trigger.partition("[")
            event_type = self.spec.event_type(type_)
            assert event_type is not None
            payload: dict[str, Any] = {}
            for f in event_type.payload:
                if f.name == event_type.variant_by:
                    payload[f.name] = variant.rstrip("]")
                elif f.type == "string" and f.enum is None:
                    payload[f.name] = _THEIR_ERROR
                elif f.required and f.enum:
                    payload[f.name] = f.enum[0]
            for turn in (None, _THEIR_TURN, _OTHER_TURN, _FRESH_TURN):
                yield {"type": type_, "payload": payload, **({"turnId": turn} if turn else {})}

    def _step(self, state: _Abstract) -> Iterable[_Abstract]:
        status, turn, error, finished = state
        session = Session("audit", status, "audit", {"theirs": _THEIR_TURN, "other": _OTHER_TURN}.get(turn or ""),
                          {"theirs": _THEIR_ERROR, "other": _OTHER_ERROR}.get(error or ""), None)
        projector = self.projector
        for n, probe in enumerate(self.probes):
            projector.seed(session, finished_turns=[_THEIR_TURN] if finished else [])
            outcome = projector.apply({"eventId": f"probe-{n}", "provider": "audit", "threadId": "audit",
                                       "createdAt": "2000-01-01T00:00:00Z", **probe})
            if outcome.kind is not OutcomeKind.APPLIED:
                continue
            after = outcome.after
            yield (after.status, _role(after.active_turn_id, _THEIR_TURN), _role(after.last_error, _THEIR_ERROR),
                   _THEIR_TURN in projector.finished_turns("audit"))

    def reachable(self, start: _Abstract) -> frozenset[tuple[str, str | None, str | None]]:
        found = self.cache.get(start)
        if found is None:
            seen = {start}
            frontier = [start]
            while frontier:
                nxt = []
                for state in frontier:
                    for after in self._step(state):
                        if after not in seen:
                            seen.add(after)
                            nxt.append(after)
                frontier = nxt
            found = self.cache[start] = frozenset(s[:3] for s in seen)
        return found


@dataclass
class _Target:
    """Their session, as the search sees it: which lifecycle fields to match, and the updatedAt bound."""

    fields: dict[str, Any]
    turn: str | None
    error: str | None
    updated: datetime | None

    def abstract(self, session: Session, finished: bool) -> _Abstract:
        return (session.status, _role(session.active_turn_id, self.turn), _role(session.last_error, self.error),
                finished)

    def met_by(self, reachable: frozenset[tuple[str, str | None, str | None]]) -> bool:
        want = (self.fields.get("status"),
                "theirs" if self.fields.get("activeTurnId") is not None else None,
                "theirs" if self.fields.get("lastError") is not None else None)
        checks = [name in self.fields for name in _LIFECYCLE]
        return any(all(not check or got == wanted for check, got, wanted in zip(checks, state, want, strict=True))
                   for state in reachable)


# -- the report --------------------------------------------------------------------------------


@dataclass
class ThreadAudit:
    thread_id: str
    ours: dict[str, Any] | None
    theirs: dict[str, Any] | None
    differences: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> {ours, theirs}
    impossible: str | None = None
    divergence: dict[str, Any] | None = None
    last_held: dict[str, int | None] = field(default_factory=dict)  # field -> last line ours had their value

    def to_json(self) -> dict[str, Any]:
        return {
            "threadId": self.thread_id,
            "differences": self.differences,
            "impossible": self.impossible,
            "divergence": self.divergence,
            "lastHeld": self.last_held,
            "ours": self.ours,
            "theirs": self.theirs,
        }


@dataclass
class AuditReport:
    threads: list[ThreadAudit]
    compared: int
    lines: int
    malformed: int

    @property
    def differs(self) -> bool:
        return bool(self.threads)

    def to_json(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "differing": len(self.threads),
            "impossible": sum(1 for t in self.threads if t.impossible),
            "lines": self.lines,
            "malformed": self.malformed,
            "threads": [t.to_json() for t in self.threads],
        }


def _event_summary(number: int, outcome: Outcome) -> dict[str, Any]:
    ev = outcome.event
    return {"line": number, "eventId": ev.event_id, "type": ev.type, "turnId": ev.turn_id,
            "outcome": outcome.kind.value, "reason": outcome.reason, "after": outcome.after.to_wire()}


class _Watch:
    """Per thread of theirs: follows our session line by line (see `audit_log`)."""

    __slots__ = ("dropped", "held", "last_ok", "pending", "relaxed", "target", "theirs")

    def __init__(self, theirs: dict[str, Any], target: _Target, relaxed: bool) -> None:
        self.theirs = theirs
        self.target = target
        self.relaxed = relaxed  # their state is unreachable from anywhere: the turn is not matched
        self.last_ok = 0  # the last line after which theirs was still reachable (0: before any)
        self.pending: dict[str, Any] | None = None  # the first line after last_ok
        self.held: dict[str, int] = {}  # field -> last line after which ours had their value
        self.dropped: dict[str, Any] | None = None  # the last line that cleared their turn


def _impossible(spec: Spec, theirs: Mapping[str, Any]) -> str | None:
    status = theirs["status"]
    if not spec.has_status(status):
        return f"unknown status {status!r} (the spec's: {', '.join(spec.status_names)})"
    if theirs.get("activeTurnId") is not None and not spec.status(status).holds_turn:
        return f"status {status!r} may not hold a turn, but activeTurnId is {theirs['activeTurnId']!r}"
    return None


def audit_log(
    lines: Iterable[bytes | str],
    theirs: Mapping[str, Mapping[str, Any]],
    *,
    spec: Spec | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> AuditReport:
    """Replay `lines` and compare every thread with `theirs` (already checked by `parse_sessions`).

    First divergence, per differing thread: after each line of the thread, our session (with the
    turns it remembers as finished) is asked whether theirs is still reachable by any further
    events (`_Reach`), and whether our `updatedAt` is still at or before theirs (it never moves
    back). The divergence is the first line after the last one at which theirs was still
    reachable. When their state cannot be reached from any state (an impossible state), the same
    is asked without matching the turn, and the line that last cleared their turn is reported
    beside it. When theirs is still reachable after the log's last line, there is no divergence:
    the log lacks the events that would have made the two agree.
    """
    projector = SessionProjector(spec)
    spec = projector.spec
    reach = _Reach(spec)
    watches: dict[str, _Watch] = {}
    initial = Session("", spec.initial)
    for tid, raw in theirs.items():
        fields = {name: raw[name] for name in _LIFECYCLE if name in raw}
        target = _Target(fields, raw.get("activeTurnId"), raw.get("lastError"), _time(raw.get("updatedAt")))
        relaxed = _impossible(spec, raw) is not None or not target.met_by(
            reach.reachable(target.abstract(initial, False)))
        if relaxed:
            target = _Target({k: v for k, v in fields.items() if k != "activeTurnId"}, target.turn, target.error,
                             target.updated)
        watch = watches[tid] = _Watch(dict(raw), target, relaxed)
        if relaxed and not target.met_by(reach.reachable(target.abstract(initial, False))):
            watch.last_ok = -1  # not even the status and error can be reached: nothing to blame

    def on_line(number: int, line: bytes | str | None, outcome: Outcome | None, error: str | None) -> None:
        if outcome is None:
            return
        watch = watches.get(outcome.event.thread_id)
        if watch is None:
            return
        after, target = outcome.after, watch.target
        wire = after.to_wire()
        for name in COMPARED_FIELDS:
            if name in watch.theirs and _same(name, wire.get(name), watch.theirs[name]):
                watch.held[name] = number
        if target.turn is not None and outcome.before.active_turn_id == target.turn != after.active_turn_id:
            watch.dropped = _event_summary(number, outcome)
        if watch.last_ok < 0:
            return
        finished = target.turn is not None and target.turn in projector.finished_turns(after.thread_id)
        ok = target.met_by(reach.reachable(target.abstract(after, finished)))
        updated = _time(after.updated_at)
        if ok and target.updated is not None and updated is not None and updated > target.updated:
            ok = False  # our updatedAt is already past theirs, and it never moves back
        if ok:
            watch.last_ok, watch.pending = number, None
        elif watch.pending is None:
            watch.pending = _event_summary(number, outcome)

    report = replay_lines(projector, lines, max_line_bytes=max_line_bytes, on_line=on_line)
    threads: list[ThreadAudit] = []
    for tid, raw in theirs.items():
        ours = projector.get(tid)
        watch = watches[tid]
        if ours is None:
            threads.append(ThreadAudit(tid, None, dict(raw), impossible=_impossible(spec, raw),
                                       divergence={"line": None, "basis": "not in the log"}))
            continue
        wire = ours.to_wire()
        differences = {name: {"ours": wire.get(name), "theirs": raw[name]}
                       for name in COMPARED_FIELDS if name in raw and not _same(name, wire.get(name), raw[name])}
        if not differences:
            continue
        audit = ThreadAudit(tid, wire, dict(raw), differences, _impossible(spec, raw))
        audit.last_held = {name: watch.held.get(name) for name in differences}
        audit.divergence = _divergence(watch)
        threads.append(audit)
    for tid in projector:
        if tid not in theirs:
            threads.append(ThreadAudit(tid, projector[tid].to_wire(), None,
                                       divergence={"line": None, "basis": "missing from theirs"}))
    return AuditReport(threads, len(theirs), report.lines, report.error_count)


def _divergence(watch: _Watch) -> dict[str, Any] | None:
    if watch.last_ok < 0:
        return {"line": None, "basis": "unreachable from any state: neither their status nor lastError can arise"}
    if watch.pending is not None:
        basis = ("after this line ours can no longer become theirs" + (" (turn not matched: their state is impossible)"
                                                  if watch.relaxed else ""))
        return {"line": watch.pending["line"], "basis": basis, "event": watch.pending,
                **({"turnClearedAt": watch.dropped} if watch.relaxed and watch.dropped else {})}
    if watch.relaxed and watch.dropped is not None:
        return {"line": watch.dropped["line"], "basis": "their state is impossible; this line cleared their turn",
                "event": watch.dropped}
    return None


# Their sessions file is read whole: past this many bytes it is refused unread (an endless file
# such as /dev/zero would otherwise be read until memory runs out). 100,000 sessions take ~30 MB.
MAX_SESSIONS_BYTES = 64 << 20


def load_sessions(text: str | bytes) -> dict[str, dict[str, Any]]:
    """Their sessions from JSON text; `AuditError` when it is not JSON, longer than
    `MAX_SESSIONS_BYTES`, or not their shape."""
    if len(text) > MAX_SESSIONS_BYTES:
        raise AuditError("$", f"longer than {MAX_SESSIONS_BYTES} bytes (MAX_SESSIONS_BYTES)")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise AuditError("$", f"not valid JSON: {exc}") from None
    return parse_sessions(data)


__all__ += ["MAX_SESSIONS_BYTES", "load_sessions"]


def _show(value: Any) -> str:
    return "null" if value is None else json.dumps(value)  # JSON escapes every control character


def render_text(report: AuditReport) -> str:
    """The report for people: one block per differing thread. Every string from the log or their
    sessions is shown with its control characters escaped (`statemachine.observing.text`)."""
    v = visible
    out = [f"audit: {len(report.threads)} thread(s) differ of {report.compared} compared"
           f" ({sum(1 for t in report.threads if t.impossible)} impossible); "
           f"{report.lines} line(s) replayed, {report.malformed} malformed\n"]
    for t in report.threads:
        tid = v(t.thread_id)
        if t.theirs is None:
            out.append(f"{tid}: missing from theirs (ours: {v(str(t.ours and t.ours['status']))})\n")
            continue
        if t.ours is None:
            out.append(f"{tid}: not in the log (theirs: {v(str(t.theirs.get('status')))})\n")
            if t.impossible:
                out.append(f"  impossible: {v(str(t.impossible))}\n")
            continue
        out.append(f"{tid}:\n")
        for name, pair in t.differences.items():
            out.append(f"  {v(name)}: ours {_show(pair['ours'])}, theirs {_show(pair['theirs'])}\n")
        if t.impossible:
            out.append(f"  impossible: {v(str(t.impossible))}\n")
        d = t.divergence
        if d is None:
            out.append("  first divergence: none; theirs is still reachable from ours after the last line\n")
        elif d.get("event"):
            ev = d["event"]
            turn = f" {v(ev['turnId'])}" if ev.get("turnId") else ""
            why = f" ({v(ev['reason'])})" if ev.get("reason") else ""
            out.append(f"  first divergence: line {d['line']}, {v(ev['type'])}{turn} {v(ev['eventId'])}, "
                       f"{ev['outcome']}{why}: {v(d['basis'])}\n")
        else:
            out.append(f"  first divergence: {v(d['basis'])}\n")
        held = ", ".join(f"{k} after line {n}" if n is not None else f"{k} never" for k, n in t.last_held.items())
        if held:
            out.append(f"  ours last had their value: {v(held)}\n")
    return "".join(out)


__all__ += ["render_text"]
