"""Lifecycle metrics through OpenTelemetry: outcomes, sessions by status, turn durations, the
operations' own events, and hooks for the orchestrator's decisions.

    from statemachine.observing.metrics import LifecycleMetrics

    metrics = LifecycleMetrics()          # the global MeterProvider; or LifecycleMetrics(provider)
    metrics.observe(projector)            # or a SessionStore, or a LockedProjector

`observe` subscribes the metrics as an ordinary observer (`subscribe(observer, what="outcome")`),
so they see exactly the outcomes the projector or store hands out, after the session changed (a
store: after the transaction committed). Every instrument is listed in `INSTRUMENTS`, with its
unit, attributes and meaning; docs/metrics.md shows that table.

Only `opentelemetry-api` is needed (the `[otel]` extra); the application configures the SDK and
exporters. Without the API installed, `LifecycleMetrics` still imports and runs, and does nothing
(`enabled` is False). Nothing here is imported by the package's `__init__`.

Attribute values are bounded: statuses, event types, outcome kinds, rejection reasons and
operation names come from the spec and the library; provider names and attention reasons come
from outside, so past `max_attribute_values` distinct values the rest are reported as `_other`.
No threadId, turnId or eventId ever becomes an attribute.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from statemachine.core.event import SYNTHETIC_EVENT_PREFIX
from statemachine.core.outcome import Outcome, OutcomeKind
from statemachine.core.session import Session
from statemachine.core.version import __version__
from statemachine.runtime.operations import RESTART_EVENT_PREFIX, STALE_TURN_EVENT_PREFIX

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, MeterProvider, UpDownCounter

__all__ = [
    "INSTRUMENTS",
    "METER_NAME",
    "Instrument",
    "LifecycleMetrics",
    "Observable",
    "instruments_markdown",
    "operation_of",
]

METER_NAME = "statemachine.observing.metrics"

# Attribute names, in OpenTelemetry's dotted snake_case, under the library's own namespace.
KIND = "session_lifecycle.outcome.kind"
REASON = "session_lifecycle.outcome.reason"
PROVIDER = "session_lifecycle.provider.name"
STATUS = "session_lifecycle.session.status"
EVENT_TYPE = "session_lifecycle.event.type"
OPERATION = "session_lifecycle.operation.name"
ATTENTION = "session_lifecycle.attention.reason"

OTHER = "_other"  # an outside value past the bound on distinct values
DEFAULT_MAX_ATTRIBUTE_VALUES = 32


def _operation_name(prefix: str) -> str:
    return prefix.removeprefix(SYNTHETIC_EVENT_PREFIX).rstrip(":")


STALE_TURN_OPERATION = _operation_name(STALE_TURN_EVENT_PREFIX)  # "stale-turn"
RESTART_OPERATION = _operation_name(RESTART_EVENT_PREFIX)  # "restart"

# Turn durations run from seconds to hours; the SDK's default buckets are sized for milliseconds.
TURN_DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)


@dataclass(frozen=True, slots=True)
class Instrument:
    """One instrument: what the table in docs/metrics.md shows, and what `LifecycleMetrics` creates."""

    name: str
    kind: Literal["counter", "up_down_counter", "histogram"]
    unit: str
    attributes: tuple[str, ...]
    description: str
    recorded_by: str  # "observer": from outcomes; else the LifecycleMetrics method that records it


OUTCOMES = Instrument(
    "session_lifecycle.outcomes", "counter", "{outcome}", (KIND, REASON, PROVIDER),
    "Events processed, by the outcome each got; the reason only on rejections", "observer")
SESSIONS = Instrument(
    "session_lifecycle.sessions", "up_down_counter", "{session}", (STATUS,),
    "Sessions by status: those present when observing began, then every new thread, status change "
    "and forgotten thread", "observer")
TURN_DURATION = Instrument(
    "session_lifecycle.turn.duration", "histogram", "s", (PROVIDER, STATUS, EVENT_TYPE),
    "From a turn's start to the event that ended it (their createdAt); the status it ended in and "
    "that event's type", "observer")
STALE_TURN_EXPIRIES = Instrument(
    "session_lifecycle.stale_turn.expiries", "counter", "{turn}", (PROVIDER,),
    f"Turns and requested turns settled by the stale-turn bound (applied `{STALE_TURN_EVENT_PREFIX}` events)",
    "observer")
OPERATION_EVENTS = Instrument(
    "session_lifecycle.operation.events", "counter", "{event}", (OPERATION, KIND),
    f"Events the library's operations made (`{STALE_TURN_OPERATION}`: expire_stale_turns, "
    f"`{RESTART_OPERATION}`: reconcile), by the outcome each got", "observer")
REAPER_STOPS = Instrument(
    "session_lifecycle.reaper.stops", "counter", "{session}", (PROVIDER, STATUS),
    "Sessions the orchestrator stopped because the reaper found them idle", "reaped")
NEEDS_ATTENTION = Instrument(
    "session_lifecycle.needs_attention", "counter", "{session}", (ATTENTION, PROVIDER, STATUS),
    "Sessions flagged for a person to look at, by reason", "needs_attention")

INSTRUMENTS = (OUTCOMES, SESSIONS, TURN_DURATION, STALE_TURN_EXPIRIES, OPERATION_EVENTS, REAPER_STOPS,
               NEEDS_ATTENTION)


def operation_of(event_id: str) -> str | None:
    """The operation that made a synthetic event (`stale-turn`, `restart`), from its eventId; None
    for any other event. Only the library can apply ids under `SYNTHETIC_EVENT_PREFIX` (the parser
    refuses them from outside), so the names are the library's own."""
    if not event_id.startswith(SYNTHETIC_EVENT_PREFIX):
        return None
    return event_id[len(SYNTHETIC_EVENT_PREFIX):].partition(":")[0]


class Observable(Protocol):
    """What `observe` needs: `SessionProjector`, `SessionStore` and `LockedProjector` have it."""

    def subscribe(
        self, observer: Callable[[Outcome], object], *, what: Literal["outcome", "change", "status"] = ...,
    ) -> Callable[[], None]: ...


class _Bounded:
    """Values from outside, as attribute values: the first `limit` distinct ones, then OTHER."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return OTHER
        self.seen.add(value)
        return value


def _sessions_of(source: object) -> list[Session]:
    """The sessions a source holds now, for the sessions-by-status baseline."""
    sessions: Callable[[], dict[str, Session]] | None = getattr(source, "sessions", None)
    if callable(sessions):
        return list(sessions().values())
    threads: Callable[[], Iterable[Any]] | None = getattr(source, "threads", None)
    if callable(threads):
        return [t.session for t in threads()]
    return []


class LifecycleMetrics:
    """OpenTelemetry instruments fed by outcomes (see `INSTRUMENTS`). Call it as an observer, or
    let `observe(source)` subscribe it. Safe to share across OS threads."""

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        *,
        max_attribute_values: int = DEFAULT_MAX_ATTRIBUTE_VALUES,
    ) -> None:
        if max_attribute_values < 1:
            raise ValueError("max_attribute_values must be at least 1")
        self._lock = threading.Lock()
        self._known: set[str] = set()  # threads counted in SESSIONS
        self._turns: dict[str, tuple[str, datetime]] = {}  # threadId -> (active turn, its start)
        self._providers = _Bounded(max_attribute_values)
        self._reasons = _Bounded(max_attribute_values)
        self._outcomes: Counter | None = None
        self._sessions: UpDownCounter | None = None
        self._turn_duration: Histogram | None = None
        self._stale: Counter | None = None
        self._operations: Counter | None = None
        self._stops: Counter | None = None
        self._attention: Counter | None = None
        try:
            from opentelemetry import metrics as otel
        except ImportError:
            return  # no API installed: every method does nothing
        provider = meter_provider if meter_provider is not None else otel.get_meter_provider()
        meter = provider.get_meter(METER_NAME, __version__)

        def counter(spec: Instrument) -> Counter:
            return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)

        self._outcomes = counter(OUTCOMES)
        self._stale = counter(STALE_TURN_EXPIRIES)
        self._operations = counter(OPERATION_EVENTS)
        self._stops = counter(REAPER_STOPS)
        self._attention = counter(NEEDS_ATTENTION)
        self._sessions = meter.create_up_down_counter(SESSIONS.name, unit=SESSIONS.unit,
                                                      description=SESSIONS.description)
        self._turn_duration = meter.create_histogram(
            TURN_DURATION.name, unit=TURN_DURATION.unit, description=TURN_DURATION.description,
            explicit_bucket_boundaries_advisory=list(TURN_DURATION_BUCKETS))

    @property
    def enabled(self) -> bool:
        """False when `opentelemetry-api` is not installed (then nothing is recorded)."""
        return self._outcomes is not None

    # -- subscribing ---------------------------------------------------------------------------

    def observe(self, source: Observable) -> Callable[[], None]:
        """Count the sessions `source` holds now, then subscribe to its outcomes. Returns the
        unsubscribe function. A `LockedProjector` is read and subscribed under one hold of its
        lock, so no event falls between the two."""
        if not self.enabled:
            return lambda: None
        locked = getattr(source, "locked", None)
        if callable(locked):
            with locked() as projector:
                self._baseline(_sessions_of(projector))
                unsubscribe: Callable[[], None] = source.subscribe(self, what="outcome")
                return unsubscribe
        self._baseline(_sessions_of(source))
        return source.subscribe(self, what="outcome")

    def _baseline(self, sessions: Sequence[Session]) -> None:
        assert self._sessions is not None
        with self._lock:
            for s in sessions:
                if s.thread_id not in self._known:
                    self._known.add(s.thread_id)
                    self._sessions.add(1, {STATUS: s.status})

    # -- the observer --------------------------------------------------------------------------

    def __call__(self, outcome: Outcome) -> None:
        if self._outcomes is None:
            return
        ev, kind = outcome.event, outcome.kind
        with self._lock:
            provider = self._providers(ev.provider)
        attributes = {KIND: kind.value, PROVIDER: provider}
        if outcome.reason is not None:
            attributes[REASON] = outcome.reason
        self._outcomes.add(1, attributes)
        operation = operation_of(ev.event_id)
        if operation is not None:
            assert self._operations is not None and self._stale is not None
            self._operations.add(1, {OPERATION: operation, KIND: kind.value})
            if operation == STALE_TURN_OPERATION and kind is OutcomeKind.APPLIED:
                self._stale.add(1, {PROVIDER: provider})
        if kind is OutcomeKind.DEFERRED:
            return  # nothing changed yet: its own outcome follows once applied
        with self._lock:
            self._count_session(outcome)
            if kind is OutcomeKind.APPLIED and outcome.before.active_turn_id != outcome.after.active_turn_id:
                self._time_turn(outcome, provider)

    def _count_session(self, outcome: Outcome) -> None:
        assert self._sessions is not None
        tid, before, after = outcome.event.thread_id, outcome.before, outcome.after
        if outcome.kind is OutcomeKind.FORGOTTEN:
            self._turns.pop(tid, None)
            if tid in self._known:
                self._known.discard(tid)
                self._sessions.add(-1, {STATUS: before.status})
            return
        # Any event makes its thread exist, ignored and rejected ones included.
        if tid not in self._known:
            self._known.add(tid)
            self._sessions.add(1, {STATUS: after.status})
        elif before.status != after.status:
            self._sessions.add(-1, {STATUS: before.status})
            self._sessions.add(1, {STATUS: after.status})

    def _time_turn(self, outcome: Outcome, provider: str) -> None:
        assert self._turn_duration is not None
        ev, ended, started = outcome.event, outcome.before.active_turn_id, outcome.after.active_turn_id
        if ended is not None:
            start = self._turns.pop(ev.thread_id, None)
            # Unknown when the turn began before observing did; a negative span is no duration.
            if start is not None and start[0] == ended:
                seconds = (ev.created_dt - start[1]).total_seconds()
                if seconds >= 0:
                    self._turn_duration.record(
                        seconds, {PROVIDER: provider, STATUS: outcome.after.status, EVENT_TYPE: ev.type})
        if started is not None:
            self._turns[ev.thread_id] = (started, ev.created_dt)

    # -- hooks for the orchestrator and the operations -------------------------------------------

    def reaped(self, session: Session) -> None:
        """Count a session the orchestrator stopped because the reaper found it idle
        (`reapable_sessions`), with the status it was in."""
        if self._stops is None:
            return
        with self._lock:
            provider = self._providers(session.provider_name or "")
        self._stops.add(1, {PROVIDER: provider, STATUS: session.status})

    def needs_attention(self, session: Session, reason: str) -> None:
        """Count a session flagged for a person (a turn expired twice, a provider that keeps
        failing...). `reason` should be one of a few fixed words: past `max_attribute_values`
        distinct reasons, the rest count as `_other`."""
        if self._attention is None:
            return
        with self._lock:
            provider = self._providers(session.provider_name or "")
            why = self._reasons(reason)
        self._attention.add(1, {ATTENTION: why, PROVIDER: provider, STATUS: session.status})


# -- the documentation table ---------------------------------------------------------------------

BEGIN = "<!-- instruments: generated by `python -m statemachine.observing.metrics docs/metrics.md`. Do not edit. -->"
END = "<!-- end of instruments -->"
_KIND_NAMES = {"counter": "counter", "up_down_counter": "up-down counter", "histogram": "histogram"}
_BLOCK = re.compile(re.escape(BEGIN) + r"\n.*?" + re.escape(END), re.S)


def instruments_markdown(instruments: Sequence[Instrument] = INSTRUMENTS) -> str:
    """The instruments as a Markdown table, between the markers docs/metrics.md holds."""
    rows = ["| name | instrument | unit | attributes | recorded by | what |", "|---|---|---|---|---|---|"]
    for i in instruments:
        by = "observer" if i.recorded_by == "observer" else f"`{i.recorded_by}()`"
        attributes = "<br>".join(f"`{a}`" for a in i.attributes)
        rows.append(f"| `{i.name}` | {_KIND_NAMES[i.kind]} | `{i.unit}` | {attributes} | {by} | {i.description} |")
    return "\n".join([BEGIN, *rows, END])


def _with_table(text: str) -> str | None:
    if _BLOCK.search(text) is None:
        return None
    return _BLOCK.sub(lambda _: instruments_markdown(), text, count=1)


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite (or with --check, compare) the instruments table in a Markdown file."""
    parser = argparse.ArgumentParser(prog="python -m statemachine.observing.metrics",
                                     description="Write the table of metric instruments into a Markdown file.")
    parser.add_argument("file", help="a Markdown file holding the table's markers (docs/metrics.md)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file's table is out of date")
    args = parser.parse_args(argv)
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"metrics: cannot read {args.file!r}: {exc}", file=sys.stderr)
        return 2
    updated = _with_table(text)
    if updated is None:
        print(f"metrics: {args.file!r} has no instruments table (the marker line {BEGIN!r})", file=sys.stderr)
        return 2
    if args.check:
        if updated != text:
            print(f"metrics: the instruments table in {args.file!r} is out of date; run "
                  f"python -m statemachine.observing.metrics {args.file}", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        try:
            path.write_text(updated, encoding="utf-8")
        except OSError as exc:
            print(f"metrics: cannot write {args.file!r}: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
