"""Migration 0003 on a real PostgreSQL 16: a no-op on a plain server, and Cloud SQL's role layout reproduced.

On Cloud SQL the migrator account creates (and owns) every table and the runtime account only reads and writes
rows. The roles Cloud SQL would have are recreated here on the embedded server: `cloudsqliamserviceaccount`,
the two IAM service-account users named as Cloud SQL names them, and the migrator's CREATE on schema public
(which cloudsqlsuperuser gives it on Cloud SQL). Roles are cluster-wide, so each test uses its own database and
role names and drops them afterwards.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

import pg8000.dbapi
import pytest

from shared.adapters.postgres import migrate
from shared.adapters.postgres.db import Database, connect_kwargs, local_connector


@pytest.fixture(scope="module")
def server_url() -> str:
    """A libpq URL of the `postgres` database on a server where this session may create roles and databases."""
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("needs a server where roles can be created: runs on the embedded PostgreSQL only")
    from dev.pg import embedded, state_dir

    _server, url = embedded(state_dir() / "test-pgdata", database="postgres")
    return url


def _admin(url: str):
    conn = pg8000.dbapi.connect(**connect_kwargs(url))
    conn.autocommit = True
    return conn


@contextmanager
def scratch_database(server_url: str):
    """A fresh empty database; yields its URL and drops it afterwards."""
    name = f"mig_{uuid.uuid4().hex[:10]}"
    admin = _admin(server_url)
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.replace("/postgres?", f"/{name}?")
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextmanager
def cloud_sql_roles(server_url: str, db_url: str, *, with_runtime: bool = True):
    """Cloud SQL's IAM role layout on the scratch database; yields (migrator, runtime) role names."""
    tag = uuid.uuid4().hex[:6]
    migrator, runtime = f"t{tag}-migrator@proj.iam", f"t{tag}-runtime@proj.iam"
    admin, db_admin = _admin(server_url), _admin(db_url)
    cur = admin.cursor()
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'cloudsqliamserviceaccount'")
    made_group = not cur.fetchall()
    if made_group:
        cur.execute("CREATE ROLE cloudsqliamserviceaccount NOLOGIN")
    cur.execute(f'CREATE ROLE "{migrator}" LOGIN IN ROLE cloudsqliamserviceaccount')
    if with_runtime:
        cur.execute(f'CREATE ROLE "{runtime}" LOGIN IN ROLE cloudsqliamserviceaccount')
    db_admin.cursor().execute(f'GRANT CREATE, USAGE ON SCHEMA public TO "{migrator}"')
    try:
        yield migrator, runtime
    finally:
        db_cur = db_admin.cursor()
        for role in (runtime, migrator) if with_runtime else (migrator,):
            db_cur.execute(f'DROP OWNED BY "{role}" CASCADE')
        db_admin.close()
        for role in (runtime, migrator) if with_runtime else (migrator,):
            cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        if made_group:
            cur.execute("DROP ROLE IF EXISTS cloudsqliamserviceaccount")
        admin.close()


def _as_role(url: str, role: str) -> Database:
    """A pool whose sessions run as `role` (what an IAM login as that account would be)."""
    connect = local_connector(url)

    def connect_as():
        conn = connect()
        conn.cursor().execute(f'SET ROLE "{role}"')
        conn.commit()
        return conn

    return Database(connect_as, size=1)


def _privileges(db_url: str, role: str, table: str) -> set[str]:
    conn = _admin(db_url)
    try:
        cur = conn.cursor()
        found = set()
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"):
            cur.execute("SELECT has_table_privilege(:role, :table, :privilege)",
                        {"role": role, "table": table, "privilege": privilege})
            if cur.fetchone()[0]:
                found.add(privilege)
        return found
    finally:
        conn.close()


def test_on_a_plain_postgres_0003_changes_nothing(server_url):
    with scratch_database(server_url) as url:
        db = Database(local_connector(url), size=1)
        try:
            assert "0003_pgaudit" in migrate.migrate(db)
            with db.transaction() as cur:
                cur.execute("SELECT name FROM pg_available_extensions WHERE name = 'pgaudit'")
                available = bool(cur.fetchall())
                cur.execute("SELECT extname FROM pg_extension WHERE extname = 'pgaudit'")
                created = bool(cur.fetchall())
            if not available:
                assert not created
        finally:
            db.close()


def test_with_cloud_sql_roles_the_runtime_gets_dml_on_the_migrators_tables(server_url):
    with scratch_database(server_url) as url, cloud_sql_roles(server_url, url) as (migrator, runtime):
        db = _as_role(url, migrator)
        try:
            assert migrate.migrate(db)[:4] == ["0001_init", "0002_background_work", "0003_pgaudit", "0004_webhooks"]
            with db.transaction() as cur:
                cur.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
                assert [row[0] for row in cur.fetchall()] == [migrator]
                # A later migration's table and sequence are granted through the default privileges.
                cur.execute("CREATE TABLE later_table (id bigserial PRIMARY KEY, note text)")
        finally:
            db.close()

        dml = {"SELECT", "INSERT", "UPDATE", "DELETE"}
        for table in ("api_clients", "api_keys", "meetings", "participants", "recordings", "transcripts",
                      "webhook_endpoints", "webhook_secrets", "webhook_events", "webhook_deliveries", "later_table"):
            assert _privileges(url, runtime, table) == dml, table
        assert _privileges(url, runtime, "schema_migrations") == set()

        # The runtime account works with rows (sequences included) and cannot change the schema.
        runtime_db = _as_role(url, runtime)
        try:
            with runtime_db.transaction() as cur:
                cur.execute("INSERT INTO later_table (note) VALUES ('x') RETURNING id")
                assert cur.fetchone()[0] == 1
            with pytest.raises(pg8000.dbapi.DatabaseError):
                with runtime_db.transaction() as cur:
                    cur.execute("CREATE TABLE runtime_table (id int)")
            with pytest.raises(pg8000.dbapi.DatabaseError):
                with runtime_db.transaction() as cur:
                    cur.execute("ALTER TABLE meetings ADD COLUMN x int")
        finally:
            runtime_db.close()


def test_with_cloud_sql_roles_but_no_runtime_user_0003_fails_loudly(server_url):
    with scratch_database(server_url) as url, \
            cloud_sql_roles(server_url, url, with_runtime=False) as (migrator, _runtime):
        db = _as_role(url, migrator)
        try:
            with pytest.raises(pg8000.dbapi.DatabaseError, match="no runtime IAM database user"):
                migrate.migrate(db)
            # The failed run left nothing half-applied: a later run starts from scratch.
            with db.transaction() as cur:
                cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                assert cur.fetchone()[0] == 0
        finally:
            db.close()
