"""check_status: reconcile a meeting with Google Calendar and Meet, or sweep the due ones."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.postgres import repository as repo
from shared.domain import schedule
from shared.domain.errors import NotFound
from shared.domain.lifecycle import FINAL, can_move
from shared.web.models import JobSummary, Status
from shared.settings import Settings

log = logging.getLogger(__name__)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _moved_times(meeting: dict[str, Any], event: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """The event's times when someone moved it in Google Calendar, else None."""
    start = _parse((event.get("start") or {}).get("dateTime"))
    end = _parse((event.get("end") or {}).get("dateTime"))
    if start is None or end is None or (start, end) == (meeting["scheduled_start"], meeting["scheduled_end"]):
        return None
    return start, end


def _conference_state(meeting: dict[str, Any], *, meet, now: datetime) -> tuple[bool, datetime | None]:
    """(live now, end of the last conference held once the slot began) from Meet."""
    code, owner = meeting["meeting_code"], meeting["calendar_owner"]
    if not code:
        return False, None
    space = meet.space(owner, code)
    if space and space.get("activeConference"):
        return True, None
    ended = [_parse(r.get("endTime")) for r in meet.conference_records(owner, code) if r.get("endTime")]
    # A conference that ended before the slot (a test call the day before) does not finish the appointment.
    ended = [e for e in ended if e and now >= meeting["scheduled_start"]]
    return False, max(ended) if ended else None


def check_meeting(meeting_id: str, *, schedule_version: int | None, db, calendar, meet, tasks, settings: Settings,
                  clock) -> JobSummary:
    """Bring one meeting's status in line with Google; a task for an outdated schedule does nothing."""
    from shared.services.meetings import finish_creation, valid_id

    meeting_id = valid_id(meeting_id)
    now = clock()
    moved = None
    with db.transaction() as cur:
        meeting = repo.get_meeting(cur, meeting_id, lock=True)
        if meeting is None:
            raise NotFound("No meeting has this id.")
        status = Status(meeting["status"])
        summary = JobSummary(job="check_status", mode="meeting", outcome="ok", meeting_id=meeting_id, status=status)
        if schedule_version is not None and schedule_version != meeting["schedule_version"]:
            return summary.model_copy(update={"outcome": "skipped", "detail": "the meeting was rescheduled since"})
        if status in FINAL or status == Status.FAILED:
            repo.update_meeting(cur, meeting_id, next_check_at=None, last_checked_at=now)
            return summary.model_copy(update={"outcome": "skipped", "detail": f"the meeting is {status.value}"})
        if status == Status.PENDING:
            # Left half-created (a crash, or Google down during the create): finish it, or fail it.
            participants = repo.details_for(cur, [meeting_id])[meeting_id]["participants"]
            failure = finish_creation(cur, meeting, participants, calendar=calendar, settings=settings, now=now)
            repo.update_meeting(cur, meeting_id, last_checked_at=now)
            new = Status.FAILED if failure else Status.CREATED
            if not failure:
                moved = {"id": meeting_id, "scheduled_end": meeting["scheduled_end"],
                         "schedule_version": meeting["schedule_version"]}
            summary = summary.model_copy(update={"status": new, "detail": failure})
        else:
            target, changes = _reconcile(cur, meeting, calendar=calendar, meet=meet, settings=settings, now=now)
            if "schedule_version" in changes:
                moved = {"id": meeting_id, "scheduled_end": changes["scheduled_end"],
                         "schedule_version": changes["schedule_version"]}
            repo.update_meeting(cur, meeting_id, **changes)
            summary = summary.model_copy(update={"status": target})
    if moved:
        schedule.enqueue_followups(moved, tasks=tasks, settings=settings)
    log.info("status checked", extra={"meeting_id": meeting_id, "status": summary.status.value})
    return summary


def _reconcile(cur, meeting: dict[str, Any], *, calendar, meet, settings: Settings,
               now: datetime) -> tuple[Status, dict[str, Any]]:
    """The status a live meeting should have now, and the columns to write."""
    from shared.services.meetings import store_conference

    status = Status(meeting["status"])
    changes: dict[str, Any] = {"last_checked_at": now}
    event = calendar.get_event(meeting["calendar_owner"], meeting["google_event_id"])
    if event is None or event.get("status") == "cancelled":
        changes.update(status=Status.CANCELLED.value, cancelled_at=now, next_check_at=None, next_sync_at=None)
        return Status.CANCELLED, changes
    start, end = meeting["scheduled_start"], meeting["scheduled_end"]
    times = _moved_times(meeting, event)
    if times is not None:
        start, end = times
        changes.update(scheduled_start=start, scheduled_end=end, schedule_version=meeting["schedule_version"] + 1,
                       next_sync_at=schedule.first_sync(end, settings), sync_attempts=0)
    if meeting["conference_status"] == "pending":
        meeting = store_conference(cur, meeting, event)
    live, ended_at = _conference_state(dict(meeting, scheduled_start=start), meet=meet, now=now)
    target = status
    if live:
        target = Status.IN_PROGRESS
    elif ended_at is not None or now > end + timedelta(minutes=settings.grace_period_minutes):
        target = Status.FINISHED
        changes["finished_at"] = ended_at or now
    elif status == Status.CREATED and meeting["meeting_code"]:
        target = Status.SCHEDULED
    if target != status and can_move(status, target):
        changes["status"] = target.value
    else:
        target = status
    changes["next_check_at"] = schedule.next_check(target, start, end, now)
    return target, changes


def sweep(*, db, tasks, settings: Settings, clock, check) -> JobSummary:
    """Every meeting whose check is due, to a task each (or checked here when Cloud Tasks is off)."""
    from shared.services.jobs import fan_out

    return fan_out("check_status", column="next_check_at", db=db, tasks=tasks, settings=settings, clock=clock,
                   work=lambda row: check(row["id"]))
