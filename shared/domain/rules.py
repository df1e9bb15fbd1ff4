"""Pure decisions about a meeting: what a request asks for, what Google's answers mean, when to look again.

Nothing here does I/O; the use cases read, call these, then write through the transition point.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from shared.domain import schedule
from shared.domain.emails import domain_key, mailbox
from shared.domain.errors import InvalidInput
from shared.domain.lifecycle import can_move
from shared.domain.meeting import CalendarEvent, ConferenceRecord, Meeting, Participant, Status

MAX_DURATION = timedelta(hours=24)
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST_AHEAD = timedelta(days=5 * 365 + 1)  # five years, a leap day included


def resolve_time(value: datetime, zone: ZoneInfo) -> datetime:
    """A datetime without an offset is wall-clock time in the meeting's zone."""
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def check_bounds(value: datetime, field: str, *, now: datetime) -> datetime:
    """A scheduled time (offset-aware) from 2000-01-01 to five years from now, as an instant in UTC."""
    try:
        instant = value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise InvalidInput.field(field, "is out of range") from None
    if instant < EARLIEST:
        raise InvalidInput.field(field, "must not be before 2000-01-01T00:00:00Z")
    if instant > now + LATEST_AHEAD:
        raise InvalidInput.field(field, "must be at most five years from now")
    return instant


def check_times(start: datetime, end: datetime, field: str = "scheduled_end", *,
                now: datetime | None = None) -> tuple[datetime, datetime]:
    """Start before end (as instants: wall clocks lie around DST changes), at most 24 h apart; with `now`, each
    within the bounds. Returns both as UTC instants."""
    if now is not None:
        start, end = check_bounds(start, "scheduled_start", now=now), check_bounds(end, "scheduled_end", now=now)
    else:
        start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    if end <= start:
        raise InvalidInput.field(field, "must be after scheduled_start")
    if end - start > MAX_DURATION:
        raise InvalidInput.field(field, "a meeting lasts at most 24 hours")
    return start, end


def merge_invitees(organizer: str, invited: list[str], field: str = "invited_emails") -> list[str]:
    """Invitees de-duplicated as mailboxes (case, IDNA domains; first spelling kept), the organizer dropped."""
    return [p.email for p in merge_people(organizer, [Participant(e, "guest") for e in invited], field)
            if p.email]


def merge_people(organizer: str, invited: list[Participant], field: str = "invited_emails") -> list[Participant]:
    """Invitees (with any given display name) de-duplicated as mailboxes, first spelling kept, organizer dropped."""
    seen = {mailbox(organizer)}
    merged = []
    for person in invited:
        key = mailbox(person.email)
        if key not in seen:
            seen.add(key)
            merged.append(person)
    if not merged:
        raise InvalidInput.field(field, "must name at least one invitee besides the organizer")
    return merged


def given_invitees(given: dict[str, Any]) -> tuple[str, list[Participant]] | None:
    """The invitees a request gives, as (field, people): `invited_emails` or its richer form `invitees`, never both."""
    emails, rich = given.get("invited_emails"), given.get("invitees")
    if emails is not None and rich is not None:
        raise InvalidInput.field("invitees", "give either invited_emails or invitees, not both")
    if rich is not None:
        return "invitees", [Participant(i["email"], "guest", invited_name=i.get("display_name")) for i in rich]
    if emails is not None:
        return "invited_emails", [Participant(e, "guest") for e in emails]
    return None


def in_workspace(email: str, workspace_domain: str | None) -> bool:
    """Whether an address is of the clinic's Workspace domain: a user the product can act as."""
    return bool(workspace_domain) and domain_key(email.rpartition("@")[2]) == domain_key(workspace_domain or "")


def calendar_owner_for(organizer: str, *, workspace_domain: str | None, default_owner: str | None) -> str | None:
    """Whose calendar holds the event: the organizer inside the Workspace domain, else the configured owner."""
    return organizer if in_workspace(organizer, workspace_domain) else default_owner


# --- PATCH -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UpdatePlan:
    """What a PATCH changes: the columns to write, the parts of the Calendar event to patch, the new invitees."""

    changes: dict[str, Any] = field(default_factory=dict)
    event_parts: frozenset[str] = frozenset()  # times | title | description | attendees
    invitees: list[Participant] | None = None

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
    if "scheduled_start" in given or "scheduled_end" in given:
        start, end = check_times(start, end, now=now)
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
    asked = given_invitees(given)
    if asked is not None:
        field_name, people = asked
        merged = merge_people(meeting.organizer_email, people, field_name)
        current = [p for p in meeting.participants if p.role == "guest"]
        if field_name == "invited_emails":
            # The plain form says nothing of names: the names already given stay.
            names = {mailbox(p.email): p.invited_name for p in current}
            merged = [p if p.invited_name else Participant(p.email, "guest", invited_name=names.get(mailbox(p.email)))
                      for p in merged]
        if [(mailbox(p.email), p.invited_name) for p in merged] != [(mailbox(p.email), p.invited_name)
                                                                    for p in current]:
            invitees = merged
            parts.add("attendees")
    return UpdatePlan(changes=changes, event_parts=frozenset(parts), invitees=invitees)


# --- status reconciliation ---------------------------------------------------------------------------------

# A Meet room is reused: only conferences near the slot are this appointment (a test call the day before is not).
WINDOW_LEAD = timedelta(minutes=60)

Window = tuple[datetime, datetime]


def conference_window(meeting: Meeting, *, grace: timedelta, start: datetime | None = None,
                      end: datetime | None = None) -> Window:
    """From an hour before the slot to the grace period after it: the conferences that count."""
    return (start or meeting.scheduled_start) - WINDOW_LEAD, (end or meeting.scheduled_end) + grace


def overlaps(record: ConferenceRecord, window: Window) -> bool:
    """Whether a conference (live when it has no end) overlaps the window."""
    began = record.start or window[0]
    return began < window[1] and (record.end is None or record.end > window[0])


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
    window = conference_window(meeting, grace=grace, start=start, end=end)
    # Only conferences near the slot count: a test call the day before neither starts nor finishes it.
    live = live and window[0] <= now <= window[1]
    ended = [r.end for r in records if r.end is not None and overlaps(r, window)]
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
