"""Numbered SQL migrations, applied in order, each once, under an advisory lock."""
from __future__ import annotations

import logging
from importlib import resources

from shared.adapters.postgres.db import Database

log = logging.getLogger(__name__)

_LOCK_KEY = 7_246_331  # any constant: serialises concurrent `make migrate` runs


def available() -> list[tuple[str, str]]:
    """(version, sql) for every migration shipped beside this module, in order."""
    files = resources.files("shared.adapters.postgres.migrations")
    names = sorted(f.name for f in files.iterdir() if f.name.endswith(".sql"))
    return [(name.removesuffix(".sql"), files.joinpath(name).read_text("utf-8")) for name in names]


def migrate(db: Database) -> list[str]:
    """Apply pending migrations; returns the versions applied now."""
    applied_now: list[str] = []
    with db.transaction() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(:k)", {"k": _LOCK_KEY})
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in cur.fetchall()}
        for version, sql in available():
            if version in done:
                continue
            cur.execute(sql)
            cur.execute("INSERT INTO schema_migrations (version) VALUES (:v)", {"v": version})
            applied_now.append(version)
            log.info("applied migration %s", version)
    return applied_now
