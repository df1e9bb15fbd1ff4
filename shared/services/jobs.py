"""How internal functions run their work: task deliveries deduplicated, job runs recorded, sweeps leased."""
from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TypeVar

from shared.domain.errors import Conflict, DomainError, InvalidInput
from shared.web.models import InternalRequest, JobSummary

log = logging.getLogger(__name__)

SWEEP_LEASE = timedelta(minutes=10)
S = TypeVar("S")


def run(kind: str, request: InternalRequest, *, task_name: str | None, ledger,
        one: Callable[[str, int | None, int], JobSummary], sweep: Callable[[], JobSummary]) -> JobSummary:
    """Run one meeting's job (a Cloud Task) or a sweep (Cloud Scheduler) under the ledger's guarantees."""
    if request.meeting_id is None:
        return _sweep(kind, ledger=ledger, sweep=sweep)
    meeting_id = request.meeting_id
    name = checked_task_name(task_name, _meeting_task_name(kind, request),
                             describes="meeting_id, schedule_version, purpose and attempt")
    return run_task(kind, task_name=name, ledger=ledger, meeting_id=meeting_id,
                    work=lambda: one(meeting_id, request.schedule_version, request.attempt),
                    duplicate=lambda: JobSummary(job=kind, mode="meeting", outcome="duplicate", meeting_id=meeting_id,
                                                 detail="this task was already delivered and done"))


def run_task(kind: str, *, task_name: str | None, ledger, work: Callable[[], S], duplicate: Callable[[], S],
             meeting_id: str | None = None) -> S:
    """One task's work, done once per task name however often Cloud Tasks delivers it; the run is recorded.

    The summary `work` returns needs `outcome`, `counts` and `detail` (and may have a `status`). `task_name` must
    have passed `checked_task_name`: the ledger trusts it.
    """
    key = f"{kind}/{task_name}" if task_name else None
    if key:
        from shared.adapters.firestore import Delivery

        state = ledger.begin_delivery(key)
        if state == Delivery.DONE:
            return duplicate()
        if state == Delivery.RUNNING:
            raise Conflict("This task is being delivered right now; it will be retried.")
    run_id = ledger.start_job(kind, meeting_id=meeting_id, trigger="task" if key else "direct")
    try:
        summary = work()
    except Exception as exc:
        if key:
            ledger.abort_delivery(key)
        ledger.end_job(run_id, outcome="error", error=_describe(exc))
        raise
    if key:
        status = getattr(summary, "status", None)
        ledger.finish_delivery(key, outcome={"outcome": getattr(summary, "outcome", None),
                                             "status": getattr(status, "value", status)})
    _record_end(ledger, run_id, summary)
    return summary


_TAG = re.compile(r"[A-Za-z0-9_-]{1,100}")


def checked_task_name(task_name: str | None, expected: str | None, *, describes: str,
                      tagged: bool = False) -> str | None:
    """A delivery's task name once it is the one its body's work is enqueued under (with `tagged`, optionally
    followed by `-<tag>`); None for a direct call; InvalidInput otherwise.

    Dedupe is keyed on what the task does: a name copied onto another body (another meeting, another version)
    must not mark the real task done, so the name is rebuilt from the body and compared, never trusted as sent.
    """
    if not task_name:
        return None
    if expected is not None and (task_name == expected or (
            tagged and task_name.startswith(expected + "-") and _TAG.fullmatch(task_name[len(expected) + 1:]))):
        return task_name
    raise InvalidInput.field("X-CloudTasks-TaskName", f"is not the name of the task this body describes ({describes})")


def _meeting_task_name(kind: str, request: InternalRequest) -> str | None:
    from shared.domain.schedule import Task

    version = request.schedule_version
    try:
        # run_at is not part of the name: any aware instant rebuilds it.
        return Task(kind, request.meeting_id or "", -1 if version is None else version, datetime.now(timezone.utc),
                    request.purpose or "", attempt=request.attempt).name
    except ValueError:
        return None


def run_sweep(kind: str, *, ledger, sweep: Callable[[], S]) -> S | JobSummary:
    """A sweep under the ledger's lease: an overlapping one is skipped."""
    return _sweep(kind, ledger=ledger, sweep=sweep)


def _sweep(kind: str, *, ledger, sweep: Callable[[], S]) -> S | JobSummary:
    holder = uuid.uuid4().hex
    lease = f"{kind}-sweep"
    if not ledger.acquire_lease(lease, holder, ttl=SWEEP_LEASE):
        return JobSummary(job=kind, mode="sweep", outcome="skipped", detail="another sweep is running")
    run_id = ledger.start_job(kind, trigger="sweep")
    try:
        summary = sweep()
    except Exception as exc:
        ledger.end_job(run_id, outcome="error", error=_describe(exc))
        raise
    finally:
        ledger.release_lease(lease, holder)
    _record_end(ledger, run_id, summary)
    return summary


def _record_end(ledger, run_id: str, summary) -> None:
    error = summary.detail if summary.outcome == "error" else None
    ledger.end_job(run_id, outcome=summary.outcome if summary.outcome in ("ok", "skipped", "error") else "ok",
                   counts=summary.counts, error=error)


def fan_out(kind: str, *, column: str, db, tasks, settings, clock, work: Callable[[dict], object]) -> JobSummary:
    """A sweep: hand every meeting whose `column` is due to a Cloud Task, or do `work` here when Tasks is off.

    Handed-out rows get their due time pushed by `schedule.HANDOFF`, so a lost task is retried by a later sweep;
    task names carry the due time, so overlapping sweeps cannot enqueue one meeting twice.
    """
    from shared.adapters.cloud_tasks import Task, TaskEnqueueError
    from shared.adapters.postgres import repository as repo
    from shared.domain.schedule import HANDOFF

    now = clock()
    with db.transaction() as cur:
        due = repo.due_for(cur, column, now, settings.sweep_batch_size)
        if settings.tasks_queue and due:
            repo.postpone(cur, [d["id"] for d in due], column, now + HANDOFF)
    counts = {"due": len(due), "enqueued": 0, "done": 0, "errors": 0}
    for row in due:
        if settings.tasks_queue:
            task = Task(kind, row["id"], row["schedule_version"], now, f"sweep-{int(row['due_at'].timestamp())}",
                        attempt=row["sync_attempts"] if column == "next_sync_at" else 0)
            try:
                counts["enqueued"] += bool(tasks.enqueue(task))
            except TaskEnqueueError:
                counts["errors"] += 1
            continue
        try:
            work(row)
            counts["done"] += 1
        except Exception:  # one meeting's failure must not stop the sweep; it stays due
            log.exception("%s failed for one meeting", kind, extra={"meeting_id": row["id"]})
            counts["errors"] += 1
    return JobSummary(job=kind, mode="sweep", outcome="error" if counts["errors"] else "ok", counts=counts)


def _describe(exc: BaseException) -> str:
    # Domain details are written for callers and carry no personal data; anything else is named by type only.
    return f"{type(exc).__name__}: {exc.detail}" if isinstance(exc, DomainError) else type(exc).__name__
