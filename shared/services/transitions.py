"""The one place a meeting changes once it exists: the lifecycle is checked, the row written, the events recorded.

Every use case (create, reschedule, cancel, the status check, the recording sync, crash recovery) holds the
meeting's row lock, decides, and hands the decision to `change`. Nothing else writes a meeting's status. What the
change means to the client (meeting.created, .updated, .started, .finished, .cancelled, attendance.updated,
recording.ready, transcript.ready) is recorded here too, in the same transaction: the webhooks' outbox.
"""
from __future__ import annotations

from typing import Any

from shared.adapters.postgres import repository as repo
from shared.domain.lifecycle import ensure_move
from shared.domain.meeting import Meeting, Status


def change(cur, meeting: Meeting, *, to: Status | None = None, **fields: Any) -> Meeting:
    """Move `meeting` to status `to` (if given) and write `fields`; returns the meeting as it now is.

    `meeting` must have been read under its row lock in the transaction of `cur`. A move the lifecycle does
    not allow raises Conflict and writes nothing. The events are those between `meeting` and the meeting after
    the write, so rows written since the locked read (invitees, attendance, recordings) must be written before
    this call, and a change that alters nothing a client sees records nothing.
    """
    if "status" in fields:
        raise TypeError("give the new status as `to`")
    if to is not None and to != meeting.status:
        ensure_move(meeting.status, to)
        fields["status"] = to
    fields = {name: value for name, value in fields.items() if getattr(meeting, name) != value}
    if fields:
        after = repo.write_meeting(cur, meeting.id, fields, expect_status=meeting.status)  # the row as written
    else:
        found = repo.get_meeting(cur, meeting.id)  # rows written since the locked read may still be events
        if found is None:  # pragma: no cover - meetings are never deleted, and the row lock is held
            raise RuntimeError("the meeting vanished under its row lock")
        after = found
    from shared.services import events  # the outbox, with the first write: a read function never loads it

    events.record(cur, meeting, after)
    return after
