"""An HTML timeline of a replayed log: one self-contained page, no network.

`render_timeline(lines)` replays the lines through a projector (the built-in spec unless one is
given) and returns the page as a string. Per thread it shows the status over time as coloured
bands, each active turn as a bar, every rejected, duplicate and malformed event as a mark (its
reason on hover), and stale turns: a turn active for at least `stale_after` with no event of its
thread since, by the same rule as `operations.stale_turns` (`now - max(updatedAt, last seen) >=
bound`), checked at each of the thread's events and at the end of the log.

The page's data is embedded as JSON inside a `<script type="application/json">` element, escaped
so that no event string can close that element; the page's script builds the DOM with
`textContent` only, so event strings are never parsed as HTML. Lanes are paged: a log of 10k
threads draws one page of lanes at a time, with a summary of every thread above.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from statemachine.core.event import parse_timestamp
from statemachine.core.outcome import Outcome
from statemachine.observing.text import visible
from statemachine.observing.trace import MALFORMED, readable_ids
from statemachine.replay.lines import MAX_LINE_BYTES, replay_lines
from statemachine.runtime.operations import ActivityClock, stale_turns
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.model import Spec

__all__ = ["DEFAULT_STALE_AFTER", "KINDS", "page_html", "render_timeline", "timeline_data"]

# No event for a held turn in this long marks the turn stale on the page. Ten minutes: longer
# than a model's slowest reply or tool call, far shorter than the reaper's idle threshold.
DEFAULT_STALE_AFTER = timedelta(minutes=10)

# Outcome kinds as the page numbers them (index into this tuple).
KINDS = ("applied", "ignored", "duplicate", "rejected", MALFORMED)
_KIND_INDEX = {k: i for i, k in enumerate(KINDS)}


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


class _Table:
    """Interns repeated strings (event types, reasons) so the page carries each once."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, value: str | None) -> int:
        if value is None:
            return -1
        index = self._index.get(value)
        if index is None:
            index = self._index[value] = len(self.items)
            self.items.append(value)
        return index


class _Lane:
    __slots__ = ("counts", "events", "last_x", "stale", "thread_id")

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        self.events: list[list[Any]] = []
        self.stale: list[list[Any]] = []
        self.counts = [0] * len(KINDS)
        self.last_x: int | None = None


class _Builder:
    def __init__(self, projector: SessionProjector, stale_after: timedelta) -> None:
        self.projector = projector
        self.stale_after = stale_after
        self.clock = ActivityClock()
        projector.subscribe(self.clock)
        self.lanes: dict[str, _Lane] = {}
        self.orphans: list[list[Any]] = []  # malformed lines naming no thread: [line, error]
        self.types = _Table()
        self.reasons = _Table()
        self.statuses = {name: i for i, name in enumerate(projector.spec.status_names)}
        self.first: int | None = None
        self.last: int | None = None
        self.latest: datetime | None = None  # the log's last createdAt, exactly

    def _lane(self, thread_id: str) -> _Lane:
        lane = self.lanes.get(thread_id)
        if lane is None:
            lane = self.lanes[thread_id] = _Lane(thread_id)
        return lane

    def _place(self, lane: _Lane, at: datetime | None) -> int:
        """The event's position in ms: its createdAt, but never before the lane's previous event, so
        a late (out of order) event is drawn where it was processed; hover shows its createdAt."""
        x = _ms(at) if at is not None else (lane.last_x if lane.last_x is not None else (self.last or 0))
        if lane.last_x is not None and x < lane.last_x:
            x = lane.last_x
        lane.last_x = x
        self.first = x if self.first is None else min(self.first, x)
        self.last = x if self.last is None else max(self.last, x)
        return x

    def _check_stale(self, lane: _Lane, outcome: Outcome, x: int) -> None:
        """Flag the gap before this event when the thread held a turn through it for at least the
        bound. The previous event of the lane (any outcome, like an ActivityClock sees) is at or
        after the session's updatedAt, so it is `max(updatedAt, last seen)`."""
        turn = outcome.before.active_turn_id
        if turn is None or len(lane.events) < 2:
            return
        start = lane.events[-2][0]
        if x - start >= self.stale_after.total_seconds() * 1000:
            lane.stale.append([start, x, turn, False])

    def line(self, number: int, raw: bytes | str | None, outcome: Outcome | None, error: str | None) -> None:
        if outcome is None:
            ids = readable_ids(raw)
            thread = ids.get("threadId")
            if thread is None:
                self.orphans.append([number, error])
                return
            lane = self._lane(thread)
            try:
                at: datetime | None = parse_timestamp(ids["createdAt"]) if "createdAt" in ids else None
            except ValueError:
                at = None
            current = self.projector.get(thread)
            status = self.statuses.get(current.status, -1) if current is not None else -1
            turn = current.active_turn_id if current is not None else None
            x = self._place(lane, at)
            lane.events.append([x, number, self.types(ids.get("type", "?")), _KIND_INDEX[MALFORMED],
                                self.reasons(error), status, turn, ids.get("eventId"), ids.get("createdAt")])
            lane.counts[_KIND_INDEX[MALFORMED]] += 1
            return
        ev = outcome.event
        lane = self._lane(ev.thread_id)
        x = self._place(lane, ev.created_dt)
        if self.latest is None or ev.created_dt > self.latest:
            self.latest = ev.created_dt
        kind = _KIND_INDEX[outcome.kind.value]
        after = outcome.after
        lane.events.append([x, number, self.types(ev.type), kind, self.reasons(outcome.reason),
                            self.statuses.get(after.status, -1), after.active_turn_id, ev.event_id, ev.created_at])
        lane.counts[kind] += 1
        self._check_stale(lane, outcome, x)

    def finish(self) -> list[dict[str, Any]]:
        # At the end of the log, "now" is its last event: a turn still held then is stale by the
        # same rule as operations.stale_turns, which decides it here.
        if self.latest is not None and self.last is not None:
            for session in stale_turns(self.projector, self.latest, self.stale_after, last_seen=self.clock.last_seen):
                lane = self.lanes[session.thread_id]
                seen = self.clock.last_seen.get(session.thread_id)
                updated = parse_timestamp(session.updated_at) if session.updated_at is not None else None
                since = max(t for t in (seen, updated) if t is not None)
                lane.stale.append([_ms(since), self.last, session.active_turn_id, True])
        threads = []
        for tid, lane in self.lanes.items():
            final = self.projector.get(tid)
            threads.append({
                "id": tid,
                "final": self.statuses.get(final.status, -1) if final is not None else -1,
                "turn": final.active_turn_id if final is not None else None,
                "error": final.last_error if final is not None else None,
                "counts": lane.counts,
                "ev": lane.events,
                "stale": lane.stale,
            })
        return threads


def timeline_data(
    lines: Iterable[bytes | str],
    *,
    spec: Spec | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    source: str = "",
    max_line_bytes: int = MAX_LINE_BYTES,
) -> dict[str, Any]:
    """The page's data: everything `render_timeline` embeds, as a JSON-able dict."""
    if stale_after <= timedelta(0):
        raise ValueError("stale_after must be positive")
    projector = SessionProjector(spec)
    builder = _Builder(projector, stale_after)
    report = replay_lines(projector, lines, max_line_bytes=max_line_bytes, on_line=builder.line)
    threads = builder.finish()
    return {
        "source": source,
        "spec": projector.spec.name,
        "statuses": list(projector.spec.status_names),
        "turnStatuses": list(projector.spec.turn_statuses),
        "kinds": list(KINDS),
        "types": builder.types.items,
        "reasons": builder.reasons.items,
        "start": builder.first,
        "end": builder.last,
        "staleAfterMs": int(stale_after.total_seconds() * 1000),
        "lines": report.lines,
        "outcomes": {**report.outcomes, MALFORMED: report.error_count},
        "threads": threads,
        "orphans": builder.orphans,
    }


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element: ASCII only, and no `<`, `>` or `&` (each is written
    as a \\u escape, which JSON.parse reads back as the same character), so no event string can
    end the element or open a comment."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def _template() -> str:
    """The page (statemachine/timeline_page.html): HTML, CSS and script in one file, with
    `{{TITLE}}` and `{{DATA}}` to fill in. Its script only ever sets `textContent` and attributes,
    so event strings are never parsed as HTML."""
    return (resources.files(__package__) / "timeline_page.html").read_text(encoding="utf-8")


_PLACEHOLDER = re.compile(r"\{\{(?:TITLE|DATA)\}\}")


def page_html(data: dict[str, Any], title: str | None = None) -> str:
    """The page for data from `timeline_data`, ASCII only. The placeholders are filled in one pass
    over the template: a title (or data) holding `{{DATA}}` is text, never expanded again."""
    source = data.get("source") or ""
    heading = title or (f"Timeline of {source}" if source else "Session timeline")
    # Escaped for HTML, control characters made visible, non-ASCII as character references.
    shown = html.escape(visible(heading)).encode("ascii", "xmlcharrefreplace").decode("ascii")
    fills = {"{{TITLE}}": shown, "{{DATA}}": _script_json(data)}
    return _PLACEHOLDER.sub(lambda m: fills[m.group(0)], _template())


def render_timeline(
    lines: Iterable[bytes | str],
    *,
    spec: Spec | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    title: str | None = None,
    source: str = "",
) -> str:
    """The whole page for a log: `lines` are wire events as JSONL (any iterable of lines, or a
    binary or text stream). A raw provider log becomes such lines through its adapter first."""
    return page_html(timeline_data(lines, spec=spec, stale_after=stale_after, source=source), title)
