"""PostgreSQL access with pg8000: a small per-instance pool and one transaction helper."""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.dbapi

from shared.adapters.postgres import notes
from shared.domain.errors import Unavailable

log = logging.getLogger(__name__)

# Named parameters (":name") keep the repository's SQL readable; this is pg8000's module-wide switch.
pg8000.dbapi.paramstyle = "named"

_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300", "55P03", "57014"}
_PING_AFTER_IDLE_S = 30.0


def connect_kwargs(url: str) -> dict[str, Any]:
    """pg8000 keyword arguments for a libpq-style URL, including `?host=/socket/dir`."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("DATABASE_URL must start with postgresql://")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    kwargs: dict[str, Any] = {
        "user": unquote(parts.username or query.get("user", "postgres")),
        "database": unquote(parts.path.lstrip("/") or query.get("dbname", "postgres")),
    }
    if parts.password or query.get("password"):
        kwargs["password"] = unquote(parts.password or query["password"])
    port = parts.port or int(query.get("port", 5432))
    host = query.get("host") or unquote(parts.hostname or "") or "localhost"
    if host.startswith("/"):
        kwargs["unix_sock"] = f"{host}/.s.PGSQL.{port}"
    else:
        kwargs["host"], kwargs["port"] = host, port
    return kwargs


def is_unavailable(exc: BaseException) -> bool:
    """True when the error means the database is unreachable or busy, not that the SQL is wrong."""
    if isinstance(exc, (pg8000.dbapi.InterfaceError, OSError, ConnectionError)):
        return True
    if isinstance(exc, pg8000.dbapi.DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        code = exc.args[0].get("C", "")
        return code in _UNAVAILABLE_SQLSTATES or code.startswith("08")
    return False


class Database:
    """A bounded pool of pg8000 connections; `transaction()` is the only way in."""

    def __init__(self, connect: Callable[[], Any], *, size: int = 4, lock_timeout_ms: int = 30_000,
                 on_commit: Callable[[dict[str, list[Any]]], None] | None = None):
        self._connect = connect
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._lock_timeout_ms = lock_timeout_ms
        # Called with what a committed transaction noted (shared.adapters.postgres.notes), after its connection is
        # back in the pool; the composition root wires it (the outbox's enqueueing).
        self.on_commit = on_commit

    def _checkout(self):
        if not self._slots.acquire(timeout=30):
            raise Unavailable("The database connection pool is exhausted.")
        try:
            while True:
                try:
                    conn, last_used = self._idle.get_nowait()
                except queue.Empty:
                    conn = self._connect()
                    cur = conn.cursor()
                    cur.execute(f"SET lock_timeout = {int(self._lock_timeout_ms)}")
                    cur.execute("SET TIME ZONE 'UTC'")
                    conn.commit()
                    return conn
                if time.monotonic() - last_used < _PING_AFTER_IDLE_S:
                    return conn
                try:
                    conn.cursor().execute("SELECT 1")
                    conn.rollback()
                    return conn
                except Exception:  # a dead pooled connection is dropped and replaced
                    _close_quietly(conn)
        except BaseException as exc:
            self._slots.release()
            if is_unavailable(exc):
                raise Unavailable("The database is unavailable.") from exc
            raise

    def _checkin(self, conn, healthy: bool) -> None:
        if healthy:
            self._idle.put((conn, time.monotonic()))
        else:
            _close_quietly(conn)
        self._slots.release()

    @contextmanager
    def transaction(self) -> Iterator[pg8000.dbapi.Cursor]:
        """A cursor inside one transaction: committed on success, rolled back on any error."""
        conn = self._checkout()
        healthy = True
        cur = None
        try:
            cur = conn.cursor()
            yield cur
            conn.commit()
            committed = notes.take(cur)
        except BaseException as exc:
            if cur is not None:
                notes.take(cur)  # rolled back: what it noted never happened
            try:
                conn.rollback()
            except Exception:
                healthy = False
            if is_unavailable(exc):
                healthy = False
                raise Unavailable("The database is unavailable.") from exc
            raise
        finally:
            self._checkin(conn, healthy)
        if committed and self.on_commit is not None:
            try:
                self.on_commit(committed)
            except Exception:  # the commit stands; whatever the listener missed, a sweep catches up with
                log.exception("after-commit work failed")

    def close(self) -> None:
        """Close the idle connections (and the Cloud SQL Connector behind them, if any)."""
        while True:
            try:
                conn, _ = self._idle.get_nowait()
            except queue.Empty:
                break
            _close_quietly(conn)
        closer = getattr(self._connect, "close", None)
        if callable(closer):
            closer()


def _close_quietly(conn) -> None:
    try:
        conn.close()
    except Exception:  # closing a broken socket may fail; the connection is gone either way
        pass


def local_connector(url: str, *, timeout: float = 10.0) -> Callable[[], Any]:
    """A connection factory for a plain PostgreSQL URL (embedded pgserver, DATABASE_URL)."""
    kwargs = connect_kwargs(url)
    return lambda: pg8000.dbapi.connect(timeout=timeout, **kwargs)


def cloud_sql_connector(instance: str, *, user: str, database: str, ip_type: str) -> Callable[[], Any]:
    """A connection factory through the Cloud SQL Python Connector with IAM database auth (no passwords)."""
    from google.cloud.sql.connector import Connector, IPTypes  # heavy import: only on the cloud path

    ip = {"public": IPTypes.PUBLIC, "private": IPTypes.PRIVATE, "psc": IPTypes.PSC}[ip_type]
    return _ConnectorFactory(Connector(refresh_strategy="lazy"),
                             dict(instance_connection_string=instance, driver="pg8000", user=user, db=database,
                                  enable_iam_auth=True, ip_type=ip))


class _ConnectorFactory:
    """Connections from one Cloud SQL Connector, which the pool closes with itself."""

    def __init__(self, connector, options: dict[str, Any]):
        self._connector, self._options = connector, options

    def __call__(self):
        return self._connector.connect(**self._options)

    def close(self) -> None:
        self._connector.close()
