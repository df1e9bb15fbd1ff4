"""The embedded PostgreSQL (pgserver) of the local stack and the tests; data lives under the state dir."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Where local data lives: LOCAL_STATE_DIR, else .local/ in the repository (the product's own setting)."""
    from shared.settings import local_state_dir

    return local_state_dir().resolve()


def embedded(data_dir: Path | None = None, database: str = "meet"):
    """Start (or attach to) the embedded server; returns (server, libpq URL of `database`)."""
    import warnings

    # platformdirs warns on every start when XDG_RUNTIME_DIR is unset (containers, CI); it falls back fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
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
