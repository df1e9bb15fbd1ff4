"""Shared fixtures: one real PostgreSQL per test session, fresh clients per test."""
from __future__ import annotations

import os
import uuid

import pytest

from shared import auth, migrate
from shared.auth import Principal
from shared.db import Database, local_connector


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory) -> str:
    """A migrated, empty database: TEST_DATABASE_URL's server, or the embedded one under .local/."""
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        url = base
    else:
        from dev.pg import embedded, state_dir

        server, url = embedded(state_dir() / "test-pgdata", database="postgres")
        name = f"test_{uuid.uuid4().hex[:10]}"
        server.psql(f'CREATE DATABASE "{name}";')
        url = url.replace("/postgres?", f"/{name}?")
    db = Database(local_connector(url), size=1)
    migrate.migrate(db)
    db.close()
    return url


@pytest.fixture(scope="session")
def db(pg_url) -> Database:
    database = Database(local_connector(pg_url), size=8)
    yield database
    database.close()


def new_principal(db: Database, role: str = "service") -> tuple[Principal, str]:
    """A fresh API client with one key: tenancy keeps each test's meetings to itself."""
    key = auth.mint_key(db, name=f"client-{uuid.uuid4().hex[:8]}", role=role)
    return auth.authenticate(db, f"Bearer {key}"), key


@pytest.fixture
def principal(db) -> Principal:
    return new_principal(db)[0]
