"""Agent Client Protocol (JSON-RPC 2.0): a two-way transcript, client and agent messages interleaved.

ACP v1 names sessions (`sessionId`) but no turn: a turn is a `session/prompt` request, numbered
`<session>:turn:<n>`, and ends with the response to that request (its `stopReason`, or a JSON-RPC
error). ACP v2 (draft) answers the prompt at once and reports the end in a `session/update`
`state_update`; both are read.

JSON-RPC ids belong to a connection and to the side that sent the request: the client numbers
its requests (`session/new`, `session/prompt`, ...) and the agent its own
(`session/request_permission`, `terminal/*`, `fs/*`), so the same id may be pending on both sides
at once. A response is matched to the pending request it answers by id, then by the shape of its
result (a `terminalId` answers `terminal/create`, a `sessionId` answers `session/new`, ...); a
redelivered response is matched to the request it answered before. Each `initialize` request
starts a new connection and id space. A transcript of the agent's output alone (no client
requests) still works for one session: a prompt response whose request was not seen settles that
session's turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from statemachine.adapters.base import (
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

__all__ = ["ACP_STOP_REASONS", "ACP_STOP_WARNINGS", "ACP_V2_STATES", "AcpAdapter"]

# v1 `stopReason` (and v2 `state_update` idle `stopReason`) -> turn.completed state. T3 calls a
# refusal `completed`; here the agent declined the work, which the user must see: `failed`.
ACP_STOP_REASONS: dict[str, str] = {
    "end_turn": "completed",
    "max_tokens": "completed",
    "max_turn_requests": "completed",
    "refusal": "failed",
    "cancelled": "cancelled",
}
# Stop reasons that complete the turn but cut the work short: a `runtime.warning` says so first
# (the session is ready for the next prompt; nothing failed, but the answer may be partial).
ACP_STOP_WARNINGS: dict[str, str] = {
    "max_tokens": "The agent stopped at its token limit: the answer may be cut short",
    "max_turn_requests": "The agent stopped at its limit of requests per turn: the work may be unfinished",
}
# A stop reason this adapter does not know (v2 allows `_`-prefixed custom ones): counted as unknown.
ACP_UNKNOWN_STOP_REASON = "completed"
# v2 `state_update` state -> session.state.changed state (idle with a stopReason ends the turn instead)
ACP_V2_STATES: dict[str, str] = {"running": "running", "requires_action": "waiting", "idle": "ready"}
# JSON-RPC error code of a cancelled request (`$/cancel_request`, or cancelled internally).
REQUEST_CANCELLED = -32800
# session/update kinds of v1 and v2: content, tools and plans, never the lifecycle (in v2 they may
# also come while idle, from background work: they do not change the state either)
IGNORED_UPDATES: frozenset[str] = frozenset({
    "user_message_chunk", "agent_message_chunk", "agent_thought_chunk", "tool_call", "tool_call_update", "plan",
    "available_commands_update", "current_mode_update", "config_option_update", "session_info_update",
    "usage_update", "user_message", "agent_message", "plan_update", "tool_call_content_chunk",
    "terminal_output_chunk", "terminal_update",
})
# Requests the client sends, and those the agent sends (each side numbers its own).
CLIENT_METHODS: frozenset[str] = frozenset({
    "initialize", "authenticate", "session/new", "session/load", "session/resume", "session/close",
    "session/list", "session/delete", "session/set_mode", "session/set_config_option", "session/prompt", "logout",
})
AGENT_METHODS: frozenset[str] = frozenset({
    "session/request_permission", "fs/read_text_file", "fs/write_text_file", "terminal/create", "terminal/output",
    "terminal/release", "terminal/wait_for_exit", "terminal/kill", "elicitation/create",
})
# Requests of either side that do not change the lifecycle (their answers are still matched).
IGNORED_REQUESTS: frozenset[str] = (CLIENT_METHODS | AGENT_METHODS) - {
    "initialize", "session/new", "session/load", "session/resume", "session/close", "session/prompt",
    "session/request_permission",
} | {"$/cancel_request"}
SESSION_OPENERS: frozenset[str] = frozenset({"session/new", "session/load", "session/resume"})
PERMISSION_REQUEST = "session/request_permission"
# The result key that marks the answer to a request (a strong match); a method not listed here
# accepts any result.
ANSWER_KEYS: dict[str, str] = {
    "initialize": "protocolVersion", "session/new": "sessionId", "session/request_permission": "outcome",
    "terminal/create": "terminalId", "terminal/output": "output", "fs/read_text_file": "content",
    "session/list": "sessions", "elicitation/create": "action",
}
MAX_PENDING = 4096  # requests awaiting a response, per side; the oldest is forgotten beyond this


@dataclass(frozen=True)
class _Pending:
    """A request awaiting its response: who sent it, and what it is about."""

    side: str  # the requester: "client" or "agent"
    method: str
    session: str | None
    turn: str | None
    seq: int  # the line it came on: of two equally likely requests, the older is answered first


class AcpAdapter(Adapter):
    format = "acp"
    default_provider = "acp"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._connection = 0
        # Per connection (its id space): requests awaiting a response, per side, and the recently
        # answered ones (a redelivered response is matched to the request it answered).
        self._pending: dict[str, BoundedMap[str, _Pending]] = {
            side: BoundedMap(MAX_PENDING, self._journal) for side in ("client", "agent")
        }
        self._answered: dict[str, BoundedMap[str, _Pending]] = {
            side: BoundedMap(MAX_PENDING, self._journal) for side in ("client", "agent")
        }

    def _save_extra(self) -> Any:
        return self._connection

    def _restore_extra(self, extra: Any) -> None:
        self._connection = extra

    def _scope(self, session: str | None) -> str:
        return session if session is not None else f"acp-connection:{self._connection}"

    def _identity(self, message: dict[str, Any]) -> tuple[str, str] | None:
        try:
            request = rpc_id(message)
        except Malformed:
            return None
        if request is None:
            return None
        method = message.get("method")
        # JSON-RPC ids restart with every connection (and every process: scoped by the stream's name).
        stem = f"acp:{self._prefix}{self._connection}"
        if isinstance(method, str):
            params = message.get("params")
            session = params.get("sessionId") if isinstance(params, dict) else None
            scope = session if isinstance(session, str) and 0 < len(session) <= 160 else None
            return self._scope(scope), f"{stem}:{method[:64]}:{request}"
        match = self._match(request, message)
        if match is None:
            return self._scope(None), f"{stem}:response:{request}"
        pending, _ = match
        responder = "agent" if pending.side == "client" else "client"
        return self._scope(pending.session), f"{stem}:{responder}-response:{pending.method[:64]}:{request}"

    def _adapt(self, message: dict[str, Any], line: Line) -> list[Envelope]:
        method = message.get("method")
        request = rpc_id(message)
        if method is None:
            if request is None or not ("result" in message or "error" in message):
                raise Malformed("method", "is missing, and the message is not a response (id with result or error)")
            return self._response(request, message, line)
        if not isinstance(method, str):
            raise Malformed("method", "must be a string")
        params = message.get("params")
        if request is None:
            return self._notification(method, params, line)
        if method == "initialize":
            # A new connection: the previous agent process is gone, and its requests and open
            # turns with it.
            self._connection += 1
            for table in (*self._pending.values(), *self._answered.values()):
                table.clear()
            events = self.drop_requests(line) + self.settle_open_turns(line)
            self._pending["client"].set(request, _Pending("client", method, None, None, line.number))
            return events or self.ignored()
        if method in IGNORED_REQUESTS:
            side = "agent" if method in AGENT_METHODS else "client"
            self._pending[side].set(request, _Pending(side, method, None, None, line.number))
            return self.ignored()
        if not isinstance(params, dict):
            raise Malformed("params", "must be a JSON object")
        if method in SESSION_OPENERS or method == "session/close":
            session = protocol_id(params, "sessionId", "params.") if method != "session/new" else None
            self._pending["client"].set(request, _Pending("client", method, session, None, line.number))
            return self.ignored()
        if method == "session/prompt":
            return self._prompt(request, params, line)
        if method == PERMISSION_REQUEST:
            return self._permission(request, message["id"], params, line)
        return self.unknown()

    # -- matching responses to requests --------------------------------------------------------

    def _match(self, request: str, message: dict[str, Any]) -> tuple[_Pending, bool] | None:
        """The request this response answers, and whether it is still pending (else: answered
        before, and this is a redelivery). Pending requests of either side first, by how well
        the result fits the method; then the requests answered before."""
        for tables, pending in ((self._pending, True), (self._answered, False)):
            best: _Pending | None = None
            best_fit = 0
            for table in tables.values():
                candidate = table.get(request)
                if candidate is None:
                    continue
                fit = _fit(candidate.method, message)
                if fit > best_fit or (fit == best_fit and best is not None and candidate.seq < best.seq):
                    best, best_fit = candidate, fit
            if best is not None:
                return best, pending
        return None

    def _response(self, request: str, message: dict[str, Any], line: Line) -> list[Envelope]:
        match = self._match(request, message)
        if match is None:
            return self._unmatched(message.get("result"), line)
        pending, still_pending = match
        if not still_pending:
            return self.ignored()  # answered before (its reply fell out of the redelivery memory)
        self._pending[pending.side].pop(request)
        self._answered[pending.side].set(request, pending)
        if pending.side == "agent":
            if pending.method == PERMISSION_REQUEST:
                return self._permission_answer(request, pending, message, line)
            return self.ignored()  # the client answered a file or terminal request
        if pending.method == "session/prompt":
            return self._prompt_answer(pending, message, line)
        if pending.method not in SESSION_OPENERS and pending.method != "session/close":
            return self.ignored()
        if "error" in message:
            return self.ignored()  # the session did not open (or close); nothing changed
        session = pending.session
        if pending.method == "session/new":
            result = message.get("result")
            if not isinstance(result, dict):
                raise Malformed("result", "must be a JSON object")
            session = protocol_id(result, "sessionId", "result.")
        assert session is not None
        if pending.method == "session/close":
            self.close_turn(session)
            self.thread(session).started = False  # a later session/load starts it again
            return [self.event(line, "session.exited", session, {"reason": "session closed", "exitKind": "graceful"})]
        return self.start_session(line, session)

    # -- prompts -------------------------------------------------------------------------------

    def _prompt(self, request: str, params: dict[str, Any], line: Line) -> list[Envelope]:
        session = protocol_id(params, "sessionId", "params.")
        started = self.open_turn(line, session)
        state = self.thread(session)
        turn = state.open_turn
        assert turn is not None  # open_turn opened one, or one was open
        # A prompt while one is in flight joins the open turn (T3 does the same): the turn ends
        # with the last of its prompts.
        state.extra["inflight"] = 1 if started is not None else int(state.extra.get("inflight", 0)) + 1
        self._pending["client"].set(request, _Pending("client", "session/prompt", session, turn, line.number))
        return [started] if started is not None else self.ignored()

    def _prompt_answer(self, pending: _Pending, message: dict[str, Any], line: Line) -> list[Envelope]:
        session, turn = pending.session, pending.turn
        if session is None or turn is None or self.open_turn_of(session) != turn:
            return self.ignored()  # its turn was already settled (a v2 state_update, a close)
        state = self.thread(session)
        inflight = max(0, int(state.extra.get("inflight", 1)) - 1)
        state.extra["inflight"] = inflight
        if inflight > 0:
            return self.ignored()  # another prompt of this turn is still in flight
        payload = self._stop_payload(message)
        if payload is None:
            return self.ignored()  # v2: the prompt was accepted; a state_update will end the turn
        return self._complete(line, session, payload)

    def _complete(self, line: Line, session: str, payload: dict[str, Any]) -> list[Envelope]:
        turn = self.open_turn_of(session)
        events = []
        warning = ACP_STOP_WARNINGS.get(payload.get("stopReason", ""))
        if warning is not None:
            events.append(self.event(line, "runtime.warning", session,
                                     {"message": warning, "stopReason": payload["stopReason"]}, turn))
        self.close_turn(session)
        events.append(self.event(line, "turn.completed", session, payload, turn))
        return events

    def _stop_payload(self, message: dict[str, Any]) -> dict[str, Any] | None:
        error = message.get("error")
        if error is not None:
            if isinstance(error, dict) and error.get("code") == REQUEST_CANCELLED:
                # A cancellation is not a failure, even when the agent answers it with an error.
                return {"state": "cancelled", "stopReason": "cancelled", "reason": "request_cancelled"}
            text = optional_text(error, "message") if isinstance(error, dict) else None
            return {"state": "failed", "errorMessage": (text or "The agent answered the prompt with an error")[:2000]}
        result = message.get("result")
        if not isinstance(result, dict):
            raise Malformed("result", "must be a JSON object")
        reason = result.get("stopReason")
        if reason is None:
            return None
        return self._stop_reason(reason)

    def _stop_reason(self, reason: object) -> dict[str, Any]:
        state = ACP_STOP_REASONS.get(reason) if isinstance(reason, str) else None
        if state is None:
            self.stats.unknown += 1
            state = ACP_UNKNOWN_STOP_REASON
        payload: dict[str, Any] = {"state": state, "stopReason": str(reason)[:64]}
        if state == "failed":
            payload["errorMessage"] = f"The agent stopped: {str(reason)[:64]}"
        return payload

    def _unmatched(self, result: object, line: Line) -> list[Envelope]:
        """A response whose request is not in the transcript (an agent-only log)."""
        if not isinstance(result, dict):
            return self.ignored()
        if "sessionId" in result:  # session/new answered
            return self.start_session(line, protocol_id(result, "sessionId", "result."))
        if "stopReason" not in result:
            return self.ignored()
        if len(self._threads) != 1:
            return self.unknown()  # the response names no session: with several, it cannot be told
        session = next(iter(self._threads))
        events = []
        started = self.open_turn(line, session)
        if started is not None:
            events.append(started)
        return events + self._complete(line, session, self._stop_reason(result["stopReason"]))

    # -- permission requests -------------------------------------------------------------------

    def _permission(self, request: str, raw_id: Any, params: dict[str, Any], line: Line) -> list[Envelope]:
        session = protocol_id(params, "sessionId", "params.")
        payload: dict[str, Any] = {"requestId": raw_id, "requestType": PERMISSION_REQUEST}
        tool = params.get("toolCall")
        if isinstance(tool, dict) and optional_text(tool, "toolCallId") is not None:
            payload["toolCallId"] = str(tool["toolCallId"])[:160]
        turn = self.open_turn_of(session)
        self._pending["agent"].set(request, _Pending("agent", PERMISSION_REQUEST, session, turn, line.number))
        entry = Request("request.opened", raw_id, PERMISSION_REQUEST, turn)
        return self.open_request(line, session, self._key(request), entry, payload, PERMISSION_REQUEST)

    def _permission_answer(
        self, request: str, pending: _Pending, message: dict[str, Any], line: Line
    ) -> list[Envelope]:
        assert pending.session is not None
        if "error" in message:
            error = message["error"]
            code = error.get("code") if isinstance(error, dict) else None
            # -32800: the request was cancelled (withdrawn by the agent, or the turn cancelled).
            outcome = "cancelled" if code == REQUEST_CANCELLED else "error"
        else:
            answer = message.get("result")
            chosen = answer.get("outcome") if isinstance(answer, dict) else None
            kind = chosen.get("outcome") if isinstance(chosen, dict) else None
            outcome = kind[:64] if isinstance(kind, str) and kind else "unknown"
        events = self.resolve_request(line, pending.session, self._key(request), {"outcome": outcome})
        return events if events is not None else self.ignored()  # resolved already (a cancel)

    def _key(self, request: str) -> str:
        return f"{self._connection}:{request}"

    # -- notifications -------------------------------------------------------------------------

    def _notification(self, method: str, params: object, line: Line) -> list[Envelope]:
        if method == "session/cancel":
            # The client must answer every pending permission request of the session as
            # cancelled: they are over now. The turn ends with the `cancelled` stop reason.
            if not isinstance(params, dict):
                raise Malformed("params", "must be a JSON object")
            session = protocol_id(params, "sessionId", "params.")
            return self.drop_requests(line, session, "cancelled") or self.ignored()
        if method == "$/cancel_request":
            return self._cancel_request(params, line)
        if method != "session/update":
            return self.ignored() if method.startswith(("$/", "_")) or method in IGNORED_REQUESTS else self.unknown()
        if not isinstance(params, dict):
            raise Malformed("params", "must be a JSON object")
        session = protocol_id(params, "sessionId", "params.")
        update = obj(params, "update", "params.")
        kind = update.get("sessionUpdate")
        if not isinstance(kind, str):
            raise Malformed("params.update.sessionUpdate", "must be a string")
        if kind in IGNORED_UPDATES:
            return self.ignored()  # also while idle: background activity changes no state
        if kind != "state_update":
            return self.unknown()
        state = update.get("state")
        mapped = ACP_V2_STATES.get(state) if isinstance(state, str) else None
        if mapped is None:
            return self.unknown()
        turn = self.open_turn_of(session)
        if mapped == "ready":
            if turn is None:
                # Idle with nothing running: said again, or after the prompt's own answer.
                # `ready` would erase the error a failed turn just set.
                return self.ignored()
            if update.get("stopReason") is not None:
                return self._complete(line, session, self._stop_reason(update["stopReason"]))
            self.close_turn(session)
            return [self.event(line, "session.state.changed", session, {"state": mapped})]
        events = []
        if turn is None:
            # Running with no prompt seen (an agent-only transcript, or work the agent began on
            # its own): it is a turn, not a turnless running session.
            started = self.open_turn(line, session)
            if started is not None:
                events.append(started)
                self.thread(session).extra["inflight"] = 0
        events.append(self.event(line, "session.state.changed", session, {"state": mapped}))
        return events

    def _cancel_request(self, params: object, line: Line) -> list[Envelope]:
        """`$/cancel_request {requestId}`: when it names the agent's pending permission request,
        the agent withdrew it (the client then answers -32800)."""
        if not isinstance(params, dict):
            raise Malformed("params", "must be a JSON object")
        request = rpc_id(params, "requestId")
        if request is None:
            raise Malformed("params.requestId", "must be a string or an integer, got missing")
        pending = self._pending["agent"].get(request)
        if pending is None or pending.method != PERMISSION_REQUEST or pending.session is None:
            return self.ignored()  # a client request, or one with no lifecycle meaning
        events = self.resolve_request(line, pending.session, self._key(request), {"outcome": "withdrawn"})
        return events if events is not None else self.ignored()


def _fit(method: str, message: dict[str, Any]) -> int:
    """How well a response fits a request of `method`: 2 it carries the method's answer key,
    1 it may answer it (an error, a method with no telling key), 0 it cannot."""
    if "error" in message:
        return 1
    key = ANSWER_KEYS.get(method)
    if key is None:
        return 1
    result = message.get("result")
    return 2 if isinstance(result, dict) and key in result else 0
