"""Operator commands against the database the settings name (or the local embedded one)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from shared import auth, migrate
from shared.db import Database, cloud_sql_connector, local_connector


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
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
