"""Pure decisions about a meeting: what a request asks for, what Google's answers mean, when to look again.

Nothing here does I/O; the use cases read, call these, then write through the transition point.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.domain import schedule
from shared.domain.errors import InvalidInput
from shared.domain.lifecycle import can_move
from shared.domain.meeting import CalendarEvent, ConferenceRecord, Meeting, Status

MAX_DURATION = timedelta(hours=24)


def resolve_time(value: datetime, zone: ZoneInfo) -> datetime:
    """A datetime without an offset is wall-clock time in the meeting's zone."""
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def check_times(start: datetime, end: datetime, field: str = "scheduled_end") -> None:
    """Start before end, at most 24 h apart."""
    if end <= start:
        raise InvalidInput.field(field, "must be after scheduled_start")
    if end - start > MAX_DURATION:
        raise InvalidInput.field(field, "a meeting lasts at most 24 hours")


def merge_invitees(organizer: str, invited: list[str], field: str = "invited_emails") -> list[str]:
    """Invitees de-duplicated case-insensitively (first spelling kept), the organizer dropped."""
    seen = {organizer.lower()}
    merged = []
    for email in invited:
        if email.lower() not in seen:
            seen.add(email.lower())
            merged.append(email)
    if not merged:
        raise InvalidInput.field(field, "must name at least one invitee besides the organizer")
    return merged


def calendar_owner_for(organizer: str, *, workspace_domain: str | None, default_owner: str | None) -> str | None:
    """Whose calendar holds the event: the organizer inside the Workspace domain, else the configured owner."""
    domain = organizer.rsplit("@", 1)[-1].lower()
    if workspace_domain and domain == workspace_domain.lower():
        return organizer
    return default_owner


# --- PATCH -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UpdatePlan:
    """What a PATCH changes: the columns to write, the parts of the Calendar event to patch, the new invitees."""

    changes: dict[str, Any] = field(default_factory=dict)
    event_parts: frozenset[str] = frozenset()  # times | title | description | attendees
    invitees: list[str] | None = None

    @property
    def rescheduled(self) -> bool:
        return "schedule_version" in self.changes


def plan_update(meeting: Meeting, given: dict[str, Any], *, default_title: str, now: datetime,
                sync_delay: timedelta) -> UpdatePlan:
    """The diff between a live meeting and the fields a PATCH gives (absent fields are not in `given`)."""
    zone = ZoneInfo(meeting.time_zone)
    start, end = meeting.scheduled_start, meeting.scheduled_end
    if "scheduled_start" in given:
        new_start = resolve_time(given["scheduled_start"], zone)
        end = resolve_time(given["scheduled_end"], zone) if "scheduled_end" in given else new_start + (end - start)
        start = new_start
    elif "scheduled_end" in given:
        end = resolve_time(given["scheduled_end"], zone)
    check_times(start, end)
    changes: dict[str, Any] = {}
    parts: set[str] = set()
    if (start, end) != (meeting.scheduled_start, meeting.scheduled_end):
        changes.update(scheduled_start=start, scheduled_end=end, schedule_version=meeting.schedule_version + 1,
                       next_check_at=schedule.next_check(meeting.status, start, end, now),
                       next_sync_at=end + sync_delay, sync_attempts=0)
        parts.add("times")
    if "title" in given:
        title = given["title"] if given["title"] and given["title"].strip() else default_title
        if title != meeting.title:
            changes["title"] = title
            parts.add("title")
    if "description" in given and given["description"] != meeting.description:
        changes["description"] = given["description"]
        parts.add("description")
    invitees = None
    if "invited_emails" in given:
        merged = merge_invitees(meeting.organizer_email, given["invited_emails"])
        if [e.lower() for e in merged] != [e.lower() for e in meeting.invited_emails]:
            invitees = merged
            parts.add("attendees")
    return UpdatePlan(changes=changes, event_parts=frozenset(parts), invitees=invitees)


# --- status reconciliation ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reconciliation:
    """The status a live meeting should have after looking at Google, and the columns to write with it."""

    target: Status
    changes: dict[str, Any]

    @property
    def rescheduled(self) -> bool:
        return "schedule_version" in self.changes


def moved_times(meeting: Meeting, event: CalendarEvent) -> tuple[datetime, datetime] | None:
    """The event's times when someone moved it in Google Calendar, else None."""
    if event.start is None or event.end is None:
        return None
    if (event.start, event.end) == (meeting.scheduled_start, meeting.scheduled_end):
        return None
    return event.start, event.end


def reconcile(meeting: Meeting, event: CalendarEvent | None, *, live: bool, records: list[ConferenceRecord],
              now: datetime, grace: timedelta, sync_delay: timedelta) -> Reconciliation:
    """What a Calendar event and the Meet records mean for a CREATED, SCHEDULED or IN_PROGRESS meeting.

    `live` is whether Meet reports an active conference; `records` the conference records of the room.
    """
    status = meeting.status
    changes: dict[str, Any] = {"last_checked_at": now}
    if event is None or event.cancelled:
        changes.update(cancelled_at=now, next_check_at=None, next_sync_at=None)
        return Reconciliation(Status.CANCELLED, changes)
    start, end = meeting.scheduled_start, meeting.scheduled_end
    times = moved_times(meeting, event)
    if times is not None:
        start, end = times
        changes.update(scheduled_start=start, scheduled_end=end, schedule_version=meeting.schedule_version + 1,
                       next_sync_at=end + sync_delay, sync_attempts=0)
    code = meeting.meeting_code
    if meeting.conference_status == "pending" and event.conference.status != "pending":
        conference = event.conference
        code = conference.code
        changes.update(meet_link=conference.link, meeting_code=conference.code, conference_status=conference.status)
    ended = [r.end for r in records if r.end is not None]
    # A conference that ended before the slot (a test call the day before) does not finish the appointment.
    ended_at = max(ended) if ended and now >= start and not live else None
    target = status
    if live:
        target = Status.IN_PROGRESS
    elif ended_at is not None or now > end + grace:
        target = Status.FINISHED
        changes["finished_at"] = ended_at or now
    elif status == Status.CREATED and code:
        target = Status.SCHEDULED
    if target == status or not can_move(status, target):
        target = status
        changes.pop("finished_at", None)
    changes["next_check_at"] = schedule.next_check(target, start, end, now)
    return Reconciliation(target, changes)


# --- recording sync ----------------------------------------------------------------------------------------

def next_sync(*, attempt: int, now: datetime, end: datetime, complete: bool, give_up_after: timedelta,
              base_minutes: float, max_minutes: float) -> tuple[datetime | None, int]:
    """(when to sync again or None to stop, the attempt count to store): backoff doubling up to a cap."""
    if complete or now >= end + give_up_after:
        return None, attempt
    delay = min(base_minutes * 2 ** attempt, max_minutes)
    return now + timedelta(minutes=delay), attempt + 1
