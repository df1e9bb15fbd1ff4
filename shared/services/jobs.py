"""How internal functions run their work: task deliveries deduplicated, job runs recorded, sweeps leased."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from shared.domain.errors import Conflict, DomainError, InvalidInput
from shared.web.models import InternalRequest, JobSummary

log = logging.getLogger(__name__)

SWEEP_LEASE = timedelta(minutes=10)


def run(kind: str, request: InternalRequest, *, task_name: str | None, ledger,
        one: Callable[[str, int | None, int], JobSummary], sweep: Callable[[], JobSummary]) -> JobSummary:
    """Run one meeting's job (a Cloud Task) or a sweep (Cloud Scheduler) under the ledger's guarantees."""
    if request.meeting_id is None:
        return _sweep(kind, ledger=ledger, sweep=sweep)
    key = _delivery_key(kind, request, task_name)
    if key:
        from shared.adapters.firestore import Delivery

        state = ledger.begin_delivery(key)
        if state == Delivery.DONE:
            return JobSummary(job=kind, mode="meeting", outcome="duplicate", meeting_id=request.meeting_id,
                              detail="this task was already delivered and done")
        if state == Delivery.RUNNING:
            raise Conflict("This task is being delivered right now; it will be retried.")
    run_id = ledger.start_job(kind, meeting_id=request.meeting_id, trigger="task" if key else "direct")
    try:
        summary = one(request.meeting_id, request.schedule_version, request.attempt)
    except Exception as exc:
        if key:
            ledger.abort_delivery(key)
        ledger.end_job(run_id, outcome="error", error=_describe(exc))
        raise
    if key:
        ledger.finish_delivery(key, outcome={"outcome": summary.outcome,
                                             "status": summary.status.value if summary.status else None})
    _record_end(ledger, run_id, summary)
    return summary


def _delivery_key(kind: str, request: InternalRequest, task_name: str | None) -> str | None:
    """The ledger key of a task delivery (None for a direct call); InvalidInput when the name is not the body's.

    Dedupe is keyed on what the task does: a name copied onto another meeting's (or another version's) body must
    not mark the real task done, so the name is rebuilt from the body and compared, never trusted as sent.
    """
    if not task_name:
        return None
    from shared.domain.schedule import Task

    version = request.schedule_version
    try:
        # run_at is not part of the name: any aware instant rebuilds it.
        expected = Task(kind, request.meeting_id or "", -1 if version is None else version,
                        datetime.now(timezone.utc), request.purpose or "", attempt=request.attempt).name
    except ValueError:
        expected = None
    if expected != task_name:
        raise InvalidInput.field("X-CloudTasks-TaskName", "is not the name of the task this body describes "
                                 "(meeting_id, schedule_version, purpose and attempt)")
    return f"{kind}/{task_name}"


def _sweep(kind: str, *, ledger, sweep: Callable[[], JobSummary]) -> JobSummary:
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


def _record_end(ledger, run_id: str, summary: JobSummary) -> None:
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
