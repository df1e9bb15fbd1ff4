"""The one place a meeting changes once it exists: the lifecycle is checked and the row written here.

Every use case (create, reschedule, cancel, the status check, the recording sync, crash recovery) holds the
meeting's row lock, decides, and hands the decision to `change`. Nothing else writes a meeting's status.
"""
from __future__ import annotations

from typing import Any

from shared.adapters.postgres import repository as repo
from shared.domain.lifecycle import ensure_move
from shared.domain.meeting import Meeting, Status


def change(cur, meeting: Meeting, *, to: Status | None = None, **fields: Any) -> Meeting:
    """Move `meeting` to status `to` (if given) and write `fields`; returns the meeting as it now is.

    `meeting` must have been read under its row lock in the transaction of `cur`. A move the lifecycle does
    not allow raises Conflict and writes nothing.
    """
    if "status" in fields:
        raise TypeError("give the new status as `to`")
    if to is not None and to != meeting.status:
        ensure_move(meeting.status, to)
        fields["status"] = to
    fields = {name: value for name, value in fields.items() if getattr(meeting, name) != value}
    if not fields:
        return meeting
    repo.write_meeting(cur, meeting.id, fields, expect_status=meeting.status)
    return meeting.but(**fields)
