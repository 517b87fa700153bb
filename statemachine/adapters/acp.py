"""Agent Client Protocol (JSON-RPC 2.0): a two-way transcript, client and agent messages interleaved.

ACP v1 names sessions (`sessionId`) but no turn: a turn is a `session/prompt` request, numbered
`<session>:turn:<n>`, and ends with the response to that request (its `stopReason`, or a JSON-RPC
error). ACP v2 (draft) answers the prompt at once and reports the end in a `session/update`
`state_update`; both are read. JSON-RPC ids name requests and responses (a redelivery
de-duplicates); they restart at every connection, so each `initialize` request starts a new
id space. A transcript of the agent's output alone (no client requests) still works for one
session: a prompt response whose request was not seen settles that session's turn.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from statemachine.adapters.base import Adapter, Envelope, Line, Malformed, obj, optional_text, protocol_id, rpc_id

__all__ = ["ACP_STOP_REASONS", "ACP_V2_STATES", "AcpAdapter"]

# v1 `stopReason` (and v2 `state_update` idle `stopReason`) -> turn.completed state. T3 calls a
# refusal `completed`; here the agent declined the work, which the user must see: `failed`.
ACP_STOP_REASONS: dict[str, str] = {
    "end_turn": "completed",
    "max_tokens": "completed",
    "max_turn_requests": "completed",
    "refusal": "failed",
    "cancelled": "cancelled",
}
# A stop reason this adapter does not know (v2 allows `_`-prefixed custom ones): counted as unknown.
ACP_UNKNOWN_STOP_REASON = "completed"
# v2 `state_update` state -> session.state.changed state (idle with a stopReason ends the turn instead)
ACP_V2_STATES: dict[str, str] = {"running": "running", "requires_action": "waiting", "idle": "ready"}
# v1 session/update kinds: content, tools and plans, never the lifecycle
IGNORED_UPDATES: frozenset[str] = frozenset({
    "user_message_chunk", "agent_message_chunk", "agent_thought_chunk", "tool_call", "tool_call_update", "plan",
    "available_commands_update", "current_mode_update", "config_option_update", "session_info_update",
    "usage_update",
})
# Requests either side may send that do not change the lifecycle
IGNORED_REQUESTS: frozenset[str] = frozenset({
    "authenticate", "session/set_mode", "session/set_config_option", "session/list", "session/delete", "logout",
    "fs/read_text_file", "fs/write_text_file", "terminal/create", "terminal/output", "terminal/release",
    "terminal/wait_for_exit", "terminal/kill", "elicitation/create", "$/cancel_request",
})
SESSION_OPENERS: frozenset[str] = frozenset({"session/new", "session/load", "session/resume"})
PERMISSION_REQUEST = "session/request_permission"
MAX_PENDING = 4096  # requests awaiting a response, per side; the oldest is forgotten beyond this


@dataclass
class _Pending:
    connection: int = 0
    client: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> (method, sessionId)
    agent: dict[str, str] = field(default_factory=dict)  # permission request id -> sessionId
    prompts: dict[str, tuple[str, str]] = field(default_factory=dict)  # prompt id -> (sessionId, turn)


class AcpAdapter(Adapter):
    format = "acp"
    default_provider = "acp"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._p = _Pending()

    def _save_extra(self) -> Any:
        return copy.deepcopy(self._p)

    def _restore_extra(self, extra: Any) -> None:
        self._p = extra

    def _identity(self, message: dict[str, Any]) -> str | None:
        try:
            request = rpc_id(message)
        except Malformed:
            return None
        if request is None:
            return None
        method = message.get("method")
        # JSON-RPC ids restart with every connection (and every process: scoped by the stream's name).
        scope = f"acp:{self._prefix}{self._p.connection}"
        if isinstance(method, str):
            return f"{scope}:{method[:64]}:{request}"
        side = "client" if _is_permission_answer(message) else "agent"
        return f"{scope}:{side}-response:{request}"

    def _adapt(self, message: dict[str, Any], line: Line) -> list[Envelope]:
        method = message.get("method")
        request = rpc_id(message)
        if method is None:
            if request is None or not ("result" in message or "error" in message):
                raise Malformed("method", "is missing, and the message is not a response (id with result or error)")
            if _is_permission_answer(message):
                return self._permission_answer(request, message, line)
            return self._response(request, message, line)
        if not isinstance(method, str):
            raise Malformed("method", "must be a string")
        params = message.get("params")
        if request is None:
            return self._notification(method, params, line)
        if method == "initialize":
            # A new connection: the previous agent process is gone, and its open turns with it.
            self._p.connection += 1
            self._forget_requests()
            return self.settle_open_turns(line) or self.ignored()
        if method in IGNORED_REQUESTS:
            return self.ignored()
        if not isinstance(params, dict):
            raise Malformed("params", "must be a JSON object")
        if method in SESSION_OPENERS or method == "session/close":
            session = protocol_id(params, "sessionId", "params.") if method != "session/new" else None
            _bounded_put(self._p.client, request, (method, session))
            return self.ignored()
        if method == "session/prompt":
            return self._prompt(request, params, line)
        if method == PERMISSION_REQUEST:
            return self._permission(request, params, line)
        return self.unknown()

    # -- client requests and agent responses ---------------------------------------------------

    def _prompt(self, request: str, params: dict[str, Any], line: Line) -> list[Envelope]:
        session = protocol_id(params, "sessionId", "params.")
        started = self.open_turn(line, session)
        turn = self.open_turn_of(session)
        assert turn is not None  # open_turn opened one, or one was open
        _bounded_put(self._p.prompts, request, (session, turn))
        _bounded_put(self._p.client, request, ("session/prompt", session))
        # A prompt while one is in flight joins the open turn (T3 does the same).
        return [started] if started is not None else self.ignored()

    def _response(self, request: str, message: dict[str, Any], line: Line) -> list[Envelope]:
        result = message.get("result")
        pending = self._p.client.pop(request, None)
        if pending is None:
            return self._unmatched(result, line)
        method, session = pending
        if method == "session/prompt":
            return self._prompt_answer(request, message, line)
        if "error" in message:
            return self.ignored()  # the session did not open (or close); nothing changed
        if method == "session/new":
            if not isinstance(result, dict):
                raise Malformed("result", "must be a JSON object")
            session = protocol_id(result, "sessionId", "result.")
        assert session is not None
        if method == "session/close":
            self.close_turn(session)
            self.thread(session).started = False  # a later session/load starts it again
            return [self.event(line, "session.exited", session, {"reason": "session closed", "exitKind": "graceful"})]
        return self.start_session(line, session)

    def _prompt_answer(self, request: str, message: dict[str, Any], line: Line) -> list[Envelope]:
        session, turn = self._p.prompts.pop(request, (None, None))
        if session is None or turn is None or self.open_turn_of(session) != turn:
            return self.ignored()  # its turn was already settled (a v2 state_update, a close)
        if any(t == turn for _, t in self._p.prompts.values()):
            return self.ignored()  # another prompt of this turn is still in flight
        payload = self._stop_payload(message)
        if payload is None:
            return self.ignored()  # v2: the prompt was accepted; a state_update will end the turn
        self.close_turn(session)
        return [self.event(line, "turn.completed", session, payload, turn)]

    def _stop_payload(self, message: dict[str, Any]) -> dict[str, Any] | None:
        error = message.get("error")
        if error is not None:
            text = optional_text(error, "message") if isinstance(error, dict) else None
            return {"state": "failed", "errorMessage": text or "The agent answered the prompt with an error"}
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
            payload["errorMessage"] = f"The agent stopped: {reason}"
        return payload

    def _unmatched(self, result: object, line: Line) -> list[Envelope]:
        """A response whose request is not in the transcript (an agent-only log)."""
        if not isinstance(result, dict):
            return self.ignored()
        if "sessionId" in result:  # session/new answered
            return self.start_session(line, protocol_id(result, "sessionId", "result."))
        if "stopReason" not in result:
            return self.ignored()
        sessions = list(self._threads)
        if len(sessions) != 1:
            return self.unknown()  # cannot tell which session's prompt this answers
        session = sessions[0]
        events = []
        started = self.open_turn(line, session)
        if started is not None:
            events.append(started)
        turn = self.close_turn(session)
        events.append(self.event(line, "turn.completed", session, self._stop_reason(result["stopReason"]), turn))
        return events

    # -- agent requests and client responses ---------------------------------------------------

    def _permission(self, request: str, params: dict[str, Any], line: Line) -> list[Envelope]:
        session = protocol_id(params, "sessionId", "params.")
        payload: dict[str, Any] = {"requestId": request, "requestType": PERMISSION_REQUEST}
        tool = params.get("toolCall")
        if isinstance(tool, dict) and optional_text(tool, "toolCallId") is not None:
            payload["toolCallId"] = str(tool["toolCallId"])[:160]
        _bounded_put(self._p.agent, request, session)
        turn = self.open_turn_of(session)
        events = [self.event(line, "request.opened", session, payload, turn)]
        if turn is not None:
            events.append(self.event(line, "session.state.changed", session,
                                     {"state": "waiting", "reason": PERMISSION_REQUEST}))
        return events

    def _permission_answer(self, request: str, message: dict[str, Any], line: Line) -> list[Envelope]:
        session = self._p.agent.pop(request, None)
        if session is None:
            return self.ignored()
        outcome = obj(message, "result")["outcome"]
        chosen = outcome.get("outcome") if isinstance(outcome, dict) else None
        payload = {"requestId": request, "outcome": chosen if isinstance(chosen, str) else "unknown"}
        return [self.event(line, "request.resolved", session, payload, self.open_turn_of(session))]

    # -- notifications -------------------------------------------------------------------------

    def _notification(self, method: str, params: object, line: Line) -> list[Envelope]:
        if method == "session/cancel":
            return self.ignored()  # the prompt's `cancelled` stop reason settles the turn
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
            return self.ignored()
        if kind != "state_update":
            return self.unknown()
        state = update.get("state")
        mapped = ACP_V2_STATES.get(state) if isinstance(state, str) else None
        if mapped is None:
            return self.unknown()
        turn = self.open_turn_of(session)
        if mapped == "ready" and turn is not None and update.get("stopReason") is not None:
            self.close_turn(session)
            return [self.event(line, "turn.completed", session, self._stop_reason(update["stopReason"]), turn)]
        if mapped == "ready":
            self.close_turn(session)
        return [self.event(line, "session.state.changed", session, {"state": mapped})]

    def _forget_requests(self) -> None:
        # A new connection: the old one's requests will never be answered on this one.
        self._p.client.clear()
        self._p.agent.clear()
        self._p.prompts.clear()


def _is_permission_answer(message: dict[str, Any]) -> bool:
    result = message.get("result")
    return "method" not in message and isinstance(result, dict) and "outcome" in result


def _bounded_put(table: dict[str, Any], key: str, value: Any) -> None:
    table[key] = value
    if len(table) > MAX_PENDING:
        del table[next(iter(table))]
