"""sync_recordings: who attended, for how long, and where the recordings and transcripts are."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.postgres import repository as repo
from shared.domain.errors import NotFound
from shared.domain.lifecycle import can_move
from shared.web.models import JobSummary, Status
from shared.settings import Settings

log = logging.getLogger(__name__)

FINAL_STATE = "FILE_GENERATED"


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass
class Attendee:
    """One person across every conference record and session of a meeting."""

    display_name: str | None
    email: str | None
    intervals: list[tuple[datetime, datetime]] = field(default_factory=list)

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
                if current_end is not None:
                    total += (current_end - current_start).total_seconds()
                current_start, current_end = start, end
            else:
                current_end = max(current_end, end)
        if current_end is not None:
            total += (current_end - current_start).total_seconds()
        return int(round(total))


@dataclass
class Snapshot:
    """What Meet and Drive say of a meeting right now."""

    records: list[dict[str, Any]]
    attendees: dict[str, Attendee]
    recordings: list[dict[str, Any]]
    transcripts: list[dict[str, Any]]

    @property
    def conference_over(self) -> bool:
        return bool(self.records) and all(r.get("endTime") for r in self.records)

    @property
    def ended_at(self) -> datetime | None:
        return max((_parse(r["endTime"]) for r in self.records if r.get("endTime")), default=None)


def read_meet(meeting: dict[str, Any], *, meet, directory, drive, now: datetime) -> Snapshot:
    """Read every conference record of the meeting's space with participants, sessions and artifacts."""
    owner, code = meeting["calendar_owner"], meeting["meeting_code"]
    records = meet.conference_records(owner, code)
    attendees: dict[str, Attendee] = {}
    recordings: list[dict[str, Any]] = []
    transcripts: list[dict[str, Any]] = []
    emails: dict[str, str | None] = {}
    for record in records:
        record_end = _parse(record.get("endTime")) or now
        for participant in meet.participants(owner, record["name"]):
            key, attendee = _identify(participant, owner=owner, directory=directory, emails=emails)
            attendee = attendees.setdefault(key, attendee)
            for session in meet.sessions(owner, participant["name"]):
                start = _parse(session.get("startTime"))
                if start is not None:
                    attendee.intervals.append((start, _parse(session.get("endTime")) or record_end))
        recordings += [_recording(r, owner=owner, drive=drive) for r in meet.recordings(owner, record["name"])]
        transcripts += [_transcript(t) for t in meet.transcripts(owner, record["name"])]
    return Snapshot(records=records, attendees=attendees, recordings=recordings, transcripts=transcripts)


def _identify(participant: dict[str, Any], *, owner, directory, emails: dict) -> tuple[str, Attendee]:
    """(identity key, empty attendee): signed-in users by email when Google reveals it, others by Meet's name."""
    if "signedinUser" in participant:
        user = participant["signedinUser"].get("user", "")
        if user not in emails:
            emails[user] = directory.email_of(owner, user) if user else None
        email = emails[user]
        name = participant["signedinUser"].get("displayName")
        return (f"email:{email.lower()}" if email else f"meet:{user}"), Attendee(display_name=name, email=email)
    kind = "anonymousUser" if "anonymousUser" in participant else "phoneUser"
    name = (participant.get(kind) or {}).get("displayName")
    return f"meet:{participant['name']}", Attendee(display_name=name, email=None)


def _recording(recording: dict[str, Any], *, owner, drive) -> dict[str, Any]:
    state = recording.get("state", "STATE_UNSPECIFIED")
    row = {"meet_name": recording["name"], "state": state, "drive_file_id": None, "drive_file_url": None,
           "duration_seconds": None, "available_at": None, "complete": False}
    destination = recording.get("driveDestination") or {}
    if state == FINAL_STATE and destination.get("file"):
        row.update(drive_file_id=destination["file"], drive_file_url=destination.get("exportUri"))
        metadata = drive.file(owner, destination["file"])
        if metadata:
            row["drive_file_url"] = row["drive_file_url"] or metadata.get("webViewLink")
            row["available_at"] = _parse(metadata.get("createdTime")) or _parse(recording.get("endTime"))
            millis = (metadata.get("videoMediaMetadata") or {}).get("durationMillis")
            if millis is not None:
                row["duration_seconds"] = int(round(int(millis) / 1000))
                row["complete"] = True  # Drive's metadata lags the file: complete once the duration is known
    return row


def _transcript(transcript: dict[str, Any]) -> dict[str, Any]:
    state = transcript.get("state", "STATE_UNSPECIFIED")
    destination = transcript.get("docsDestination") or {}
    final = state == FINAL_STATE and bool(destination.get("document"))
    return {"meet_name": transcript["name"], "state": state,
            "document_id": destination.get("document") if final else None,
            "document_url": destination.get("exportUri") if final else None, "complete": final}


def sync_meeting(meeting_id: str, *, attempt: int, db, meet, directory, drive, tasks, settings: Settings,
                 clock) -> JobSummary:
    """Store attendance, recordings and transcripts of one meeting; re-enqueue itself while data is missing."""
    from shared.services.meetings import valid_id

    meeting_id = valid_id(meeting_id)
    now = clock()
    with db.transaction() as cur:
        meeting = repo.get_meeting(cur, meeting_id)
    if meeting is None:
        raise NotFound("No meeting has this id.")
    summary = JobSummary(job="sync_recordings", mode="meeting", outcome="ok", meeting_id=meeting_id,
                         status=meeting["status"])
    if meeting["status"] in (Status.CANCELLED, Status.FAILED, Status.PENDING) or not meeting["meeting_code"]:
        with db.transaction() as cur:
            if meeting["status"] in (Status.CANCELLED, Status.FAILED):
                repo.update_meeting(cur, meeting_id, next_sync_at=None)
        return summary.model_copy(update={"outcome": "skipped", "detail": "no conference to sync"})
    snapshot = read_meet(meeting, meet=meet, directory=directory, drive=drive, now=now)
    complete = (snapshot.conference_over and all(r["complete"] for r in snapshot.recordings)
                and all(t["complete"] for t in snapshot.transcripts))
    with db.transaction() as cur:
        current = repo.get_meeting(cur, meeting_id, lock=True)
        counts = _store(cur, meeting_id, snapshot, over=now >= meeting["scheduled_end"])
        changes: dict[str, Any] = {"last_synced_at": now}
        status = Status(current["status"])
        started = now >= meeting["scheduled_start"]  # a test call before the slot does not finish the appointment
        if snapshot.conference_over and started and status != Status.FINISHED and can_move(status, Status.FINISHED):
            changes.update(status=Status.FINISHED.value, finished_at=snapshot.ended_at, next_check_at=None)
            status = Status.FINISHED
        give_up = meeting["scheduled_end"] + timedelta(hours=settings.sync_give_up_hours)
        retry_at = None
        if complete or now >= give_up:
            changes.update(next_sync_at=None, sync_attempts=attempt)
        else:
            delay = min(settings.sync_backoff_base_minutes * 2 ** attempt, settings.sync_backoff_max_minutes)
            retry_at = now + timedelta(minutes=delay)
            changes.update(next_sync_at=retry_at, sync_attempts=attempt + 1)
        repo.update_meeting(cur, meeting_id, **changes)
    if retry_at is not None:
        _retry_later(meeting, attempt=attempt + 1, run_at=retry_at, tasks=tasks, settings=settings)
    log.info("recordings synced", extra={"meeting_id": meeting_id, "status": status.value})
    return summary.model_copy(update={"status": status, "counts": counts,
                                      "detail": None if complete else "waiting for Meet and Drive to finish"})


def _store(cur, meeting_id: str, snapshot: Snapshot, *, over: bool) -> dict[str, int]:
    """Upsert what the snapshot says; after the slot, invitees nobody saw are no-shows."""
    seen: set[str] = set()
    others = 0
    for key, person in snapshot.attendees.items():
        matched = person.email is not None and repo.set_attendance(
            cur, meeting_id, person.email, attended=True, joined_at=person.joined_at, left_at=person.left_at,
            seconds=person.seconds, display_name=person.display_name)
        if matched:
            seen.add(person.email.lower())
        else:
            others += 1
            repo.upsert_other(cur, meeting_id, key, display_name=person.display_name, joined_at=person.joined_at,
                              left_at=person.left_at, seconds=person.seconds)
    no_shows = 0
    if over or snapshot.conference_over:
        cur.execute("SELECT email FROM participants WHERE meeting_id = :m AND role <> 'other'", {"m": meeting_id})
        for (email,) in cur.fetchall():
            if email.lower() not in seen:
                repo.set_attendance(cur, meeting_id, email, attended=False, joined_at=None, left_at=None, seconds=0,
                                    display_name=None)
                no_shows += 1
    for r in snapshot.recordings:
        repo.upsert_recording(cur, meeting_id, r["meet_name"], state=r["state"], drive_file_id=r["drive_file_id"],
                              drive_file_url=r["drive_file_url"], duration_seconds=r["duration_seconds"],
                              available_at=r["available_at"])
    for t in snapshot.transcripts:
        repo.upsert_transcript(cur, meeting_id, t["meet_name"], state=t["state"], document_id=t["document_id"],
                               document_url=t["document_url"])
    return {"conferences": len(snapshot.records), "attended": len(seen), "no_shows": no_shows, "others": others,
            "recordings": len(snapshot.recordings), "transcripts": len(snapshot.transcripts)}


def _retry_later(meeting: dict[str, Any], *, attempt: int, run_at: datetime, tasks, settings: Settings) -> None:
    if not settings.tasks_queue:
        return
    from shared.adapters.cloud_tasks import Task, TaskEnqueueError

    try:
        tasks.enqueue(Task("sync_recordings", meeting["id"], meeting["schedule_version"], run_at, "retry",
                           attempt=attempt))
    except TaskEnqueueError:
        log.warning("could not enqueue the next sync; the sweep will catch up", extra={"meeting_id": meeting["id"]})


def sweep(*, db, tasks, settings: Settings, clock, sync) -> JobSummary:
    """Every meeting whose sync is due, to a task each (or synced here when Cloud Tasks is off)."""
    from shared.services.jobs import fan_out

    return fan_out("sync_recordings", column="next_sync_at", db=db, tasks=tasks, settings=settings, clock=clock,
                   work=lambda row: sync(row["id"], row["sync_attempts"]))
