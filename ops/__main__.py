"""Operator commands against the database the settings name (or the local embedded one)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from shared.adapters.postgres import migrate

from shared.services import auth
from shared.adapters.postgres.db import Database, cloud_sql_connector, local_connector


def _database():
    """The database of DATABASE_URL, of CLOUD_SQL_INSTANCE (IAM auth), or else the local embedded one."""
    server = None
    url = os.environ.get("DATABASE_URL")
    if not url and os.environ.get("CLOUD_SQL_INSTANCE"):
        connect = cloud_sql_connector(os.environ["CLOUD_SQL_INSTANCE"], user=os.environ["DB_IAM_USER"],
                                      database=os.environ.get("DB_NAME", "meet"),
                                      ip_type=os.environ.get("CLOUD_SQL_IP_TYPE", "public"))
        return Database(connect, size=1), None
    if not url:
        from dev.pg import embedded

        server, url = embedded()
    return Database(local_connector(url), size=1), server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending SQL migrations")
    key = sub.add_parser("api-key", help="mint an API key (printed as the last line)")
    key.add_argument("--name", required=True, help="the API client's name, e.g. xoma")
    key.add_argument("--role", default="service", choices=auth.ROLES)
    keys = sub.add_parser("keys", help="list or revoke API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser("list", help="every key: id, client, role, hint, created, revoked")
    revoke = keys_sub.add_parser("revoke", help="revoke one key by id (the client's other keys keep working)")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

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
