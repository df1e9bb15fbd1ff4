"""Pydantic models for the API boundary: separate input and output shapes."""
from __future__ import annotations

import dataclasses
import functools
import re
import zoneinfo
from datetime import datetime, timezone
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

from shared.domain.meeting import Meeting, Status


def _clean_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL and UTF-8 cannot encode lone surrogates: refuse both up front.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


def _valid_email(value: str) -> str:
    # Validated, but kept as first spelled: emails compare case-insensitively elsewhere.
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    if len(value.rpartition("@")[0]) > 64:
        raise ValueError("not a valid email address: the part before the @ is longer than 64 characters")
    return value


# Names of the tz database that are files of the zoneinfo directory but not time zones a caller means.
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES


def _known_zone(value: str) -> str:
    # Only names of the IANA database: a directory ("America") or a file such as "posixrules" is not a zone.
    if value not in _zone_names():
        raise ValueError("unknown IANA time zone (use a name such as America/Bogota)")
    return value


_DATETIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?"


def _datetime_text(value: object) -> object:
    # Only RFC 3339 text: pydantic would otherwise read numbers as Unix timestamps ("0.5" is 1970).
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not re.fullmatch(_DATETIME, value):
        raise ValueError("must be an RFC 3339 date-time such as 2025-11-25T15:00:00Z (without offset: local time)")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a valid date-time") from None
    if not 1900 <= parsed.year <= 9000:
        # Far outside any appointment, and near the ends of what datetime can convert between zones.
        raise ValueError("is out of range")
    return parsed


def _utc(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


Text = Annotated[str, AfterValidator(_clean_text)]
Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_clean_text), AfterValidator(_valid_email)]
TimeZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_known_zone)]
UtcDatetime = Annotated[datetime, PlainSerializer(_utc, return_type=str, when_used="json")]
InputDatetime = Annotated[datetime, BeforeValidator(_datetime_text), WithJsonSchema({
    "type": "string", "pattern": f"^{_DATETIME}$",
    "description": "RFC 3339 date-time; without an offset it is read in the meeting's time zone"})]




class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Invitee(_Input):
    """An invitee with the name they are expected to show in Meet (it helps match a patient's personal account)."""

    email: Email
    display_name: Annotated[Text, StringConstraints(max_length=200)] | None = None


Invitees = Annotated[list[Invitee], Field(min_length=1, max_length=100)]


class MeetingCreate(_Input):
    """XOMA's body for a new video appointment."""

    organizer_email: Email
    invited_emails: Annotated[list[Email], Field(min_length=1, max_length=100)] | None = None
    invitees: Invitees | None = None
    scheduled_start: InputDatetime | None = None
    scheduled_end: InputDatetime | None = None
    external_reference: Annotated[Text, StringConstraints(min_length=1, max_length=255)] | None = None
    title: Annotated[Text, StringConstraints(max_length=200)] | None = None
    description: Annotated[Text, StringConstraints(max_length=8000)] | None = None
    time_zone: TimeZoneName | None = None


READ_ONLY_FIELDS = frozenset({
    "id", "external_reference", "google_event_id", "meet_link", "meeting_code", "organizer_email", "time_zone",
    "status", "participants_count", "participants", "recordings", "transcripts", "created_at", "updated_at",
    "cancelled_at",
})


class MeetingUpdate(_Input):
    """A PATCH: each field given replaces the stored one; `null` clears title or description."""

    scheduled_start: InputDatetime | None = None
    scheduled_end: InputDatetime | None = None
    title: Annotated[Text, StringConstraints(max_length=200)] | None = None
    description: Annotated[Text, StringConstraints(max_length=8000)] | None = None
    invited_emails: Annotated[list[Email], Field(min_length=1, max_length=100)] | None = None
    invitees: Invitees | None = None


class InternalRequest(BaseModel):
    """What Cloud Scheduler (`{}`, a sweep) or a Cloud Task (one meeting) posts to an internal function."""

    model_config = ConfigDict(extra="forbid")

    meeting_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    schedule_version: int | None = None
    purpose: Annotated[str, StringConstraints(max_length=64)] | None = None
    attempt: Annotated[int, Field(ge=0, le=1000)] = 0


class MeetingListQuery(_Input):
    """Filters and paging of GET /v1/meetings."""

    model_config = ConfigDict(extra="ignore")

    status: Status | None = None
    organizer_email: Annotated[Text, StringConstraints(max_length=254)] | None = None
    external_reference: Annotated[Text, StringConstraints(max_length=255)] | None = None
    scheduled_from: InputDatetime | None = None
    scheduled_to: InputDatetime | None = None
    page_size: Annotated[int, Field(ge=1, le=100)] = 20
    page_token: Annotated[Text, StringConstraints(max_length=512)] | None = None


class ParticipantOut(BaseModel):
    email: str | None
    display_name: str | None
    role: Literal["organizer", "guest", "other"]
    attended: bool | None
    joined_at: UtcDatetime | None
    left_at: UtcDatetime | None
    attended_seconds: int | None
    matched_by: Literal["email", "display_name", "elimination"] | None = None


class RecordingOut(BaseModel):
    drive_file_id: str | None
    drive_file_url: str | None
    duration_seconds: int | None
    available_at: UtcDatetime | None
    state: str


class TranscriptOut(BaseModel):
    document_id: str | None
    document_url: str | None
    state: str


class MeetingOut(BaseModel):
    """The Meeting resource."""

    id: str
    external_reference: str | None
    google_event_id: str | None
    meet_link: str | None
    meeting_code: str | None
    organizer_email: str
    invited_emails: list[str]
    title: str
    description: str | None
    time_zone: str
    scheduled_start: UtcDatetime
    scheduled_end: UtcDatetime
    status: Status
    participants_count: int
    participants: list[ParticipantOut]
    recordings: list[RecordingOut]
    transcripts: list[TranscriptOut]
    created_at: UtcDatetime
    updated_at: UtcDatetime
    cancelled_at: UtcDatetime | None

    @classmethod
    def of(cls, meeting: Meeting) -> "MeetingOut":
        """The resource of a stored meeting."""
        participants = [ParticipantOut(email=p.email, display_name=p.display_name, role=p.role, attended=p.attended,
                                       joined_at=p.joined_at, left_at=p.left_at, attended_seconds=p.attended_seconds,
                                       matched_by=p.matched_by) for p in meeting.participants]
        return cls(
            id=meeting.id, external_reference=meeting.external_reference, google_event_id=meeting.google_event_id,
            meet_link=meeting.meet_link, meeting_code=meeting.meeting_code, organizer_email=meeting.organizer_email,
            invited_emails=meeting.invited_emails, title=meeting.title, description=meeting.description,
            time_zone=meeting.time_zone, scheduled_start=meeting.scheduled_start, scheduled_end=meeting.scheduled_end,
            status=meeting.status, participants_count=sum(1 for p in participants if p.role != "other"),
            participants=participants,
            recordings=[RecordingOut(**dataclasses.asdict(r)) for r in meeting.recordings],
            transcripts=[TranscriptOut(**dataclasses.asdict(t)) for t in meeting.transcripts],
            created_at=meeting.created_at, updated_at=meeting.updated_at, cancelled_at=meeting.cancelled_at,
        )


class MeetingPage(BaseModel):
    items: list[MeetingOut]
    next_page_token: str | None


class ParticipantList(BaseModel):
    items: list[ParticipantOut]


class RecordingList(BaseModel):
    items: list[RecordingOut]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"]
    version: str


class JobSummary(BaseModel):
    """What an internal function did: one meeting or a sweep."""

    job: str
    mode: Literal["meeting", "sweep"]
    outcome: Literal["ok", "skipped", "error", "duplicate"]
    meeting_id: str | None = None
    status: Status | None = None
    counts: dict[str, int] = {}
    detail: str | None = None


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
