"""Operator commands against the database the settings name (or the local embedded one)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from shared.domain.principal import ROLES
from shared.settings import local_state_dir


def _database():
    """The pool of the same settings and composition root the functions use; the embedded one when none is set."""
    from pydantic import ValidationError

    from shared import bootstrap
    from shared.settings import DatabaseSettings

    server = None
    overrides = {}
    if not os.environ.get("DATABASE_URL") and not os.environ.get("CLOUD_SQL_INSTANCE"):
        from dev.pg import embedded

        server, overrides["database_url"] = embedded()
    try:
        settings = DatabaseSettings(**overrides)
    except ValidationError as exc:
        raise SystemExit("ops: " + "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    return bootstrap.database(settings, size=1), server


def _print_jobs(rows: list[dict]) -> None:
    print(f"{'STARTED':<20} {'KIND':<16} {'TRIGGER':<8} {'OUTCOME':<8} {'RUN ID':<32} COUNTS")
    for r in rows:
        started = r.get("started_at")
        counts = ", ".join(f"{k}={v}" for k, v in sorted((r.get("counts") or {}).items()))
        print(f"{started.strftime('%Y-%m-%d %H:%M:%S') if started else '-':<20} {r.get('kind') or '-':<16} "
              f"{r.get('trigger') or '-':<8} {r.get('outcome') or r.get('state') or '-':<8} {r['run_id']:<32} {counts}")


def _background(args: argparse.Namespace) -> int:
    from ops import background
    from shared.adapters.cloud_tasks import build_queue

    queue = build_queue(background.tasks_settings(local_state_dir()))
    db, _server = _database()
    try:
        if args.command == "backfill":
            start, end = background.parse_time(args.start), background.parse_time(args.end)
            if end <= start:
                raise background.OpsError("--to must be after --from")
            todo = background.meetings_to_do(db, start=start, end=end)
            kind = args.kind
        else:
            todo = background.meetings_to_do(db, meeting_id=args.meeting_id)
            kind = args.command
    finally:
        db.close()
    counts = background.enqueue(kind, todo, queue=queue)
    print(f"{kind}: {len(todo)} meeting(s); enqueued {counts['enqueued']}, already queued {counts['already']}, "
          f"failed {counts['failed']}")
    return 1 if counts["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending SQL migrations")
    key = sub.add_parser("api-key", help="mint an API key (printed as the last line)")
    key.add_argument("--name", required=True, help="the API client's name, e.g. xoma")
    key.add_argument("--role", default="service", choices=ROLES)
    keys = sub.add_parser("keys", help="list or revoke API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser("list", help="every key: id, client, role, hint, created, revoked")
    revoke = keys_sub.add_parser("revoke", help="revoke one key by id (the client's other keys keep working)")
    revoke.add_argument("key_id")
    keys_mint = keys_sub.add_parser("mint", help="mint a key (printed as the last line), like api-key")
    keys_mint.add_argument("--name", required=True, help="the API client's name, e.g. xoma")
    keys_mint.add_argument("--role", default="service", choices=ROLES)
    for kind, text in (("check", "check one meeting's status against Google now"),
                       ("sync", "sync one meeting's attendance and recordings now")):
        one = sub.add_parser(kind, help=f"{text} (a Cloud Task, as the follow-ups are)")
        one.add_argument("meeting_id")
    backfill = sub.add_parser("backfill", help="check or sync every meeting whose slot starts in a range")
    backfill.add_argument("kind", choices=("check", "sync"))
    backfill.add_argument("--from", dest="start", required=True, help="RFC 3339, inclusive")
    backfill.add_argument("--to", dest="end", required=True, help="RFC 3339, exclusive")
    scheduler = sub.add_parser("scheduler", help="the Cloud Scheduler sweeps: list, pause, resume, run")
    scheduler.add_argument("args", nargs=argparse.REMAINDER, help="e.g. list --project P --location L")
    sub.add_parser("stack", help="the running local stack's URLs")
    jobs = sub.add_parser("jobs", help="the latest background job runs the Firestore ledger recorded")
    jobs.add_argument("--kind", choices=("check_status", "sync_recordings"), help="only this job")
    jobs.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    from ops import webhooks as webhooks_ops

    webhooks_ops.add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    if args.command == "scheduler":
        from ops import scheduler as scheduler_ops

        return scheduler_ops.main(args.args or ["--help"])
    from ops import background

    try:
        if args.command == "stack":
            info = background.stack_urls(local_state_dir())
            base = info["gateway"]
            print(f"API:         {base}\nDocs:        {base}/v1/docs\nOpenAPI:     {base}/v1/openapi.json\n"
                  f"Google root: {info['google_api_root']}\nFirestore:   {info['firestore']}\n"
                  f"Cloud Tasks: {info['cloud_tasks']} ({info['tasks_queue']})")
            for name, url in sorted(info["functions"].items()):
                print(f"  {name:<16} {url}")
            return 0
        if args.command in ("check", "sync", "backfill"):
            return _background(args)
        if args.command == "webhooks":
            return webhooks_ops.run(args, _database, local_state_dir())
    except background.OpsError as exc:
        raise SystemExit(f"ops: {exc}") from None

    if args.command == "jobs":
        from shared.adapters.firestore import build_ledger
        from shared.settings import FirestoreSettings

        settings = FirestoreSettings()
        if not settings.firestore_database:
            raise SystemExit("ops: set FIRESTORE_DATABASE (and GOOGLE_CLOUD_PROJECT) to read the job ledger")
        _print_jobs(build_ledger(settings).recent_jobs(args.kind, limit=args.limit))
        return 0

    from shared.adapters.postgres import migrate
    from shared.services import auth

    db, _server = _database()
    try:
        if args.command == "migrate":
            applied = migrate.migrate(db)
            print(f"applied: {', '.join(applied)}" if applied else "database is up to date")
        elif args.command == "api-key" or (args.command == "keys" and args.keys_command == "mint"):
            if not args.name.strip():
                parser.error("--name must not be empty")
            migrate.migrate(db)
            key_value = auth.mint_key(db, name=args.name, role=args.role)
            print(f"API key for client {args.name!r} (role {args.role}); it is shown only once:")
            print(key_value)
        elif args.command == "keys" and args.keys_command == "list":
            rows = auth.list_keys(db)
            print(f"{'KEY ID':<36}  {'CLIENT':<20} {'ROLE':<8} {'HINT':<11} {'CREATED':<20} REVOKED")
            for r in rows:
                revoked = r["revoked_at"].strftime("%Y-%m-%d %H:%M") if r["revoked_at"] else "-"
                print(f"{str(r['id']):<36}  {r['name'][:20]:<20} {r['role']:<8} {r['display_hint']:<11} "
                      f"{r['created_at'].strftime('%Y-%m-%d %H:%M'):<20} {revoked}")
        elif args.command == "keys" and args.keys_command == "revoke":
            if not auth.revoke_key(db, args.key_id):
                print(f"no active key has id {args.key_id}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}")
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
