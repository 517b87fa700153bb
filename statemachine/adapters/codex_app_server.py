"""Codex app-server (JSON-RPC 2.0 over stdio, `jsonrpc` header omitted): notifications, responses
and server requests, one message per line.

The protocol names threads (`threadId`, `thread.id`) and turns (`turn.id`), so both are used as
they are. Notifications carry no id; `turn/started`, `turn/completed`, `thread/started` and
`serverRequest/resolved` are named by the thread/turn/request they are about (a redelivery
de-duplicates), server requests by their method and JSON-RPC id within the connection,
everything else by position.

JSON-RPC ids belong to a connection: every `initialize` (the client's request, or the server's
answer to one not in the transcript) starts a new connection generation, and request ids are
read within it, so request `0` of a restarted server is not the old connection's request `0`.
Everything else is kept per thread: the open turn, the turns settled, and the requests raised
(by id, with their turn: `serverRequest/resolved` names no turn).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from statemachine.adapters.base import (
    MAX_PROTOCOL_ID,
    Adapter,
    BoundedMap,
    Envelope,
    Line,
    Malformed,
    Request,
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
CODEX_IN_PROGRESS = "inProgress"
# Server requests -> the event that reports them (non-lifecycle), plus session.state.changed
# {waiting} while their turn is open, for those that wait on the user.
CODEX_SERVER_REQUESTS: dict[str, str] = {
    "item/commandExecution/requestApproval": "request.opened",
    "item/fileChange/requestApproval": "request.opened",
    "item/permissions/requestApproval": "request.opened",
    "execCommandApproval": "request.opened",
    "applyPatchApproval": "request.opened",
    "item/tool/requestUserInput": "user-input.requested",
    "mcpServer/elicitation/request": "user-input.requested",
}
# Server requests answered by the client program itself, without the user: no wait (remembered,
# so that their `serverRequest/resolved` is not taken for an approval's).
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
# Client requests that may appear in a two-way transcript: remembered by id, so that the answer
# to one that returns a thread without opening it (`thread/read`, ...) does not start a session.
CLIENT_REQUESTS: frozenset[str] = frozenset({
    "thread/start", "thread/resume", "thread/fork", "turn/start", "turn/interrupt", "turn/steer",
    "thread/compact/start", "thread/shellCommand", "thread/read", "thread/list", "thread/unarchive",
    "thread/metadata/update", "thread/rollback", "review/start",
})
# The client requests whose answer opens the thread for this connection.
THREAD_OPENERS: frozenset[str] = frozenset({"thread/start", "thread/resume", "thread/fork"})
INITIALIZE = "initialize"
MAX_CLIENT_REQUESTS = 4096  # client requests awaiting their answer, per connection


class CodexAppServerAdapter(Adapter):
    format = "codex-app-server"
    default_provider = "codex"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._generation = 0  # connections seen (initialize); request ids are read within one
        self._initialize_pending: str | None = None  # the id of an initialize request not yet answered
        self._client: BoundedMap[str, str] = BoundedMap(MAX_CLIENT_REQUESTS, self._journal)  # id -> method

    def _save_extra(self) -> Any:
        return self._generation, self._initialize_pending

    def _restore_extra(self, extra: Any) -> None:
        self._generation, self._initialize_pending = extra

    def _identity(self, message: dict[str, Any]) -> tuple[str, str] | None:
        method = message.get("method")
        params = message.get("params")
        if not isinstance(method, str) or not isinstance(params, dict):
            return None
        try:
            if message.get("id") is not None:
                if method not in CODEX_SERVER_REQUESTS and method not in CODEX_UNATTENDED_REQUESTS:
                    return None  # client requests and unknown ones mean nothing: named by position
                request = rpc_id(message)
                thread = _request_thread(params)
                return thread, f"codex:{self._prefix}{self._generation}:{method}:{request}"
            if method in ("turn/started", "turn/completed"):
                thread = protocol_id(params, "threadId")
                return thread, f"codex:{thread}:{method}:{protocol_id(obj(params, 'turn'), 'id')}"
            if method == "thread/started":
                thread = protocol_id(obj(params, "thread"), "id")
                return thread, f"codex:thread/started:{thread}"
            if method == "serverRequest/resolved":
                thread = protocol_id(params, "threadId")
                request = rpc_id(params, "requestId")
                if request is None:
                    return None
                return thread, f"codex:{self._prefix}{self._generation}:{thread}:resolved:{request}"
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
        if message.get("id") is not None:
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
            return self._resolved(params, line)
        if method in IGNORED_METHODS or method.startswith(IGNORED_PREFIXES):
            return self.ignored()
        return self.unknown()

    # -- connections ---------------------------------------------------------------------------

    def _new_connection(self, line: Line) -> list[Envelope]:
        """A new connection (the server restarted, or the client reconnected): the old one's
        request ids mean nothing any more, and its open requests died with it. A resumed thread
        gets its pending approvals again, as new requests of the new connection."""
        self._generation += 1
        self._client.clear()
        return self.drop_requests(line)

    def _response(self, message: dict[str, Any], line: Line) -> list[Envelope]:
        request = rpc_id(message)  # a bad id is malformed
        if request is None:
            return self.ignored()  # `id: null`: the answer to a request the server could not read
        result = message.get("result")
        if request == self._initialize_pending:
            self._initialize_pending = None
            return self.ignored()  # the generation moved at the request
        method = self._client.pop(request)
        if isinstance(result, dict) and "userAgent" in result and "thread" not in result and method is None:
            # The answer to an initialize the transcript does not show: a new connection all the same.
            return self._new_connection(line) or self.ignored()
        thread = result.get("thread") if isinstance(result, dict) else None
        if not isinstance(thread, dict) or (method is not None and method not in THREAD_OPENERS):
            return self.ignored()  # thread/read, /list, /metadata/update...: the thread is not opened
        # thread/start, /resume or /fork answered: the session is up (resume sends no
        # thread/started notification, so this is the only signal for it).
        thread_id = protocol_id(thread, "id", "result.thread.")
        events = []
        if not (self.known_thread(thread_id) and self.thread(thread_id).started):
            events += self.start_session(line, thread_id, thread_started=False)
        if method in (None, "thread/resume"):
            events += self._resumed_turns(thread_id, thread, line)
        return events or self.ignored()

    def _resumed_turns(self, thread_id: str, thread: dict[str, Any], line: Line) -> list[Envelope]:
        """A resumed thread's turns: the one in progress is opened (the approvals the server
        replays for it then find their turn), and the adapter's own open turn, when the list
        says how it ended, is settled so."""
        turns = thread.get("turns")
        if not isinstance(turns, list):
            return []
        state = self.thread(thread_id)
        running: dict[str, Any] | None = None
        ours: dict[str, Any] | None = None
        for turn in turns:
            if not isinstance(turn, dict) or not _is_id(turn.get("id")):
                continue
            if _status(turn) == CODEX_IN_PROGRESS:
                running = turn
            if turn["id"] == state.open_turn:
                ours = turn
        events = []
        if state.open_turn is not None:
            if ours is not None and _status(ours) != CODEX_IN_PROGRESS:
                turn_id = state.open_turn
                self._settle(thread_id, turn_id)
                events.append(self.event(line, "turn.completed", thread_id, self._completion(ours), turn_id,
                                         created_at=_unix_time(ours.get("completedAt"))))
            elif running is not None and running["id"] != state.open_turn and self.on_eof != "leave":
                events.append(self.settle_turn(line, thread_id))  # another turn runs: ours is over
        if running is not None and state.open_turn is None and running["id"] not in state.finished:
            started = self.open_turn(line, thread_id, running["id"], payload={},
                                     created_at=_unix_time(running.get("startedAt")))
            if started is not None:
                events.append(started)
        return events

    # -- requests ------------------------------------------------------------------------------

    def _request(self, method: str, message: dict[str, Any], line: Line) -> list[Envelope]:
        request = rpc_id(message)
        assert request is not None  # _adapt checked that the id is there
        if method == INITIALIZE:
            self._initialize_pending = request
            return self._new_connection(line) or self.ignored()
        if method in CLIENT_REQUESTS:
            self._client.set(request, method)
            return self.ignored()
        kind = CODEX_SERVER_REQUESTS.get(method)
        if kind is None and method not in CODEX_UNATTENDED_REQUESTS:
            return self.unknown()
        params = obj(message, "params")
        thread = _request_thread(params, "params.")
        turn = optional_text(params, "turnId") or self.open_turn_of(thread)
        if turn is not None and len(turn) > MAX_PROTOCOL_ID:
            raise Malformed("params.turnId", f"is {len(turn)} characters long; the limit is {MAX_PROTOCOL_ID}")
        raw_id = message["id"]
        payload: dict[str, Any] = {"requestId": raw_id, "requestType": method}
        item = optional_text(params, "itemId")
        if item is not None:
            payload["itemId"] = item[:MAX_PROTOCOL_ID]
        entry = Request(kind or "", raw_id, method, turn)
        return self.open_request(line, thread, f"{self._generation}:{request}", entry, payload, method)

    def _resolved(self, params: dict[str, Any], line: Line) -> list[Envelope]:
        thread = protocol_id(params, "threadId", "params.")
        request = rpc_id(params, "requestId")
        if request is None:
            raise Malformed("params.requestId", "must be a string or an integer, got missing")
        events = self.resolve_request(line, thread, f"{self._generation}:{request}")
        if events is not None:
            return events
        # A request from before this transcript began (or from a connection before a restart): the
        # projector ends only a request open under this id, so the others' waits stay.
        payload = {"requestId": params["requestId"]}
        return [self.event(line, "request.resolved", thread, payload, self.open_turn_of(thread))]

    # -- turns ---------------------------------------------------------------------------------

    def _turn_started(self, params: dict[str, Any], line: Line) -> list[Envelope]:
        thread = protocol_id(params, "threadId", "params.")
        turn_obj = obj(params, "turn", "params.")
        turn = protocol_id(turn_obj, "id", "params.turn.")
        at = _unix_time(turn_obj.get("startedAt"))
        state = self.thread(thread)
        if state.open_turn is None and turn not in state.finished:
            state.open_turn = turn
        return [self.event(line, "turn.started", thread, {}, turn, created_at=at)]

    def _turn_completed(self, params: dict[str, Any], line: Line) -> list[Envelope]:
        thread = protocol_id(params, "threadId", "params.")
        turn_obj = obj(params, "turn", "params.")
        turn = protocol_id(turn_obj, "id", "params.turn.")
        payload = self._completion(turn_obj)
        self._settle(thread, turn)
        return [self.event(line, "turn.completed", thread, payload, turn,
                          created_at=_unix_time(turn_obj.get("completedAt")))]

    def _completion(self, turn_obj: dict[str, Any]) -> dict[str, Any]:
        """turn.completed's payload for a turn object: a failed turn is reported only this way
        (`status: failed`, the message in `turn.error`)."""
        raw = turn_obj.get("status")
        status = _status(turn_obj)
        state = CODEX_TURN_STATUSES.get(status) if status is not None else None
        if state is None:
            self.stats.unknown += 1
            state = CODEX_UNKNOWN_TURN_STATUS
        payload: dict[str, Any] = {"state": state}
        if state == "failed":
            error = turn_obj.get("error")
            if not isinstance(error, dict) and isinstance(raw, dict):
                error = raw.get("error")  # older tagged-union form
            message = optional_text(error, "message") if isinstance(error, dict) else None
            payload["errorMessage"] = message[:2000] if message else "Turn failed"
        return payload

    def _error(self, params: dict[str, Any], line: Line) -> list[Envelope]:
        thread = protocol_id(params, "threadId", "params.")
        error = obj(params, "error", "params.")
        message = (optional_text(error, "message") or "Codex reported an error")[:2000]
        turn = optional_text(params, "turnId")
        if turn is not None and len(turn) > MAX_PROTOCOL_ID:
            raise Malformed("params.turnId", f"is {len(turn)} characters long; the limit is {MAX_PROTOCOL_ID}")
        if params.get("willRetry") is True:
            return [self.event(line, "runtime.warning", thread, {"message": message}, turn)]
        open_turn = self.open_turn_of(thread)
        if turn is not None and turn == open_turn:
            # The turn's own failure: Codex reports it again as `turn/completed {status: failed}`,
            # which settles the turn. Should that never come, the end of the stream settles the
            # turn as failed with this message.
            self.thread(thread).extra["fatal"] = message
            return [self.event(line, "runtime.warning", thread, {"message": message, "fatal": True}, turn)]
        if turn is None:
            self._settle(thread, None)  # the projector clears the turn on runtime.error
        elif open_turn is None:
            self.thread(thread).finished.add(turn)  # the projector remembers it as finished too
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
        state = self.thread(thread)
        if turn is None or turn == state.open_turn:
            self.close_turn(thread)
        if turn is not None:
            state.finished.add(turn)


def _request_thread(params: dict[str, Any], where: str = "") -> str:
    # v1 requests (execCommandApproval, applyPatchApproval) name the thread `conversationId`.
    return protocol_id(params, "threadId" if "threadId" in params else "conversationId", where)


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_PROTOCOL_ID


def _status(turn_obj: dict[str, Any]) -> str | None:
    raw = turn_obj.get("status")
    status = raw.get("type") if isinstance(raw, dict) else raw  # older tagged-union form
    return status if isinstance(status, str) else None


def _unix_time(value: object) -> datetime | None:
    """Codex turn times are Unix seconds (or null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
