"""Patient-safe rooms, pure: the policy a request asks for, and what differs between it and a Meet space."""
from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from shared.domain.errors import InvalidInput
from shared.domain.meeting import Meeting, MeetSpace, RoomPolicy

ACCESS_TYPES = ("OPEN", "TRUSTED", "RESTRICTED")
FIELDS = ("access_type", "auto_recording", "auto_transcription")

# Where a room's policy is: APPLIED once Google confirmed it, PENDING until it can be applied (Google unavailable,
# the Meet link still pending), FAILED when Google refused it (the meeting stays usable; a PATCH of `room` retries).
APPLIED, PENDING, FAILED = "APPLIED", "PENDING", "FAILED"
STATES = (APPLIED, PENDING, FAILED)

# While a policy is PENDING the status check looks again this soon, so it is in place before the slot.
RECHECK = timedelta(minutes=5)


def default_policy(access_type: str) -> RoomPolicy:
    """The policy of a meeting that asks for none: the configured access, no automatic recording or transcript."""
    return RoomPolicy(access_type=access_type)


def resolve(given: dict[str, Any] | None, base: RoomPolicy, field: str = "room") -> RoomPolicy:
    """The policy a request asks for: each field it gives replaces the base's; null is refused."""
    if not given:
        return base
    for name, value in given.items():
        if value is None:
            raise InvalidInput.field(f"{field}.{name}", "cannot be null")
    return dataclasses.replace(base, **{name: given[name] for name in FIELDS if name in given})


def columns(policy: RoomPolicy, state: str) -> dict[str, Any]:
    """The meeting columns that hold a policy and its state."""
    return {"room_access_type": policy.access_type, "room_auto_recording": policy.auto_recording,
            "room_auto_transcription": policy.auto_transcription, "room_state": state}


def plan_room(meeting: Meeting, given: dict[str, Any], *, default: RoomPolicy) -> dict[str, Any]:
    """The columns a PATCH of `room` writes: the policy with the given fields replaced, PENDING until applied.

    Nothing when the policy stays and is applied; the same policy not yet applied (PENDING, FAILED) is tried again.
    """
    wanted = resolve(given, meeting.room or default)
    if wanted == meeting.room and meeting.room_state == APPLIED:
        return {}
    return columns(wanted, PENDING)


def drift(policy: RoomPolicy, space: MeetSpace) -> tuple[str, ...]:
    """The fields of the policy the space does not have (a value Meet did not report counts as different)."""
    return tuple(name for name in FIELDS if getattr(space, name) != getattr(policy, name))
