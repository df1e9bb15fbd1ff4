"""Patient-safe rooms: bring a meeting's Meet space in line with its room policy, and record where that stands."""
from __future__ import annotations

import logging
from datetime import datetime

from shared.domain import rooms
from shared.domain.errors import NotFound, Unavailable, UpstreamFailed
from shared.domain.lifecycle import LIVE
from shared.domain.meeting import Meeting, MeetSpace
from shared.services.transitions import change

log = logging.getLogger(__name__)


def apply_policy(cur, meeting: Meeting, *, meet, now: datetime, space: MeetSpace | None = None) -> Meeting:
    """Make the Meet space of a live, locked meeting match its policy and record the outcome (room_fields)."""
    fields = room_fields(meeting, meet=meet, now=now, space=space)
    return change(cur, meeting, **fields) if fields else meeting


def room_fields(meeting: Meeting, *, meet, now: datetime, space: MeetSpace | None = None) -> dict:
    """Try to bring the Meet space of a live meeting in line with its policy, with `spaces.patch` of the differing
    fields only, and return the room columns to write: APPLIED; PENDING (no link yet, Google unavailable, the space
    not found yet: the next status check is brought within minutes); or FAILED (Google refused: logged, the
    meeting stays usable). Nothing for a meeting without a policy, not live, or whose policy FAILED: that is left
    alone until a PATCH of `room` asks again, so a refusal never turns into a loop.

    `space` is the space as the caller just read it, if it did. Google is called; nothing is written here.
    """
    policy = meeting.room
    if policy is None or meeting.status not in LIVE or meeting.room_state == rooms.FAILED:
        return {}
    state = rooms.PENDING
    if meet is not None and meeting.meeting_code:
        try:
            state = _apply(meeting, policy, meet=meet, space=space)
        except Unavailable:
            log.warning("room policy not applied yet: Google is unavailable", extra={"meeting_id": meeting.id})
        except NotFound:
            log.info("room policy not applied yet: the Meet space is not found yet", extra={"meeting_id": meeting.id})
        except UpstreamFailed as refused:
            # The detail says which call and status; it never names a person.
            log.warning("room policy refused by Google: %s", refused.detail, extra={"meeting_id": meeting.id})
            state = rooms.FAILED
    fields: dict = {"room_state": state}
    if state == rooms.PENDING:
        soon = now + rooms.RECHECK
        fields["next_check_at"] = min(meeting.next_check_at, soon) if meeting.next_check_at else soon
    return fields


def _apply(meeting: Meeting, policy, *, meet, space: MeetSpace | None) -> str:
    assert meeting.meeting_code is not None
    found = space or meet.space(meeting, meeting.meeting_code)
    if found is None:
        raise NotFound("The meeting's Meet space is not found.")
    differing = rooms.drift(policy, found)
    if not differing:
        return rooms.APPLIED
    after = meet.apply_policy(meeting, found, policy, differing)
    if rooms.drift(policy, after):
        log.warning("room policy not taken by Google", extra={"meeting_id": meeting.id,
                                                              "fields": list(rooms.drift(policy, after))})
        return rooms.FAILED
    log.info("room policy applied", extra={"meeting_id": meeting.id, "fields": list(differing)})
    return rooms.APPLIED
