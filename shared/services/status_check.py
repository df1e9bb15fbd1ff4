"""check_status: reconcile a meeting with Google Calendar and Meet, or sweep the due ones."""
from __future__ import annotations

import logging
from datetime import timedelta

from shared.adapters.postgres import repository as repo
from shared.domain import rules
from shared.domain.errors import NotFound
from shared.domain.lifecycle import FINAL
from shared.domain.meeting import ConferenceRecord, Meeting, Status
from shared.services import followups, rooms
from shared.services.meetings import finish_creation, valid_id
from shared.services.transitions import change
from shared.settings import Settings
from shared.web.models import JobSummary

log = logging.getLogger(__name__)


def check_meeting(meeting_id: str, *, schedule_version: int | None, db, calendar, meet, tasks, settings: Settings,
                  clock) -> JobSummary:
    """Bring one meeting's status in line with Google; a task for an outdated schedule does nothing."""
    meeting_id = valid_id(meeting_id)
    now = clock()
    moved: Meeting | None = None
    with db.transaction() as cur:
        meeting = repo.get_meeting(cur, meeting_id, lock=True)
        if meeting is None:
            raise NotFound("No meeting has this id.")
        summary = JobSummary(job="check_status", mode="meeting", outcome="ok", meeting_id=meeting_id,
                             status=meeting.status)
        if schedule_version is not None and schedule_version != meeting.schedule_version:
            return summary.model_copy(update={"outcome": "skipped", "detail": "the meeting was rescheduled since"})
        if meeting.status in FINAL or meeting.status == Status.FAILED:
            change(cur, meeting, next_check_at=None, last_checked_at=now)
            return summary.model_copy(update={"outcome": "skipped", "detail": f"the meeting is {meeting.status.value}"})
        if meeting.status == Status.PENDING:
            # Left half-created (a crash, or Google down during the create): finish it, or fail it.
            done = finish_creation(cur, meeting, calendar=calendar, settings=settings, now=now, meet=meet)
            done = change(cur, done, last_checked_at=now)
            if done.status != Status.FAILED:
                moved = done
            summary = summary.model_copy(update={
                "status": done.status, "detail": done.failure_reason if done.status == Status.FAILED else None})
        else:
            event = calendar.get_event(meeting)
            live, records, space = False, list[ConferenceRecord](), None
            if event is not None and not event.cancelled:
                code = meeting.meeting_code
                if meeting.conference_status == "pending" and event.conference.status != "pending":
                    code = event.conference.code
                if code:
                    # One spaces.get says whether a conference is live and what the room's settings are now.
                    space = meet.space(meeting, code)
                    live = bool(space and space.live)
                    records = [] if live else meet.records(meeting, code)
            decision = rules.reconcile(meeting, event, live=live, records=records, now=now,
                                       grace=timedelta(minutes=settings.grace_period_minutes),
                                       sync_delay=timedelta(minutes=settings.recording_sync_delay_minutes))
            checked = change(cur, meeting, to=decision.target, **decision.changes)
            # A policy not applied yet is applied now; one someone changed in Meet since is applied again.
            checked = rooms.apply_policy(cur, checked, meet=meet, now=now, space=space)
            if decision.rescheduled:
                moved = checked
            summary = summary.model_copy(update={"status": checked.status})
    if moved is not None:
        followups.enqueue_followups(moved, tasks=tasks, settings=settings)
    log.info("status checked", extra={"meeting_id": meeting_id, "status": summary.status.value if summary.status
                                      else None})
    return summary


def sweep(*, db, tasks, settings: Settings, clock, check) -> JobSummary:
    """Every meeting whose check is due, to a task each (or checked here when Cloud Tasks is off)."""
    from shared.services.jobs import fan_out

    return fan_out("check_status", column="next_check_at", db=db, tasks=tasks, settings=settings, clock=clock,
                   work=lambda row: check(row["id"]))
