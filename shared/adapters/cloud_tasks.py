"""One-off background work per meeting as named Cloud Tasks HTTP tasks.

A task's name is derived from what it does (target, meeting, schedule version, purpose, attempt), so
enqueueing the same work twice is harmless: Cloud Tasks answers ALREADY_EXISTS and `enqueue` returns False.
Cloud Tasks keeps a used name for only about an hour after the task ran or was deleted, so handlers must
still be idempotent and check the meeting's current schedule version.

Failures other than ALREADY_EXISTS raise `TaskEnqueueError` rather than returning False: False would read
as "already scheduled" and silently lose the work. Callers (meeting creation and rescheduling) catch it,
log it, and rely on the periodic Cloud Scheduler sweep to enqueue what is missing. The same holds for
`TaskTooFarAhead`: Cloud Tasks refuses a schedule time more than 720 h ahead, so far-future work is left to
the sweep until it comes within reach.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from shared.domain.schedule import TARGETS, Task  # noqa: F401  (the work this adapter enqueues)

log = logging.getLogger(__name__)

# Cloud Tasks' own limit is 720 h; the margin absorbs clock skew between this instance and Google.
MAX_SCHEDULE_AHEAD = timedelta(hours=719)
ENQUEUE_TIMEOUT_SECONDS = 5.0

_QUEUE_PATH = re.compile(r"projects/[A-Za-z0-9:.-]+/locations/[A-Za-z0-9-]+/queues/[A-Za-z0-9-]{1,100}")
_EMAIL = re.compile(r"[^\s@'\"<>()]+@[^\s@'\"<>()]+")
_URL_SETTINGS = {"check_status": "check_status_url", "sync_recordings": "sync_recordings_url",
                 "deliver_webhooks": "deliver_webhooks_url"}


class TaskEnqueueError(Exception):
    """A task could not be enqueued; the scheduled sweep is the fallback."""


class TaskTooFarAhead(TaskEnqueueError):
    """The task's run time is beyond what Cloud Tasks accepts; the sweep enqueues it later."""




class TaskQueue(Protocol):
    def enqueue(self, task: Task) -> bool:  # or any value with target, name, run_at, body() and meeting_id
        """True when enqueued, False when a task with that name already exists."""
        ...


def _scrub(text: str) -> str:
    # Google's error messages can name the invoker service account; logs carry no emails.
    return _EMAIL.sub("<redacted>", text)


class CloudTasksQueue:
    """Enqueues HTTP tasks on the configured queue, authenticated with OIDC when an invoker is set."""

    def __init__(self, settings: Any, *, timeout: float = ENQUEUE_TIMEOUT_SECONDS, queue_path: str | None = None):
        queue_path = queue_path or getattr(settings, "tasks_queue", None) or ""
        if not _QUEUE_PATH.fullmatch(queue_path):
            raise ValueError("TASKS_QUEUE must look like projects/P/locations/L/queues/Q")
        self.queue_path = queue_path
        self._settings = settings
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def _tasks_client(self):
        with self._lock:
            if self._client is None:
                from google.cloud import tasks_v2

                host = getattr(self._settings, "tasks_emulator_host", None)
                if host:
                    import grpc
                    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

                    transport = CloudTasksGrpcTransport(channel=grpc.insecure_channel(host))
                    self._client = tasks_v2.CloudTasksClient(transport=transport)
                else:
                    self._client = tasks_v2.CloudTasksClient()
            return self._client

    def _url(self, task: Task) -> str:
        url = getattr(self._settings, _URL_SETTINGS[task.target], None)
        if not url:
            raise TaskEnqueueError(f"no URL configured for {task.target} ({_URL_SETTINGS[task.target].upper()})")
        return url

    def enqueue(self, task: Task) -> bool:
        """Create the task; False when its name is already taken, TaskEnqueueError on any other failure."""
        now = datetime.now(timezone.utc)
        run_at = max(task.run_at.astimezone(timezone.utc), now)
        if run_at - now > MAX_SCHEDULE_AHEAD:
            log.info("task %s is too far ahead for Cloud Tasks; left to the sweep", task.name,
                     extra={"meeting_id": task.meeting_id})
            raise TaskTooFarAhead(f"task {task.name} runs more than {MAX_SCHEDULE_AHEAD} ahead")
        url = self._url(task)
        client = self._tasks_client()

        from google.api_core import exceptions, retry
        from google.cloud import tasks_v2

        request = tasks_v2.HttpRequest(
            url=url,
            http_method=tasks_v2.HttpMethod.POST,
            headers={"Content-Type": "application/json"},
            body=json.dumps(task.body(), separators=(",", ":")).encode(),
        )
        invoker = getattr(self._settings, "tasks_invoker_sa", None)
        if invoker:
            request.oidc_token = tasks_v2.OidcToken(service_account_email=invoker, audience=url)
        cloud_task = tasks_v2.Task(
            name=f"{self.queue_path}/tasks/{task.name}", http_request=request, schedule_time=run_at
        )
        # Retrying a create is safe because the name is fixed: a retry after a lost answer gets ALREADY_EXISTS.
        policy = retry.Retry(
            predicate=retry.if_exception_type(exceptions.ServiceUnavailable, exceptions.DeadlineExceeded),
            initial=0.2, maximum=1.0, multiplier=2.0, timeout=self._timeout,
        )
        try:
            client.create_task(parent=self.queue_path, task=cloud_task, retry=policy, timeout=self._timeout)
        except exceptions.AlreadyExists:
            log.info("task %s already exists", task.name, extra={"meeting_id": task.meeting_id})
            return False
        except (exceptions.GoogleAPIError, ValueError) as exc:
            reason = _scrub(f"{type(exc).__name__}: {exc}")
            log.warning("could not enqueue task %s: %s", task.name, reason, extra={"meeting_id": task.meeting_id})
            raise TaskEnqueueError(f"could not enqueue task {task.name}: {reason}") from exc
        log.info("task %s enqueued for %s", task.name, run_at.isoformat(timespec="seconds"),
                 extra={"meeting_id": task.meeting_id})
        return True

    def close(self) -> None:
        """Close the client's channel, if one was opened."""
        with self._lock:
            if self._client is not None:
                self._client.transport.close()
                self._client = None


class NullQueue:
    """Stands in when no queue is configured: nothing is enqueued and the sweep does all the work."""

    def __init__(self) -> None:
        self._warned = False

    def enqueue(self, task: Task) -> bool:
        """Enqueue nothing; False, with one warning per instance."""
        if not self._warned:
            self._warned = True
            log.warning("Cloud Tasks off: TASKS_QUEUE is not set, background work waits for the scheduled sweep")
        return False


def build_queue(settings: Any) -> TaskQueue:
    """The queue the settings describe: Cloud Tasks when TASKS_QUEUE is set, otherwise a NullQueue."""
    if getattr(settings, "tasks_queue", None):
        return CloudTasksQueue(settings)
    return NullQueue()


def build_webhook_queue(settings: Any) -> TaskQueue:
    """The queue of webhook deliveries: WEBHOOK_TASKS_QUEUE, else TASKS_QUEUE, else a NullQueue (sweeps deliver)."""
    queue_path = getattr(settings, "webhook_tasks_queue", None) or getattr(settings, "tasks_queue", None)
    if queue_path:
        return CloudTasksQueue(settings, queue_path=queue_path)
    return NullQueue()
