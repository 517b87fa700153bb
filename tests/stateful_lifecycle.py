"""A Hypothesis stateful machine that drives a `SessionProjector` with any spec.

`make_lifecycle_machine(spec)` builds one machine class per spec, so the same rules run on the
built-in lifecycle and on each mutant. Event kinds come from the spec object: one rule per
trigger (`type` or `type[variant]`), with payloads built from the spec's payload fields.

Two kinds of failure are kept apart on purpose: `InvariantViolation` means the spec's own
invariants (`state_violations`, `step_violations`) or the requirements (`specs/requirements.yaml`:
state invariants and per-event contracts, checked after every step; the spec's declarations,
checked once) broke; a plain `AssertionError` means the projector broke a contract that holds for
every spec (outcomes, de-duplication, malformed input). A broken spec must produce the first kind
only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from statemachine import EventError, Outcome, OutcomeKind, SessionProjector, Spec
from statemachine.core.record import event_digest_hex
from statemachine.spec.invariants import state_violations, step_violations
from statemachine.spec.model import EventType, PayloadField
from statemachine.spec.requirements import Requirements, builtin_requirements
from statemachine.spec.semantics import SETS_TURN
from statemachine.verify.explore import SeenView

__all__ = ["InvariantViolation", "make_lifecycle_machine", "trigger_event"]

THREADS = ("thread-a", "thread-b", "thread-c")
# Most events come from sessions with work under way: a thread holding a turn is drawn this many
# times as often as any one thread (see `_thread`).
BUSY_WEIGHT = 3
PROVIDERS = ("codex", "claudeAgent")
# Types providers send that are not lifecycle events; any the spec lists are left out.
OTHER_TYPES = (
    "item.started",
    "item.completed",
    "content.delta",
    "session.configured",
    "thread.state.changed",
    "request.opened",
    "task.progress",
)
# Where an event's turn id comes from, and how often (relative weights). Real streams mostly name
# the active turn or start a fresh one; the rarer choices probe the turn guards.
TURN_CHOICES = {"none": 1, "active": 3, "finished": 1, "fresh": 2, "known": 1}
# Offsets the same instant is written in: the projector must compare instants, not strings.
ZONES = {"Z": UTC, "+00:00": UTC, "+02:00": timezone(timedelta(hours=2)), "-05:00": timezone(timedelta(hours=-5))}
EPOCH = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)

# Milliseconds between consecutive events: about a quarter of them go back in time.
ticks = st.integers(min_value=-90_000, max_value=300_000)
zones = st.sampled_from(sorted(ZONES))
threads = st.sampled_from(THREADS)
providers = st.sampled_from(PROVIDERS)
texts = st.sampled_from(["", "boom", "provider crashed", "turn failed", "ünïcode ✓"])
anything = st.sampled_from([None, 0, 1.5, "x", [], {"k": "v"}, True])


class InvariantViolation(AssertionError):
    """The spec's own invariants broke. `violated` names them."""

    def __init__(self, violated: list[str], where: str) -> None:
        super().__init__(f"{where}: violates {violated}")
        self.violated = tuple(violated)


def _value(f: PayloadField) -> st.SearchStrategy[Any]:
    if f.enum is not None:
        return st.sampled_from(f.enum)
    if f.type == "string":
        return texts
    if f.type == "boolean":
        return st.booleans()
    if f.type == "id":
        # Few ids, so that requests are answered, asked again and meet their equals of the other type.
        return st.sampled_from([1, "1", 2, "2", 0])
    return anything


def payloads(event_type: EventType, variant: str | None) -> st.SearchStrategy[dict[str, Any]]:
    """Valid payloads for one trigger: required fields always, optional ones sometimes."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for f in event_type.payload:
        if f.name == event_type.variant_by:
            # A selector that defaults to this variant may be left out.
            (optional if f.default == variant else required)[f.name] = st.just(variant)
        elif f.required:
            required[f.name] = _value(f)
        else:
            optional[f.name] = _value(f)
    return st.fixed_dictionaries(required, optional=optional)


def trigger_event(spec: Spec, trigger: str) -> tuple[EventType, str | None]:
    """`type[variant]` -> the spec's event type and the variant (None for a plain type)."""
    type_, _, rest = trigger.partition("[")
    event_type = spec.event_type(type_)
    assert event_type is not None, trigger
    return event_type, rest[:-1] if rest else None


@dataclass(frozen=True)
class Corruption:
    """One way to break a valid wire event; `field` is what `EventError` must name."""

    field: str
    how: str  # "drop" the key, "set" it to `value`, or make the whole event `value` ("replace")
    value: Any = None
    triggers: tuple[str, ...] = ()  # break only events of these triggers (empty: any)

    def apply(self, wire: dict[str, Any]) -> Any:
        if self.how == "replace":
            return self.value
        key, _, inner = self.field.partition(".")
        if inner:  # a payload field
            payload = {k: v for k, v in wire["payload"].items() if k != inner}
            if self.how == "set":
                payload[inner] = self.value
            return {**wire, "payload": payload}
        broken = {k: v for k, v in wire.items() if k != key}
        if self.how == "set":
            broken[key] = self.value
        return broken


def _corruptions(spec: Spec) -> list[Corruption]:
    """Malformed input of every kind `EventParser` must refuse, derived from the envelope and the spec."""
    out = [Corruption("event", "replace", v) for v in ([], "null")] + [Corruption("line", "replace", b"{not json")]
    for key in ("eventId", "type", "provider", "threadId", "createdAt"):
        out += [Corruption(key, "drop")] + [Corruption(key, "set", v) for v in ("", 7, None)]
    out += [Corruption("createdAt", "set", v) for v in ("yesterday", "2026-13-45T99:00:00Z")]
    out += [Corruption("turnId", "set", v) for v in ("", 3, ["t"])]
    out += [Corruption("payload", "set", v) for v in ("text", [1])]
    for et in spec.events:
        for f in et.payload:
            # Broken on an event of its own type, so it is the only fault.
            where = f"payload.{f.name}"
            if f.required:
                out.append(Corruption(where, "drop", triggers=et.triggers))
            if f.type == "string":
                out.append(Corruption(where, "set", 42, et.triggers))
            if f.type == "boolean":
                out.append(Corruption(where, "set", "yes", et.triggers))
            if f.type == "id":
                out.append(Corruption(where, "set", True, et.triggers))
            if f.enum is not None:
                out.append(Corruption(where, "set", "not-a-" + f.name, et.triggers))
    return out


def make_lifecycle_machine(
    spec: Spec, *, projector: Callable[[Spec], SessionProjector] = SessionProjector,
    requirements: Requirements | None = None,
) -> type[RuleBasedStateMachine]:
    """A stateful test of `projector(spec)` against the spec's invariants and the requirements
    (the built-in file unless given); one rule per trigger the spec declares."""
    reqs = requirements if requirements is not None else builtin_requirements(spec)
    declared = reqs.declaration_violations()
    triggers = spec.triggers
    assert triggers, "a spec without events leaves nothing to test"
    other_types = [t for t in OTHER_TYPES if spec.event_type(t) is None]
    corruptions = _corruptions(spec)
    valid_payloads = {t: payloads(*trigger_event(spec, t)) for t in triggers}
    # Triggers with a transition that may make the event's turn active.
    turn_setting = [t for t in triggers if any(e.name in SETS_TURN for x in spec.transitions_for(t) for e in x.effects)]
    assert turn_setting, "a spec where no event sets a turn leaves the turn invariants untested"

    episode_tails = st.lists(st.sampled_from(triggers), min_size=1, max_size=4)

    class LifecycleMachine(RuleBasedStateMachine):
        # Every event delivered so far (wire form), to redeliver its eventId.
        delivered = Bundle("delivered")

        def __init__(self) -> None:
            super().__init__()
            if declared:  # the spec contradicts a requirement by its declarations alone
                raise InvariantViolation(sorted(declared), "; ".join(declared.values()))
            self.projector = projector(spec)
            self.clock = EPOCH
            self.next_id = 0
            # The eventIds each thread's memory holds, oldest first: the projector keeps only digests.
            self.memory_ids: dict[str, list[str]] = {}
            # A deleted thread's eventIds, kept as its tombstone (oldest deletion first).
            self.tomb_ids: dict[str, list[str]] = {}
            self.known_turns: set[str] = set()

        # -- building events ---------------------------------------------------------------

        def _fresh(self, prefix: str) -> str:
            self.next_id += 1
            return f"{prefix}-{self.next_id}"

        def _created_at(self, tick: int, zone: str) -> str:
            self.clock += timedelta(milliseconds=tick)
            text = self.clock.astimezone(ZONES[zone]).isoformat(timespec="milliseconds")
            return text.replace("+00:00", "Z") if zone == "Z" else text

        def _thread(self, data: st.DataObject) -> str:
            busy = [t for t, s in self.projector.sessions().items() if s.active_turn_id is not None]
            offered = THREADS + ("busy",) * BUSY_WEIGHT if busy else THREADS
            choice = data.draw(st.sampled_from(offered), label="thread")
            return data.draw(st.sampled_from(busy), label="busy thread") if choice == "busy" else choice

        def _turn(self, data: st.DataObject, thread: str) -> str | None:
            """A turn id from one of TURN_CHOICES; only choices that exist now are offered."""
            session = self.projector.get(thread)
            active = session.active_turn_id if session is not None else None
            finished = self.projector.finished_turns(thread)
            others = sorted(self.known_turns - set(finished) - {active})
            missing = {"active": active is None, "finished": not finished, "known": not others}
            offered = [c for c, weight in TURN_CHOICES.items() if not missing.get(c, False) for _ in range(weight)]
            choice = data.draw(st.sampled_from(offered), label="turn choice")
            if choice == "none":
                return None
            if choice == "active":
                return active
            if choice == "finished":
                return data.draw(st.sampled_from(finished), label="finished turn")
            if choice == "known":
                return data.draw(st.sampled_from(others), label="known turn")
            return self._fresh("turn")

        def _wire(
            self, type_: str, thread: str, provider: str, created_at: str, turn: str | None,
            payload: Mapping[str, Any], event_id: str | None = None,
        ) -> dict[str, Any]:
            wire: dict[str, Any] = {
                "eventId": event_id if event_id is not None else self._fresh("evt"),
                "type": type_,
                "provider": provider,
                "threadId": thread,
                "createdAt": created_at,
                "payload": dict(payload),
            }
            if turn is not None:
                wire["turnId"] = turn
                self.known_turns.add(turn)
            return wire

        def _lifecycle(self, data: st.DataObject, trigger: str, thread: str, provider: str, created_at: str,
                       turn: str | None, event_id: str | None = None) -> dict[str, Any]:
            event_type, _ = trigger_event(spec, trigger)
            payload = data.draw(valid_payloads[trigger], label="payload")
            return self._wire(event_type.type, thread, provider, created_at, turn, payload, event_id)

        # -- memory snapshots --------------------------------------------------------------

        def _memory(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
            p = self.projector
            return {t: (p.seen_event_digests(t), p.finished_turns(t)) for t in p}

        # -- delivering one event and checking its outcome ---------------------------------

        def _send(self, wire: dict[str, Any]) -> Outcome:
            p = self.projector
            thread, event_id = wire["threadId"], wire["eventId"]
            digest = event_digest_hex(event_id)  # the memory keeps digests, not ids
            sessions, memory = p.sessions(), self._memory()
            seen, finished = memory.get(thread, ((), ()))
            tomb = self.tomb_ids.get(thread) if thread not in sessions else None
            first = thread not in sessions  # this event creates the thread (anew, after a deletion)

            outcome = p.apply(wire)

            if tomb is not None:
                if digest in map(event_digest_hex, tomb):
                    # A redelivery to a deleted thread: a duplicate, and the thread stays deleted.
                    assert outcome.kind is OutcomeKind.DUPLICATE, (outcome.kind, wire)
                    assert thread not in p and outcome.after == outcome.before
                    assert p.sessions() == sessions and self._memory() == memory
                    return outcome
                # A new event starts the thread anew; it still knows the ids it saw before.
                del self.tomb_ids[thread]
                self.memory_ids[thread] = list(tomb)
                seen = tuple(map(event_digest_hex, tomb))

            # Exactly one outcome, about this event and this session.
            assert isinstance(outcome, Outcome) and isinstance(outcome.kind, OutcomeKind)
            assert (outcome.event.event_id, outcome.event.thread_id) == (event_id, thread)
            if thread in sessions:
                assert outcome.before == sessions[thread]
            else:
                # A thread not seen before starts in the initial status with nothing set.
                fields = (outcome.before.status, outcome.before.active_turn_id, outcome.before.last_error,
                          outcome.before.updated_at)
                assert fields == (spec.initial, None, None, None), outcome.before
            if outcome.kind is OutcomeKind.FORGOTTEN:
                # The thread is dropped with its memories; a spec's forgetting command did it.
                event_type = spec.event_type(wire["type"])
                assert event_type is not None and event_type.forgets_thread, wire
                assert thread not in p and p.seen_event_digests(thread) == () and p.finished_turns(thread) == ()
                ids = [*self.memory_ids.pop(thread, []), event_id][-p.max_event_ids:]
                if digest in seen:  # already remembered (cannot be: a duplicate is not forgotten)
                    raise AssertionError(wire)
                self.tomb_ids.pop(thread, None)
                self.tomb_ids[thread] = ids
                assert {t: s for t, s in p.sessions().items()} == {t: s for t, s in sessions.items() if t != thread}
                # The contracts about forgetting read what is left of the thread: nothing.
                bad = step_violations(spec, outcome) + reqs.step_violations(
                    outcome, finished, (), seen_after=SeenView(p, thread), first=first)
                if bad:
                    raise InvariantViolation(bad, f"{outcome.kind} {wire} -> {outcome.after}")
                return outcome
            assert outcome.after == p[thread]
            # Nothing outside this thread moved.
            assert {t: s for t, s in p.sessions().items() if t != thread} == {
                t: s for t, s in sessions.items() if t != thread
            }
            assert {t: m for t, m in self._memory().items() if t != thread} == {
                t: m for t, m in memory.items() if t != thread
            }

            new_seen, new_finished = p.seen_event_digests(thread), p.finished_turns(thread)
            if digest in seen:
                assert outcome.kind is OutcomeKind.DUPLICATE, (outcome.kind, wire)
                assert outcome.after == outcome.before and (new_seen, new_finished) == (seen, finished)
            else:
                assert outcome.kind is not OutcomeKind.DUPLICATE, wire
                assert new_seen == (*seen, digest)[-p.max_event_ids:]
                ids = self.memory_ids.setdefault(thread, [])
                ids.append(event_id)
                del ids[:-p.max_event_ids]
                assert tuple(map(event_digest_hex, ids)) == new_seen
            if spec.event_type(wire["type"]) is None and digest not in seen:
                assert outcome.kind is OutcomeKind.IGNORED, (outcome.kind, wire)
            if outcome.kind is OutcomeKind.REJECTED:
                assert isinstance(outcome.reason, str) and outcome.reason, outcome
            else:
                assert outcome.reason is None, outcome
            if outcome.kind is OutcomeKind.APPLIED:
                # The outcome names a spec transition that fits this trigger, source and destination.
                assert outcome.transition is not None
                taken = spec.transitions[outcome.transition]
                assert taken.trigger == outcome.event.trigger
                assert outcome.before.status in taken.sources
                assert outcome.after.status == (taken.dest or outcome.before.status)
                if len(new_finished) < p.max_finished_turns:  # nothing forgotten yet
                    assert set(finished) <= set(new_finished)
            else:
                assert outcome.transition is None
                assert outcome.after == outcome.before and new_finished == finished

            # Everything this step broke, reported together: the spec's step invariants, the
            # requirements' contracts for this delivery, and the state invariants afterwards.
            bad = step_violations(spec, outcome) + reqs.step_violations(
                outcome, finished, new_finished, redelivered=digest in seen, seen_after=SeenView(p, thread),
                first=first,
            ) + self._session_violations(thread)
            if bad:
                raise InvariantViolation(bad, f"{outcome.kind} {wire} -> {outcome.after}")
            return outcome

        def _session_violations(self, thread: str) -> list[str]:
            session, finished = self.projector[thread], self.projector.finished_turns(thread)
            return state_violations(spec, session, finished) + reqs.state_violations(session, finished)

        def _check_session(self, thread: str) -> None:
            bad = self._session_violations(thread)
            if bad:
                raise InvariantViolation(bad, f"session {self.projector[thread]}")

        # -- rules besides the per-trigger ones --------------------------------------------

        def _episode(self, data: st.DataObject, thread: str, provider: str, tick: int, zone: str, start: str,
                     then: list[str]) -> MultipleResults[dict[str, Any]]:
            """A fresh turn starts, then a burst of events about it (or about no turn)."""
            turn = self._fresh("turn")
            wires = [self._lifecycle(data, start, thread, provider, self._created_at(tick, zone), turn)]
            for trigger in then:
                named = data.draw(st.sampled_from([turn, None]), label="turn")
                at = self._created_at(data.draw(ticks, label="tick"), zone)
                wires.append(self._lifecycle(data, trigger, thread, provider, at, named))
            for wire in wires:
                self._send(wire)
            return multiple(*wires)

        @initialize(target=delivered, data=st.data(), thread=threads, provider=providers, zone=zones,
                    start=st.sampled_from(turn_setting), then=episode_tails)
        def first_seen_mid_turn(self, data: st.DataObject, thread: str, provider: str, zone: str, start: str,
                                then: list[str]) -> MultipleResults[dict[str, Any]]:
            # One thread is first seen on a turn, the others stay idle until their first event.
            # Initialize rules run in every example, whichever rules the example leaves out, so
            # every run has a turn to settle, or to get wrong.
            return self._episode(data, thread, provider, 0, zone, start, then)

        @rule(target=delivered, data=st.data(), provider=providers, tick=ticks, zone=zones,
              type_=st.sampled_from(other_types), payload=st.dictionaries(st.sampled_from("abc"), anything))
        def unknown_type(self, data: st.DataObject, provider: str, tick: int, zone: str,
                         type_: str, payload: dict[str, Any]) -> dict[str, Any]:
            thread = self._thread(data)
            wire = self._wire(type_, thread, provider, self._created_at(tick, zone), self._turn(data, thread), payload)
            outcome = self._send(wire)
            assert outcome.kind is OutcomeKind.IGNORED
            return wire

        @rule(data=st.data(), original=delivered, trigger=st.sampled_from(triggers), tick=ticks, zone=zones)
        def redeliver(self, data: st.DataObject, original: dict[str, Any], trigger: str, tick: int,
                      zone: str) -> None:
            # Same eventId and thread, anything else may differ: still the event already processed.
            thread = original["threadId"]
            # Remembered by the thread, or by its tombstone if it was deleted since (either memory
            # forgets its oldest ids past the cap: such an event would be new).
            remembered = self.tomb_ids.get(thread) if thread not in self.projector else self.memory_ids.get(thread)
            assume(original["eventId"] in (remembered or ()))
            wire = self._lifecycle(data, trigger, thread, original["provider"], self._created_at(tick, zone),
                                   self._turn(data, thread), event_id=original["eventId"])
            assert thread not in self.projector or self.projector.has_seen(thread, original["eventId"])
            assert self._send(wire).kind is OutcomeKind.DUPLICATE

        @rule(target=delivered, data=st.data(), original=delivered, trigger=st.sampled_from(triggers), tick=ticks,
              zone=zones)
        def reuse_id_elsewhere(self, data: st.DataObject, original: dict[str, Any], trigger: str, tick: int,
                               zone: str) -> dict[str, Any]:
            thread = self._thread(data)
            # De-duplication is per thread: another thread's eventId is new here (checked in _send).
            wire = self._lifecycle(data, trigger, thread, original["provider"], self._created_at(tick, zone),
                                   self._turn(data, thread), event_id=original["eventId"])
            self._send(wire)
            return wire

        @rule(target=delivered, data=st.data(), thread=threads, provider=providers, tick=ticks, zone=zones,
              start=st.sampled_from(turn_setting), then=episode_tails)
        def turn_episode(self, data: st.DataObject, thread: str, provider: str, tick: int, zone: str,
                         start: str, then: list[str]) -> MultipleResults[dict[str, Any]]:
            # Every turn invariant needs a turn to be active first; with one rule per trigger, the
            # events that start one would otherwise be a small share of the steps.
            return self._episode(data, thread, provider, tick, zone, start, then)

        @rule(target=delivered, original=delivered, tick=ticks, zone=zones)
        def replay_as_new(self, original: dict[str, Any], tick: int, zone: str) -> dict[str, Any]:
            # A provider retry: the same event again under a new eventId, possibly much later.
            wire = {**original, "eventId": self._fresh("evt"), "createdAt": self._created_at(tick, zone)}
            self._send(wire)
            return wire

        @rule(data=st.data(), thread=threads, provider=providers, later=st.sampled_from(triggers),
              earlier=st.sampled_from(triggers), tick=ticks, zone=zones, gap=st.integers(1, 60_000))
        def out_of_order(self, data: st.DataObject, thread: str, provider: str, later: str, earlier: str,
                         tick: int, zone: str, gap: int) -> None:
            # Two events about one new turn arrive swapped: the later one first (e.g. completed, then started).
            turn = self._fresh("turn")
            first = self._lifecycle(data, later, thread, provider, self._created_at(tick + gap, zone), turn)
            second = self._lifecycle(data, earlier, thread, provider, self._created_at(-gap, zone), turn)
            self._send(first)
            self._send(second)

        @rule(data=st.data(), provider=providers, tick=ticks, zone=zones, corruption=st.sampled_from(corruptions),
              reuse_id=st.booleans())
        def malformed(self, data: st.DataObject, provider: str, tick: int, zone: str, corruption: Corruption,
                      reuse_id: bool) -> None:
            thread = self._thread(data)
            trigger = data.draw(st.sampled_from(corruption.triggers or triggers), label="trigger")
            seen = tuple(self.memory_ids.get(thread, ()))
            event_id = data.draw(st.sampled_from(seen), label="seen id") if reuse_id and seen else None
            wire = self._lifecycle(data, trigger, thread, provider, self._created_at(tick, zone),
                                   self._turn(data, thread), event_id=event_id)
            bad = corruption.apply(wire)
            sessions, memory = self.projector.sessions(), self._memory()
            try:
                outcome = self.projector.apply(bad)
            except EventError as exc:
                assert exc.field == corruption.field, (exc.field, corruption, bad)
            else:
                raise AssertionError(f"malformed event accepted: {bad!r} -> {outcome!r}")
            # Malformed input touches nothing: no session, no remembered id, no remembered turn.
            assert self.projector.sessions() == sessions
            assert self._memory() == memory

        @invariant()
        def every_session_keeps_the_spec_invariants(self) -> None:
            for thread in self.projector:
                self._check_session(thread)

    def fire_rule(trigger: str) -> Callable[..., dict[str, Any]]:
        def fire(self: LifecycleMachine, data: st.DataObject, provider: str, tick: int, zone: str) -> dict[str, Any]:
            thread = self._thread(data)
            wire = self._lifecycle(data, trigger, thread, provider, self._created_at(tick, zone),
                                   self._turn(data, thread))
            self._send(wire)
            return wire

        fire.__name__ = "fire_" + "".join(c if c.isalnum() else "_" for c in trigger).strip("_")
        return fire

    namespace: dict[str, Any] = {}
    for trigger in triggers:
        fn = fire_rule(trigger)
        namespace[fn.__name__] = rule(
            target=LifecycleMachine.delivered, data=st.data(), provider=providers, tick=ticks, zone=zones
        )(fn)
    name = "Lifecycle_" + "".join(c if c.isalnum() else "_" for c in spec.name)
    return type(name, (LifecycleMachine,), namespace)
