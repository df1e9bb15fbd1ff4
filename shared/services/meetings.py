"""Meeting use cases: create (exactly once), read and list. Plain functions; adapters come in as parameters."""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from shared.adapters.postgres import repository as repo
from shared.domain import schedule
from shared.services.auth import Principal
from shared.domain.errors import Conflict, InvalidInput, NotFound, UpstreamFailed
from shared.domain.lifecycle import FINAL, LIVE, ensure_move
from shared.web.models import (
    MeetingCreate,
    MeetingUpdate,
    MeetingListQuery,
    MeetingOut,
    MeetingPage,
    ParticipantList,
    ParticipantOut,
    RecordingList,
    RecordingOut,
    Status,
    TranscriptOut,
)
from shared.settings import Settings

if TYPE_CHECKING:  # pg8000 loads with the first query, not with the module
    from shared.adapters.postgres.db import Database

log = logging.getLogger(__name__)

MAX_DURATION = timedelta(hours=24)
Clock = Callable[[], datetime]


class CalendarPort(Protocol):
    """What the meeting use cases need of Google Calendar (shared.adapters.google.Calendar, or a fake in tests)."""

    def insert_event(self, owner: str | None, event: dict[str, Any]) -> dict[str, Any]: ...
    def get_event(self, owner: str | None, event_id: str) -> dict[str, Any] | None: ...
    def patch_event(self, owner: str | None, event_id: str, patch: dict[str, Any]) -> dict[str, Any]: ...
    def delete_event(self, owner: str | None, event_id: str) -> bool: ...


@dataclass(frozen=True)
class NewMeeting:
    """A create request after the domain rules: resolved times, merged invitees, defaults applied."""

    organizer_email: str
    invited_emails: list[str]
    scheduled_start: datetime
    scheduled_end: datetime
    title: str
    description: str | None
    time_zone: str
    external_reference: str | None
    fingerprint: str


def _resolve(value: datetime, zone: ZoneInfo) -> datetime:
    # A datetime without an offset is wall-clock time in the meeting's zone.
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


def normalize(data: MeetingCreate, *, settings: Settings, now: datetime) -> NewMeeting:
    """Apply the contract's rules to a create request; InvalidInput names the field at fault."""
    zone_name = data.time_zone or settings.default_time_zone
    zone = ZoneInfo(zone_name)
    if (data.scheduled_start is None) != (data.scheduled_end is None):
        missing = "scheduled_end" if data.scheduled_end is None else "scheduled_start"
        raise InvalidInput.field(missing, "give both scheduled_start and scheduled_end, or neither")
    if data.scheduled_start is None:
        start = now.replace(microsecond=0)
        end = start + timedelta(minutes=settings.default_duration_minutes)
        given = None
    else:
        start, end = _resolve(data.scheduled_start, zone), _resolve(data.scheduled_end, zone)
        check_times(start, end)
        given = [start.astimezone(timezone.utc).isoformat(), end.astimezone(timezone.utc).isoformat()]
    invitees = merge_invitees(data.organizer_email, data.invited_emails)
    title = data.title if data.title and data.title.strip() else settings.default_title
    # The fingerprint says whether a replay with the same reference is "the same body".
    canonical = {
        "organizer": data.organizer_email.lower(),
        "invitees": sorted(e.lower() for e in invitees),
        "times": given,
        "title": title,
        "description": data.description,
        "time_zone": zone_name,
    }
    fingerprint = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
    return NewMeeting(
        organizer_email=data.organizer_email, invited_emails=invitees, scheduled_start=start, scheduled_end=end,
        title=title, description=data.description, time_zone=zone_name,
        external_reference=data.external_reference, fingerprint=fingerprint,
    )


def calendar_owner_for(organizer: str, settings: Settings) -> str | None:
    """Whose calendar holds the event: the organizer inside the Workspace domain, else the configured owner."""
    domain = organizer.rsplit("@", 1)[-1].lower()
    if settings.workspace_domain and domain == settings.workspace_domain.lower():
        return organizer
    return settings.default_calendar_owner


def event_id_for(meeting_id: str, attempt: int) -> str:
    """The Calendar event id, derived from the meeting (base32hex), so a retried insert collides instead of duplicating."""
    encoded = base64.b32hexencode(uuid.UUID(meeting_id).bytes).decode().rstrip("=").lower()
    return encoded if attempt <= 1 else f"{encoded}{attempt}"


def event_body(meeting: dict[str, Any], participants: list[dict[str, Any]]) -> dict[str, Any]:
    """The Calendar event for a meeting row: a Meet conference request, organizer and invitees as attendees."""
    zone = ZoneInfo(meeting["time_zone"])
    event_id = event_id_for(meeting["id"], meeting["create_attempt"])
    return {
        "id": event_id,
        "summary": meeting["title"],
        "description": meeting["description"] or "",
        "start": {"dateTime": meeting["scheduled_start"].astimezone(zone).isoformat(), "timeZone": meeting["time_zone"]},
        "end": {"dateTime": meeting["scheduled_end"].astimezone(zone).isoformat(), "timeZone": meeting["time_zone"]},
        "attendees": [
            {"email": p["email"], **({"organizer": True} if p["role"] == "organizer" else {})}
            for p in participants if p["role"] in ("organizer", "guest")
        ],
        "guestsCanInviteOthers": False,
        "conferenceData": {
            "createRequest": {"requestId": event_id, "conferenceSolutionKey": {"type": "hangoutsMeet"}}
        },
        "extendedProperties": {"private": {"meetingId": meeting["id"]}},
    }


def _participants_of(new: NewMeeting) -> list[dict[str, str]]:
    return [{"email": new.organizer_email, "role": "organizer"}] + [
        {"email": e, "role": "guest"} for e in new.invited_emails
    ]


def create_meeting(data: MeetingCreate, *, principal: Principal, db: Database, calendar: CalendarPort, tasks,
                   settings: Settings, clock: Clock) -> tuple[MeetingOut, bool]:
    """Create the meeting once per (client, external_reference): row first, then the event.

    Returns (meeting, created): created is True for the one request that made the Calendar event.
    """
    now = clock()
    new = normalize(data, settings=settings, now=now)
    meeting_id = _reserve(new, principal=principal, db=db, settings=settings, now=now)
    created, failure = _complete(meeting_id, db=db, calendar=calendar, settings=settings, now=now)
    if failure:
        raise UpstreamFailed(failure)
    meeting = get_meeting(meeting_id, principal=principal, db=db)
    if created:
        schedule.enqueue_followups(_schedule_of(meeting), tasks=tasks, settings=settings)
    return meeting, created


def _schedule_of(meeting: MeetingOut, version: int | None = None) -> dict[str, Any]:
    return {"id": meeting.id, "scheduled_end": meeting.scheduled_end, "schedule_version": version or 1}


def _reserve(new: NewMeeting, *, principal: Principal, db: Database, settings: Settings, now: datetime) -> str:
    """Write the PENDING row, or find the one this reference already has (re-opened if it FAILED)."""
    row = {
        "id": str(uuid.uuid4()), "client_id": principal.client_id, "external_reference": new.external_reference,
        "request_fingerprint": new.fingerprint, "organizer_email": new.organizer_email, "title": new.title,
        "description": new.description, "time_zone": new.time_zone, "scheduled_start": new.scheduled_start,
        "scheduled_end": new.scheduled_end, "calendar_owner": calendar_owner_for(new.organizer_email, settings),
        "next_check_at": now + schedule.PENDING_RECHECK, "next_sync_at": schedule.first_sync(new.scheduled_end, settings),
    }
    with db.transaction() as cur:
        if repo.insert_meeting(cur, row, _participants_of(new)):
            return row["id"]
        existing = repo.find_by_reference(cur, principal.client_id, new.external_reference, lock=True)
        if existing["request_fingerprint"] != new.fingerprint:
            raise Conflict("This external_reference already names a different meeting.")
        if existing["status"] == Status.FAILED:
            repo.restart_failed(cur, existing["id"])
            repo.update_meeting(cur, existing["id"], next_check_at=row["next_check_at"],
                                next_sync_at=schedule.first_sync(existing["scheduled_end"], settings))
        return existing["id"]


def _complete(meeting_id: str, *, db: Database, calendar: CalendarPort, settings: Settings,
              now: datetime) -> tuple[bool, str | None]:
    """Give a PENDING meeting its event and Meet link under the row lock; (made it now, failure if any)."""
    with db.transaction() as cur:
        meeting = repo.get_meeting(cur, meeting_id, lock=True)
        status = Status(meeting["status"])
        if status == Status.PENDING:
            participants = repo.details_for(cur, [meeting_id])[meeting_id]["participants"]
            failure = finish_creation(cur, meeting, participants, calendar=calendar, settings=settings, now=now)
            return failure is None, failure
        if status in (Status.CREATED, Status.SCHEDULED) and meeting["conference_status"] == "pending":
            event = calendar.get_event(meeting["calendar_owner"], meeting["google_event_id"])
            if event is not None:
                store_conference(cur, meeting, event)
    return False, None


def finish_creation(cur, meeting: dict[str, Any], participants: list[dict[str, Any]], *, calendar: CalendarPort,
                    settings: Settings, now: datetime) -> str | None:
    """Insert (or find) the event of a locked PENDING row and record the outcome; returns a failure, if any."""
    from shared.adapters.google import conference_of

    body = event_body(meeting, participants)
    event = calendar.insert_event(meeting["calendar_owner"], body)
    conference = conference_of(event)
    deadline = time.monotonic() + settings.conference_wait_seconds
    while conference.status == "pending" and time.monotonic() < deadline:
        time.sleep(settings.conference_poll_interval_seconds)
        event = calendar.get_event(meeting["calendar_owner"], body["id"]) or event
        conference = conference_of(event)
    if conference.status in ("success", "pending"):
        repo.update_meeting(cur, meeting["id"], status=Status.CREATED.value, google_event_id=body["id"],
                            meet_link=conference.link, meeting_code=conference.code,
                            conference_status=conference.status,
                            next_check_at=schedule.next_check(Status.CREATED, meeting["scheduled_start"],
                                                              meeting["scheduled_end"], now))
        log.info("meeting created", extra={"meeting_id": meeting["id"], "status": conference.status})
        return None
    # No Meet conference could be made: remove the event, so the meeting is visibly unusable and retryable.
    calendar.delete_event(meeting["calendar_owner"], body["id"])
    reason = "Google could not create the Meet conference for this event."
    repo.update_meeting(cur, meeting["id"], status=Status.FAILED.value, google_event_id=body["id"],
                        conference_status=conference.status or "missing", failure_reason=reason,
                        next_check_at=None, next_sync_at=None)
    log.warning("meeting creation failed", extra={"meeting_id": meeting["id"]})
    return reason


def store_conference(cur, meeting: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """Record what Calendar now says of the conference; returns the meeting row as updated."""
    from shared.adapters.google import conference_of

    conference = conference_of(event)
    if conference.status != meeting["conference_status"]:
        repo.update_meeting(cur, meeting["id"], meet_link=conference.link, meeting_code=conference.code,
                            conference_status=conference.status)
    return dict(meeting, meet_link=conference.link, meeting_code=conference.code,
                conference_status=conference.status)


def _event_time(value: datetime, zone_name: str) -> dict[str, str]:
    return {"dateTime": value.astimezone(ZoneInfo(zone_name)).isoformat(), "timeZone": zone_name}


def update_meeting(meeting_id: str, patch: MeetingUpdate, *, principal: Principal, db: Database,
                   calendar: CalendarPort, tasks, settings: Settings, clock: Clock) -> MeetingOut:
    """Reschedule, retitle or change invitees: the Calendar event is patched (invitees notified), the link kept."""
    given = patch.model_fields_set
    for name in ("scheduled_start", "scheduled_end", "invited_emails"):
        if name in given and getattr(patch, name) is None:
            raise InvalidInput.field(name, "cannot be null")
    meeting_id = valid_id(meeting_id)
    now = clock()
    moved = None
    with db.transaction() as cur:
        row = repo.get_meeting(cur, meeting_id, client_id=_scope(principal), lock=True)
        if row is None:
            raise NotFound("No meeting has this id.")
        status = Status(row["status"])
        if status in FINAL:
            raise Conflict(f"A {status.value} meeting cannot be changed.")
        if status not in LIVE:
            raise Conflict(f"The meeting is {status.value}: its Calendar event is not ready to change.")
        zone = ZoneInfo(row["time_zone"])
        start, end = row["scheduled_start"], row["scheduled_end"]
        if "scheduled_start" in given:
            new_start = _resolve(patch.scheduled_start, zone)
            end = _resolve(patch.scheduled_end, zone) if "scheduled_end" in given else new_start + (end - start)
            start = new_start
        elif "scheduled_end" in given:
            end = _resolve(patch.scheduled_end, zone)
        check_times(start, end)
        changes: dict[str, Any] = {}
        event_patch: dict[str, Any] = {}
        if (start, end) != (row["scheduled_start"], row["scheduled_end"]):
            changes.update(scheduled_start=start, scheduled_end=end, schedule_version=row["schedule_version"] + 1,
                           next_check_at=schedule.next_check(status, start, end, now),
                           next_sync_at=schedule.first_sync(end, settings), sync_attempts=0)
            event_patch.update(start=_event_time(start, row["time_zone"]), end=_event_time(end, row["time_zone"]))
        if "title" in given:
            title = patch.title if patch.title and patch.title.strip() else settings.default_title
            if title != row["title"]:
                changes["title"] = event_patch["summary"] = title
        if "description" in given and patch.description != row["description"]:
            changes["description"] = patch.description
            event_patch["description"] = patch.description or ""
        participants = repo.details_for(cur, [meeting_id])[meeting_id]["participants"]
        invitees = None
        if "invited_emails" in given:
            invitees = merge_invitees(row["organizer_email"], patch.invited_emails)
            current = [p["email"] for p in participants if p["role"] == "guest"]
            if [e.lower() for e in invitees] != [e.lower() for e in current]:
                event_patch["attendees"] = [{"email": row["organizer_email"], "organizer": True}] + [
                    {"email": e} for e in invitees]
            else:
                invitees = None
        if not event_patch:
            return _to_out(row, repo.details_for(cur, [meeting_id])[meeting_id])
        calendar.patch_event(row["calendar_owner"], row["google_event_id"], event_patch)
        repo.update_meeting(cur, meeting_id, **changes)
        if invitees is not None:
            repo.replace_invitees(cur, meeting_id, [{"email": row["organizer_email"], "role": "organizer"}] + [
                {"email": e, "role": "guest"} for e in invitees])
        if "schedule_version" in changes:
            moved = {"id": meeting_id, "scheduled_end": end, "schedule_version": changes["schedule_version"]}
    if moved:
        schedule.enqueue_followups(moved, tasks=tasks, settings=settings)
    log.info("meeting updated", extra={"meeting_id": meeting_id})
    return get_meeting(meeting_id, principal=principal, db=db)


def cancel_meeting(meeting_id: str, *, principal: Principal, db: Database, calendar: CalendarPort,
                   clock: Clock) -> MeetingOut:
    """Cancel the Calendar event (invitees notified) and the meeting; cancelling again answers the same."""
    meeting_id = valid_id(meeting_id)
    with db.transaction() as cur:
        row = repo.get_meeting(cur, meeting_id, client_id=_scope(principal), lock=True)
        if row is None:
            raise NotFound("No meeting has this id.")
        status = Status(row["status"])
        if status != Status.CANCELLED:
            ensure_move(status, Status.CANCELLED)
            if status != Status.FAILED:
                # A PENDING row may or may not have its event yet: its id is known either way.
                event_id = row["google_event_id"] or event_id_for(meeting_id, row["create_attempt"])
                calendar.delete_event(row["calendar_owner"], event_id)  # already gone (404/410) is fine
            repo.update_meeting(cur, meeting_id, status=Status.CANCELLED.value, cancelled_at=clock(),
                                next_check_at=None, next_sync_at=None)
            log.info("meeting cancelled", extra={"meeting_id": meeting_id})
    return get_meeting(meeting_id, principal=principal, db=db)


def _to_out(row: dict[str, Any], details: dict[str, list[dict[str, Any]]]) -> MeetingOut:
    participants = [ParticipantOut(**p) for p in details["participants"]]
    return MeetingOut(
        id=row["id"], external_reference=row["external_reference"], google_event_id=row["google_event_id"],
        meet_link=row["meet_link"], meeting_code=row["meeting_code"], organizer_email=row["organizer_email"],
        invited_emails=[p.email for p in participants if p.role == "guest"],
        title=row["title"], description=row["description"], time_zone=row["time_zone"],
        scheduled_start=row["scheduled_start"], scheduled_end=row["scheduled_end"], status=row["status"],
        participants_count=sum(1 for p in participants if p.role != "other"), participants=participants,
        recordings=[RecordingOut(**r) for r in details["recordings"]],
        transcripts=[TranscriptOut(**t) for t in details["transcripts"]],
        created_at=row["created_at"], updated_at=row["updated_at"], cancelled_at=row["cancelled_at"],
    )


def valid_id(meeting_id: str) -> str:
    try:
        return str(uuid.UUID(meeting_id))
    except ValueError:
        raise NotFound("No meeting has this id.") from None


def _scope(principal: Principal) -> str | None:
    return None if principal.is_admin else principal.client_id


def get_meeting(meeting_id: str, *, principal: Principal, db: Database) -> MeetingOut:
    """One meeting the principal may see; NotFound otherwise (another client's meeting included)."""
    meeting_id = valid_id(meeting_id)
    with db.transaction() as cur:
        row = repo.get_meeting(cur, meeting_id, client_id=_scope(principal))
        if row is None:
            raise NotFound("No meeting has this id.")
        return _to_out(row, repo.details_for(cur, [meeting_id])[meeting_id])


def encode_page_token(row: dict[str, Any]) -> str:
    raw = json.dumps({"c": row["created_at"].isoformat(), "i": row["id"]}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[datetime, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        created = datetime.fromisoformat(data["c"])
        if created.tzinfo is None:
            raise ValueError("naive")
        return created, str(uuid.UUID(data["i"]))
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, AttributeError):
        raise InvalidInput.field("page_token", "is not a token this API issued") from None


def list_meetings(query: MeetingListQuery, *, principal: Principal, db: Database, settings: Settings) -> MeetingPage:
    """A page of meetings newest first; `next_page_token` continues it."""
    zone = ZoneInfo(settings.default_time_zone)
    after = decode_page_token(query.page_token) if query.page_token else None
    with db.transaction() as cur:
        rows = repo.list_meetings(
            cur, client_id=_scope(principal), status=query.status.value if query.status else None,
            organizer_email=query.organizer_email, external_reference=query.external_reference,
            scheduled_from=_resolve(query.scheduled_from, zone) if query.scheduled_from else None,
            scheduled_to=_resolve(query.scheduled_to, zone) if query.scheduled_to else None,
            after=after, limit=query.page_size + 1,
        )
        page, more = rows[: query.page_size], len(rows) > query.page_size
        details = repo.details_for(cur, [r["id"] for r in page])
    return MeetingPage(items=[_to_out(r, details[r["id"]]) for r in page],
                       next_page_token=encode_page_token(page[-1]) if more else None)


def list_participants(meeting_id: str, *, principal: Principal, db: Database) -> ParticipantList:
    return ParticipantList(items=get_meeting(meeting_id, principal=principal, db=db).participants)


def list_recordings(meeting_id: str, *, principal: Principal, db: Database) -> RecordingList:
    return RecordingList(items=get_meeting(meeting_id, principal=principal, db=db).recordings)
