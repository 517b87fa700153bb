"""Small builders shared by the tests: wire events with fresh eventIds and increasing createdAt."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from statemachine import Session, SessionProjector, Spec
from statemachine.spec.requirements import Requirements
from statemachine.verify.explore import SeenView

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

# eventIds are unique across builders, so two builders for one thread never collide.
_IDS = itertools.count(1)


def stamp(seconds: float) -> str:
    """An ISO 8601 UTC timestamp `seconds` after START."""
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


class Events:
    """Builds wire events for one thread; each call gets a new eventId and a later createdAt.

    `ev("turn.completed", "T1", state="failed", errorMessage="boom")`: the second positional
    argument is the envelope's turnId, keyword arguments are the payload; `event_id`, `created_at`,
    `provider` and `thread_id` override the envelope.
    """

    def __init__(self, thread_id: str = "thread-1", provider: str = "codex") -> None:
        self.thread_id = thread_id
        self.provider = provider
        self.count = 0

    def __call__(
        self,
        type_: str,
        turn: str | None = None,
        /,
        *,
        event_id: str | None = None,
        created_at: str | None = None,
        provider: str | None = None,
        thread_id: str | None = None,
        **payload: Any,
    ) -> dict[str, Any]:
        self.count += 1
        thread = thread_id or self.thread_id
        wire: dict[str, Any] = {
            "eventId": event_id or f"{thread}-evt-{next(_IDS):06d}",
            "type": type_,
            "provider": provider or self.provider,
            "threadId": thread,
            "createdAt": created_at or stamp(self.count),
        }
        if turn is not None:
            wire["turnId"] = turn
        wire["payload"] = payload
        return wire


def seeded(
    status: str = "ready",
    *,
    thread_id: str = "thread-1",
    provider: str = "codex",
    engine: str = "compiled",
    **fields: Any,
) -> SessionProjector:
    """A projector holding one session put in place as is (default: ready, no turn, no error)."""
    projector = SessionProjector(engine=engine)  # type: ignore[arg-type]
    projector.seed(Session(thread_id, status, provider, **fields))
    return projector


def triple(session: Session | None) -> tuple[str, str | None, str | None]:
    """(status, activeTurnId, lastError): what the reference's cases state after each step."""
    assert session is not None
    return session.status, session.active_turn_id, session.last_error


def memory(projector: SessionProjector) -> dict[str, Any]:
    """Everything a projector remembers, per thread, for comparing before and after."""
    return {
        tid: (session, projector.seen_event_digests(tid), projector.finished_turns(tid))
        for tid, session in projector.sessions().items()
    }


def jsonl(events: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def require_graphviz() -> None:
    """Skip without Graphviz (the Python package and `dot`), but fail under CI, which installs it."""
    try:
        import graphviz  # noqa: F401
    except ImportError:
        missing = "the graphviz Python package"
    else:
        missing = "" if shutil.which("dot") else "Graphviz's dot program"
    if not missing:
        return
    message = f"{missing} is not installed (pip install graphviz; apt-get install graphviz)"
    if os.environ.get("CI"):
        pytest.fail(message)  # CI must draw the SVG, never skip it silently
    pytest.skip(message)


def older_snapshot(data: dict[str, Any], version: int, seen: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """`data` (a current snapshot) written as snapshot `version` (1 to 3): those kept the eventIds
    themselves, given here per thread (`seen`); they must be the ones whose digests `data` holds.
    Version 1 also had no `specDigest`, versions 1 and 2 no `pendingTurn`/`awaiting` (removed
    when null, as those versions could not say otherwise), and none of them `openRequests` (which
    must be what `awaiting` restores as: none, or one request without id)."""
    from statemachine.core.record import event_digest_hex

    assert 1 <= version <= 3
    old = json.loads(json.dumps(data))
    old["version"] = version
    del old["eventIdDigest"]
    key = bytes.fromhex(old.pop("eventIdKey"))
    assert old.pop("tombstones") == [], "versions before 5 had no tombstones"
    if version == 1:
        del old["specDigest"]
    for thread in old["threads"]:
        ids = list(seen.get(thread["session"]["threadId"], ()))
        assert [event_digest_hex(i, key) for i in ids] == thread.pop("seenEventDigests"), "not the ids of this snapshot"
        thread["seenEventIds"] = ids
        thread["finishedTurns"] = thread.pop("finishedTurns")  # keep the field order of the old layout
        awaiting = thread["session"].get("awaiting")
        assert thread["session"].pop("openRequests") == ([] if awaiting is None else [
            {"requestId": None, "kind": awaiting}]), "open requests an older version cannot say"
        if version < 3:
            for name in ("pendingTurn", "awaiting"):
                if thread["session"].get(name) is None:
                    thread["session"].pop(name, None)
    return old


def markdown_cells(line: str) -> list[str]:
    """The cells of one Markdown table row, stripped of spaces and backquotes."""
    return [c.strip().strip("`") for c in line.strip().strip("|").split("|")]


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every Markdown table in `text`, each as its rows keyed by the header's cells."""
    tables, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and set(lines[i + 1].replace("|", "").strip()) <= {"-", ":"}:
            header, rows = markdown_cells(lines[i]), []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(dict(zip(header, markdown_cells(lines[i]), strict=True)))
                i += 1
            tables.append(rows)
        else:
            i += 1
    return tables


def replay_violations(spec: Spec, requirements: Requirements, events: Iterable[Mapping[str, Any]]) -> set[str]:
    """The requirements a log breaks on the real projector, every context given (first delivery,
    redelivery, what the thread remembers)."""
    projector = SessionProjector(spec)
    broken: set[str] = set()
    for event in events:
        thread = event["threadId"]
        first, redelivered = thread not in projector, projector.has_seen(thread, event["eventId"])
        before = projector.finished_turns(thread)
        outcome = projector.apply(dict(event))
        after = projector.finished_turns(thread)
        broken |= set(requirements.step_violations(outcome, before, after, redelivered,
                                                   seen_after=SeenView(projector, thread), first=first))
        broken |= set(requirements.state_violations(outcome.after, after))
    return broken


def spec_of(path: Path | None) -> Spec:
    """The built-in spec (None) or a mutant file's spec."""
    from statemachine import builtin_spec
    from statemachine.verify.mutate import load_mutant

    return builtin_spec() if path is None else load_mutant(path)[0]
