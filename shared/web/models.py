"""Pydantic models for the API boundary: separate input and output shapes."""
from __future__ import annotations

import dataclasses
import functools
import re
import zoneinfo
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)
from pydantic import BaseModel as PydanticModel

from shared.domain.meeting import Meeting, Status
from shared.web import examples as ex


class BaseModel(PydanticModel):
    """Every model of the API boundary: validators and serializers are built on first use, not at import, so a
    function's cold start pays only for the models its routes touch (a read never builds MeetingCreate)."""

    model_config = ConfigDict(defer_build=True)


def _clean_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL and UTF-8 cannot encode lone surrogates: refuse both up front.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


# The addresses clinics use: an ASCII dot-atom before the @, a host name of letters, digits and inner hyphens after
# it, ending in an alphabetic top-level domain. Every address of this shape is one email-validator accepts (a test
# checks it against the library); anything else goes to the library, which gives the answer and the reason.
# email-validator compiles patterns for the whole of Unicode at import (20 to 30 ms of a write's cold start), so
# the library is loaded only for addresses off this path.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")
_SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")  # email-validator's reserved names


def plain_email(value: str) -> bool:
    """An address of the plain shape above: email-validator accepts every one of them."""
    if len(value) > 254 or not _PLAIN_EMAIL.fullmatch(value):
        return False
    domain = value.rpartition("@")[2].lower()
    return len(domain) <= 253 and "--" not in domain and domain.rpartition(".")[2] not in _SPECIAL_USE


def _valid_email(value: str) -> str:
    # Validated, but kept as first spelled: emails compare case-insensitively elsewhere.
    if not plain_email(value):
        from email_validator import EmailNotValidError, validate_email

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


def _not_null(schema: dict) -> None:
    """Schema of an optional field that may be left out but not sent as null: drop pydantic's null branch."""
    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches
    schema.pop("default", None)


# Internationalised addresses (josé@clínica.co) are accepted, hence `idn-email` rather than `email`.
_EMAIL_FORMAT = {"format": "idn-email"}

Text = Annotated[str, AfterValidator(_clean_text)]
Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_clean_text), AfterValidator(_valid_email),
                  Field(json_schema_extra=_EMAIL_FORMAT)]
EmailOut = Annotated[str, Field(json_schema_extra=_EMAIL_FORMAT)]
Uri = Annotated[str, Field(json_schema_extra={"format": "uri"})]
TimeZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_known_zone)]
UtcDatetime = Annotated[datetime, PlainSerializer(_utc, return_type=str, when_used="json"),
                        WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization")]
# An RFC 3339 date-time, or the same without seconds or without an offset (then read in the meeting's time zone):
# only the first form is `format: date-time`, so the schema says both rather than refuse what the API accepts.
InputDatetime = Annotated[datetime, BeforeValidator(_datetime_text), WithJsonSchema({
    # Appointments fall from 2000 to five years ahead (a 422 outside): the schema says 20xx, so generated clients
    # and test data stay near what the API accepts.
    "anyOf": [{"type": "string", "format": "date-time", "pattern": "^20[0-9]{2}-"},
              {"type": "string", "pattern": "^20\\d{2}" + _DATETIME[len(r"\d{4}"):] + "$"}],
    "description": "RFC 3339 date-time such as 2025-11-25T15:00:00Z; without an offset it is read in the meeting's "
                   "time zone. Scheduled times are from 2000-01-01 to five years from now"})]




class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Invitee(_Input):
    """An invitee with the name they are expected to show in Meet (it helps match a patient's personal account)."""

    email: Email
    display_name: Annotated[Text, StringConstraints(max_length=200)] | None = None


Invitees = Annotated[list[Invitee], Field(min_length=1, max_length=100)]


AccessType = Literal["OPEN", "TRUSTED", "RESTRICTED"]
_ACCESS = ("Who enters the Meet room without knocking: `OPEN` anyone with the link; `TRUSTED` the clinic's "
           "Workspace, invited guests and dial-in users; `RESTRICTED` only the invitees (everyone else knocks and "
           "waits for the organizer)")


class RoomPolicyIn(_Input):
    """A patient-safe room: each field left out keeps its value (on create: the default, `DEFAULT_ROOM_ACCESS`,
    recording and transcription off)."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.ROOM]})

    access_type: Annotated[AccessType | None, Field(description=_ACCESS, json_schema_extra=_not_null)] = None
    auto_recording: Annotated[StrictBool | None, Field(
        description="Meet records by itself as soon as someone allowed to record joins",
        json_schema_extra=_not_null)] = None
    auto_transcription: Annotated[StrictBool | None, Field(
        description="Meet transcribes by itself as soon as someone allowed to transcribe joins",
        json_schema_extra=_not_null)] = None


_REJECT_CONFLICTS = ("When true, a slot in which the organizer is busy — in Google Calendar or with another of their "
                     "live meetings here — is refused with 409 and its `conflicts`, and nothing is written")


class MeetingCreate(_Input):
    """XOMA's body for a new video appointment."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.SEED]})

    organizer_email: Annotated[Email, Field(description="The doctor: organizer of the Calendar event")]
    invited_emails: Annotated[Annotated[list[Email], Field(min_length=1, max_length=100)] | None, Field(
        description="The patients (1 to 100), de-duplicated case-insensitively; the organizer is dropped from them. "
                    "Give this or `invitees`, not both", json_schema_extra=_not_null)] = None
    invitees: Annotated[Invitees | None, Field(
        description="The richer form of `invited_emails`: each invitee with the display name they are expected to "
                    "show in Meet (it helps match a patient who joins with a personal account)",
        json_schema_extra=_not_null)] = None
    scheduled_start: Annotated[InputDatetime | None, Field(
        description="Both scheduled times or neither (then: now, for the default duration)")] = None
    scheduled_end: Annotated[InputDatetime | None, Field(
        description="After `scheduled_start`, at most 24 h later")] = None
    external_reference: Annotated[Annotated[Text, StringConstraints(min_length=1, max_length=255)] | None, Field(
        description="The caller's id of the appointment: the same reference and body again return the same "
                    "meeting")] = None
    title: Annotated[Annotated[Text, StringConstraints(max_length=200)] | None, Field(
        description="The Calendar event's summary; without it a neutral default")] = None
    description: Annotated[Text, StringConstraints(max_length=8000)] | None = None
    time_zone: Annotated[TimeZoneName | None, Field(
        description="IANA time zone of datetimes without an offset (default `America/Bogota`)",
        examples=["America/Bogota"])] = None
    room: Annotated[RoomPolicyIn | None, Field(
        description="The Meet room's policy; without it: only invitees enter without knocking, no automatic "
                    "recording or transcript", json_schema_extra=_not_null)] = None
    reject_conflicts: Annotated[StrictBool, Field(description=_REJECT_CONFLICTS)] = False


READ_ONLY_FIELDS = frozenset({
    "id", "external_reference", "google_event_id", "meet_link", "meeting_code", "organizer_email", "time_zone",
    "status", "participants_count", "participants", "recordings", "transcripts", "created_at", "updated_at",
    "cancelled_at", "room.state",
})


class MeetingUpdate(_Input):
    """A PATCH: each field given replaces the stored one; `null` clears title or description."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.RESCHEDULE]})

    # Left out means "keep"; null is refused for the times and the invitees (422), so their schema has no null.
    scheduled_start: Annotated[InputDatetime | None, Field(
        description="Alone, it moves the meeting keeping its duration", json_schema_extra=_not_null)] = None
    scheduled_end: Annotated[InputDatetime | None, Field(json_schema_extra=_not_null)] = None
    title: Annotated[Annotated[Text, StringConstraints(max_length=200)] | None, Field(
        description="`null` restores the neutral default title")] = None
    description: Annotated[Annotated[Text, StringConstraints(max_length=8000)] | None, Field(
        description="`null` clears it")] = None
    invited_emails: Annotated[Annotated[list[Email], Field(min_length=1, max_length=100)] | None, Field(
        description="Replaces the invitees; they are notified", json_schema_extra=_not_null)] = None
    invitees: Annotated[Invitees | None, Field(
        description="Replaces the invitees, with their display names; give this or `invited_emails`",
        json_schema_extra=_not_null)] = None
    room: Annotated[RoomPolicyIn | None, Field(
        description="Changes the Meet room's policy: the fields given replace the stored ones, and it is applied "
                    "again", json_schema_extra=_not_null)] = None
    reject_conflicts: Annotated[StrictBool, Field(
        description=_REJECT_CONFLICTS + " (checked when the times change; the meeting's own slot does not count)")
    ] = False


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
    organizer_email: Annotated[Annotated[Text, StringConstraints(max_length=254)] | None, Field(
        description="Only this organizer's meetings (compared case-insensitively)")] = None
    external_reference: Annotated[Text, StringConstraints(max_length=255)] | None = None
    scheduled_from: Annotated[InputDatetime | None, Field(
        description="Meetings starting at or after this time (without an offset: in the default time zone)")] = None
    scheduled_to: Annotated[InputDatetime | None, Field(description="Meetings starting before this time")] = None
    page_size: Annotated[int, Field(ge=1, le=100, description="1 to 100")] = 20
    page_token: Annotated[Annotated[Text, StringConstraints(max_length=512)] | None, Field(
        description="The `next_page_token` of the previous page (opaque)")] = None


class ParticipantOut(BaseModel):
    """The organizer, an invitee, or a joiner matched to neither (`other`), with attendance once synced."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.PARTICIPANTS[1]]})

    email: EmailOut | None
    display_name: str | None
    role: Literal["organizer", "guest", "other"]
    attended: bool | None
    joined_at: UtcDatetime | None
    left_at: UtcDatetime | None
    attended_seconds: int | None
    matched_by: Literal["email", "display_name", "elimination"] | None = None


class RecordingOut(BaseModel):
    """A recording as Meet reports it; the file fields stay null until `state` is FILE_GENERATED."""

    model_config = ConfigDict(json_schema_extra={"examples": ex.RECORDINGS})

    drive_file_id: str | None
    drive_file_url: Uri | None
    duration_seconds: int | None
    available_at: UtcDatetime | None
    state: str


class TranscriptOut(BaseModel):
    """A transcript as Meet reports it; the document fields stay null until `state` is FILE_GENERATED."""

    model_config = ConfigDict(json_schema_extra={"examples": ex.TRANSCRIPTS})

    document_id: str | None
    document_url: Uri | None
    state: str


class RoomOut(BaseModel):
    """The Meet room's policy, and whether Meet has it."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.ROOM_APPLIED]})

    access_type: Annotated[AccessType, Field(description=_ACCESS)]
    auto_recording: bool
    auto_transcription: bool
    state: Annotated[Literal["APPLIED", "PENDING", "FAILED"], Field(
        description="`APPLIED` once Google confirmed the policy; `PENDING` while it could not be applied yet "
                    "(Google unavailable, the Meet link still pending: the status check applies it before the "
                    "slot); `FAILED` when Google refused it (the meeting stays usable; PATCH `room` to try again)")]


class MeetingOut(BaseModel):
    """The Meeting resource."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.MEETING]})

    id: Annotated[str, Field(json_schema_extra={"format": "uuid"})]
    external_reference: str | None
    google_event_id: str | None
    meet_link: Annotated[Uri | None, Field(description="Null while Google's conference is still pending")]
    meeting_code: str | None
    organizer_email: EmailOut
    invited_emails: list[EmailOut]
    title: str
    description: str | None
    time_zone: str
    scheduled_start: UtcDatetime
    scheduled_end: UtcDatetime
    status: Status
    participants_count: Annotated[int, Field(description="The organizer and the invitees")]
    participants: list[ParticipantOut]
    recordings: list[RecordingOut]
    transcripts: list[TranscriptOut]
    room: Annotated[RoomOut | None, Field(description="Null for a meeting made before room policies existed")]
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
            room=RoomOut(**dataclasses.asdict(meeting.room), state=meeting.room_state) if meeting.room else None,
            created_at=meeting.created_at, updated_at=meeting.updated_at, cancelled_at=meeting.cancelled_at,
        )


class MeetingPage(BaseModel):
    """One page of meetings, newest first; pass `next_page_token` back as `page_token` for the next."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.PAGE]})

    items: list[MeetingOut]
    next_page_token: str | None


class ParticipantList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": ex.PARTICIPANTS}]})

    items: list[ParticipantOut]


class RecordingList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": ex.RECORDINGS}]})

    items: list[RecordingOut]


class AvailabilityQuery(_Input):
    """Whose busy times, and between when, for GET /v1/availability."""

    model_config = ConfigDict(extra="ignore")

    email: Annotated[Email, Field(description="A user of the clinic's Google Workspace (`WORKSPACE_DOMAIN`)")]
    from_: Annotated[InputDatetime, Field(alias="from", description="Start of the range (without an offset: in the "
                                                                    "default time zone)")]
    to: Annotated[InputDatetime, Field(description="End of the range: after `from`, at most 90 days later")]


class BusyInterval(BaseModel):
    """A time the clinician is busy: from `start` (included) to `end` (excluded)."""

    start: UtcDatetime
    end: UtcDatetime


class Availability(BaseModel):
    """A clinician's busy times in a range, from Google Calendar: merged, sorted by start, clipped to the range."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.AVAILABILITY]}, serialize_by_alias=True,
                              validate_by_name=True)

    email: EmailOut
    from_: Annotated[UtcDatetime, Field(alias="from")]
    to: UtcDatetime
    busy: list[BusyInterval]


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.HEALTH]})

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

    model_config = ConfigDict(json_schema_extra={"examples": [ex.problem(422)]})

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    conflicts: Annotated[list[BusyInterval] | None, Field(
        description="On a 409 for `reject_conflicts`: the organizer's busy times within the slot asked for")] = None
