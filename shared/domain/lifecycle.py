"""The meeting state machine, enforced here and nowhere else."""
from __future__ import annotations

from shared.domain.errors import Conflict
from shared.domain.meeting import Status

S = Status

TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.PENDING: frozenset({S.CREATED, S.FAILED, S.CANCELLED}),
    S.FAILED: frozenset({S.PENDING, S.CANCELLED}),
    S.CREATED: frozenset({S.SCHEDULED, S.IN_PROGRESS, S.FINISHED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.IN_PROGRESS, S.FINISHED, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.FINISHED, S.CANCELLED}),
    S.FINISHED: frozenset(),
    S.CANCELLED: frozenset(),
}

FINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
# A meeting whose Calendar event exists and that a caller may still change.
LIVE = frozenset({S.CREATED, S.SCHEDULED, S.IN_PROGRESS})
# What the status check still looks at: live meetings, and creations a crash or an outage left half-done.
DUE_FOR_CHECK = LIVE | {S.PENDING}


def can_move(current: Status | str, target: Status | str) -> bool:
    return Status(target) in TRANSITIONS[Status(current)]


def ensure_move(current: Status | str, target: Status | str) -> None:
    """Raise Conflict unless `current -> target` is a transition of the machine."""
    if not can_move(current, target):
        raise Conflict(f"A {Status(current).value} meeting cannot become {Status(target).value}.")
