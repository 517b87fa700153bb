"""Raw provider streams built from the fixtures in examples/raw/: renamed, interleaved, compared.

A *source* is one fixture with its threads renamed (every string equal to one of its thread ids
is replaced) and its JSON-RPC ids moved into a range of their own, so that several sources can
share one connection as a real client's threads do. Turn ids, message ids and uuids are left as
they are: two sources then reuse them, which is exactly what must not leak from one thread to
another. Connection-level lines (`initialize`) are taken out of the sources and given once at
the head of every stream: a connection is shared, a thread is not.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from statemachine import SessionProjector
from statemachine.adapters import Adapter, make_adapter

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "examples" / "raw"
PREFIXES = {"codex_app_server": "codex-app-server", "codex_exec": "codex-exec", "claude": "claude-stream-json",
            "acp": "acp"}
# Fixtures whose connection is replaced mid-stream (a second initialize): that is connection-wide,
# so they cannot stand for one thread of a shared connection.
CONNECTION_WIDE = frozenset({"acp_mid_turn.jsonl", "codex_app_server_restart.jsonl"})
FIXED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
CONNECTION_HEAD: dict[str, list[Any]] = {
    "codex-app-server": [{"id": -1, "result": {"userAgent": "codex_cli_rs/0.150.0"}}],
    "acp": [{"jsonrpc": "2.0", "id": -1, "method": "initialize", "params": {"protocolVersion": 1}},
            {"jsonrpc": "2.0", "id": -1, "result": {"protocolVersion": 1, "agentCapabilities": {}}}],
}


def format_of(name: str) -> str:
    return next(fmt for prefix, fmt in PREFIXES.items() if name.startswith(prefix))


def fixtures(fmt: str) -> list[str]:
    return sorted(p.name for p in RAW.glob("*.jsonl") if format_of(p.name) == fmt and p.name not in CONNECTION_WIDE)


def fixtures_all(fmt: str) -> list[str]:
    """Every fixture of the format, those that replace their connection included."""
    return sorted(p.name for p in RAW.glob("*.jsonl") if format_of(p.name) == fmt)


def read(name: str) -> list[Any]:
    """The fixture's lines: parsed messages, or the raw text of a line that is not JSON."""
    out: list[Any] = []
    for line in (RAW / name).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append(line)
    return out


def thread_ids(fmt: str, lines: Sequence[Any]) -> list[str]:
    """The threads an adapter finds in these lines, in order of appearance."""
    adapter = replay_adapter(fmt)
    seen: dict[str, None] = {}
    for line in lines:
        for event in adapter.feed(encode(line)):
            seen.setdefault(event["threadId"], None)
    return list(seen)


def _is_connection_line(fmt: str, message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    if message.get("method") == "initialize":
        return True
    result = message.get("result")
    if fmt == "codex-app-server":
        return isinstance(result, dict) and "userAgent" in result and "thread" not in result
    if fmt == "acp":
        return isinstance(result, dict) and "protocolVersion" in result
    return False


def _move_id(value: Any, slot: int) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value * 8 + slot
    if isinstance(value, str):
        return f"{value}~{slot}"
    return value


def _rename(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [_rename(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _rename(v, names) for k, v in value.items()}
    return value


def source(name: str, slot: int, *, connection: bool = False) -> list[Any]:
    """Fixture `name` as the `slot`-th source: threads renamed `<id>~<slot>`, JSON-RPC ids moved;
    its connection lines left out unless `connection`."""
    fmt = format_of(name)
    lines = read(name)
    names = {t: f"{t}~{slot}" for t in thread_ids(fmt, lines)}
    out = []
    for message in lines:
        if _is_connection_line(fmt, message) and not connection:
            continue
        message = _rename(copy.deepcopy(message), names)
        if fmt in ("codex-app-server", "acp") and isinstance(message, dict):
            if "id" in message:
                message["id"] = _move_id(message["id"], slot)
            params = message.get("params")
            if isinstance(params, dict) and "requestId" in params:
                params["requestId"] = _move_id(params["requestId"], slot)
        out.append(message)
    return out


def units(fmt: str, lines: list[Any]) -> list[list[Any]]:
    """The pieces a source may be cut into for interleaving. `codex exec` lines name no thread:
    a piece starts at each `thread.started` (a resumed run), so every piece says whose it is."""
    if fmt != "codex-exec":
        return [[line] for line in lines]
    pieces: list[list[Any]] = []
    for line in lines:
        if (isinstance(line, dict) and line.get("type") == "thread.started") or not pieces:
            pieces.append([])
        pieces[-1].append(line)
    return pieces


def interleave(pieces: Sequence[list[list[Any]]], order: Sequence[int]) -> list[Any]:
    """The sources' pieces merged: `order` lists a source index per piece taken."""
    cursors = [0] * len(pieces)
    out: list[Any] = []
    for which in order:
        out.extend(pieces[which][cursors[which]])
        cursors[which] += 1
    return out


def encode(line: Any) -> str:
    return line if isinstance(line, str) else json.dumps(line)


def replay_adapter(fmt: str, clock: Callable[[], datetime] | None = None) -> Adapter:
    return make_adapter(fmt, clock=clock or (lambda: FIXED))


def adapt(fmt: str, lines: Sequence[Any]) -> list[dict[str, Any]]:
    """Every event of the stream, the end-of-stream settlement last (a fixed clock: the same
    line gives the same time wherever it stands)."""
    adapter = replay_adapter(fmt)
    events = []
    for line in [*CONNECTION_HEAD.get(fmt, []), *lines]:
        events.extend(adapter.feed(encode(line)))
    return events + adapter.finish()


_POSITIONAL = re.compile(r"^((?:[^:]*:)?)L\d+-")


def by_thread(events: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The events of each thread, with positional ids reduced to the digest of their line (where
    a line stands in the merged stream is not part of what it means)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        event = dict(event, eventId=_POSITIONAL.sub(r"\1L-", event["eventId"]))
        out.setdefault(event["threadId"], []).append(event)
    return out


def project(events: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The sessions the events give, and each thread's outcomes (kind and reason) in order."""
    projector = SessionProjector()
    outcomes: dict[str, list[str]] = {}
    for event in events:
        outcome = projector.apply(event)
        outcomes.setdefault(event["threadId"], []).append(f"{outcome.kind.value}:{outcome.reason or ''}")
    sessions = {t: s.to_wire() for t, s in projector.sessions().items()}
    return sessions, outcomes


# -- fuzzing: hostile edits of real streams -------------------------------------------------------


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a parsed message, the message itself first."""
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths(v, (*prefix, i))
    return found


def edit(message: Any, path: tuple[Any, ...], value: Any, *, delete: bool = False) -> Any:
    """`message` with the value at `path` replaced (or removed); the message itself at ()."""
    if not path:
        return value
    message = copy.deepcopy(message)
    parent = message
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return message


@dataclass
class RawRun:
    lines: int = 0
    events: int = 0
    malformed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def check_raw(fmt: str, lines: Sequence[Any], on_eof: Any = "interrupted") -> RawRun:
    """Feed every line and apply every event: `feed` never raises, each line with content either
    is refused with a typed error naming a field (no events) or is accounted for (events, or
    counted ignored, unknown or redelivered), and every event is one the projector accepts as
    input (an outcome, never an `EventError`)."""
    from statemachine.adapters import AdapterError

    adapter = make_adapter(fmt, on_eof=on_eof, clock=lambda: FIXED)
    projector = SessionProjector()
    run = RawRun()

    def apply(events: list[dict[str, Any]]) -> None:
        for event in events:
            outcome = projector.apply(event)
            run.outcomes[outcome.kind.value] = run.outcomes.get(outcome.kind.value, 0) + 1
            run.events += 1

    for line in lines:
        raw = line if isinstance(line, (str, bytes)) else json.dumps(line)
        stats = adapter.stats
        accounted = stats.ignored + stats.unknown + stats.redelivered
        events = adapter.feed(raw)
        run.lines += 1
        error = adapter.last_error
        if error is not None:
            assert isinstance(error, AdapterError) and error.field and events == [], (raw, error)
            assert str(error).startswith(f"{error.field}: ")
            run.malformed += 1
            continue
        after = adapter.stats.ignored + adapter.stats.unknown + adapter.stats.redelivered
        assert not raw.strip() or events or after > accounted, raw
        apply(events)
    apply(adapter.finish())
    return run
