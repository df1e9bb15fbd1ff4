"""Operator commands against the database the settings name (or the local embedded one)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from shared.domain.principal import ROLES


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
    jobs = sub.add_parser("jobs", help="the latest background job runs the Firestore ledger recorded")
    jobs.add_argument("--kind", choices=("check_status", "sync_recordings"), help="only this job")
    jobs.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

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
        elif args.command == "api-key":
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
