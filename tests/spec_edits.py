"""Small edits of the built-in spec's data, made in memory: each a spec that is wrong on purpose.

`EDITS` names each edit with the requirements `verify`'s explore must name on it (at least those).
test_requirements.py shows each failing there; test_stateful.py shows the Hypothesis machine
catching them too.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from statemachine.spec.check import build_spec
from statemachine.spec.load import builtin_spec_data
from statemachine.spec.model import Spec

__all__ = ["EDITS", "Edit", "edited"]

Data = dict[str, Any]


def _transitions(data: Data, trigger: str, which: int | None) -> list[Data]:
    found = [t for t in data["transitions"] if t["trigger"] == trigger]
    assert found, trigger
    return found if which is None else [found[which]]


def _statuses(data: Data) -> list[str]:
    return [s["name"] for s in data["statuses"]]


def _effect_name(effect: str | Data) -> str:
    return effect if isinstance(effect, str) else next(iter(effect))


@dataclass(frozen=True)
class Edit:
    """One small change (`change` mutates the spec's data) and what it must break."""

    what: str
    change: Callable[[Data], None]
    breaks: frozenset[str]


def drop_source(trigger: str, status: str, which: int | None = None) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        for t in _transitions(data, trigger, which):
            sources = _statuses(data) if t["sources"] == "*" else list(t["sources"])
            assert status in sources, (trigger, status)
            t["sources"] = [s for s in sources if s != status]
    return change


def add_source(trigger: str, status: str, which: int | None = None) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        for t in _transitions(data, trigger, which):
            assert t["sources"] != "*" and status not in t["sources"], (trigger, status)
            t["sources"] = [*t["sources"], status]
    return change


def drop_effect(trigger: str, effect: str, which: int | None = None) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        for t in _transitions(data, trigger, which):
            kept = [e for e in t.get("effects", []) if _effect_name(e) != effect]
            assert len(kept) < len(t.get("effects", [])), (trigger, effect)
            t["effects"] = kept
    return change


def add_effect(trigger: str, effect: str) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        for t in _transitions(data, trigger, None):
            t["effects"] = [*t.get("effects", []), effect]
    return change


def drop_guard(trigger: str, guard: str, which: int | None = None) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        for t in _transitions(data, trigger, which):
            assert guard in t.get("guards", []), (trigger, guard)
            t["guards"] = [g for g in t["guards"] if g != guard]
    return change


def set_param(trigger: str, effect: str, param: str, value: Any) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        uses = [e[effect] for t in _transitions(data, trigger, None) for e in t.get("effects", [])
                if isinstance(e, dict) and effect in e]
        assert uses, (trigger, effect)
        for params in uses:
            params[param] = value
    return change


def drop_event_flag(type_: str, flag: str) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        (event,) = [e for e in data["events"] if e["type"] == type_]
        assert flag in event, (type_, flag)
        del event[flag]
    return change


def drop_on_applied(effect: str) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        assert effect in data["on_applied"], effect
        data["on_applied"] = [e for e in data["on_applied"] if e != effect]
    return change


def set_initial(status: str) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        data["initial"] = status
    return change


def _edit(what: str, change: Callable[[Data], None], *breaks: str) -> Edit:
    return Edit(what, change, frozenset(breaks))


EDITS: dict[str, Edit] = {
    "provider_not_recorded": _edit(
        "record_provider dropped from on_applied: providerName keeps the thread's first provider",
        drop_on_applied("record_provider"), "applied_records_provider"),
    "new_thread_starts_ready": _edit(
        "the initial status is ready", set_initial("ready"), "new_thread_starts_idle"),
    "turn_start_keeps_its_request": _edit(
        "turn.started (targeted) no longer consumes the pending request it fulfils",
        drop_effect("turn.started", "consume_pending_turn", 0), "turn_start_consumes_its_request"),
    "retry_keeps_error": _edit(
        "thread.session.start no longer clears lastError", drop_effect("thread.session.start", "clear_error"),
        "retry_clears_error"),
    "retry_while_running": _edit(
        "thread.session.start is also taken in running", add_source("thread.session.start", "running"),
        "retry_rejected_while_working"),
    "resolved_clears_error": _edit(
        "request.resolved also clears lastError", add_effect("request.resolved", "clear_error"),
        "request_resolved_clears_awaiting"),
    "resolved_not_in_ready": _edit(
        "request.resolved is no longer taken in ready", drop_source("request.resolved", "ready"),
        "request_resolved_clears_awaiting"),
    "resolved_for_any_turn": _edit(
        "request.resolved no longer checks the turn it names", drop_guard("request.resolved", "turn_matches"),
        "request_resolved_for_other_turn_rejected"),
    "request_not_in_running": _edit(
        "request.opened is no longer taken in running (invalid_in_running)", drop_source("request.opened", "running"),
        "request_opened_awaits_approval"),
    "approval_recorded_as_user_input": _edit(
        "request.opened records user-input instead of approval",
        set_param("request.opened", "set_awaiting", "what", "user-input"), "request_opened_awaits_approval"),
    "user_input_recorded_as_approval": _edit(
        "user-input.requested records approval instead of user-input",
        set_param("user-input.requested", "set_awaiting", "what", "approval"),
        "user_input_request_awaits_user_input"),
    "user_input_without_turn": _edit(
        "user-input.requested no longer needs an active turn",
        drop_guard("user-input.requested", "has_active_turn"), "request_needs_its_active_turn"),
    "turn_request_not_in_error": _edit(
        "thread.turn.start is no longer taken in error (invalid_in_error)",
        drop_source("thread.turn.start", "error", 0), "turn_request_from_settled_starts"),
    "steer_not_in_running": _edit(
        "thread.turn.start is no longer taken in running", drop_source("thread.turn.start", "running", 1),
        "turn_request_steers"),
    "steer_for_finished_turn": _edit(
        "a steering thread.turn.start no longer checks that its turn has not finished",
        drop_guard("thread.turn.start", "turn_not_finished", 1), "turn_request_for_finished_turn_rejected"),
    "stop_not_in_running": _edit(
        "thread.session.stop no longer stops a running session", drop_source("thread.session.stop", "running", 1),
        "stop_request_stops_working_session"),
    "abort_in_idle": _edit(
        "turn.aborted is a candidate in idle too, so it answers no_active_turn there",
        add_source("turn.aborted", "idle"), "abort_rejection_reasons"),
    "delete_not_in_ready": _edit(
        "thread.delete is no longer taken in ready", drop_source("thread.delete", "ready"),
        "delete_forgets_from_every_status"),
    "delete_keeps_memories": _edit(
        "thread.delete loses forgets_thread: the thread goes idle and keeps its memories",
        drop_event_flag("thread.delete", "forgets_thread"), "forgetting_drops_memories"),
}


def edited(name: str) -> Spec:
    """The built-in spec with edit `name` made to its data."""
    data = deepcopy(builtin_spec_data())
    EDITS[name].change(data)
    return build_spec(data, f"<built-in spec, edited: {name}>")
