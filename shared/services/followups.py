"""Handing a meeting's follow-up work to Cloud Tasks; the sweeps are the fallback for anything not enqueued."""
from __future__ import annotations

import contextvars
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from shared.domain.meeting import Meeting
from shared.domain.schedule import Task, followup_tasks
from shared.settings import Settings

log = logging.getLogger(__name__)


def enqueue(task: Task, *, tasks, settings: Settings) -> bool:
    """Enqueue one task; an outage or a too-distant run time is logged and left to the sweeps."""
    if not settings.tasks_queue:
        return False
    from shared.adapters.cloud_tasks import TaskEnqueueError, TaskTooFarAhead

    try:
        return bool(tasks.enqueue(task))
    except TaskTooFarAhead:
        # Cloud Tasks takes at most 30 days ahead; the sweeps reach such meetings through their due columns.
        log.info("%s is too far ahead for a task; left to the sweep", task.purpose,
                 extra={"meeting_id": task.meeting_id})
    except TaskEnqueueError:
        log.warning("could not enqueue %s; the sweep will catch up", task.purpose,
                    extra={"meeting_id": task.meeting_id})
    return False


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _senders() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="followups")
        return _pool


def enqueue_followups(meeting: Meeting, *, tasks, settings: Settings) -> int:
    """Enqueue the status checks and the recording sync that follow the meeting's schedule; returns how many.

    The tasks go out at once, not one after another: a create or a reschedule waits for one Cloud Tasks call, not
    for three in a row.
    """
    planned = followup_tasks(meeting, settings)
    if not settings.tasks_queue:
        return 0
    # Each in a copy of this request's context, so what they log carries the request's trace.
    sent = [_senders().submit(contextvars.copy_context().run, enqueue, task, tasks=tasks, settings=settings)
            for task in planned]
    return sum(bool(future.result()) for future in sent)
