"""Operator-driven background work: check or sync one meeting now, or backfill a range, through Cloud Tasks.

The work goes the way the product's own follow-ups go: a named task on the queue, delivered to the internal
function with the invoker's OIDC token (locally, the Cloud Tasks emulator of `make run`). The operator needs to
enqueue tasks, not to act as the runtime account.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

KINDS = {"check": "check_status", "sync": "sync_recordings"}


class OpsError(Exception):
    """A problem to report as one line."""


@dataclass(frozen=True)
class Due:
    meeting_id: str
    schedule_version: int
    sync_attempts: int


def _written_down(state: Path, settings_to_set: str) -> dict[str, Any]:
    """What the running local stack (`make run`) wrote down of itself."""
    stack = state / "stack.json"
    if not stack.is_file():
        raise OpsError(f"set {settings_to_set} (terraform outputs), or start the local stack with `make run`")
    return json.loads(stack.read_text())


def tasks_settings(state: Path):
    """Cloud Tasks as the environment names it, else as the running local stack wrote it down."""
    from shared.settings import TasksSettings

    settings = TasksSettings()
    if settings.tasks_queue:
        return settings
    info = _written_down(state, "TASKS_QUEUE, CHECK_STATUS_URL, SYNC_RECORDINGS_URL and TASKS_INVOKER_SA")
    gateway = info["gateway"]
    return TasksSettings(tasks_queue=info["tasks_queue"], tasks_emulator_host=info["cloud_tasks"],
                         check_status_url=f"{gateway}/internal/check-status",
                         sync_recordings_url=f"{gateway}/internal/sync-recordings",
                         tasks_invoker_sa=info.get("tasks_invoker_sa"))


def webhook_tasks_settings(state: Path):
    """The webhook deliveries' queue as the environment names it, else as the running local stack wrote it down."""
    from shared.settings import TasksSettings

    settings = TasksSettings()
    if settings.webhook_tasks_queue or settings.tasks_queue:
        return settings
    info = _written_down(state, "WEBHOOK_TASKS_QUEUE, DELIVER_WEBHOOKS_URL and TASKS_INVOKER_SA")
    if not info.get("webhook_tasks_queue"):
        raise OpsError("the running local stack does not name its webhook queue: restart it (`make run`)")
    return TasksSettings(webhook_tasks_queue=info["webhook_tasks_queue"], tasks_emulator_host=info["cloud_tasks"],
                         deliver_webhooks_url=f"{info['gateway']}/internal/deliver-webhooks",
                         tasks_invoker_sa=info.get("tasks_invoker_sa"))


def meetings_to_do(db, *, meeting_id: str | None = None, start: datetime | None = None,
                   end: datetime | None = None) -> list[Due]:
    """One meeting by id, or the meetings whose slot starts in [start, end)."""
    from shared.adapters.postgres import repository as repo

    with db.transaction() as cur:
        if meeting_id is not None:
            import uuid

            try:
                uuid.UUID(meeting_id)
            except ValueError:
                raise OpsError(f"{meeting_id!r} is not a meeting id") from None
            meeting = repo.get_meeting(cur, meeting_id)
            if meeting is None:
                raise OpsError(f"no meeting has id {meeting_id}")
            return [Due(meeting.id, meeting.schedule_version, meeting.sync_attempts)]
        if start is None or end is None:
            raise OpsError("give a meeting id, or both ends of the range")
        rows = repo.scheduled_between(cur, start, end)
    return [Due(r["id"], r["schedule_version"], r["sync_attempts"]) for r in rows]


def enqueue(kind: str, todo: list[Due], *, queue, progress: bool = True) -> dict[str, int]:
    """A task per meeting, named for this run so it is new; returns counts. Shows a progress bar on long work."""
    from tqdm import tqdm

    from shared.adapters.cloud_tasks import TaskEnqueueError
    from shared.domain.schedule import Task

    target = KINDS[kind]
    purpose = f"ops-{int(time.time())}"
    now = datetime.now(timezone.utc)
    counts = {"enqueued": 0, "already": 0, "failed": 0}
    for due in tqdm(todo, desc=f"{kind} tasks", unit="meeting", disable=not progress or len(todo) < 2):
        task = Task(target, due.meeting_id, due.schedule_version, now, purpose,
                    attempt=due.sync_attempts if target == "sync_recordings" else 0)
        try:
            counts["enqueued" if queue.enqueue(task) else "already"] += 1
        except TaskEnqueueError:
            counts["failed"] += 1
    return counts


def parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise OpsError(f"{value!r} is not an RFC 3339 date-time such as 2026-12-01T00:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def stack_urls(state: Path) -> dict[str, Any]:
    stack = state / "stack.json"
    if not stack.is_file():
        raise OpsError("the local stack is not running (no stack.json): start it with `make run`")
    return json.loads(stack.read_text())
