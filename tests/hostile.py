"""Hostile input for the parser, the projector and replay: Hypothesis strategies and the checker.

Shared by `tests/verify/test_fuzz.py` (CI-sized) and `scripts/fuzz.py` (100k cases, counted).

The property `check_step` enforces for one input applied to a projector:
- the input yields an `Outcome`, or an `EventError` whose `field` names a field; anything else
  escaping `apply` is a crash;
- malformed input (an `EventError`) leaves the snapshot byte-identical;
- an ignored, duplicate or rejected event leaves the snapshot byte-identical except that its
  eventId is remembered (the oldest forgotten past the cap; nothing for a duplicate), and, for a
  thread not seen before, the thread is created in the initial status with no turn;
- an applied event changes only its own thread, and keeps the core invariant (on specs that
  promise it: a hostile spec that loads need not);
- given a `reference` projector (the other engine), it gives the same outcome or error and ends in
  the same state, or `EnginesDisagree` is raised.

Inputs are wire dicts, JSON lines, and `Forge` recipes: Events that did not come from the
projector's parser (replaced, built by hand, parsed by another parser). Beyond single inputs:
`check_snapshot_tamper` (a tampered snapshot restores to a valid projector or is refused with a
path), `check_consume` (async `consume` gives what sequential `apply` gives), and `spec_variants`
(hostile specs built from the built-in one).
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from statemachine import (
    Event,
    EventError,
    Outcome,
    OutcomeKind,
    Session,
    SessionProjector,
    SnapshotError,
    builtin_spec,
    consume,
)
from statemachine.core.event import MAX_ID_LENGTH, SYNTHETIC_EVENT_PREFIX
from statemachine.core.record import event_digest_hex
from statemachine.replay.lines import ReplayReport, replay_lines
from statemachine.spec.invariants import state_violations
from statemachine.spec.load import parse_spec
from statemachine.spec.model import Spec, SpecError
from statemachine.spec.parser import EventParser

__all__ = [
    "EnginesDisagree",
    "Forge",
    "StateChanged",
    "check_consume",
    "check_replay",
    "check_snapshot_tamper",
    "check_step",
    "events",
    "forged_events",
    "fresh_like",
    "fuzz_clock",
    "fuzz_inputs",
    "lines",
    "load_variant",
    "malformed_events",
    "materialize",
    "projectors",
    "reference_for",
    "spec_edits",
    "spec_variant",
    "spec_variants",
    "state",
    "tampers",
    "valid_events",
]

THREADS = ("t1", "t2", "t3")
TURNS = ("T1", "T2", "T3")
PROVIDERS = ("codex", "claudeAgent")
# Text a valid event may carry: any code point but NUL and lone surrogates, which the parser
# refuses in lifecycle fields (no store can keep them: docs/reliability.md).
_storable_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_short_text = st.text(_storable_chars, max_size=8)
# Built once: constructing strategies inside a draw is what makes generation slow.
LIFECYCLE_PAYLOADS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "session.started": st.fixed_dictionaries({}, optional={"message": _short_text}),
    "thread.started": st.just({}),
    "session.state.changed": st.fixed_dictionaries(
        {"state": st.sampled_from(["starting", "ready", "running", "waiting", "stopped", "error"])},
        optional={"reason": _short_text},
    ),
    "session.exited": st.fixed_dictionaries(
        {}, optional={"exitKind": st.sampled_from(["graceful", "error"]), "recoverable": st.booleans()}
    ),
    "turn.started": st.just({}),
    "turn.completed": st.fixed_dictionaries(
        {},
        optional={
            "state": st.sampled_from(["completed", "failed", "interrupted", "cancelled"]),
            "errorMessage": _short_text,
        },
    ),
    "turn.aborted": st.fixed_dictionaries({"reason": st.text(_storable_chars, min_size=1, max_size=8)}),
    "runtime.error": st.fixed_dictionaries({"message": _short_text}),
    "runtime.warning": st.fixed_dictionaries({"message": _short_text}),
    "item.started": st.just({}),
    "content.delta": st.fixed_dictionaries({"delta": _short_text}),
}
TYPES = tuple(LIFECYCLE_PAYLOADS)
REQUIRED = ("eventId", "type", "provider", "threadId", "createdAt")

# Timestamps: valid ones in several spellings, and invalid ones.
VALID_TIMES = (
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:01+00:00",
    "2026-01-01T00:00:02.5Z",
    "2026-01-01T01:00:03+01:00",
    "2026-01-01T00:00:04",
    "2025-12-31",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999999-14:00",
)
INVALID_TIMES = (
    "yesterday",
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01T25:00:00Z",
    "2026-01-01T00:00:00+24:00",
    "2026-01-01T00:00:00ZZ",
    "\uff11\uff12\uff13\uff14-01-01",  # fullwidth digits
    "2026-01-01\x00",
    "",
    " ",
    "2026-01-01T00:00:00\ud800",
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_junk = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20,
)


class Lazy:
    """A value built only when used. Hypothesis keeps every drawn value until its run ends, so
    inputs of megabytes are drawn as a recipe and built by `materialize` inside the test."""

    __slots__ = ("build", "label")

    def __init__(self, build: Callable[[], Any], label: str) -> None:
        self.build = build
        self.label = label

    def __repr__(self) -> str:
        return self.label


def _huge(n: int) -> Lazy:
    return Lazy(lambda: "x" * n, f"'x' * {n}")


def materialize(value: Any) -> Any:
    """`value` with every `Lazy` inside it built."""
    if isinstance(value, Lazy):
        return value.build()
    if isinstance(value, dict):
        return {k: materialize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v) for v in value]
    return value


huge_strings = st.sampled_from([MAX_ID_LENGTH + 1, 1000, 65_536, 1 << 20]).map(_huge)
odd_strings = st.sampled_from(["", " ", "\x00", "\ud800", "\u202e", "é" * 300, "a\nb", "null", "[]"])
wrong_values = st.one_of(json_junk, huge_strings, odd_strings, st.integers(-(2**70), 2**70))


# Every strategy a draw uses is built once, here: building them inside draws dominates the cost.
_types = st.sampled_from(TYPES)
_event_ids = st.integers(0, 40).map(lambda i: f"e{i}")
_providers = st.sampled_from(PROVIDERS)
_threads = st.sampled_from(THREADS)
_valid_times = st.sampled_from(VALID_TIMES)
_turns = st.one_of(st.none(), st.sampled_from(TURNS))
_breakages = st.sampled_from(
    [
        "drop",
        "extra",
        "wrong_type",
        "huge_id",
        "unknown_type",
        "payload_junk",
        "payload_field",
        "bad_time",
        "bad_turn",
        "not_object",
    ]
)
_droppable = st.sampled_from((*REQUIRED, "payload", "turnId"))
_replaceable = st.sampled_from((*REQUIRED, "turnId", "payload"))
_identifiers = st.sampled_from((*REQUIRED, "turnId"))
_extra_keys = st.text(max_size=10)
_unknown_types = st.one_of(st.text(min_size=1, max_size=30), st.sampled_from(["turn", "turn.", "."]))
_payload_fields = st.sampled_from(["state", "reason", "message", "errorMessage", "recoverable", "exitKind"])
_bad_times = st.one_of(st.sampled_from(INVALID_TIMES), st.text(max_size=30))
_bad_turns = st.one_of(wrong_values, st.just(""))
_not_objects = json_junk.filter(lambda v: not isinstance(v, dict))
_line_kinds = st.sampled_from(
    ["json", "truncated", "binary", "bad_utf8", "long", "deep", "bignum", "utf16", "text", "blank", "bom"]
)
_bad_bytes = st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
_long_sizes = st.sampled_from([10_000, 1 << 20, 3 << 20])
_long_fields = st.sampled_from(["payload", "eventId", "junk"])
_depths = st.sampled_from([100, 1000, 100_000])
_numbers = st.sampled_from(["1" * 20, "1" * 5000, "1e999999", "-0.0", "NaN", "-Infinity"])
_encodings = st.sampled_from(["utf-16", "utf-32", "utf-16-le"])
_binary = st.binary(max_size=200)
_texts = st.text(max_size=100)
_blanks = st.sampled_from(["", " ", "\n", "\t\r\n"])
_breakage_counts = st.integers(1, 3)
_fractions = st.floats(0, 1)


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed event over a few threads, turns and eventIds (so duplicates happen)."""
    type_ = draw(_types)
    event: dict[str, Any] = {
        "eventId": draw(_event_ids),
        "type": type_,
        "provider": draw(_providers),
        "threadId": draw(_threads),
        "createdAt": draw(_valid_times),
    }
    turn = draw(_turns)
    if turn is not None:
        event["turnId"] = turn
    if draw(st.booleans()) or type_ in ("session.state.changed", "turn.aborted", "runtime.error"):
        event["payload"] = draw(LIFECYCLE_PAYLOADS[type_])
    return event


_valid = valid_events()


@st.composite
def malformed_events(draw: st.DrawFn) -> Any:
    """A valid event broken in one or more ways; some breakages (extra fields, an unknown type)
    leave it well formed, which is fine: the property covers every outcome."""
    event = draw(_valid)
    for _ in range(draw(_breakage_counts)):
        how = draw(_breakages)
        if how == "drop":
            event.pop(draw(_droppable), None)
        elif how == "extra":
            event[draw(_extra_keys)] = draw(json_junk)
        elif how == "wrong_type":
            event[draw(_replaceable)] = draw(wrong_values)
        elif how == "huge_id":
            event[draw(_identifiers)] = draw(huge_strings)
        elif how == "unknown_type":
            event["type"] = draw(_unknown_types)
        elif how == "payload_junk":
            event["payload"] = draw(json_junk)
        elif how == "payload_field":
            payload = event.get("payload")
            payload = dict(payload) if isinstance(payload, dict) else {}
            payload[draw(_payload_fields)] = draw(wrong_values)
            event["payload"] = payload
        elif how == "bad_time":
            event["createdAt"] = draw(_bad_times)
        elif how == "bad_turn":
            event["turnId"] = draw(_bad_turns)
        elif how == "not_object":
            return draw(_not_objects)
    return event


_malformed = malformed_events()
events = st.one_of(_valid, _malformed)


def _line(value: Any) -> str:
    return json.dumps(materialize(value), allow_nan=True)


@st.composite
def lines(draw: st.DrawFn) -> bytes | str | Lazy:
    """A JSONL line: of a valid or malformed event, truncated, binary, invalid UTF-8, very long."""
    how = draw(_line_kinds)
    if how == "binary":
        return draw(_binary)
    if how == "text":
        return draw(_texts)
    if how == "blank":
        return draw(_blanks)
    source = draw(events)
    if how == "json":
        as_bytes = draw(st.booleans())
        return Lazy(lambda: _line(source).encode() if as_bytes else _line(source), f"json line of {source!r:.300}")
    if how == "truncated":
        cut = draw(_fractions)

        def truncated() -> bytes:
            text = _line(source)
            return text[: int(len(text) * cut)].encode("utf-8", "surrogatepass")

        return Lazy(truncated, f"truncated line of {source!r:.300}")
    if how == "bad_utf8":
        where, junk = draw(_fractions), draw(_bad_bytes)

        def bad_utf8() -> bytes:
            raw = _line(source).encode("utf-8", "surrogatepass")
            at = int(len(raw) * where)
            return raw[:at] + junk + raw[at:]

        return Lazy(bad_utf8, f"{junk!r} inside the line of {source!r:.300}")
    if how == "long":
        size, field = draw(_long_sizes), draw(_long_fields)

        def long_line() -> bytes:
            if not isinstance(source, dict):
                return b"[" + b"1," * (size // 2) + b"1]"
            wide = dict(source)
            wide[field] = {"blob": "y" * size} if field == "payload" else "y" * size
            return _line(wide).encode()

        return Lazy(long_line, f"{field} of {size} characters in {source!r:.300}")
    if how == "deep":
        depth = draw(_depths)
        return Lazy(lambda: '{"eventId": "e1", "payload": ' + "[" * depth + "]" * depth + "}", f"nested {depth} deep")
    if how == "bignum":
        number = draw(_numbers)

        def bignum() -> str:
            text = _line(source)
            return f'{{"big": {number}, {text[1:]}' if text.startswith("{") else number

        return Lazy(bignum, f"number {number:.30} in {source!r:.300}")
    if how == "utf16":
        encoding = draw(_encodings)
        return Lazy(lambda: _line(source).encode(encoding, "surrogatepass"), f"{encoding} line of {source!r:.300}")
    assert how == "bom"
    return Lazy(lambda: b"\xef\xbb\xbf" + _line(source).encode("utf-8", "surrogatepass"), f"BOM, {source!r:.300}")


# -- Events that did not come from the projector's parser ---------------------------------------

_FIELD_NAMES = ("event_id", "type", "provider", "thread_id", "created_at", "turn_id", "payload", "trigger",
                "created_dt")
_TRIGGERS = builtin_spec().triggers


class Forge:
    """A recipe for an `Event` the projector's parser did not return, built against the projector
    that will receive it (`build`): its own parse replaced, built by hand, or another parser's."""

    __slots__ = ("changes", "how", "max_id_length", "wire")

    def __init__(self, how: str, wire: dict[str, Any], changes: dict[str, Any], max_id_length: int) -> None:
        self.how = how
        self.wire = wire
        self.changes = changes
        self.max_id_length = max_id_length

    def build(self, projector: SessionProjector) -> Any:
        changes = materialize(self.changes)
        if self.how == "by_hand":
            fields = {
                "event_id": self.wire["eventId"], "type": self.wire["type"], "provider": self.wire["provider"],
                "thread_id": self.wire["threadId"], "created_at": self.wire["createdAt"],
                "turn_id": self.wire.get("turnId"), "payload": self.wire.get("payload", {}),
            }
            fields.update(changes)
            return Event(**fields)
        parser = projector.parser if self.how == "replace" else EventParser(projector.spec,
                                                                             max_id_length=self.max_id_length)
        try:
            event = parser.parse(self.wire)
        except EventError:
            return self.wire  # not parseable by that parser: sent as the wire dict it is
        return event.evolve(**changes)

    def __repr__(self) -> str:
        return f"Forge({self.how}, {self.wire!r:.200}, {self.changes!r:.200})"


_forge_values = st.one_of(
    wrong_values,
    _bad_times,
    st.sampled_from([*_TRIGGERS, "turn.completed[vanished]", "nope", None]),
    st.sampled_from([SYNTHETIC_EVENT_PREFIX + "stale-turn:t1:T1", SYNTHETIC_EVENT_PREFIX + "restart:t1:x"]),
    st.sampled_from(VALID_TIMES),
    st.sampled_from([datetime.min.replace(tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)]),
    st.sampled_from(TURNS),
    st.sampled_from(TYPES),
)
_forge_changes = st.dictionaries(st.sampled_from(_FIELD_NAMES), _forge_values, max_size=3)


@st.composite
def forged_events(draw: st.DrawFn) -> Forge:
    how = draw(st.sampled_from(["replace", "replace", "by_hand", "foreign"]))
    return Forge(how, draw(_valid), draw(_forge_changes), draw(st.sampled_from([4, 16, MAX_ID_LENGTH, 4096])))


_inputs = st.one_of(_valid, _valid, _malformed, lines(), forged_events())


def fuzz_inputs() -> st.SearchStrategy[Any]:
    """One input for `SessionProjector.apply`: mostly valid events, so sessions go somewhere."""
    return _inputs


# The ingest clock of fuzzed projectors: fixed, so a run is reproducible, and a little after the
# fuzzed dates, so both sides of the clock bound are reached (9999 is refused, 2026 is not).
FUZZ_NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FUZZ_CLOCK_SKEW = timedelta(days=1)


def fuzz_clock() -> datetime:
    return FUZZ_NOW


@st.composite
def projectors(draw: st.DrawFn, spec: Spec | None = None) -> SessionProjector:
    """A fresh projector, sometimes with tiny memory caps so eviction happens in a few steps, on
    either engine, with or without the clock bound."""
    small = draw(st.booleans())
    return SessionProjector(
        spec,
        max_event_ids=draw(st.integers(1, 6)) if small else 1024,
        max_finished_turns=draw(st.integers(1, 3)) if small else 256,
        engine=draw(st.sampled_from(["compiled", "transitions"])),
        max_clock_skew=draw(st.sampled_from([None, FUZZ_CLOCK_SKEW])),
        clock=fuzz_clock,
    )


def fresh_like(projector: SessionProjector, *, other_engine: bool = False) -> SessionProjector:
    """An empty projector configured like `projector` (on the other engine if asked)."""
    engine = projector.engine
    if other_engine:
        engine = "transitions" if engine == "compiled" else "compiled"
    return SessionProjector(
        projector.spec,
        max_event_ids=projector.max_event_ids,
        max_finished_turns=projector.max_finished_turns,
        engine=engine,
        max_clock_skew=projector.max_clock_skew,
        clock=fuzz_clock,
    )


def reference_for(projector: SessionProjector) -> SessionProjector:
    """The same (empty) projector on the other engine: every input must give both the same result."""
    return fresh_like(projector, other_engine=True)


class StateChanged(AssertionError):
    """Malformed or unapplied input changed what the projector holds."""


class EnginesDisagree(AssertionError):
    """The compiled engine and the `transitions` machine gave different results for one input."""


def state(projector: SessionProjector) -> str:
    """Everything the projector holds, as canonical JSON: the unit of "byte-identical"."""
    return json.dumps(projector.snapshot(), sort_keys=True)


def _expected_unapplied(before: dict[str, Any], projector: SessionProjector, outcome: Outcome) -> str:
    """The snapshot after an ignored, duplicate or rejected event: only its eventId is new."""
    ev = outcome.event
    threads = before["threads"]
    entry = next((t for t in threads if t["session"]["threadId"] == ev.thread_id), None)
    if entry is None:
        session = Session(ev.thread_id, projector.spec.initial, ev.provider)
        entry = {"session": session.to_wire(), "seenEventDigests": [], "finishedTurns": []}
        threads.append(entry)
    if outcome.kind is not OutcomeKind.DUPLICATE:
        seen = [*entry["seenEventDigests"], event_digest_hex(ev.event_id)]
        entry["seenEventDigests"] = seen[-projector.max_event_ids :]
    return json.dumps(before, sort_keys=True)


def _signature(projector: SessionProjector, item: Any) -> tuple[Any, ...]:
    """What one input did, comparable across engines."""
    try:
        outcome = projector.apply(item.build(projector) if isinstance(item, Forge) else item)
    except EventError as exc:
        return ("error", exc.field)
    return (outcome.kind, outcome.reason, outcome.before, outcome.after, outcome.transition)


def check_step(
    projector: SessionProjector,
    item: Any,
    *,
    reference: SessionProjector | None = None,
    invariant: bool = True,
) -> str:
    """Apply one input and check the property; returns `kind` or `error:<field>`.

    Raises `StateChanged` when the property fails, `EnginesDisagree` when `reference` (the other
    engine) gives another result; any other exception is a crash.
    """
    item = materialize(item)
    before_text = state(projector)
    try:
        outcome = projector.apply(item.build(projector) if isinstance(item, Forge) else item)
    except EventError as exc:
        if not isinstance(exc.field, str) or not exc.field or not exc.message:
            raise StateChanged(f"an EventError that names no field: {exc!r}") from None
        if state(projector) != before_text:
            raise StateChanged(f"malformed input changed the snapshot ({exc})") from None
        _compare(reference, item, ("error", exc.field), before_text)
        return f"error:{exc.field}"
    after_text = state(projector)
    _compare(reference, item, (outcome.kind, outcome.reason, outcome.before, outcome.after, outcome.transition),
             after_text)
    if outcome.kind is OutcomeKind.APPLIED:
        after = outcome.after
        if invariant and not projector.spec.status(after.status).holds_turn and after.active_turn_id is not None:
            raise StateChanged(f"{after.status} with active turn {after.active_turn_id}")
        before, now = json.loads(before_text), json.loads(after_text)
        others = [t for t in before["threads"] if t["session"]["threadId"] != outcome.event.thread_id]
        if others != [t for t in now["threads"] if t["session"]["threadId"] != outcome.event.thread_id]:
            raise StateChanged("an applied event changed another thread")
    elif outcome.kind is OutcomeKind.FORGOTTEN:
        # A forgetting command drops its thread (its memory kept as a tombstone); nothing else.
        before, now = json.loads(before_text), json.loads(after_text)
        thread_id = outcome.event.thread_id
        if any(t["session"]["threadId"] == thread_id for t in now["threads"]):
            raise StateChanged("a forgotten thread is still held")
        if thread_id not in {t["threadId"] for t in now["tombstones"]}:
            raise StateChanged("a forgotten thread left no tombstone")
        if [t for t in before["threads"] if t["session"]["threadId"] != thread_id] != now["threads"]:
            raise StateChanged("a forgetting event changed another thread")
    else:
        if outcome.before != outcome.after:
            raise StateChanged(f"{outcome.kind.value} outcome with a changed session")
        if after_text != _expected_unapplied(json.loads(before_text), projector, outcome):
            raise StateChanged(f"{outcome.kind.value} event changed more than its remembered eventId")
    return outcome.kind.value


def _compare(reference: SessionProjector | None, item: Any, got: tuple[Any, ...], got_state: str) -> None:
    if reference is None:
        return
    other = _signature(reference, item)
    if other != got:
        raise EnginesDisagree(f"{reference.engine} gave {other!r:.300}, the other engine {got!r:.300}")
    if state(reference) != got_state:
        raise EnginesDisagree("the engines ended in different states")


def check_replay(chunks: list[Any], max_line_bytes: int) -> ReplayReport:
    """Replay `chunks` (lines, or events to write as lines) joined as one binary log; every line
    must be counted exactly once."""
    # A forged Event is an object, not a line: a log cannot carry it.
    chunks = [c if isinstance(c, (bytes, str)) else _line(c)
              for c in map(materialize, chunks) if not isinstance(c, Forge)]
    chunks = [c + ("\n" if isinstance(c, str) else b"\n") for c in chunks]
    data = b"".join(c if isinstance(c, bytes) else c.encode("utf-8", "surrogatepass") for c in chunks)
    projector = SessionProjector()
    report = replay_lines(projector, io.BytesIO(data), max_line_bytes=max_line_bytes)
    physical = data.split(b"\n")
    if physical and physical[-1] == b"":
        physical.pop()
    if report.lines != len(physical):
        raise StateChanged(f"replay counted {report.lines} lines, the log has {len(physical)}")
    blank = sum(1 for p in physical if len(p) <= max_line_bytes and not p.strip())
    if sum(report.outcomes.values()) + report.error_count + blank != report.lines:
        raise StateChanged("replay lost or double-counted a line")
    too_long = sum(1 for p in physical if len(p) > max_line_bytes)
    if sum(1 for e in report.errors if "line length limit" in e["error"]) != too_long:
        raise StateChanged("a line past the limit was not reported as such")
    return report


# -- async consume ------------------------------------------------------------------------------


def check_consume(projector: SessionProjector, inputs: list[Any]) -> dict[str, int]:
    """Feed `inputs` to `consume` from an async generator; the counts and the final state must be
    those of applying them one by one to a twin projector. Returns the counts by kind."""
    items = [materialize(i) for i in inputs]
    twin = fresh_like(projector)
    expected: dict[str, int] = {}
    for item in items:
        try:
            kind = twin.apply(item.build(twin) if isinstance(item, Forge) else item).kind.value
        except EventError:
            kind = "malformed"
        expected[kind] = expected.get(kind, 0) + 1

    async def source() -> AsyncIterator[Any]:
        for item in items:
            yield item.build(projector) if isinstance(item, Forge) else item

    stats = asyncio.run(consume(projector, source(), on_malformed=lambda _e, _i: None, yield_every=3))
    got = {k.value: n for k, n in stats.outcomes.items() if n}
    if stats.malformed:
        got["malformed"] = stats.malformed
    if got != expected:
        raise StateChanged(f"consume counted {got}, one by one gave {expected}")
    if state(projector) != state(twin):
        raise StateChanged("consume ended in another state than applying one by one")
    return got


# -- tampered snapshots -------------------------------------------------------------------------

_tamper_ops = st.sampled_from(["set", "set", "delete", "grow", "huge_id"])
_tamper_values = st.one_of(
    wrong_values,
    st.sampled_from([0, 1, 2, 10**18, -1, True, 2, 3]),
    st.sampled_from(["session-lifecycle-snapshot", "session-lifecycle", "idle", "running", "ready", "T1"]),
    st.sampled_from(VALID_TIMES),
)
tampers = st.lists(st.tuples(_tamper_ops, st.integers(0, 10**6), _tamper_values), min_size=1, max_size=4)


def _containers(value: Any, out: list[Any]) -> list[Any]:
    if isinstance(value, (dict, list)):
        out.append(value)
        for child in value.values() if isinstance(value, dict) else value:
            _containers(child, out)
    return out


def tamper(data: dict[str, Any], edits: list[tuple[str, int, Any]]) -> dict[str, Any]:
    """`data` (a snapshot) with each edit made at a container chosen by its number."""
    data = copy.deepcopy(data)
    for op, pick, value in edits:
        targets = _containers(data, [])
        target = targets[pick % len(targets)]
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        value = materialize(value)
        if op == "grow" and isinstance(target, list):
            target.extend(f"x{i}" for i in range(pick % 3000))
        elif op == "huge_id" and isinstance(target, list):
            target.append("y" * (MAX_ID_LENGTH + 1 + pick % 5))
        elif not keys:
            continue
        elif op == "delete":
            del target[keys[pick % len(keys)]]
        else:
            target[keys[(pick // 7) % len(keys)]] = value
    return data


def check_snapshot_tamper(projector: SessionProjector, edits: list[tuple[str, int, Any]]) -> str:
    """Restore a tampered snapshot of `projector` with its caps: `SnapshotError` naming a path, or a
    projector within those caps and limits, whose sessions keep the spec's invariants and whose
    snapshot restores to itself. Returns "restored" or "refused:<path>"."""
    data = tamper(projector.snapshot(), edits)
    text = json.dumps(data)
    caps = {"max_event_ids": projector.max_event_ids, "max_finished_turns": projector.max_finished_turns}
    try:
        restored = SessionProjector.restore(text, projector.spec, max_clock_skew=projector.max_clock_skew,
                                            clock=fuzz_clock, **caps)
    except SnapshotError as exc:
        if not isinstance(exc.path, str) or not exc.path:
            raise StateChanged(f"a SnapshotError that names no path: {exc!r}") from None
        return "refused:" + exc.path.split("[")[0].split(".")[0]
    limit = restored.parser.max_id_length
    for tid, session in restored.sessions().items():
        seen, finished = restored.seen_count(tid), restored.finished_turns(tid)
        if seen > caps["max_event_ids"] or len(finished) > caps["max_finished_turns"]:
            raise StateChanged("a restored memory holds more than the restorer's cap")
        if any(len(i) > limit for i in (*finished, tid, session.active_turn_id or "")):
            raise StateChanged("a restored id is past the parser's limit")
        if state_violations(restored.spec, session, frozenset(finished)):
            raise StateChanged(f"a restored session breaks the invariants: {session}")
    again = SessionProjector.restore(restored.snapshot(), restored.spec, max_clock_skew=None, **caps)
    if state(again) != state(restored):
        raise StateChanged("a restored projector's snapshot does not restore to itself")
    return "restored"


# -- hostile specs ------------------------------------------------------------------------------

_BUILTIN_RAW: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parent.parent / "specs" / "session_lifecycle.yaml").read_text()
)
_STATUS_NAMES = [s["name"] for s in _BUILTIN_RAW["statuses"]]
_GUARD_NAMES = [*_BUILTIN_RAW["guards"], "no_such_guard"]
_EFFECT_NAMES = [*_BUILTIN_RAW["effects"], "no_such_effect"]
_spec_ops = st.sampled_from(["dest", "sources", "drop", "copy", "guards", "effects", "holds_turn", "on_enter",
                             "initial", "on_applied", "set_error", "junk", "enum", "variant"])
_spec_values = st.one_of(
    st.sampled_from([*_STATUS_NAMES, "nowhere"]),
    st.lists(st.sampled_from(_GUARD_NAMES), max_size=3),
    st.lists(st.sampled_from(_EFFECT_NAMES), max_size=3),
    st.sampled_from([0.0, -0.0, 1, -1, True, None, "", "x" * 300, [1], {"a": 1}, 1e308, "Provider error"]),
    json_junk,
)
spec_edits = st.lists(st.tuples(_spec_ops, st.integers(0, 10**6), _spec_values), min_size=1, max_size=5)


def spec_variant(edits: list[tuple[str, int, Any]]) -> str:
    """The built-in spec's YAML with each edit made: most break it, some load with other rules."""
    raw = copy.deepcopy(_BUILTIN_RAW)
    transitions, statuses, events = raw["transitions"], raw["statuses"], raw["events"]
    for op, pick, value in edits:
        t = transitions[pick % len(transitions)] if transitions else {}
        status = statuses[pick % len(statuses)]
        name = _STATUS_NAMES[pick % len(_STATUS_NAMES)]
        if op == "dest":
            t["dest"] = name if not isinstance(value, str) else value
        elif op == "sources":
            t["sources"] = "*" if pick % 3 == 0 else sorted({name, _STATUS_NAMES[(pick // 7) % len(_STATUS_NAMES)]})
        elif op == "drop" and transitions:
            transitions.remove(t)
        elif op == "copy" and transitions:
            transitions.insert((pick // 7) % len(transitions), copy.deepcopy(t))
        elif op == "guards":
            t["guards"] = value if isinstance(value, list) else [_GUARD_NAMES[pick % len(_GUARD_NAMES)]]
        elif op == "effects":
            t["effects"] = value if isinstance(value, list) else [_EFFECT_NAMES[pick % len(_EFFECT_NAMES)]]
        elif op == "holds_turn":
            status["holds_turn"] = not status["holds_turn"]
        elif op == "on_enter":
            status["on_enter"] = value if isinstance(value, list) else []
        elif op == "initial":
            raw["initial"] = name if pick % 2 else value
        elif op == "on_applied":
            raw["on_applied"] = value if isinstance(value, list) else []
        elif op == "set_error":
            t["effects"] = [{"set_error": {"field": ["message", "reason", "errorMessage", "nope"][pick % 4],
                                           "default": value}}]
        elif op == "junk":
            target = [raw, t, status, events[pick % len(events)]][pick % 4]
            target[["description", "name", "type", "payload", "sources"][(pick // 4) % 5]] = value
        elif op == "enum":
            event = events[pick % len(events)]
            for f in event.get("payload", {}).values():
                if isinstance(f, dict) and "enum" in f:
                    f["enum"] = value if isinstance(value, list) else [value]
        elif op == "variant":
            event = events[pick % len(events)]
            if "variant_by" in event:
                del event["variant_by"]
            else:
                event["variant_by"] = "state"
    return yaml.safe_dump(raw, sort_keys=False)


def spec_variants() -> st.SearchStrategy[str]:
    """Spec texts: the built-in spec with hostile edits."""
    return spec_edits.map(spec_variant)


def load_variant(text: str) -> Spec | None:
    """The spec, or None when the loader refuses it (a `SpecError` naming where is the contract)."""
    try:
        return parse_spec(text, "<fuzzed>")
    except SpecError:
        return None
