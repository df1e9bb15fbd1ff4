"""sync_recordings: who attended, for how long, and where the recordings and transcripts are."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from shared.adapters.postgres import repository as repo
from shared.domain import attendance, rules
from shared.domain.errors import NotFound
from shared.domain.lifecycle import can_move
from shared.domain.meeting import Joiner as Attendee  # noqa: F401  (attendance arithmetic lives on the Joiner)
from shared.domain.meeting import Meeting, MeetSnapshot, Status
from shared.domain.schedule import Task
from shared.services import followups
from shared.services.meetings import valid_id
from shared.services.transitions import change
from shared.settings import Settings
from shared.web.models import JobSummary

log = logging.getLogger(__name__)


def sync_meeting(meeting_id: str, *, attempt: int, db, meet, tasks, settings: Settings, clock) -> JobSummary:
    """Store attendance, recordings and transcripts of one meeting; re-enqueue itself while data is missing."""
    meeting_id = valid_id(meeting_id)
    now = clock()
    with db.read() as cur:
        meeting = repo.get_meeting(cur, meeting_id)
    if meeting is None:
        raise NotFound("No meeting has this id.")
    summary = JobSummary(job="sync_recordings", mode="meeting", outcome="ok", meeting_id=meeting_id,
                         status=meeting.status)
    if meeting.status in (Status.CANCELLED, Status.FAILED, Status.PENDING) or not meeting.meeting_code:
        if meeting.status in (Status.CANCELLED, Status.FAILED):
            with db.transaction() as cur:
                current = repo.get_meeting(cur, meeting_id, lock=True)
                if current is not None:
                    change(cur, current, next_sync_at=None)
        return summary.model_copy(update={"outcome": "skipped", "detail": "no conference to sync"})
    # Google is read outside the transaction: no row lock is held while Meet and Drive answer.
    snapshot = meet.snapshot(meeting, now=now, window=rules.conference_window(
        meeting, grace=timedelta(minutes=settings.grace_period_minutes)))
    with db.transaction() as cur:
        current = repo.get_meeting(cur, meeting_id, lock=True)
        assert current is not None  # meetings are never deleted
        counts = _store(cur, current, snapshot, over=now >= meeting.scheduled_end)
        status = current.status
        target = None
        finished_at = current.finished_at
        started = now >= meeting.scheduled_start  # a test call before the slot does not finish the appointment
        if snapshot.conference_over and started and status != Status.FINISHED and can_move(status, Status.FINISHED):
            target, finished_at = Status.FINISHED, snapshot.ended_at
        retry_at, attempts = rules.next_sync(
            attempt=attempt, now=now, end=meeting.scheduled_end, complete=snapshot.complete,
            give_up_after=timedelta(hours=settings.sync_give_up_hours),
            base_minutes=settings.sync_backoff_base_minutes, max_minutes=settings.sync_backoff_max_minutes)
        fields = {"last_synced_at": now, "next_sync_at": retry_at, "sync_attempts": attempts}
        if target is not None:
            fields.update(finished_at=finished_at, next_check_at=None)
        synced = change(cur, current, to=target, **fields)
    if retry_at is not None:
        _retry_later(synced.id, synced.schedule_version, attempt=attempt + 1, run_at=retry_at, tasks=tasks,
                     settings=settings)
    log.info("recordings synced", extra={"meeting_id": meeting_id, "status": synced.status.value})
    return summary.model_copy(update={"status": synced.status, "counts": counts,
                                      "detail": None if snapshot.complete else "waiting for Meet and Drive to finish"})


def _store(cur, meeting: Meeting, snapshot: MeetSnapshot, *, over: bool) -> dict[str, int]:
    """Store the snapshot: joiners matched to the organizer and invitees, the others listed, the files upserted."""
    decided = over or snapshot.conference_over
    matching = attendance.match(list(meeting.attendees), list(snapshot.joiners), decided=decided)
    repo.write_attendance(cur, meeting.id, list(matching.invitees), list(matching.others))
    for r in snapshot.recordings:
        repo.upsert_recording(cur, meeting.id, r.meet_name, state=r.state, drive_file_id=r.file_id,
                              drive_file_url=r.file_url, duration_seconds=r.duration_seconds,
                              available_at=r.available_at)
    for t in snapshot.transcripts:
        repo.upsert_transcript(cur, meeting.id, t.meet_name, state=t.state, document_id=t.file_id,
                               document_url=t.file_url)
    return {"conferences": len(snapshot.records),
            "attended": sum(1 for a in matching.invitees if a.attended),
            "no_shows": sum(1 for a in matching.invitees if a.attended is False),
            "undetermined": sum(1 for a in matching.invitees if a.attended is None),
            "others": len(matching.others),
            "recordings": len(snapshot.recordings), "transcripts": len(snapshot.transcripts)}


def _retry_later(meeting_id: str, version: int, *, attempt: int, run_at: datetime, tasks, settings: Settings) -> None:
    followups.enqueue(Task("sync_recordings", meeting_id, version, run_at, "retry", attempt=attempt), tasks=tasks,
                      settings=settings)


def sweep(*, db, tasks, settings: Settings, clock, sync) -> JobSummary:
    """Every meeting whose sync is due, to a task each (or synced here when Cloud Tasks is off)."""
    from shared.services.jobs import fan_out

    return fan_out("sync_recordings", column="next_sync_at", db=db, tasks=tasks, settings=settings, clock=clock,
                   work=lambda row: sync(row["id"], row["sync_attempts"]))
