"""The built-in spec's words as constants and `Literal` types, for code that matches on them.

The spec file is the source of truth; these copies exist so that callers get autocompletion and
type checking (`status: Status`). A test checks that they equal what the built-in spec declares.
A custom spec may declare other statuses and reasons: these names describe the built-in one only.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "CREATED_IN_FUTURE_MEANING",
    "INACTIVE_STATUSES",
    "INVALID_IN_MEANING",
    "OUTCOME_KINDS",
    "OUTCOME_MEANINGS",
    "REJECTION_REASONS",
    "STATUSES",
    "TURN_STATUSES",
    "OutcomeKindName",
    "RejectionReason",
    "Status",
]

Status = Literal["idle", "starting", "running", "ready", "interrupted", "stopped", "error"]

# The `rejects_as` name of every guard, then `invalid_in_<status>` for each status some trigger
# cannot leave (see docs/semantics.md, "Rejection reasons"), then the projector's own
# `created_in_future` (an event dated beyond the ingest clock's bound).
RejectionReason = Literal[
    "no_active_turn",
    "turn_active",
    "untargeted",
    "targeted",
    "other_turn_active",
    "turn_finished",
    "no_turn_pending",
    "turn_pending",
    "turn_expected",
    "not_settled",
    "too_many_open_requests",
    "requests_still_open",
    "invalid_in_idle",
    "invalid_in_starting",
    "invalid_in_running",
    "invalid_in_ready",
    "invalid_in_interrupted",
    "invalid_in_stopped",
    "invalid_in_error",
    "created_in_future",
]

OutcomeKindName = Literal["applied", "ignored", "duplicate", "rejected", "deferred", "forgotten"]

STATUSES: Final[tuple[Status, ...]] = get_args(Status)
# Statuses that may hold an active turn; every other status clears it on entry.
TURN_STATUSES: Final[tuple[Status, ...]] = ("starting", "running")
INACTIVE_STATUSES: Final[tuple[Status, ...]] = tuple(s for s in STATUSES if s not in TURN_STATUSES)
REJECTION_REASONS: Final[tuple[RejectionReason, ...]] = get_args(RejectionReason)
OUTCOME_KINDS: Final[tuple[OutcomeKindName, ...]] = get_args(OutcomeKindName)

# What each outcome means, for people: the one place the docs' outcome tables are generated from
# (`python -m statemachine docs`; docs/observing.md and docs/semantics.md hold the tables).
OUTCOME_MEANINGS: Final[dict[OutcomeKindName, str]] = {
    "applied": "a transition took the event: its effects changed the session, then `updatedAt` and "
               "`providerName` were set from the event",
    "ignored": "the event's type is not one the spec lists (`runtime.warning`, `item.*`, `content.delta`, ...): "
               "the session is unchanged",
    "duplicate": "this thread already processed this `eventId`, whatever the outcome was then: the session is "
                 "unchanged",
    "rejected": "a lifecycle event that no transition accepts, or one dated too far ahead; `reason` names why "
                "(table below): the session is unchanged",
    "deferred": "applied from inside an observer: queued, and applied once the observers of the current event "
                "have run (a replay subscribes none, so never there)",
    "forgotten": "a command that forgets the thread (`thread.delete`) was applied: the thread is dropped with its "
                 "memories; `after` is the fresh session the thread would start from (the initial status and the "
                 "event's provider, nothing else set)",
}

# Rejection reasons not named by a spec guard's `rejects_as`: the spec's own (one per status) and
# the projector's.
INVALID_IN_MEANING: Final = "no transition for the event's trigger leaves `{status}`"
CREATED_IN_FUTURE_MEANING: Final = (
    "the event's `createdAt` is further ahead of the ingest clock than `max_clock_skew` allows "
    "(`replay --max-clock-skew`); its eventId is remembered"
)
