"""`python -m ops webhooks`: every client's webhook endpoints and deliveries, and a retry of one delivery.

A retry goes the way the API's retry goes (`POST .../deliveries/{id}/retry`): the delivery is pending and due
again, and its next attempt is a Cloud Task of its own on the webhooks queue, sent by `deliver_webhooks` with the
same webhook-id. The operator's machine never sends a webhook itself, so it needs no signing key.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ops.background import OpsError


def add_parser(sub) -> None:
    from shared.services.webhooks import DELIVERY_STATUSES

    hooks = sub.add_parser("webhooks", help="webhook endpoints and deliveries of every client; retry one delivery",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True)
    hooks_sub.add_parser("endpoints", help="every endpoint: id, client, state, created, receiver URL (no secrets)",
                         description="Every client's webhook endpoints, newest first. The receiver URL is shown "
                                     "without its query string; signing secrets are never shown.")
    deliveries = hooks_sub.add_parser(
        "deliveries", help="the newest deliveries: id, event, meeting, status, attempts, next attempt, last HTTP",
        description="The newest deliveries of every endpoint (or of one), newest first.")
    deliveries.add_argument("--endpoint", metavar="ID", help="only this endpoint's deliveries")
    deliveries.add_argument("--status", choices=DELIVERY_STATUSES, help="only deliveries in it")
    deliveries.add_argument("--limit", type=_positive, default=20, metavar="N", help="how many (default 20, at most "
                            "1000)")
    retry = hooks_sub.add_parser(
        "retry", help="send one delivery again now, as the API's retry does (a Cloud Task, the same webhook-id)",
        description="Send one delivery again now, with the same webhook-id: it is pending and due again, and its "
                    "next attempt is a Cloud Task on the webhooks queue (WEBHOOK_TASKS_QUEUE or TASKS_QUEUE, with "
                    "DELIVER_WEBHOOKS_URL and TASKS_INVOKER_SA; else the running local stack's). Should the "
                    "enqueue fail, the delivery stays due and the deliver-webhooks sweep sends it.")
    retry.add_argument("delivery_id")


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= number <= 1000:
        raise argparse.ArgumentTypeError("give a number from 1 to 1000")
    return number


def _when(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def receiver(url: str) -> str:
    """The receiver's URL without query or fragment (a receiver may carry a token there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?…" if parts.query else "")


def print_endpoints(rows: list[dict]) -> None:
    print(f"{'ENDPOINT ID':<36}  {'CLIENT':<20} {'STATE':<8} {'CREATED':<19}  URL")
    for r in rows:
        state = "disabled" if r["disabled_at"] else "enabled"
        print(f"{r['id']:<36}  {r['client'][:20]:<20} {state:<8} {_when(r['created_at']):<19}  {receiver(r['url'])}")


def print_deliveries(rows: list[dict]) -> None:
    print(f"{'DELIVERY ID':<36}  {'EVENT':<19} {'MEETING ID':<36}  {'STATUS':<9} {'ATTEMPTS':>8}  "
          f"{'NEXT ATTEMPT':<19}  LAST HTTP")
    for r in rows:
        code = r["last_status_code"] if r["last_status_code"] is not None else "-"
        print(f"{r['id']:<36}  {r['event_type']:<19} {r['meeting_id']:<36}  {r['status']:<9} {r['attempts']:>8}  "
              f"{_when(r['next_attempt_at']):<19}  {code}")


def run(args: argparse.Namespace, database, state) -> int:
    """One `ops webhooks` command; OpsError carries what to tell the operator in one line."""
    from shared.adapters.cloud_tasks import build_webhook_queue
    from shared.bootstrap import utc_now
    from shared.domain.errors import DomainError
    from shared.services import webhooks

    if args.webhooks_command == "retry":
        from ops import background

        settings = background.webhook_tasks_settings(state)  # before the database: a missing queue says so first
    db, _server = database()
    try:
        if args.webhooks_command == "endpoints":
            print_endpoints(webhooks.all_endpoints(db=db))
            return 0
        if args.webhooks_command == "deliveries":
            print_deliveries(webhooks.recent_deliveries(db=db, endpoint_id=args.endpoint, status=args.status,
                                                        limit=args.limit))
            return 0
        queue = build_webhook_queue(settings)
        task, outcome = webhooks.requeue_delivery(args.delivery_id, db=db, tasks=queue, settings=settings,
                                                  clock=utc_now)
    except DomainError as exc:
        raise OpsError(exc.detail) from None
    finally:
        db.close()
    if outcome == "failed":
        print(f"{task.delivery_id}: pending again, but attempt {task.attempt} could not be enqueued; the "
              "deliver-webhooks sweep sends it within minutes", file=sys.stderr)
        return 1
    print(f"{task.delivery_id}: attempt {task.attempt} {'enqueued' if outcome == 'enqueued' else 'already queued'}")
    return 0
