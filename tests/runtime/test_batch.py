"""The batch ingest path (`SessionProjector.apply_batch`, `statemachine.runtime.pipeline`) against `apply`.

The batch path must give what `apply` gives line by line: the same sessions and memories, the same
outcome counts, the same rejections (line, eventId, reason) and the same errors (line, message),
on both line decoders; with observers or the `transitions` engine it goes through `apply`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import Events

from statemachine import Outcome, OutcomeKind, Session, SessionProjector, builtin_spec
from statemachine.core import wire
from statemachine.core.event import EventError
from statemachine.engine.compiled import CompiledMachine, Entry, Plan
from statemachine.engine.registry import compiled_for
from statemachine.replay.lines import replay_lines
from statemachine.runtime.pipeline import BatchResult
from statemachine.verify.explore import THREAD, _BatchCheck, explore_and_agree

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from stream import generate_stream  # noqa: E402

DECODERS = ["json", "msgspec"]


@pytest.fixture(params=DECODERS)
def decoder(request: pytest.FixtureRequest) -> Iterator[str]:
    before = wire.decoder_name()
    wire.use_decoder(request.param)
    yield str(request.param)
    wire.use_decoder(before)


def by_apply(projector: SessionProjector, lines: list[Any]) -> tuple[dict[str, int], list[Any], list[Any]]:
    """What `apply_batch` should report, computed with `apply`, line by line."""
    counts = dict.fromkeys([*(k.value for k in OutcomeKind), "malformed"], 0)
    rejected: list[Any] = []
    errors: list[Any] = []
    for number, line in enumerate(lines, 1):
        if isinstance(line, (bytes, str)) and not line.strip():
            continue
        try:
            outcome = projector.apply(line)
        except EventError as exc:
            counts["malformed"] += 1
            errors.append((number, str(exc)))
            continue
        counts[outcome.kind.value] += 1
        if outcome.kind is OutcomeKind.REJECTED:
            rejected.append((number, outcome.event.event_id, outcome.reason))
    return counts, rejected, errors


def by_batch(projector: SessionProjector, lines: list[Any]) -> tuple[BatchResult, list[Any], list[Any]]:
    rejected: list[Any] = []
    errors: list[Any] = []
    result = projector.apply_batch(
        lines,
        on_rejected=lambda n, eid, reason: rejected.append((n, eid, reason)),
        on_malformed=lambda n, exc: errors.append((n, str(exc))),
    )
    return result, rejected, errors


def state(projector: SessionProjector) -> str:
    return json.dumps(projector.snapshot(), sort_keys=True)


def stream_lines(events: int, sessions: int, seed: int, as_bytes: bool = True) -> list[Any]:
    text = [json.dumps(w, separators=(",", ":")) + "\n" for w in generate_stream(events, sessions, seed)]
    return [t.encode() for t in text] if as_bytes else text


# Lines the stream never has: every kind of malformed line, blank lines, odd but valid JSON.
AWKWARD = [
    "\n", "   \n", "not json\n", "[1, 2]\n", "{}\n", '{"eventId": 5}\n',
    ' {"eventId":"w1","type":"item.started","provider":"codex","threadId":"thread-x",'
    '"createdAt":"2026-11-20T00:00:01Z","payload":{}}\n',  # leading whitespace
    '{"eventId":"w2","type":"item.started","provider":"codex","threadId":"thread-x",'
    '"createdAt":"2026-11-20T00:00:02Z","payload":{},"extra":[1,{"a":null}]}\t\n',  # unknown key, tab
    '{"eventId":"w3","type":"turn.completed","provider":"codex","threadId":"thread-x",'
    '"createdAt":"2026-11-20T00:00:03Z","turnId":"T9","payload":{"state":"exploded"}}\n',  # bad payload
    '{"eventId":"w4","type":"turn.started","provider":"codex","threadId":"thread-x",'
    '"createdAt":"yesterday","turnId":"T9"}\n',  # bad time
    '{"eventId":"~lifecycle:x","type":"turn.started","provider":"codex","threadId":"thread-x",'
    '"createdAt":"2026-11-20T00:00:04Z"}\n',  # reserved id
    '{"eventId":"w5","type":"turn.started","provider":"codex","threadId":"thread-x",'
    '"createdAt":"2026-11-20T00:00:05","turnId":"T1","payload":null}\r\n',  # no offset, CRLF
    '{"eventId":"w6","type":"session.state.changed","provider":"codex","threadId":"thread-x",'
    '"createdAt":"2026-11-20T00:00:06Z","payload":{"state":"error","reason":"\\ud800 lone"}}\n',
    '{"eventId":"w7","type":"runtime.error","provider":"codex","threadId":"thread-x",'
    '"createdAt":"2026-11-20T00:00:07Z","payload":{"message":NaN}}\n',
    '{"eventId":"w8","type":"thread.delete","provider":"codex","threadId":"thread-x",'
    '"createdAt":"2026-11-20T00:00:08Z","payload":{}}\n',  # forgets the thread
    '{"eventId":"w9","type":"session.started","provider":"codex","threadId":"thread-x",'
    '"createdAt":"9999-01-01T00:00:00Z","payload":{}}\n',  # beyond the clock bound
    '{"eventId":"w5","type":"turn.started","provider":"codex","threadId":"thread-y",'
    '"createdAt":"2026-11-20T00:00:09Z","turnId":"T1","turnId":"T2"}\n',  # duplicate key
]


def mixed_lines(as_bytes: bool) -> list[Any]:
    lines = stream_lines(3000, 40, 11, as_bytes=False)
    for i, extra in enumerate(AWKWARD * 3):
        lines.insert(97 * i + 13, extra)
    return [line.encode("utf-8", "surrogatepass") for line in lines] if as_bytes else lines


@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "text"])
def test_the_batch_path_gives_what_apply_gives_on_the_benchmark_stream(decoder: str, as_bytes: bool) -> None:
    lines = mixed_lines(as_bytes)
    # Small caps: eviction from both memories happens within the stream.
    caps = {"max_event_ids": 8, "max_finished_turns": 2}
    reference = SessionProjector(**caps)
    counts, rejected, errors = by_apply(reference, lines)
    batch = SessionProjector(**caps)
    result, batch_rejected, batch_errors = by_batch(batch, lines)
    assert result.counts == counts
    assert result.lines == len(lines)
    assert batch_rejected == rejected
    assert batch_errors == errors
    assert state(batch) == state(reference)
    # The stream reaches every kind the batch path produces.
    assert all(counts[k] for k in ("applied", "ignored", "duplicate", "rejected", "forgotten", "malformed"))


def test_the_batch_path_agrees_on_a_larger_stream_with_default_caps(decoder: str) -> None:
    lines = stream_lines(30_000, 300, 2026)
    reference = SessionProjector()
    counts, rejected, _ = by_apply(reference, lines)
    batch = SessionProjector()
    result, batch_rejected, _ = by_batch(batch, lines)
    assert result.counts == counts and batch_rejected == rejected
    assert state(batch) == state(reference)


def test_the_batch_path_continues_a_projector_and_leaves_apply_working() -> None:
    lines = stream_lines(2000, 20, 5)
    reference = SessionProjector()
    by_apply(reference, lines)
    batch = SessionProjector()
    batch.apply_batch(lines[:1000])
    for line in lines[1000:1500]:
        batch.apply(line)
    batch.apply_batch(lines[1500:])
    assert state(batch) == state(reference)


def test_an_observer_sees_every_outcome_because_the_batch_path_falls_back_to_apply() -> None:
    lines = mixed_lines(True)
    seen: list[Outcome] = []
    observed = SessionProjector()
    observed.subscribe(seen.append)
    result, rejected, errors = by_batch(observed, lines)
    reference = SessionProjector()
    counts, ref_rejected, ref_errors = by_apply(reference, lines)
    assert (result.counts, rejected, errors) == (counts, ref_rejected, ref_errors)
    assert len(seen) == sum(n for k, n in counts.items() if k != "malformed")
    assert [o.kind.value for o in seen].count("rejected") == counts["rejected"]
    assert state(observed) == state(reference)


def test_the_transitions_engine_goes_through_apply_with_the_same_results() -> None:
    lines = mixed_lines(True)
    reference = SessionProjector()
    expected = by_apply(reference, lines)
    slow = SessionProjector(engine="transitions")
    result, rejected, errors = by_batch(slow, lines)
    assert (result.counts, rejected, errors) == expected
    assert state(slow) == state(reference)


def test_from_inside_an_observer_the_lines_are_deferred_like_apply() -> None:
    ev = Events()
    inner = [json.dumps(ev("session.started")), json.dumps(ev("turn.started", "T1"))]
    results: list[BatchResult] = []
    p = SessionProjector()

    def observer(outcome: Outcome) -> None:
        if not results:
            results.append(p.apply_batch(inner))

    p.subscribe(observer)
    p.apply(ev("runtime.warning", message="w"))
    assert results[0].counts["deferred"] == 2
    assert p["thread-1"].status == "running"  # applied once the observer returned


def test_a_clock_bound_rejection_comes_from_the_batch_path_too() -> None:
    now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    ev = Events()
    lines = [json.dumps(ev("session.started", created_at="2026-11-22T10:00:00Z")),
             json.dumps(ev("session.started", created_at="2026-11-20T10:00:00Z"))]
    p = SessionProjector(clock=lambda: now, max_clock_skew=timedelta(hours=1))
    result, rejected, _ = by_batch(p, lines)
    assert rejected == [(1, json.loads(lines[0])["eventId"], "created_in_future")]
    assert result.counts["applied"] == 1 and p["thread-1"].status == "ready"


def test_a_malformed_line_changes_nothing() -> None:
    p = SessionProjector()
    p.apply_batch(stream_lines(200, 5, 3))
    before = state(p)
    result, _, errors = by_batch(p, [line.encode() if isinstance(line, str) else line for line in AWKWARD[2:6]])
    assert result.counts["malformed"] == 4 and len(errors) == 4
    assert state(p) == before


# -- replay uses it: byte-identical output ---------------------------------------------------------


def test_replay_output_is_the_same_with_and_without_the_batch_path(decoder: str, tmp_path: Path) -> None:
    logs = sorted((ROOT / "examples").glob("*.jsonl"))
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"".join(mixed_lines(True)) + b"x" * 5000 + b"\n")  # and one line past the limit
    for log in [*logs, mixed]:
        reports = []
        for on_line in (None, lambda *_: None):  # a line observer needs per-line outcomes: apply
            p = SessionProjector(max_clock_skew=None)
            with open(log, "rb") as f:
                report = replay_lines(p, f, max_line_bytes=4096, on_line=on_line)
            reports.append(json.dumps(report.to_json(p)))
        assert reports[0] == reports[1], log.name


# -- verify's check of the lean steps --------------------------------------------------------------


def test_verify_checks_the_batch_steps_on_every_edge() -> None:
    _, agreement = explore_and_agree(builtin_spec())
    assert agreement.ok
    assert "batch path's steps" in agreement.detail


def test_the_batch_step_check_fails_on_a_step_that_differs() -> None:
    spec = builtin_spec()
    table = dict(compiled_for(spec).table)
    key = ("turn.started", "ready")
    plan = table[key]
    # Every combination of guards now rejects, with a reason of its own.
    table[key] = Plan(plan.guards, tuple(Entry(False, "ready", (), "altered") for _ in plan.entries))
    wrong = CompiledMachine(spec, table).batch_dispatch
    p = SessionProjector(spec)
    p.seed(Session(THREAD, "ready", "codex"))
    event = p.parse(Events(THREAD)("turn.started", "T1"))
    outcome = p.apply(event)
    assert outcome.kind is OutcomeKind.APPLIED
    state_before = (Session(THREAD, "ready", "codex"), frozenset[str]())
    assert _BatchCheck(p).differs(state_before, (), event, outcome, p.finished_turns(THREAD)) is False
    assert _BatchCheck(p, wrong).differs(state_before, (), event, outcome, p.finished_turns(THREAD)) is True


def test_pre_parsed_events_and_wire_dicts_give_what_apply_gives() -> None:
    wires = generate_stream(3000, 30, 9)
    reference = SessionProjector()
    batch = SessionProjector()
    # Its own parser's Events (trusted), wire dicts, Events from another parser and altered copies
    # (checked again in full, like `apply` does), a non-mapping.
    stranger = SessionProjector()
    items: list[Any] = []
    for i, w in enumerate(wires):
        if i % 7 == 3:
            items.append(w)
        elif i % 7 == 5:
            items.append(stranger.parse(w))
        elif i % 97 == 11:
            items.append(batch.parse(w).evolve(created_at="not a time"))
        else:
            items.append(batch.parse(w))
    items.insert(500, ["not", "an", "event"])
    expected = by_apply_items(reference, items)
    result, rejected, errors = by_batch(batch, items)
    assert (result.counts, rejected, errors) == expected
    assert result.counts["malformed"] > 1
    assert state(batch) == state(reference)


def by_apply_items(projector: SessionProjector, items: list[Any]) -> tuple[dict[str, int], list[Any], list[Any]]:
    # `apply` trusts only its own parser's Events: the reference re-parses the batch's from their fields.
    return by_apply(projector, [i.to_wire() if hasattr(i, "to_wire") and i.checked_by is not None else i
                                for i in items])


def test_a_subclass_that_changes_apply_keeps_it_in_a_batch() -> None:
    class Counting(SessionProjector):
        calls = 0

        def apply(self, event: Any) -> Outcome:
            Counting.calls += 1
            return super().apply(event)

    lines = stream_lines(500, 5, 4)
    p = Counting()
    result = p.apply_batch(lines)
    assert Counting.calls == len(lines) == result.lines
    reference = SessionProjector()
    by_apply(reference, lines)
    assert state(p) == state(reference)


def test_numbered_ingest_tells_thread_creations_and_forgettings_as_apply_sees_them() -> None:
    lines = mixed_lines(as_bytes=True)
    # Some lines only, with the file's numbers: what a `replay --jobs` worker hands over.
    items = [(n, line) for n, line in enumerate(lines, 1) if n % 3]

    def told(projector: SessionProjector) -> tuple[list[tuple[str, int, str]], dict[str, int]]:
        seen: list[tuple[str, int, str]] = []
        result = projector.apply_numbered(items,
                                 on_created=lambda n, t: seen.append(("created", n, t)),
                                 on_forgotten=lambda n, t: seen.append(("forgotten", n, t)))
        return seen, result.counts

    lean = told(SessionProjector())
    watched = SessionProjector()
    watched.subscribe(lambda outcome: None)  # an observer: every item goes through `apply`
    assert told(watched) == lean
    # What apply says, line by line: a creation where the thread had no record, a forgetting where
    # the outcome says so.
    expected: list[tuple[str, int, str]] = []
    by_apply = SessionProjector()
    for number, line in items:
        try:
            event = by_apply.parse(line)
        except EventError:
            continue
        new = event.thread_id not in by_apply
        outcome = by_apply.apply(event)
        if new:
            expected.append(("created", number, event.thread_id))
        if outcome.kind is OutcomeKind.FORGOTTEN:
            expected.append(("forgotten", number, event.thread_id))
    assert lean[0] == expected
    assert any(kind == "forgotten" for kind, _, _ in expected)
