"""Claude Code `--output-format stream-json` (the Agent SDK's message shapes): one message per line.

Every message names its session (`session_id`), which is the envelope's threadId. Messages with
a `uuid` are named by it, so a redelivered message de-duplicates. The stream carries no turn
id: a turn opens at a prompt (`user` message that is not only tool results) or at the first
`assistant` message with no turn open, is numbered `<session>:turn:<n>`, and ends at `result`.
"""

from __future__ import annotations

from typing import Any

from statemachine.adapters.base import (
    MAX_PROTOCOL_ID,
    Adapter,
    BoundedSet,
    Envelope,
    Line,
    Malformed,
    optional_text,
    protocol_id,
)

__all__ = ["CLAUDE_SESSION_STATES", "CLAUDE_SUCCESS_SUBTYPE", "ClaudeStreamJsonAdapter"]

# `system/session_state_changed` state -> session.state.changed state (T3 does the same)
CLAUDE_SESSION_STATES: dict[str, str] = {"running": "running", "requires_action": "waiting", "idle": "ready"}
# The only result subtype that may mean success, and only with `is_error: false`: Claude reports
# an API failure as `subtype: "success"` with `is_error: true` (T3 calls that completed).
CLAUDE_SUCCESS_SUBTYPE = "success"
# `terminal_reason` prefix of a result for an interrupted turn
CLAUDE_ABORTED_PREFIX = "aborted"
MAX_MESSAGES = 4096  # assistant message ids remembered
# message types (and system subtypes) that never change the lifecycle
IGNORED_TYPES: frozenset[str] = frozenset({
    "stream_event", "rate_limit_event", "conversation_reset", "tool_progress", "tool_use_summary",
    "auth_status", "control_request", "control_response", "keep_alive",
})
IGNORED_SYSTEM_SUBTYPES: frozenset[str] = frozenset({
    "status", "compact_boundary", "hook_started", "hook_response", "task_started", "task_progress",
    "task_updated", "task_notification", "notification",
})


class ClaudeStreamJsonAdapter(Adapter):
    format = "claude-stream-json"
    default_provider = "claude"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._messages = BoundedSet(MAX_MESSAGES)  # assistant message ids seen

    def _save_extra(self) -> Any:
        self._messages.begin()
        return None

    def _restore_extra(self, extra: Any) -> None:
        self._messages.rollback()

    def _identity(self, message: dict[str, Any]) -> str | None:
        uuid = message.get("uuid")
        if isinstance(uuid, str) and uuid and len(uuid) <= MAX_PROTOCOL_ID:
            return f"claude:{uuid}"
        return None

    def _adapt(self, message: dict[str, Any], line: Line) -> list[Envelope]:
        kind = message.get("type")
        if not isinstance(kind, str):
            raise Malformed("type", "must be a string")
        if kind in IGNORED_TYPES:
            return self.ignored()
        if kind not in ("system", "user", "assistant", "result"):
            return self.unknown()
        session = protocol_id(message, "session_id")
        if kind == "system":
            return self._system(message, session, line)
        if message.get("parent_tool_use_id") is not None:
            return self.ignored()  # a subagent's message: part of the parent's turn
        if kind == "user":
            if not _is_prompt(message):
                return self.ignored()  # tool results flowing back within the turn
            started = self.open_turn(line, session)
            return [started] if started is not None else self.ignored()
        if kind == "assistant":
            # One assistant message arrives as several lines (one per content block) sharing its
            # `message.id`; a late one after the turn's result must not open a new turn.
            inner = message.get("message")
            message_id = optional_text(inner, "id") if isinstance(inner, dict) else None
            if message_id is not None and message_id in self._messages:
                return self.ignored()
            if message_id is not None:
                self._messages.add(message_id)
            events = []
            started = self.open_turn(line, session)
            if started is not None:
                events.append(started)
            error = optional_text(message, "error")
            if error is not None:
                # The API call failed; the `result` that follows decides the turn.
                turn = self.open_turn_of(session)
                events.append(self.event(line, "runtime.warning", session, {"message": f"API error: {error}"}, turn))
            return events or self.ignored()
        return self._result(message, session, line)

    def _system(self, message: dict[str, Any], session: str, line: Line) -> list[Envelope]:
        subtype = message.get("subtype")
        if subtype == "init":
            if self.known_thread(session) and self.thread(session).started:
                return self.ignored()  # repeated at later turns
            return self.start_session(line, session)
        if subtype == "session_state_changed":
            raw = message.get("state")
            state = CLAUDE_SESSION_STATES.get(raw) if isinstance(raw, str) else None
            if state is None:
                return self.unknown()
            events = []
            record = self.thread(session)
            turn = self.open_turn_of(session)
            # requires_action is Claude's approval wait: the request opens here and is resolved
            # by the next state, whatever it is.
            if record.extra.pop("waiting", False):
                events.append(self.event(line, "request.resolved", session, {"requestType": "requires_action"}, turn))
            if state == "waiting":
                record.extra["waiting"] = True
                events.append(self.event(line, "request.opened", session, {"requestType": "requires_action"}, turn))
            if state == "ready":
                if turn is None:
                    # The CLI says idle after every result: with the turn already settled it is
                    # redundant, and `ready` would erase the error a failed turn just set.
                    return events or self.ignored()
                self.close_turn(session)  # the result never came: idle settles the turn
            events.append(self.event(line, "session.state.changed", session, {"state": state}))
            return events
        if subtype == "api_retry":
            attempt, most = message.get("attempt"), message.get("max_retries")
            return [self.event(line, "runtime.warning", session,
                               {"message": f"API retry {attempt}/{most}"}, self.open_turn_of(session))]
        if isinstance(subtype, str) and subtype in IGNORED_SYSTEM_SUBTYPES:
            return self.ignored()
        return self.unknown()

    def _result(self, message: dict[str, Any], session: str, line: Line) -> list[Envelope]:
        subtype = message.get("subtype")
        if not isinstance(subtype, str) or not subtype:
            raise Malformed("subtype", "must be a non-empty string")
        is_error = message.get("is_error") is True
        terminal = optional_text(message, "terminal_reason") or ""
        payload: dict[str, Any] = {}
        if terminal.startswith(CLAUDE_ABORTED_PREFIX):
            payload["state"] = "interrupted"
        elif subtype == CLAUDE_SUCCESS_SUBTYPE and not is_error:
            payload["state"] = "completed"
        else:
            payload["state"] = "failed"
            payload["errorMessage"] = _error_text(message, subtype)
        payload["subtype"] = subtype
        if terminal:
            payload["terminalReason"] = terminal
        events = []
        if self.open_turn_of(session) is None:
            if message.get("num_turns") == 0:
                return self.ignored()  # a resume handshake, not a turn
            # The turn's start never showed on stdout (a prompt given on the command line and no
            # assistant message, e.g. an API error): the result still ends a turn.
            started = self.open_turn(line, session)
            if started is not None:
                events.append(started)
        turn = self.close_turn(session)
        events.append(self.event(line, "turn.completed", session, payload, turn))
        return events


def _is_prompt(message: dict[str, Any]) -> bool:
    inner = message.get("message")
    if not isinstance(inner, dict):
        return False
    content = inner.get("content")
    if isinstance(content, str):
        return bool(content)
    if isinstance(content, list):
        return any(not (isinstance(b, dict) and b.get("type") == "tool_result") for b in content)
    return False


def _error_text(message: dict[str, Any], subtype: str) -> str:
    errors = message.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], str) and errors[0]:
        return errors[0][:2000]
    result = optional_text(message, "result")
    if result is not None:
        return result[:2000]
    status = message.get("api_error_status")
    if isinstance(status, int) and not isinstance(status, bool):
        return f"API error {status}"
    return subtype
