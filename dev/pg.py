"""The embedded PostgreSQL (pgserver) of the local stack and the tests; data lives under the state dir."""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Where local data lives: LOCAL_STATE_DIR, else .local/ in the repository."""
    return Path(os.environ.get("LOCAL_STATE_DIR") or ROOT / ".local").resolve()


def embedded(data_dir: Path | None = None, database: str = "meet"):
    """Start (or attach to) the embedded server; returns (server, libpq URL of `database`)."""
    import pgserver

    # pgserver narrates every pg_ctl call at INFO; only its problems are worth showing.
    logging.getLogger("pgserver").setLevel(logging.WARNING)

    data_dir = data_dir or state_dir() / "pgdata"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(data_dir), cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return server, f"postgresql://postgres:@/{database}?host={data_dir}"
