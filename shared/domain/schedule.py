"""When background work on a meeting is due: the status checks and recording syncs that follow a meeting."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from shared.web.models import Status
from shared.settings import Settings

log = logging.getLogger(__name__)

PENDING_RECHECK = timedelta(minutes=2)
IDLE_RECHECK = timedelta(hours=6)
ACTIVE_RECHECK = timedelta(minutes=5)
LEAD_TIME = timedelta(minutes=5)
# A sweep hands a due meeting to a task and pushes its due time this far, so a lost task is retried later.
HANDOFF = timedelta(minutes=15)


def next_check(status: Status | str, start: datetime, end: datetime, now: datetime) -> datetime | None:
    """The next status check of a meeting in `status`, or None once nothing can change."""
    status = Status(status)
    if status == Status.PENDING:
        return now + PENDING_RECHECK
    if status in (Status.CREATED, Status.SCHEDULED):
        if now < start - LEAD_TIME:
            # Far ahead: look now and then for changes made in Google, and again just before it starts.
            return min(start - LEAD_TIME, now + IDLE_RECHECK)
        return now + ACTIVE_RECHECK
    if status == Status.IN_PROGRESS:
        return now + ACTIVE_RECHECK
    return None


def first_sync(end: datetime, settings: Settings) -> datetime:
    return end + timedelta(minutes=settings.recording_sync_delay_minutes)


def followup_tasks(meeting: dict[str, Any], settings: Settings) -> list:
    """The Cloud Tasks that follow a meeting's current schedule; their names carry the schedule version."""
    from shared.adapters.cloud_tasks import Task

    end, version = meeting["scheduled_end"], meeting["schedule_version"]
    grace = timedelta(minutes=settings.grace_period_minutes)
    return [
        Task("check_status", meeting["id"], version, end + timedelta(minutes=settings.status_check_delay_minutes), "end"),
        Task("check_status", meeting["id"], version, end + grace + timedelta(minutes=1), "final"),
        Task("sync_recordings", meeting["id"], version, first_sync(end, settings), "sync"),
    ]


def enqueue_followups(meeting: dict[str, Any], *, tasks, settings: Settings) -> int:
    """Enqueue the follow-up tasks; a Cloud Tasks outage is logged and left to the sweeps. Returns how many."""
    if not settings.tasks_queue:
        return 0
    from shared.adapters.cloud_tasks import TaskEnqueueError, TaskTooFarAhead

    enqueued = 0
    for task in followup_tasks(meeting, settings):
        try:
            enqueued += bool(tasks.enqueue(task))
        except TaskTooFarAhead:
            # Cloud Tasks takes at most 30 days ahead; the sweeps reach such meetings through their due columns.
            log.info("%s is too far ahead for a task; left to the sweep", task.purpose,
                     extra={"meeting_id": meeting["id"]})
        except TaskEnqueueError:
            log.warning("could not enqueue %s; the sweep will catch up", task.purpose,
                        extra={"meeting_id": meeting["id"]})
    return enqueued
