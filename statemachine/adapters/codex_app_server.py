"""Codex app-server (JSON-RPC 2.0 over stdio, `jsonrpc` header omitted): notifications, responses
and server requests, one message per line.

The protocol names threads (`threadId`, `thread.id`) and turns (`turn.id`), so both are used as
they are. Notifications carry no id; `turn/started`, `turn/completed`, `thread/started` and
`serverRequest/resolved` are named by the thread/turn/request they are about (a redelivery
de-duplicates), server requests by their method and JSON-RPC id, everything else by position.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from statemachine.adapters.base import (
    MAX_PROTOCOL_ID,
    Adapter,
    BoundedSet,
    Envelope,
    Line,
    Malformed,
    obj,
    optional_text,
    protocol_id,
    rpc_id,
)

__all__ = ["CODEX_SERVER_REQUESTS", "CODEX_TURN_STATUSES", "CodexAppServerAdapter"]

# `turn.status` -> turn.completed state; `inProgress` and unknown values count as unknown and
# default to CODEX_UNKNOWN_TURN_STATUS (T3 does the same: a completion still ends the turn).
CODEX_TURN_STATUSES: dict[str, str] = {"completed": "completed", "failed": "failed", "interrupted": "interrupted"}
CODEX_UNKNOWN_TURN_STATUS = "completed"
# Server requests -> the event that reports them (non-lifecycle), plus session.state.changed
# {waiting} while a turn is open for those that wait on the user.
CODEX_SERVER_REQUESTS: dict[str, str] = {
    "item/commandExecution/requestApproval": "request.opened",
    "item/fileChange/requestApproval": "request.opened",
    "item/permissions/requestApproval": "request.opened",
    "execCommandApproval": "request.opened",
    "applyPatchApproval": "request.opened",
    "item/tool/requestUserInput": "user-input.requested",
    "mcpServer/elicitation/request": "user-input.requested",
}
# Server requests answered by the client program itself, without the user: no wait.
CODEX_UNATTENDED_REQUESTS: frozenset[str] = frozenset({
    "item/tool/call", "account/chatgptAuthTokens/refresh", "attestation/generate",
})
# `thread/status/changed` status types; only systemError changes the lifecycle (runtime.error).
CODEX_THREAD_STATUSES: frozenset[str] = frozenset({"notLoaded", "idle", "systemError", "active"})
# Notifications with no lifecycle meaning: these exact methods, and every method under these prefixes.
IGNORED_METHODS: frozenset[str] = frozenset({
    "warning", "guardianWarning", "configWarning", "deprecationNotice", "process/exited", "initialized",
})
IGNORED_PREFIXES: tuple[str, ...] = (
    "item/", "turn/diff/", "turn/plan/", "thread/", "account/", "model/", "hook/", "mcpServer/", "fs/",
    "realtime/", "windowsSandbox/", "collabAgent/", "codex/event/",
)
# Client requests that may appear in a two-way transcript: the server's messages tell the story.
CLIENT_REQUESTS: frozenset[str] = frozenset({
    "initialize", "thread/start", "thread/resume", "thread/fork", "turn/start", "turn/interrupt", "turn/steer",
    "thread/compact/start", "thread/shellCommand", "thread/read", "thread/list",
})
# Finished turns remembered per adapter, so a late or reordered `turn/started` never reopens one.
MAX_FINISHED_TURNS = 4096


class CodexAppServerAdapter(Adapter):
    format = "codex-app-server"
    default_provider = "codex"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._finished = BoundedSet(MAX_FINISHED_TURNS)

    def _save_extra(self) -> Any:
        self._finished.begin()
        return None

    def _restore_extra(self, extra: Any) -> None:
        self._finished.rollback()

    def _identity(self, message: dict[str, Any]) -> str | None:
        method = message.get("method")
        params = message.get("params")
        if not isinstance(method, str) or not isinstance(params, dict):
            return None
        try:
            if "id" in message:  # JSON-RPC ids restart with the process: scoped by the stream's name
                request = rpc_id(message)
                return f"codex:{self._prefix}{method}:{request}" if request and len(method) <= MAX_PROTOCOL_ID else None
            if method in ("turn/started", "turn/completed"):
                thread = protocol_id(params, "threadId")
                return f"codex:{thread}:{method}:{protocol_id(obj(params, 'turn'), 'id')}"
            if method == "thread/started":
                return f"codex:thread/started:{protocol_id(obj(params, 'thread'), 'id')}"
            if method == "serverRequest/resolved":
                request = rpc_id({"id": params.get("requestId")})
                return f"codex:{self._prefix}{protocol_id(params, 'threadId')}:resolved:{request}" if request else None
        except Malformed:
            return None  # named by position; _adapt reports what is wrong
        return None

    def _adapt(self, message: dict[str, Any], line: Line) -> list[Envelope]:
        method = message.get("method")
        if method is None:
            if "id" in message and ("result" in message or "error" in message):
                return self._response(message, line)
            raise Malformed("method", "is missing, and the message is not a response (id with result or error)")
        if not isinstance(method, str):
            raise Malformed("method", "must be a string")
        if "id" in message and message["id"] is not None:
            return self._request(method, message, line)
        params = message.get("params")
        if not isinstance(params, dict):
            if method in IGNORED_METHODS:
                return self.ignored()
            raise Malformed("params", "must be a JSON object")
        if method == "thread/started":
            return self.start_session(line, protocol_id(obj(params, "thread", "params."), "id", "params.thread."))
        if method == "turn/started":
            return self._turn_started(params, line)
        if method == "turn/completed":
            return self._turn_completed(params, line)
        if method == "error":
            return self._error(params, line)
        if method == "thread/status/changed":
            return self._status(params, line)
        if method == "thread/closed":
            thread = protocol_id(params, "threadId", "params.")
            self._settle(thread, None)
            self.thread(thread).started = False  # a later thread/resume starts the session again
            return [self.event(line, "session.exited", thread, {"reason": "thread closed", "exitKind": "graceful"})]
        if method == "serverRequest/resolved":
            thread = protocol_id(params, "threadId", "params.")
            request = rpc_id({"id": params.get("requestId")})
            return [self.event(line, "request.resolved", thread, {"requestId": request}, self.open_turn_of(thread))]
        if method in IGNORED_METHODS or method.startswith(IGNORED_PREFIXES):
            return self.ignored()
        return self.unknown()

    # -- messages ------------------------------------------------------------------------------

    def _response(self, message: dict[str, Any], line: Line) -> list[Envelope]:
        rpc_id(message)  # a bad id is malformed
        result = message.get("result")
        thread = result.get("thread") if isinstance(result, dict) else None
        if isinstance(thread, dict):
            # thread/start, /resume or /fork answered: the session is up (resume sends no
            # thread/started notification, so this is the only signal for it).
            thread_id = protocol_id(thread, "id", "result.thread.")
            if self.known_thread(thread_id) and self.thread(thread_id).started:
                return self.ignored()
            return self.start_session(line, thread_id, thread_started=False)
        return self.ignored()

    def _request(self, method: str, message: dict[str, Any], line: Line) -> list[Envelope]:
        request = rpc_id(message)
        if method in CLIENT_REQUESTS or method in CODEX_UNATTENDED_REQUESTS:
            return self.ignored()
        kind = CODEX_SERVER_REQUESTS.get(method)
        if kind is None:
            return self.unknown()
        params = obj(message, "params")
        thread = protocol_id(params, "threadId" if "threadId" in params else "conversationId", "params.")
        turn = optional_text(params, "turnId") or self.open_turn_of(thread)
        if turn is not None and len(turn) > MAX_PROTOCOL_ID:
            raise Malformed("params.turnId", f"is {len(turn)} characters long; the limit is {MAX_PROTOCOL_ID}")
        payload = {"requestId": request, "requestType": method}
        item = optional_text(params, "itemId")
        if item is not None:
            payload["itemId"] = item[:MAX_PROTOCOL_ID]
        events = [self.event(line, kind, thread, payload, turn)]
        if self.open_turn_of(thread) is not None:
            events.append(self.event(line, "session.state.changed", thread, {"state": "waiting", "reason": method}))
        return events

    def _turn_started(self, params: dict[str, Any], line: Line) -> list[Envelope]:
        thread = protocol_id(params, "threadId", "params.")
        turn_obj = obj(params, "turn", "params.")
        turn = protocol_id(turn_obj, "id", "params.turn.")
        at = _unix_time(turn_obj.get("startedAt"))
        state = self.thread(thread)
        if state.open_turn is None and turn not in self._finished:
            state.open_turn = turn
        return [self.event(line, "turn.started", thread, {}, turn, created_at=at)]

    def _turn_completed(self, params: dict[str, Any], line: Line) -> list[Envelope]:
        thread = protocol_id(params, "threadId", "params.")
        turn_obj = obj(params, "turn", "params.")
        turn = protocol_id(turn_obj, "id", "params.turn.")
        raw = turn_obj.get("status")
        status = raw.get("type") if isinstance(raw, dict) else raw  # older tagged-union form
        state = CODEX_TURN_STATUSES.get(status) if isinstance(status, str) else None
        if state is None:
            self.stats.unknown += 1
            state = CODEX_UNKNOWN_TURN_STATUS
        payload: dict[str, Any] = {"state": state}
        if state == "failed":
            error = turn_obj.get("error")
            if not isinstance(error, dict) and isinstance(raw, dict):
                error = raw.get("error")
            message = optional_text(error, "message") if isinstance(error, dict) else None
            payload["errorMessage"] = message or "Turn failed"
        self._settle(thread, turn)
        return [self.event(line, "turn.completed", thread, payload, turn,
                          created_at=_unix_time(turn_obj.get("completedAt")))]

    def _error(self, params: dict[str, Any], line: Line) -> list[Envelope]:
        thread = protocol_id(params, "threadId", "params.")
        error = obj(params, "error", "params.")
        message = optional_text(error, "message") or "Codex reported an error"
        turn = optional_text(params, "turnId")
        if turn is not None and len(turn) > MAX_PROTOCOL_ID:
            raise Malformed("params.turnId", f"is {len(turn)} characters long; the limit is {MAX_PROTOCOL_ID}")
        if params.get("willRetry") is True:
            return [self.event(line, "runtime.warning", thread, {"message": message}, turn)]
        if turn is None or turn == self.open_turn_of(thread):
            self._settle(thread, turn)  # the projector clears the turn on runtime.error
        return [self.event(line, "runtime.error", thread, {"message": message, "class": "provider_error"}, turn)]

    def _status(self, params: dict[str, Any], line: Line) -> list[Envelope]:
        thread = protocol_id(params, "threadId", "params.")
        status = obj(params, "status", "params.")
        kind = status.get("type")
        if not isinstance(kind, str) or kind not in CODEX_THREAD_STATUSES:
            return self.unknown()
        if kind != "systemError":
            return self.ignored()
        self._settle(thread, None)
        return [self.event(line, "runtime.error", thread, {"message": "Codex thread status: systemError"})]

    def _settle(self, thread: str, turn: str | None) -> None:
        """The thread's open turn (or `turn`) is over: never reopen it."""
        open_turn = self.open_turn_of(thread)
        if turn is None or turn == open_turn:
            self.close_turn(thread)
        for done in (turn, open_turn if turn is None else None):
            if done is not None:
                self._finished.add(done)


def _unix_time(value: object) -> datetime | None:
    """Codex turn times are Unix seconds (or null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
