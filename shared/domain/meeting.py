"""The meeting as the product knows it: frozen values, no I/O, no wire formats."""
from __future__ import annotations

import base64
import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class Status(str, Enum):
    """Every state a meeting can be in; the transitions live in shared.domain.lifecycle."""

    PENDING = "PENDING"
    CREATED = "CREATED"
    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN_PROGRESS"
    FINISHED = "FINISHED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Participant:
    """The organizer, an invitee (`guest`) or a joiner tied to no invitee (`other`), with attendance once synced."""

    email: str | None
    role: str  # organizer | guest | other
    display_name: str | None = None
    attended: bool | None = None
    joined_at: datetime | None = None
    left_at: datetime | None = None
    attended_seconds: int | None = None
    matched_by: str | None = None  # email | display_name | elimination, once a sync matched a joiner
    invited_name: str | None = None  # the display name the caller gave for an invitee


@dataclass(frozen=True)
class Recording:
    state: str
    drive_file_id: str | None = None
    drive_file_url: str | None = None
    duration_seconds: int | None = None
    available_at: datetime | None = None


@dataclass(frozen=True)
class Transcript:
    state: str
    document_id: str | None = None
    document_url: str | None = None


@dataclass(frozen=True)
class RoomPolicy:
    """Who enters the Meet room without knocking (OPEN, TRUSTED, RESTRICTED), and whether Meet records and
    transcribes it by itself."""

    access_type: str
    auto_recording: bool = False
    auto_transcription: bool = False


@dataclass(frozen=True)
class Meeting:
    """One video appointment: its schedule, its Calendar event and Meet room, its background bookkeeping."""

    id: str
    client_id: str
    status: Status
    organizer_email: str
    title: str
    description: str | None
    time_zone: str
    scheduled_start: datetime
    scheduled_end: datetime
    request_fingerprint: str = ""
    external_reference: str | None = None
    calendar_owner: str | None = None
    create_attempt: int = 1
    google_event_id: str | None = None
    meet_link: str | None = None
    meeting_code: str | None = None
    conference_status: str | None = None
    schedule_version: int = 1
    failure_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    cancelled_at: datetime | None = None
    finished_at: datetime | None = None
    next_check_at: datetime | None = None
    last_checked_at: datetime | None = None
    next_sync_at: datetime | None = None
    last_synced_at: datetime | None = None
    sync_attempts: int = 0
    # The room policy (all None for a meeting made before room policies existed) and whether Meet has it yet.
    room_access_type: str | None = None
    room_auto_recording: bool | None = None
    room_auto_transcription: bool | None = None
    room_state: str | None = None  # APPLIED | PENDING | FAILED (shared.domain.rooms)
    participants: tuple[Participant, ...] = field(default=(), compare=False)
    recordings: tuple[Recording, ...] = field(default=(), compare=False)
    transcripts: tuple[Transcript, ...] = field(default=(), compare=False)

    @property
    def invited_emails(self) -> list[str]:
        return [p.email for p in self.participants if p.role == "guest" and p.email]

    @property
    def attendees(self) -> list[Participant]:
        """The organizer and the invitees: who the Calendar event lists."""
        return [p for p in self.participants if p.role in ("organizer", "guest")]

    @property
    def room(self) -> RoomPolicy | None:
        """The policy the meeting's Meet room should have, or None for a meeting made before room policies."""
        if self.room_access_type is None:
            return None
        return RoomPolicy(self.room_access_type, bool(self.room_auto_recording), bool(self.room_auto_transcription))

    @property
    def event_id(self) -> str:
        """The Calendar event id: the one stored, else the one this creation attempt derives."""
        return self.google_event_id or event_id_for(self.id, self.create_attempt)

    def but(self, **changes: Any) -> "Meeting":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


# Columns a use case may change through the transition point; `status` is among them only there.
COLUMNS = frozenset(f.name for f in dataclasses.fields(Meeting)) - {"participants", "recordings", "transcripts"}


def event_id_for(meeting_id: str, attempt: int) -> str:
    """The Calendar event id, derived from the meeting (base32hex): a retried insert collides, never duplicates."""
    encoded = base64.b32hexencode(uuid.UUID(meeting_id).bytes).decode().rstrip("=").lower()
    return encoded if attempt <= 1 else f"{encoded}{attempt}"


@dataclass(frozen=True)
class Conference:
    """The Meet conference of a Calendar event, as far as Calendar knows it."""

    status: str | None  # pending | success | failure | None (no conference requested)
    link: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class CalendarEvent:
    """What the product reads back of a Calendar event."""

    id: str
    cancelled: bool
    start: datetime | None
    end: datetime | None
    conference: Conference


@dataclass(frozen=True)
class MeetSpace:
    """A Meet space as the product reads it: its resource name, whether a conference is live in it, and its room
    settings (None where Meet reported none the product knows)."""

    name: str
    live: bool
    access_type: str | None
    auto_recording: bool | None
    auto_transcription: bool | None


@dataclass(frozen=True)
class ConferenceRecord:
    """One conference held in a Meet space (people who leave and rejoin later make several)."""

    name: str
    start: datetime | None
    end: datetime | None  # None while it is live


@dataclass
class Joiner:
    """One person across every conference record and session of a meeting, as Meet identifies them."""

    display_name: str | None
    email: str | None
    intervals: list[tuple[datetime, datetime]] = field(default_factory=list)
    key: str = ""  # email:<lower email> when Google reveals it, else meet:<Meet's identity>

    @property
    def joined_at(self) -> datetime | None:
        return min((s for s, _ in self.intervals), default=None)

    @property
    def left_at(self) -> datetime | None:
        return max((e for _, e in self.intervals), default=None)

    @property
    def seconds(self) -> int:
        """Time present, counting overlapping sessions (two devices at once) once."""
        total, current_start, current_end = 0.0, None, None
        for start, end in sorted(self.intervals):
            if current_end is None or start > current_end:
                if current_end is not None and current_start is not None:
                    total += (current_end - current_start).total_seconds()
                current_start, current_end = start, end
            else:
                current_end = max(current_end, end)
        if current_end is not None and current_start is not None:
            total += (current_end - current_start).total_seconds()
        return int(round(total))


@dataclass(frozen=True)
class Artifact:
    """A recording or transcript as Meet (and Drive) report it; `complete` once nothing more will change."""

    meet_name: str
    state: str
    complete: bool
    file_id: str | None = None
    file_url: str | None = None
    duration_seconds: int | None = None
    available_at: datetime | None = None


@dataclass(frozen=True)
class MeetSnapshot:
    """What Meet and Drive say of a meeting's conferences right now."""

    records: tuple[ConferenceRecord, ...]
    joiners: tuple[Joiner, ...]
    recordings: tuple[Artifact, ...]
    transcripts: tuple[Artifact, ...]

    @property
    def conference_over(self) -> bool:
        return bool(self.records) and all(r.end for r in self.records)

    @property
    def ended_at(self) -> datetime | None:
        return max((r.end for r in self.records if r.end), default=None)

    @property
    def complete(self) -> bool:
        return (self.conference_over and all(r.complete for r in self.recordings)
                and all(t.complete for t in self.transcripts))
