"""Meeting use cases: create (exactly once), reschedule, cancel, read and list. Adapters come in as parameters."""
from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from shared.adapters.postgres import repository as repo
from shared.domain import rooms, rules, schedule
from shared.domain.errors import Conflict, InvalidInput, NotFound, UpstreamFailed
from shared.domain.lifecycle import FINAL, LIVE, ensure_move
from shared.domain.meeting import CalendarEvent, Meeting, Participant, RoomPolicy, Status, event_id_for
from shared.domain.principal import Principal
from shared.domain.rules import check_times, merge_invitees  # noqa: F401  (the rules of a request, used here)
from shared.services import availability, followups, page_tokens
from shared.services import rooms as room_service
from shared.services.transitions import change
from shared.settings import Settings
from shared.web.models import (
    MeetingCreate,
    MeetingListQuery,
    MeetingOut,
    MeetingPage,
    MeetingUpdate,
    ParticipantList,
    RecordingList,
)

if TYPE_CHECKING:  # pg8000 loads with the first query, not with the module
    from shared.adapters.postgres.db import Database

__all__ = ["create_meeting", "update_meeting", "cancel_meeting", "get_meeting", "list_meetings", "normalize",
           "event_id_for", "finish_creation"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class CalendarPort(Protocol):
    """What the use cases need of Google Calendar (shared.adapters.google.MeetingCalendar, or a fake in tests)."""

    def insert_event(self, meeting: Meeting) -> CalendarEvent: ...
    def get_event(self, meeting: Meeting) -> CalendarEvent | None: ...
    def patch_event(self, meeting: Meeting, parts: frozenset[str]) -> None: ...
    def delete_event(self, meeting: Meeting) -> bool: ...


@dataclass(frozen=True)
class NewMeeting:
    """A create request after the domain rules: resolved times, merged invitees, defaults applied."""

    organizer_email: str
    invitees: list[Participant]
    scheduled_start: datetime
    scheduled_end: datetime
    title: str
    description: str | None
    time_zone: str
    external_reference: str | None
    fingerprint: str
    room: RoomPolicy
    reject_conflicts: bool = False

    @property
    def invited_emails(self) -> list[str]:
        return [p.email for p in self.invitees if p.email]


def normalize(data: MeetingCreate, *, settings: Settings, now: datetime) -> NewMeeting:
    """Apply the contract's rules to a create request; InvalidInput names the field at fault."""
    zone_name = data.time_zone or settings.default_time_zone
    zone = ZoneInfo(zone_name)
    if (data.scheduled_start is None) != (data.scheduled_end is None):
        missing = "scheduled_end" if data.scheduled_end is None else "scheduled_start"
        raise InvalidInput.field(missing, "give both scheduled_start and scheduled_end, or neither")
    if data.scheduled_start is None or data.scheduled_end is None:
        start = now.replace(microsecond=0)
        end = start + timedelta(minutes=settings.default_duration_minutes)
        given = None
    else:
        start, end = rules.resolve_time(data.scheduled_start, zone), rules.resolve_time(data.scheduled_end, zone)
        start, end = check_times(start, end, now=now)
        given = [start.isoformat(), end.isoformat()]
    asked = rules.given_invitees({"invited_emails": data.invited_emails, "invitees": data.invitees and [
        i.model_dump() for i in data.invitees]})
    if asked is None:
        raise InvalidInput.field("invited_emails", "is required (or give invitees with their display names)")
    invitees = rules.merge_people(data.organizer_email, asked[1], asked[0])
    title = data.title if data.title and data.title.strip() else settings.default_title
    # The fingerprint says whether a replay with the same reference is "the same body".
    canonical: dict[str, Any] = {
        "organizer": data.organizer_email.lower(),
        "invitees": sorted(p.email.lower() for p in invitees if p.email),
        "times": given,
        "title": title,
        "description": data.description,
        "time_zone": zone_name,
    }
    names = {p.email.lower(): p.invited_name for p in invitees if p.email and p.invited_name}
    if names:
        canonical["names"] = names
    if "room" in data.model_fields_set and data.room is None:
        raise InvalidInput.field("room", "cannot be null")
    asked_room = data.room.model_dump(exclude_unset=True) if data.room is not None else {}
    room = rooms.resolve(asked_room, rooms.default_policy(settings.default_room_access))
    if asked_room:
        # What was asked, not what the defaults made of it: a replay stays "the same body" across a settings change.
        canonical["room"] = asked_room
    fingerprint = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
    return NewMeeting(
        organizer_email=data.organizer_email, invitees=invitees, scheduled_start=start, scheduled_end=end,
        title=title, description=data.description, time_zone=zone_name,
        external_reference=data.external_reference, fingerprint=fingerprint, room=room,
        reject_conflicts=data.reject_conflicts,
    )


def calendar_owner_for(organizer: str, settings: Settings) -> str | None:
    return rules.calendar_owner_for(organizer, workspace_domain=settings.workspace_domain,
                                    default_owner=settings.default_calendar_owner)


# --- create --------------------------------------------------------------------------------------------------

def create_meeting(data: MeetingCreate, *, principal: Principal, db: Database, calendar: CalendarPort, tasks,
                   settings: Settings, clock: Clock, meet=None) -> tuple[MeetingOut, bool]:
    """Create the meeting once per (client, external_reference): row first, then the event, then its room policy.

    Returns (meeting, created): created is True for the one request that made the Calendar event. `meet` is the
    Meet port that applies the room policy (without it the policy stays PENDING for the status check). The answer
    is built from the row as this request last wrote or locked it, not read back.
    """
    now = clock()
    new = normalize(data, settings=settings, now=now)
    meeting_id = _reserve(new, principal=principal, db=db, settings=settings, now=now, calendar=calendar)
    meeting, created = _complete(meeting_id, db=db, calendar=calendar, settings=settings, now=now, meet=meet)
    if created and meeting.status == Status.FAILED:
        raise UpstreamFailed(meeting.failure_reason or "Google could not create the meeting.")
    if created:
        followups.enqueue_followups(meeting, tasks=tasks, settings=settings)
    return _out(meeting), created


def _reserve(new: NewMeeting, *, principal: Principal, db: Database, settings: Settings, now: datetime,
             calendar: CalendarPort) -> str:
    """Write the PENDING row, or find the one this reference already has (re-opened if it FAILED).

    With `reject_conflicts`, a new slot is claimed first, in the same transaction (availability.claim_slot)."""
    people = (Participant(email=new.organizer_email, role="organizer"), *new.invitees)
    meeting = Meeting(
        id=str(uuid.uuid4()), client_id=principal.client_id, status=Status.PENDING,
        external_reference=new.external_reference, request_fingerprint=new.fingerprint,
        organizer_email=new.organizer_email, title=new.title, description=new.description,
        time_zone=new.time_zone, scheduled_start=new.scheduled_start, scheduled_end=new.scheduled_end,
        calendar_owner=calendar_owner_for(new.organizer_email, settings),
        next_check_at=now + schedule.PENDING_RECHECK, next_sync_at=schedule.first_sync(new.scheduled_end, settings),
        participants=people, **rooms.columns(new.room, rooms.PENDING))
    if new.reject_conflicts:
        # The slot is claimed and the row written in one transaction: claim_slot serializes them per organizer.
        with db.transaction() as cur:
            if not _made_before(cur, principal, new):
                availability.claim_slot(cur, organizer=new.organizer_email, calendar_owner=meeting.calendar_owner,
                                        start=new.scheduled_start, end=new.scheduled_end, calendar=calendar)
            if repo.insert_meeting(cur, meeting) is not None:
                return meeting.id
            assert new.external_reference is not None  # only a reference can collide
            existing = repo.find_by_reference(cur, principal.client_id, new.external_reference, lock=True)
            _same_request(existing, new)
            assert existing is not None
            if existing.status == Status.FAILED:
                _try_again(cur, existing, settings=settings, now=now)
            return existing.id
    # The row and its people are one statement, committed on its own: a crash after it leaves a PENDING row
    # that the status check finishes or fails.
    with db.autocommit() as cur:
        if repo.insert_meeting(cur, meeting) is not None:
            return meeting.id
        assert new.external_reference is not None  # only a reference can collide
        # The colliding row is committed (the insert waited for it); its fingerprint never changes.
        existing = repo.find_by_reference(cur, principal.client_id, new.external_reference)
    _same_request(existing, new)
    assert existing is not None
    if existing.status == Status.FAILED:
        with db.transaction() as cur:
            failed = repo.get_meeting(cur, existing.id, lock=True)
            if failed is not None and failed.status == Status.FAILED:
                _try_again(cur, failed, settings=settings, now=now)
    return existing.id


def _same_request(existing: Meeting | None, new: NewMeeting) -> None:
    """A reference already taken: the same body again is a replay; anything else a Conflict."""
    if existing is None:  # pragma: no cover - meetings are never deleted
        raise Conflict("This external_reference is being created right now; retry shortly.")
    if existing.request_fingerprint != new.fingerprint:
        raise Conflict("This external_reference already names a different meeting.")


def _try_again(cur, failed: Meeting, *, settings: Settings, now: datetime) -> None:
    """A FAILED creation tried again (its row locked): a new attempt, hence a new Calendar event id."""
    change(cur, failed, to=Status.PENDING, create_attempt=failed.create_attempt + 1,
           google_event_id=None, meet_link=None, meeting_code=None, conference_status=None,
           failure_reason=None, next_check_at=now + schedule.PENDING_RECHECK,
           next_sync_at=schedule.first_sync(failed.scheduled_end, settings))


def _made_before(cur, principal: Principal, new: NewMeeting) -> bool:
    """Whether this reference already names a meeting that holds its slot: a replay claims nothing again."""
    if new.external_reference is None:
        return False
    existing = repo.find_by_reference(cur, principal.client_id, new.external_reference)
    return existing is not None and existing.status != Status.FAILED


def _complete(meeting_id: str, *, db: Database, calendar: CalendarPort, settings: Settings,
              now: datetime, meet=None) -> tuple[Meeting, bool]:
    """Give a PENDING meeting its event, Meet link and room policy under the row lock.

    Returns the meeting as it now is, and whether this call made the outcome (False if done before).
    """
    with db.transaction() as cur:
        meeting = repo.get_meeting(cur, meeting_id, lock=True)
        assert meeting is not None  # reserved above; meetings are never deleted
        if meeting.status == Status.PENDING:
            return finish_creation(cur, meeting, calendar=calendar, settings=settings, now=now, meet=meet), True
        if meeting.status in (Status.CREATED, Status.SCHEDULED) and meeting.conference_status == "pending":
            event = calendar.get_event(meeting)
            if event is not None:
                meeting = store_conference(cur, meeting, event)
                if meeting.room_state == rooms.PENDING:
                    meeting = room_service.apply_policy(cur, meeting, meet=meet, now=now)
    return meeting, False


def finish_creation(cur, meeting: Meeting, *, calendar: CalendarPort, settings: Settings, now: datetime,
                    meet=None) -> Meeting:
    """Insert (or find) the event of a locked PENDING meeting and record the outcome: CREATED (with its room policy
    applied through `meet`, or PENDING for the status check) or FAILED.

    Google refusing for good (the calendar owner's identity refused, an id taken by a cancelled event, any other
    4xx) fails the meeting in this transaction, so no retry loop is left behind; the same reference tried again
    starts a new attempt. Google unavailable raises, and the row stays PENDING for a retry or the status check.
    """
    try:
        event = calendar.insert_event(meeting)
        deadline = time.monotonic() + settings.conference_wait_seconds
        while event.conference.status == "pending" and time.monotonic() < deadline:
            time.sleep(settings.conference_poll_interval_seconds)
            event = calendar.get_event(meeting.but(google_event_id=event.id)) or event
    except UpstreamFailed as refused:
        log.warning("meeting creation refused by Google", extra={"meeting_id": meeting.id})
        return change(cur, meeting, to=Status.FAILED, failure_reason=refused.detail, next_check_at=None,
                      next_sync_at=None)
    conference = event.conference
    if conference.status in ("success", "pending"):
        fields = dict(google_event_id=event.id, meet_link=conference.link, meeting_code=conference.code,
                      conference_status=conference.status,
                      next_check_at=schedule.next_check(Status.CREATED, meeting.scheduled_start,
                                                        meeting.scheduled_end, now))
        # The room policy is applied now that the space exists, and its state written with the rest.
        fields.update(room_service.room_fields(meeting.but(status=Status.CREATED, **fields), meet=meet, now=now))
        created = change(cur, meeting, to=Status.CREATED, **fields)
        log.info("meeting created", extra={"meeting_id": meeting.id, "status": conference.status})
        return created
    # No Meet conference could be made: remove the event, so the meeting is visibly unusable and retryable.
    calendar.delete_event(meeting.but(google_event_id=event.id))
    log.warning("meeting creation failed", extra={"meeting_id": meeting.id})
    return change(cur, meeting, to=Status.FAILED, google_event_id=event.id,
                  conference_status=conference.status or "missing",
                  failure_reason="Google could not create the Meet conference for this event.",
                  next_check_at=None, next_sync_at=None)


def store_conference(cur, meeting: Meeting, event: CalendarEvent) -> Meeting:
    """Record what Calendar now says of a pending conference."""
    conference = event.conference
    if conference.status == meeting.conference_status:
        return meeting
    return change(cur, meeting, meet_link=conference.link, meeting_code=conference.code,
                  conference_status=conference.status)


# --- reschedule, edit, cancel --------------------------------------------------------------------------------

def update_meeting(meeting_id: str, patch: MeetingUpdate, *, principal: Principal, db: Database,
                   calendar: CalendarPort, tasks, settings: Settings, clock: Clock, meet=None) -> MeetingOut:
    """Reschedule, retitle, change invitees or the room policy: the Calendar event is patched (invitees notified),
    the link kept, the policy applied again; with `reject_conflicts`, new times are refused if the organizer is busy."""
    given = patch.model_dump(include=patch.model_fields_set)
    for name in ("scheduled_start", "scheduled_end", "invited_emails", "invitees", "room"):
        if name in given and given[name] is None:
            raise InvalidInput.field(name, "cannot be null")
    reject_conflicts = given.pop("reject_conflicts", False)
    given.pop("room", None)
    asked_room = patch.room.model_dump(exclude_unset=True) if patch.room is not None else None
    meeting_id = valid_id(meeting_id)
    now = clock()
    moved = None
    with db.transaction() as cur:
        meeting = _locked(cur, meeting_id, principal)
        if meeting.status in FINAL:
            raise Conflict(f"A {meeting.status.value} meeting cannot be changed.")
        if meeting.status not in LIVE:
            raise Conflict(f"The meeting is {meeting.status.value}: its Calendar event is not ready to change.")
        plan = rules.plan_update(meeting, given, default_title=settings.default_title, now=now,
                                 sync_delay=timedelta(minutes=settings.recording_sync_delay_minutes))
        room = {} if asked_room is None else rooms.plan_room(
            meeting, asked_room, default=rooms.default_policy(settings.default_room_access))
        if not plan.event_parts and not room:
            return _out(meeting)
        if reject_conflicts and plan.rescheduled:
            availability.claim_slot(cur, organizer=meeting.organizer_email, calendar_owner=meeting.calendar_owner,
                                    start=plan.changes["scheduled_start"], end=plan.changes["scheduled_end"],
                                    calendar=calendar, exclude=meeting)
        after = meeting.but(**plan.changes)
        people = None
        if plan.invitees is not None:
            people = [Participant(email=meeting.organizer_email, role="organizer"), *plan.invitees]
            after = after.but(participants=tuple(people))
        if plan.event_parts:
            calendar.patch_event(after, plan.event_parts)
        if people is not None:
            repo.replace_invitees(cur, meeting_id, people)
        changed = change(cur, meeting, **plan.changes, **room)  # after the invitees, so its meeting.updated shows them
        if room:
            changed = room_service.apply_policy(cur, changed, meet=meet, now=now)
        if plan.rescheduled:
            moved = changed
    if moved is not None:
        followups.enqueue_followups(moved, tasks=tasks, settings=settings)
    log.info("meeting updated", extra={"meeting_id": meeting_id})
    return get_meeting(meeting_id, principal=principal, db=db)


def cancel_meeting(meeting_id: str, *, principal: Principal, db: Database, calendar: CalendarPort,
                   clock: Clock) -> MeetingOut:
    """Cancel the Calendar event (invitees notified) and the meeting; cancelling again answers the same."""
    meeting_id = valid_id(meeting_id)
    with db.transaction() as cur:
        meeting = _locked(cur, meeting_id, principal)
        if meeting.status != Status.CANCELLED:
            ensure_move(meeting.status, Status.CANCELLED)
            if meeting.status != Status.FAILED:
                # A PENDING row may or may not have its event yet: its id is known either way.
                calendar.delete_event(meeting)  # already gone (404/410) is fine
            change(cur, meeting, to=Status.CANCELLED, cancelled_at=clock(), next_check_at=None, next_sync_at=None)
            log.info("meeting cancelled", extra={"meeting_id": meeting_id})
    return get_meeting(meeting_id, principal=principal, db=db)


# --- read ----------------------------------------------------------------------------------------------------

def valid_id(meeting_id: str) -> str:
    try:
        return str(uuid.UUID(meeting_id))
    except ValueError:
        raise NotFound("No meeting has this id.") from None


def _scope(principal: Principal) -> str | None:
    return None if principal.is_admin else principal.client_id


def _locked(cur, meeting_id: str, principal: Principal) -> Meeting:
    meeting = repo.get_meeting(cur, meeting_id, client_id=_scope(principal), lock=True)
    if meeting is None:
        raise NotFound("No meeting has this id.")
    return meeting


def _out(meeting: Meeting) -> MeetingOut:
    return MeetingOut.of(meeting)


def get_meeting(meeting_id: str, *, principal: Principal, db: Database) -> MeetingOut:
    """One meeting the principal may see; NotFound otherwise (another client's meeting included)."""
    meeting_id = valid_id(meeting_id)
    with db.read() as cur:  # one statement: no transaction needed around it
        meeting = repo.get_meeting(cur, meeting_id, client_id=_scope(principal))
    if meeting is None:
        raise NotFound("No meeting has this id.")
    return _out(meeting)


def encode_page_token(meeting: Meeting, settings: Settings) -> str:
    """Where the next page starts, signed: a token is opaque, and one the API did not issue is refused."""
    assert meeting.created_at is not None
    return page_tokens.encode(meeting.created_at, meeting.id, settings)


def decode_page_token(token: str, settings: Settings) -> tuple[datetime, str]:
    return page_tokens.decode(token, settings)


def list_meetings(query: MeetingListQuery, *, principal: Principal, db: Database, settings: Settings) -> MeetingPage:
    """A page of meetings newest first; `next_page_token` continues it."""
    zone = ZoneInfo(settings.default_time_zone)
    after = decode_page_token(query.page_token, settings) if query.page_token else None
    with db.read() as cur:
        found = repo.list_meetings(
            cur, client_id=_scope(principal), status=query.status.value if query.status else None,
            organizer_email=query.organizer_email, external_reference=query.external_reference,
            scheduled_from=rules.resolve_time(query.scheduled_from, zone) if query.scheduled_from else None,
            scheduled_to=rules.resolve_time(query.scheduled_to, zone) if query.scheduled_to else None,
            after=after, limit=query.page_size + 1,
        )
    page, more = found[: query.page_size], len(found) > query.page_size
    token = encode_page_token(page[-1], settings) if more else None
    return MeetingPage(items=[_out(m) for m in page], next_page_token=token)


def list_participants(meeting_id: str, *, principal: Principal, db: Database) -> ParticipantList:
    return ParticipantList(items=get_meeting(meeting_id, principal=principal, db=db).participants)


def list_recordings(meeting_id: str, *, principal: Principal, db: Database) -> RecordingList:
    return RecordingList(items=get_meeting(meeting_id, principal=principal, db=db).recordings)
