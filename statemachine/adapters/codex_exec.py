"""`codex exec --json`: one JSON object per stdout line, with a top-level `type`.

The stream names its thread once (`thread.started {thread_id}`) and no turn at all, so every
event of a turn carries the last thread id seen, and turns are numbered `<thread>:turn:<n>`.
An `error` line inside a turn is a warning: Codex follows a fatal one with `turn.failed`, which
carries the same message and settles the turn (see docs/adapters.md).
"""

from __future__ import annotations

from typing import Any

from statemachine.adapters.base import Adapter, Envelope, Line, Malformed, obj, optional_text, protocol_id

__all__ = ["CodexExecAdapter"]

# raw `type` -> terminal turn state (the data docs/adapters.md documents)
TURN_ENDS: dict[str, str] = {"turn.completed": "completed", "turn.failed": "failed"}
# raw `type`s that never change the lifecycle
IGNORED_TYPES: frozenset[str] = frozenset({"item.started", "item.updated", "item.completed"})
# `error` inside an open turn -> this event type (Codex reports the failure again in turn.failed);
# outside a turn -> runtime.error (nothing else will report it).
ERROR_IN_TURN = "runtime.warning"
ERROR_OUTSIDE_TURN = "runtime.error"


class CodexExecAdapter(Adapter):
    format = "codex-exec"
    default_provider = "codex"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._current: str | None = None  # the thread the stream is on

    def _save_extra(self) -> Any:
        return self._current

    def _restore_extra(self, extra: Any) -> None:
        self._current = extra

    def _adapt(self, message: dict[str, Any], line: Line) -> list[Envelope]:
        kind = message.get("type")
        if not isinstance(kind, str):
            raise Malformed("type", "must be a string")
        if kind == "thread.started":
            named = protocol_id(message, "thread_id")
            self._current = named
            return self.start_session(line, named)
        if kind in IGNORED_TYPES:
            return self.ignored()
        if kind not in TURN_ENDS and kind not in ("turn.started", "error"):
            return self.unknown()
        thread_id = self._current
        if thread_id is None:
            raise Malformed("type", f"{kind} before any thread.started: no thread to attach it to")
        if kind == "turn.started":
            started = self.open_turn(line, thread_id)
            return [started] if started is not None else self.ignored()
        if kind == "error":
            text = optional_text(message, "message") or "Codex reported an error"
            turn = self.open_turn_of(thread_id)
            if turn is not None:
                return [self.event(line, ERROR_IN_TURN, thread_id, {"message": text}, turn)]
            return [self.event(line, ERROR_OUTSIDE_TURN, thread_id, {"message": text})]
        payload: dict[str, Any] = {"state": TURN_ENDS[kind]}
        if kind == "turn.failed":
            error = obj(message, "error")
            payload["errorMessage"] = optional_text(error, "message") or "Turn failed"
        elif isinstance(message.get("usage"), dict):
            # Token counts only: the payload stays small and flat whatever the line holds.
            payload["usage"] = {
                k: v for k, v in message["usage"].items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and len(k) <= 64
            }
        turn = self.close_turn(thread_id)
        if turn is None:
            # A turn end with no turn open (its start was lost): name no turn; the projector
            # rejects it unless the session holds none.
            return [self.event(line, "turn.completed", thread_id, payload)]
        return [self.event(line, "turn.completed", thread_id, payload, turn)]
