"""Claude Code `--output-format stream-json` (the Agent SDK's message shapes): one message per line.

Every message names its session (`session_id`), which is the envelope's threadId. Messages with
a `uuid` are named by it, so a redelivered message de-duplicates; the memory that answers
redeliveries, like the message ids seen, is the session's own. The stream carries no turn id: a
turn opens at a prompt (`user` message that is not only tool results, an injected one marked by
`origin` included) or at the first `assistant` message with no turn open, is numbered
`<session>:turn:<n>`, and ends at `result`. A turn settles once: a later `result` for it is
reported naming the settled turn, which the projector rejects (`turn_finished`).
"""

from __future__ import annotations

from typing import Any

from statemachine.adapters.base import (
    MAX_PROTOCOL_ID,
    Adapter,
    Envelope,
    Line,
    Malformed,
    Request,
    optional_text,
    protocol_id,
)

__all__ = ["CLAUDE_SESSION_STATES", "CLAUDE_SUCCESS_SUBTYPE", "ClaudeStreamJsonAdapter"]

# `system/session_state_changed` state -> session.state.changed state (T3 does the same)
CLAUDE_SESSION_STATES: dict[str, str] = {"running": "running", "requires_action": "waiting", "idle": "ready"}
# The only result subtype that may mean success, and only with `is_error: false`: Claude reports
# an API failure as `subtype: "success"` with `is_error: true` (T3 calls that completed).
CLAUDE_SUCCESS_SUBTYPE = "success"
# `terminal_reason` values of a result for a turn the user cancelled (interrupt): the turn is
# interrupted, whatever the subtype says. Another `aborted_*` value is read the same way.
CLAUDE_ABORTED_REASONS: frozenset[str] = frozenset({"aborted_streaming", "aborted_tools"})
CLAUDE_ABORTED_PREFIX = "aborted_"
# `origin.kind` of a prompt the user typed; any other kind marks a turn the session injected on
# its own (a background task's notification, an auto-continuation, a peer's message).
CLAUDE_HUMAN_ORIGIN = "human"
# The requires_action wait has no request id: one per session, under this key.
REQUIRES_ACTION = "requires_action"
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

    def _identity(self, message: dict[str, Any]) -> tuple[str, str] | None:
        uuid = message.get("uuid")
        session = message.get("session_id")
        if not (isinstance(uuid, str) and uuid and len(uuid) <= MAX_PROTOCOL_ID):
            return None
        if not (isinstance(session, str) and session and len(session) <= MAX_PROTOCOL_ID):
            return None  # _adapt says what is wrong with the session
        return session, f"claude:{uuid}"

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
            started = self._open(line, session, _injected(message))
            return [started] if started is not None else self.ignored()
        if kind == "assistant":
            # One assistant message arrives as several lines (one per content block) sharing its
            # `message.id`; a late one after the turn's result must not open a new turn.
            inner = message.get("message")
            message_id = optional_text(inner, "id") if isinstance(inner, dict) else None
            state = self.thread(session)
            if message_id is not None and message_id in state.seen:
                return self.ignored()
            if message_id is not None:
                state.seen.add(message_id[:MAX_PROTOCOL_ID])
            events = []
            started = self._open(line, session, None)
            if started is not None:
                events.append(started)
            error = optional_text(message, "error")
            if error is not None:
                # The API call failed; the `result` that follows decides the turn.
                turn = self.open_turn_of(session)
                events.append(self.event(line, "runtime.warning", session,
                                         {"message": f"API error: {error[:200]}"}, turn))
            return events or self.ignored()
        return self._result(message, session, line)

    def _open(self, line: Line, session: str, origin: str | None) -> Envelope | None:
        payload = {"origin": origin} if origin is not None else None
        started = self.open_turn(line, session, payload=payload)
        if started is not None:
            self.thread(session).extra.pop("settled", None)  # a new turn: the next result is its own
        return started

    def _close(self, session: str) -> str | None:
        turn = self.close_turn(session)
        if turn is not None:
            self.thread(session).extra["settled"] = turn
        return turn

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
            events: list[Envelope] = []
            record = self.thread(session)
            turn = record.open_turn
            # requires_action is Claude's approval wait: the request opens here and is resolved
            # by the next state, whatever it is.
            if REQUIRES_ACTION in record.open_requests:
                events += self.resolve_request(line, session, REQUIRES_ACTION) or []
            record.requests.pop(REQUIRES_ACTION)
            if state == "waiting":
                if turn is None:
                    return events or self.ignored()  # no turn to wait in: nothing the session shows
                request = Request("request.opened", None, REQUIRES_ACTION, turn)
                return events + self.open_request(line, session, REQUIRES_ACTION, request,
                                                  {"requestType": REQUIRES_ACTION}, REQUIRES_ACTION)
            if state == "ready":
                if turn is None:
                    # The CLI says idle after every result: with the turn already settled it is
                    # redundant, and `ready` would erase the error a failed turn just set.
                    return events or self.ignored()
                self._close(session)  # the result never came: idle settles the turn
            events.append(self.event(line, "session.state.changed", session, {"state": state}))
            return events
        if subtype == "api_retry":
            attempt, most = message.get("attempt"), message.get("max_retries")
            return [self.event(line, "runtime.warning", session,
                               {"message": f"API retry {str(attempt)[:20]}/{str(most)[:20]}"},
                               self.open_turn_of(session))]
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
        if terminal in CLAUDE_ABORTED_REASONS or terminal.startswith(CLAUDE_ABORTED_PREFIX):
            payload["state"] = "interrupted"  # the user cancelled the turn
        elif subtype == CLAUDE_SUCCESS_SUBTYPE and not is_error:
            payload["state"] = "completed"
        else:
            payload["state"] = "failed"
            payload["errorMessage"] = _error_text(message, subtype)
        payload["subtype"] = subtype[:64]
        if terminal:
            payload["terminalReason"] = terminal[:64]
        origin = _injected(message)
        if origin is not None:
            payload["origin"] = origin
        state = self.thread(session)
        events = []
        if state.open_turn is None:
            if message.get("num_turns") == 0:
                if not is_error:
                    return self.ignored()  # a resume handshake, not a turn
                # No turn ran and the CLI reports an error: the resume failed. The session must
                # not stay ready as if it could take a prompt.
                return [self.event(line, "runtime.error", session,
                                   {"message": _error_text(message, subtype), "class": "resume_failed"})]
            settled = state.extra.get("settled")
            if origin is None and isinstance(settled, str):
                # Another result for the prompt whose turn already settled (background tasks
                # finished): the session settles once. Naming the settled turn, the projector
                # rejects it as `turn_finished`.
                return [self.event(line, "turn.completed", session, {**payload, "repeated": True}, settled)]
            # The turn's start never showed on stdout (a prompt given on the command line, an
            # injected turn whose prompt was not echoed, an API error before any message): the
            # result still ends a turn.
            started = self._open(line, session, origin)
            if started is not None:
                events.append(started)
        turn = self._close(session)
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


def _injected(message: dict[str, Any]) -> str | None:
    """The `origin.kind` of a message the session injected on its own (not a human prompt), else None."""
    origin = message.get("origin")
    kind = origin.get("kind") if isinstance(origin, dict) else None
    if not isinstance(kind, str) or not kind or kind == CLAUDE_HUMAN_ORIGIN:
        return None
    return kind[:64]


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
    return subtype[:200]
