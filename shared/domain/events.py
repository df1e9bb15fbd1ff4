"""Push events: which events one change of a meeting makes, decided from the meeting before and after it.

Pure: the transition point reads the meeting again after writing, and these rules compare the two. A change that
writes nothing a caller can see (bookkeeping, a repeated sync, a duplicated task) makes no event.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from enum import Enum

from shared.domain.meeting import Meeting, Recording, Status, Transcript

FILE_GENERATED = "FILE_GENERATED"


class EventType(str, Enum):
    """Every event a webhook endpoint can receive."""

    MEETING_CREATED = "meeting.created"
    MEETING_UPDATED = "meeting.updated"
    MEETING_CANCELLED = "meeting.cancelled"
    MEETING_STARTED = "meeting.started"
    MEETING_FINISHED = "meeting.finished"
    ATTENDANCE_UPDATED = "attendance.updated"
    RECORDING_READY = "recording.ready"
    TRANSCRIPT_READY = "transcript.ready"


@dataclass(frozen=True)
class Event:
    """One event of a change; `recording` or `transcript` name the file a *.ready event is about."""

    type: EventType
    recording: Recording | None = None
    transcript: Transcript | None = None


_UNANNOUNCED = frozenset({Status.PENDING, Status.FAILED})
_STATUS_EVENTS = {
    Status.IN_PROGRESS: EventType.MEETING_STARTED,
    Status.FINISHED: EventType.MEETING_FINISHED,
    Status.CANCELLED: EventType.MEETING_CANCELLED,
}
# Columns that are not part of what a caller reads as the meeting's content: identity, status (it has its own
# events), timestamps that move with every write, and background bookkeeping. Any other column changing is an edit.
_NOT_CONTENT = frozenset({
    "id", "client_id", "status", "request_fingerprint", "calendar_owner", "create_attempt", "conference_status",
    "schedule_version", "failure_reason", "created_at", "updated_at", "cancelled_at", "finished_at",
    "next_check_at", "last_checked_at", "next_sync_at", "last_synced_at", "sync_attempts",
    "participants", "recordings", "transcripts",
    # Applying the room policy in Google (PENDING, APPLIED, FAILED) is bookkeeping; the policy itself is content.
    "room_state",
})
CONTENT = tuple(f.name for f in dataclasses.fields(Meeting) if f.name not in _NOT_CONTENT)


def between(before: Meeting, after: Meeting) -> list[Event]:
    """The events of the change from `before` to `after`, in the order they are numbered."""
    events: list[Event] = []
    if before.status == Status.PENDING and after.status == Status.CREATED:
        events.append(Event(EventType.MEETING_CREATED))  # the creation carries everything the meeting has
    elif after.status in _UNANNOUNCED:
        pass  # a creation in flight or failed is not yet a meeting the client hears about
    else:
        if edited(before, after) and before.status not in _UNANNOUNCED:
            events.append(Event(EventType.MEETING_UPDATED))
        if after.status != before.status and after.status in _STATUS_EVENTS:
            events.append(Event(_STATUS_EVENTS[after.status]))
    if _attendance(before) != _attendance(after):
        events.append(Event(EventType.ATTENDANCE_UPDATED))
    events += [Event(EventType.RECORDING_READY, recording=r)
               for r in _newly_ready(before.recordings, after.recordings, "drive_file_id")]
    events += [Event(EventType.TRANSCRIPT_READY, transcript=t)
               for t in _newly_ready(before.transcripts, after.transcripts, "document_id")]
    return events


def edited(before: Meeting, after: Meeting) -> bool:
    """Rescheduled, retitled, invitees changed, a pending Meet link filled in: what `meeting.updated` reports."""
    return (any(getattr(before, name) != getattr(after, name) for name in CONTENT)
            or before.invited_emails != after.invited_emails)


def _attendance(meeting: Meeting) -> Counter:
    # Everyone a sync has seen or marked: invitees before any sync (attended null) carry no attendance yet.
    return Counter(dataclasses.astuple(p) for p in meeting.participants if p.attended is not None or p.role == "other")


def _newly_ready(before, after, file_field: str) -> list:
    """Files in FILE_GENERATED with their file id now that were not before: each is ready exactly once."""
    done = {getattr(f, file_field) for f in before if f.state == FILE_GENERATED and getattr(f, file_field)}
    ready = []
    for item in after:
        key = getattr(item, file_field)
        if item.state == FILE_GENERATED and key and key not in done:
            done.add(key)
            ready.append(item)
    return ready
