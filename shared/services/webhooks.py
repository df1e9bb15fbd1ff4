"""Webhook use cases: a client's endpoints (create, list, read, delete, rotate the secret), their deliveries (list,
retry), every client's as an operator sees them (`python -m ops webhooks`), and delivering: one attempt of one
delivery, the hand-off of new deliveries to Cloud Tasks, and the sweep.

Events themselves are recorded by the transition point (shared.services.events) in the transaction of the change.
Each delivery attempt is one Cloud Task, named after the delivery and the attempt's number; the attempt is claimed
in PostgreSQL (the delivery's attempt count must still be the one the task expects), so a task delivered twice, a
sweep racing a task or a manual retry racing either sends at most once per attempt number.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, get_args

from shared.adapters.postgres import webhooks as repo
from shared.domain.errors import Conflict, InvalidInput, NotFound, Unavailable
from shared.domain.events import EventType
from shared.domain.principal import Principal
from shared.domain.webhooks import DeliveryTask, UnsafeTarget, after_attempt, new_secret, signed_headers
from shared.services import page_tokens
from shared.settings import Settings, TasksSettings
from shared.web.webhook_models import (
    DeliveryStatus,
    DeliverySummary,
    WebhookDeliveryOut,
    WebhookDeliveryPage,
    WebhookDeliveryQuery,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointOut,
    WebhookSecret,
)

if TYPE_CHECKING:  # pg8000 and cryptography load on first use, not with the module
    from shared.adapters.postgres.db import Database
    from shared.adapters.secret_box import SecretBox
    from shared.adapters.webhook_sender import WebhookSender

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

ROTATION_GRACE = timedelta(hours=24)
# Rotating again within the grace keeps the earlier secrets signing too (a client that lost a rotation's answer
# still verifies with the secret it has), up to this many old ones.
OLD_SECRETS_KEPT = 5
# An attempt that never reports back (its instance died mid-send) is due again after this: the sweep retries it.
ATTEMPT_LEASE = timedelta(minutes=2)
# The normal path's task gets this long to start an attempt before the sweep considers it lost.
SWEEP_GRACE = timedelta(minutes=1)
# A sweep that hands a delivery to a task looks at it again only after this.
HANDOFF = timedelta(minutes=5)
# Every change of a meeting writes one delivery per endpoint of its client, under the meeting's row lock.
MAX_ENDPOINTS = 20
# With Cloud Tasks off the sweep sends itself, within this much of the function's time.
INLINE_BUDGET_SECONDS = 120.0
_OFF = "Webhooks are off on this deployment: WEBHOOK_SECRETS_KEY is not set."


def _valid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound(f"No {what} has this id.") from None


def _box(box: SecretBox | None) -> SecretBox:
    if box is None:
        raise Unavailable(_OFF)
    return box


def _endpoint_out(row: dict) -> WebhookEndpointOut:
    return WebhookEndpointOut(**{k: row[k] for k in WebhookEndpointOut.model_fields})


def _delivery_out(row: dict) -> WebhookDeliveryOut:
    return WebhookDeliveryOut(**{k: row[k] for k in WebhookDeliveryOut.model_fields})


def _owned(cur, endpoint_id: str, principal: Principal, *, lock: bool = False) -> dict:
    """The principal's own endpoint: another client's answers 404, like an unknown one (admins included)."""
    endpoint = repo.get_endpoint(cur, _valid(endpoint_id, "webhook endpoint"), principal.client_id, lock=lock)
    if endpoint is None:
        raise NotFound("No webhook endpoint has this id.")
    return endpoint


# --- endpoints -------------------------------------------------------------------------------------------------

def create_endpoint(data: WebhookEndpointCreate, *, principal: Principal, db: Database, box: SecretBox | None,
                    sender: WebhookSender) -> WebhookEndpointCreated:
    """Register a receiver URL; its signing secret is in this answer and never shown again."""
    box = _box(box)
    try:
        sender.check(data.url)
    except UnsafeTarget as exc:
        raise InvalidInput.field("url", str(exc)) from None
    wanted = set(data.event_types or EventType)
    types = [t.value for t in EventType if t in wanted]
    endpoint_id, secret = str(uuid.uuid4()), new_secret()
    with db.transaction() as cur:
        if repo.count_endpoints(cur, principal.client_id) >= MAX_ENDPOINTS:
            raise Conflict(f"A client has at most {MAX_ENDPOINTS} webhook endpoints; delete one first.")
        row = repo.insert_endpoint(cur, endpoint_id=endpoint_id, client_id=principal.client_id, url=data.url,
                                   event_types=types, description=data.description,
                                   ciphertext=box.encrypt(secret, context=endpoint_id))
    log.info("webhook endpoint created", extra={"client": principal.client_id})
    return WebhookEndpointCreated(**_endpoint_out(row).model_dump(), secret=secret)


def list_endpoints(*, principal: Principal, db: Database) -> WebhookEndpointList:
    with db.transaction() as cur:
        return WebhookEndpointList(items=[_endpoint_out(r) for r in repo.list_endpoints(cur, principal.client_id)])


def get_endpoint(endpoint_id: str, *, principal: Principal, db: Database) -> WebhookEndpointOut:
    with db.transaction() as cur:
        return _endpoint_out(_owned(cur, endpoint_id, principal))


def delete_endpoint(endpoint_id: str, *, principal: Principal, db: Database) -> None:
    """Delete the endpoint with its secrets and deliveries; tasks still queued for it find nothing and stop."""
    with db.transaction() as cur:
        if not repo.delete_endpoint(cur, _valid(endpoint_id, "webhook endpoint"), principal.client_id):
            raise NotFound("No webhook endpoint has this id.")
    log.info("webhook endpoint deleted", extra={"client": principal.client_id})


def rotate_secret(endpoint_id: str, *, principal: Principal, db: Database, box: SecretBox | None,
                  clock: Clock) -> WebhookSecret:
    """A new signing secret; for 24 h every delivery is signed with it and with the one it replaces."""
    box = _box(box)
    secret = new_secret()
    with db.transaction() as cur:
        endpoint = _owned(cur, endpoint_id, principal, lock=True)
        repo.rotate_secret(cur, endpoint["id"], box.encrypt(secret, context=endpoint["id"]), now=clock(),
                           grace=ROTATION_GRACE, keep=OLD_SECRETS_KEPT)
    log.info("webhook secret rotated", extra={"client": principal.client_id})
    return WebhookSecret(secret=secret)


# --- deliveries as a client sees them --------------------------------------------------------------------------

def list_deliveries(endpoint_id: str, query: WebhookDeliveryQuery, *, principal: Principal,
                    db: Database, settings: Settings) -> WebhookDeliveryPage:
    """A page of the endpoint's deliveries, newest first; `next_page_token` continues it (signed, as the meetings'
    are)."""
    after = page_tokens.decode(query.page_token, settings) if query.page_token else None
    with db.transaction() as cur:
        endpoint = _owned(cur, endpoint_id, principal)
        rows = repo.list_deliveries(cur, endpoint["id"], after=after, limit=query.page_size + 1)
    page, more = rows[: query.page_size], len(rows) > query.page_size
    return WebhookDeliveryPage(items=[_delivery_out(r) for r in page],
                               next_page_token=page_tokens.encode(page[-1]["created_at"], page[-1]["id"], settings)
                               if more else None)


def retry_delivery(endpoint_id: str, delivery_id: str, *, principal: Principal, db: Database, tasks,
                   settings: Settings, clock: Clock, send: Callable[[str, int], DeliverySummary]) -> WebhookDeliveryOut:
    """Send a delivery again now, with the same webhook-id; with Cloud Tasks off (or down) it is sent right here."""
    def find(cur) -> tuple[dict, dict | None]:
        endpoint = _owned(cur, endpoint_id, principal)
        return endpoint, repo.get_delivery(cur, _valid(delivery_id, "delivery"), endpoint_id=endpoint["id"], lock=True)

    task, outcome = _requeue(find, missing="No delivery of this endpoint has this id.", db=db, tasks=tasks,
                             settings=settings, clock=clock)
    if outcome in ("off", "failed"):
        send(task.delivery_id, task.attempt)
    with db.transaction() as cur:
        sent = repo.get_delivery(cur, task.delivery_id)
    assert sent is not None  # deliveries are never deleted
    return _delivery_out(sent)


def _requeue(find: Callable[..., tuple[dict | None, dict | None]], *, missing: str, db: Database, tasks,
             settings: TasksSettings, clock: Clock) -> tuple[DeliveryTask, str]:
    """A manual retry: the delivery `find` locks is pending and due again now, its next attempt handed to a task of
    its own (tagged with the time, so it is new); returns the task and how the enqueue went."""
    now = clock()
    with db.transaction() as cur:
        endpoint, delivery = find(cur)
        if endpoint is None or delivery is None:
            raise NotFound(missing)
        if endpoint["disabled_at"] is not None:
            raise Conflict("The endpoint is disabled (its receiver answered 410 Gone): nothing more is sent to it.")
        repo.reopen(cur, delivery["id"], now=now)
    task = DeliveryTask(delivery["id"], delivery["attempts"] + 1, now, meeting_id=delivery["meeting_id"],
                        tag=f"m{int(now.timestamp() * 1000)}")
    return task, _enqueue(task, tasks=tasks, settings=settings)


# --- deliveries as an operator sees them (every client's) -------------------------------------------------------

DELIVERY_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)


def all_endpoints(*, db: Database) -> list[dict]:
    """Every client's endpoints, newest first, with the client's name; never a secret."""
    with db.transaction() as cur:
        return repo.all_endpoints(cur)


def recent_deliveries(*, db: Database, endpoint_id: str | None = None, status: str | None = None,
                      limit: int = 20) -> list[dict]:
    """The newest deliveries of every endpoint, or of one, optionally in one status."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidInput.field("status", f"one of {', '.join(DELIVERY_STATUSES)}")
    with db.transaction() as cur:
        if endpoint_id is not None:
            endpoint_id = _valid(endpoint_id, "webhook endpoint")
            if not repo.all_endpoints(cur, endpoint_id=endpoint_id):
                raise NotFound("No webhook endpoint has this id.")
        return repo.recent_deliveries(cur, endpoint_id=endpoint_id, status=status, limit=limit)


def requeue_delivery(delivery_id: str, *, db: Database, tasks, settings: TasksSettings,
                     clock: Clock) -> tuple[DeliveryTask, str]:
    """An operator's retry of any client's delivery, queued as the API's retry queues it: the task of its next
    attempt and how the enqueue went (enqueued | exists | failed). Failed leaves the delivery pending and due now,
    so the sweep sends it; with no queue configured nothing is changed (an operator's machine sends no webhook)."""
    if not queue_on(settings):
        raise Unavailable("Cloud Tasks is not configured: set WEBHOOK_TASKS_QUEUE (or TASKS_QUEUE).")

    def find(cur) -> tuple[dict | None, dict | None]:
        delivery = repo.get_delivery(cur, _valid(delivery_id, "delivery"), lock=True)
        if delivery is None:
            return None, None
        return next(iter(repo.all_endpoints(cur, endpoint_id=delivery["endpoint_id"])), None), delivery

    task, outcome = _requeue(find, missing="No delivery has this id.", db=db, tasks=tasks, settings=settings,
                             clock=clock)
    log.info("webhook delivery retried by an operator: %s", outcome, extra={"meeting_id": task.meeting_id})
    return task, outcome


# --- delivering --------------------------------------------------------------------------------------------------

def queue_on(settings: TasksSettings) -> bool:
    return bool(settings.webhook_tasks_queue or settings.tasks_queue)


def _enqueue(task: DeliveryTask, *, tasks, settings: TasksSettings) -> str:
    """enqueued | exists (that attempt's task is there already) | off (no queue) | failed (the sweep retries)."""
    if not queue_on(settings):
        return "off"
    from shared.adapters.cloud_tasks import TaskEnqueueError

    try:
        return "enqueued" if tasks.enqueue(task) else "exists"
    except TaskEnqueueError:
        log.warning("could not enqueue a webhook delivery; the sweep will", extra={"meeting_id": task.meeting_id})
        return "failed"


def enqueue_deliveries(new: list[tuple[str, str]], *, tasks, settings: Settings, clock: Clock) -> int:
    """Hand the deliveries a transaction just committed to Cloud Tasks, first attempt now; returns how many."""
    now = clock()
    outcomes = [_enqueue(DeliveryTask(delivery_id, 1, now, meeting_id=meeting_id), tasks=tasks, settings=settings)
                for delivery_id, meeting_id in new]
    return outcomes.count("enqueued")


def task_name_of(delivery_id: str, attempt: int) -> str | None:
    """The name an attempt of a delivery is enqueued under (a sweep or a manual retry adds a `-tag`); None when no
    task could carry these values."""
    try:
        return DeliveryTask(delivery_id, attempt, datetime.now(timezone.utc)).name
    except ValueError:
        return None


def deliver(delivery_id: str, attempt: int, *, db: Database, box: SecretBox | None, sender: WebhookSender, tasks,
            settings: Settings, clock: Clock) -> DeliverySummary:
    """Attempt number `attempt` of one delivery: claimed, signed, sent, its outcome recorded, the next one queued."""
    summary = DeliverySummary(mode="delivery", outcome="ok", delivery_id=delivery_id)
    try:
        delivery_id = str(uuid.UUID(delivery_id))
    except ValueError:
        return summary.model_copy(update={"outcome": "skipped", "detail": "not a delivery id"})
    box = _box(box)
    now = clock()
    with db.transaction() as cur:
        found = repo.delivery_to_send(cur, delivery_id)
        if found is None:
            return summary.model_copy(update={"outcome": "skipped",
                                              "detail": "no such delivery (its endpoint was deleted)"})
        summary = summary.model_copy(update={"meeting_id": found["meeting_id"], "status": found["status"],
                                             "attempts": found["attempts"]})
        if found["status"] != "pending" or found["attempts"] != attempt - 1:
            return summary.model_copy(update={"outcome": "duplicate", "detail": "this attempt was already made"})
        if found["disabled_at"] is not None:
            repo.fail_delivery(cur, delivery_id, "the endpoint is disabled")
            return summary.model_copy(update={"outcome": "skipped", "status": "failed",
                                              "detail": "the endpoint is disabled"})
        number = repo.claim_attempt(cur, delivery_id, now=now, lease=ATTEMPT_LEASE)
        ciphertexts = repo.signing_secrets(cur, found["endpoint_id"], now=now)
    result = _send(found, ciphertexts, box=box, sender=sender, clock=clock)
    done = clock()
    outcome = after_attempt(number, result.status_code, now=done, schedule=settings.webhook_retry_schedule_seconds)
    with db.transaction() as cur:
        recorded = repo.record_attempt(cur, delivery_id, attempt=number, status=outcome.status,
                                       status_code=result.status_code, error=result.error,
                                       next_attempt_at=outcome.next_attempt_at)
        if recorded and outcome.disable_endpoint:
            repo.disable_endpoint(cur, found["endpoint_id"], now=done)
    if recorded and outcome.next_attempt_at is not None:
        _enqueue(DeliveryTask(delivery_id, number + 1, outcome.next_attempt_at, meeting_id=found["meeting_id"]),
                 tasks=tasks, settings=settings)
    log.info("webhook %s attempt %d: %s", found["type"], number,
             result.status_code if result.status_code is not None else result.error,
             extra={"meeting_id": found["meeting_id"], "status": outcome.status})
    return summary.model_copy(update={"status": outcome.status, "attempts": number,
                                      "last_status_code": result.status_code, "detail": result.error})


def _send(found: dict, ciphertexts: list[bytes], *, box: SecretBox, sender: WebhookSender, clock: Clock):
    from shared.adapters.secret_box import SecretBoxError
    from shared.adapters.webhook_sender import SendResult

    try:
        secrets = [box.decrypt(c, context=found["endpoint_id"]) for c in ciphertexts]
    except SecretBoxError as exc:
        log.error("cannot decrypt a webhook signing secret: %s", exc, extra={"meeting_id": found["meeting_id"]})
        return SendResult(None, "the signing secret could not be decrypted")
    headers = signed_headers(secrets, found["event_id"], int(clock().timestamp()), found["body"])
    return sender.send(found["url"], headers, found["body"].encode())


def sweep(*, db: Database, tasks, settings: Settings, clock: Clock,
          deliver_one: Callable[[str, int], DeliverySummary]) -> DeliverySummary:
    """Pending deliveries whose attempt is overdue (its task was never enqueued, or got lost): to a task each, or
    sent here when Cloud Tasks is off."""
    now = clock()
    on = queue_on(settings)
    with db.transaction() as cur:
        due = repo.due_deliveries(cur, before=now - (SWEEP_GRACE if on else timedelta(0)),
                                  limit=settings.sweep_batch_size)
        if on and due:
            repo.postpone(cur, [d["id"] for d in due], now + HANDOFF)
    counts = {"due": len(due), "enqueued": 0, "done": 0, "errors": 0}
    started = time.monotonic()
    for row in due:
        if on:
            # The tag carries the due time: overlapping sweeps name the same task, a later sweep a new one.
            task = DeliveryTask(row["id"], row["attempts"] + 1, now, meeting_id=row["meeting_id"],
                                tag=f"s{int(row['due_at'].astimezone(timezone.utc).timestamp())}")
            outcome = _enqueue(task, tasks=tasks, settings=settings)
            counts["enqueued"] += outcome == "enqueued"
            counts["errors"] += outcome == "failed"
            continue
        if time.monotonic() - started > INLINE_BUDGET_SECONDS:
            break  # the rest stays due for the next sweep
        try:
            deliver_one(row["id"], row["attempts"] + 1)
            counts["done"] += 1
        except Exception:  # one delivery's failure must not stop the sweep; it stays due
            log.exception("a webhook delivery failed in the sweep", extra={"meeting_id": row["meeting_id"]})
            counts["errors"] += 1
    return DeliverySummary(mode="sweep", outcome="error" if counts["errors"] else "ok", counts=counts)
