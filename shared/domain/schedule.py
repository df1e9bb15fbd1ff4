"""When background work on a meeting is due: the status checks and recording syncs that follow a meeting."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain.meeting import Meeting, Status
from shared.settings import Settings

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


TARGETS = ("check_status", "sync_recordings")
_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,500}")


@dataclass(frozen=True)
class Task:
    """One unit of background work for one meeting, due at `run_at`."""

    target: str
    meeting_id: str
    schedule_version: int
    run_at: datetime
    purpose: str
    attempt: int = 0

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"unknown task target {self.target!r}")
        if self.run_at.tzinfo is None or self.run_at.utcoffset() is None:
            raise ValueError("run_at must be timezone-aware")
        if self.schedule_version < 0 or self.attempt < 0:
            raise ValueError("schedule_version and attempt must not be negative")
        if not _TASK_ID.fullmatch(self.name):
            raise ValueError(f"invalid task name {self.name!r}")

    @property
    def name(self) -> str:
        """The deterministic Cloud Tasks id of this work."""
        name = f"{self.target}-{self.meeting_id}-v{self.schedule_version}-{self.purpose}"
        return f"{name}-a{self.attempt}" if self.attempt > 0 else name

    def body(self) -> dict[str, Any]:
        """The JSON body the target receives."""
        return {
            "meeting_id": self.meeting_id,
            "schedule_version": self.schedule_version,
            "purpose": self.purpose,
            "attempt": self.attempt,
        }


def followup_tasks(meeting: Meeting, settings: Settings) -> list[Task]:
    """The tasks that follow a meeting's current schedule; their names carry the schedule version."""
    end, version = meeting.scheduled_end, meeting.schedule_version
    grace = timedelta(minutes=settings.grace_period_minutes)
    return [
        Task("check_status", meeting.id, version, end + timedelta(minutes=settings.status_check_delay_minutes), "end"),
        Task("check_status", meeting.id, version, end + grace + timedelta(minutes=1), "final"),
        Task("sync_recordings", meeting.id, version, first_sync(end, settings), "sync"),
    ]
