"""The built-in spec's words as constants and `Literal` types, for code that matches on them.

The spec file is the source of truth; these copies exist so that callers get autocompletion and
type checking (`status: Status`). A test checks that they equal what the built-in spec declares.
A custom spec may declare other statuses and reasons: these names describe the built-in one only.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "INACTIVE_STATUSES",
    "OUTCOME_KINDS",
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
