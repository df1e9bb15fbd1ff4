"""PostgreSQL access with pg8000: a small per-instance pool, one transaction helper and one autocommit read helper.

Round trips are what a request pays for (Cloud SQL is a network hop away), so the pool spends as few as it can:
session settings ride in the startup packet, a statement with parameters is parsed and prepared once per
connection and then runs in one round trip, BEGIN and COMMIT are one simple query each (and BEGIN is sent only
once a transaction runs a statement), and `read()` runs single statements with no transaction around them at all.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.dbapi
from pg8000.converters import make_params, timestamptz_in

from shared.adapters.postgres import notes
from shared.domain.errors import Unavailable

log = logging.getLogger(__name__)

# Named parameters (":name") keep the repository's SQL readable; this is pg8000's module-wide switch.
pg8000.dbapi.paramstyle = "named"

_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300", "55P03", "57014"}
_PING_AFTER_IDLE_S = 30.0
# Distinct statements kept prepared per connection; the repository's SQL is a bounded set well below this.
_PREPARED_PER_CONNECTION = 256


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
        # No TLS over a local socket (as libpq); pg8000's default would build an SSL context for nothing.
        kwargs["ssl_context"] = False
    else:
        kwargs["host"], kwargs["port"] = host, port
        if query.get("sslmode") == "disable":
            kwargs["ssl_context"] = False
    return kwargs


def session_settings(lock_timeout_ms: int) -> dict[str, str]:
    """The settings every connection starts with, sent in the startup packet (no SET round trips)."""
    return {"lock_timeout": str(int(lock_timeout_ms)), "TimeZone": "UTC"}


_TIMESTAMPTZ_OID = 1184


def _timestamptz(text: str):
    """A timestamptz as PostgreSQL writes it ("2025-11-25 15:00:00+00"), read by fromisoformat: pg8000's own
    reader goes through strptime, about 75 times slower, and a meeting row has nine of them."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:  # infinity, or a year datetime cannot hold: pg8000's answer
        return timestamptz_in(text)


def is_unavailable(exc: BaseException) -> bool:
    """True when the error means the database is unreachable or busy, not that the SQL is wrong."""
    if isinstance(exc, (pg8000.dbapi.InterfaceError, OSError, ConnectionError)):
        return True
    if isinstance(exc, pg8000.dbapi.DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        code = exc.args[0].get("C", "")
        return code in _UNAVAILABLE_SQLSTATES or code.startswith("08")
    return False


class _NamesInOrder(dict):
    """What pg8000's named-parameter conversion asks for, in order: each placeholder's own name."""

    def __missing__(self, key: str) -> str:
        return key


def _parsed(sql: str) -> tuple[str, Callable[[dict[str, Any]], tuple]]:
    """The statement with $n placeholders and how to order a call's parameters for it, by pg8000's own
    named-parameter conversion (as its cursor does on every call, here once per statement and connection)."""
    text, names = pg8000.dbapi.convert_paramstyle("named", sql, _NamesInOrder())
    return text, lambda params: tuple(params[name] for name in names)


class _Pooled:
    """A connection of the pool with the statements prepared on it."""

    __slots__ = ("raw", "prepared", "last_used")

    def __init__(self, raw):
        self.raw = raw
        self.prepared: OrderedDict[str, tuple] = OrderedDict()
        self.last_used = time.monotonic()


class Cursor:
    """The DB-API subset the repository uses: execute, fetchone, fetchall, rowcount, description.

    In a transaction, BEGIN is sent with the first statement; outside one (`Database.read`), every statement
    commits on its own.
    """

    def __init__(self, conn: _Pooled, *, transactional: bool):
        self._conn, self._transactional = conn, transactional
        self.begun = False
        self._context: Any = None
        self._rows: Iterator | None = None

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        raw = self._conn.raw
        if self._transactional and not self.begun:
            raw.execute_simple("BEGIN")
            self.begun = True
        if not params:
            context = raw.execute_simple(sql)
        else:
            statement = self._prepared(sql)
            name, text, make_vals, columns, input_funcs = statement
            context = raw.execute_named(name, make_params(raw.py_types, make_vals(params)), columns, input_funcs, text)
        self._context = context
        self._rows = iter(context.rows) if context.rows is not None else None

    def executemany(self, sql: str, param_sets) -> None:
        for params in param_sets:
            self.execute(sql, params)

    def _prepared(self, sql: str) -> tuple:
        cache = self._conn.prepared
        found = cache.get(sql)
        if found is not None:
            cache.move_to_end(sql)
            return found
        text, make_vals = _parsed(sql)
        name, columns, input_funcs = self._conn.raw.prepare_statement(text, ())
        found = cache[sql] = (name, text, make_vals, columns, input_funcs)
        if len(cache) > _PREPARED_PER_CONNECTION:
            _, evicted = cache.popitem(last=False)
            self._conn.raw.close_prepared_statement(evicted[0])
        return found

    def fetchone(self):
        if self._rows is None:
            raise pg8000.dbapi.ProgrammingError("no result set")
        return next(self._rows, None)

    def fetchall(self) -> list:
        if self._rows is None:
            raise pg8000.dbapi.ProgrammingError("no result set")
        return list(self._rows)

    @property
    def rowcount(self) -> int:
        return -1 if self._context is None else self._context.row_count

    @property
    def description(self):
        columns = self._context.columns if self._context is not None else None
        if not columns:
            return None
        return [(c["name"], c["type_oid"], None, None, None, None, None) for c in columns]


class Database:
    """A bounded pool of pg8000 connections; `transaction()` for writes, `read()` for single read statements."""

    def __init__(self, connect: Callable[[], Any], *, size: int = 4, lock_timeout_ms: int = 30_000,
                 on_commit: Callable[[dict[str, list[Any]]], None] | None = None):
        self._connect = connect
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._lock_timeout_ms = lock_timeout_ms
        # Called with what a committed transaction noted (shared.adapters.postgres.notes), after its connection is
        # back in the pool; the composition root wires it (the outbox's enqueueing).
        self.on_commit = on_commit

    def _new_connection(self) -> _Pooled:
        raw = self._connect()
        raw.register_in_adapter(_TIMESTAMPTZ_OID, _timestamptz)
        if not getattr(self._connect, "sets_session", False):
            # A factory that could not put the settings in the startup packet: set them once per connection.
            raw.execute_simple(f"SET lock_timeout = {int(self._lock_timeout_ms)}; SET TIME ZONE 'UTC'")
        return _Pooled(raw)

    def _checkout(self) -> _Pooled:
        if not self._slots.acquire(timeout=30):
            raise Unavailable("The database connection pool is exhausted.")
        try:
            while True:
                try:
                    conn = self._idle.get_nowait()
                except queue.Empty:
                    return self._new_connection()
                if time.monotonic() - conn.last_used < _PING_AFTER_IDLE_S:
                    return conn
                try:
                    conn.raw.execute_simple("SELECT 1")
                    return conn
                except Exception:  # a dead pooled connection is dropped and replaced
                    _close_quietly(conn.raw)
        except BaseException as exc:
            self._slots.release()
            if is_unavailable(exc):
                raise Unavailable("The database is unavailable.") from exc
            raise

    def _checkin(self, conn: _Pooled, healthy: bool) -> None:
        if healthy:
            conn.last_used = time.monotonic()
            self._idle.put(conn)
        else:
            _close_quietly(conn.raw)
        self._slots.release()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A cursor inside one transaction: committed on success, rolled back on any error."""
        conn = self._checkout()
        healthy = True
        cur = Cursor(conn, transactional=True)
        try:
            yield cur
            if cur.begun:
                conn.raw.execute_simple("COMMIT")
            committed = notes.take(cur)
        except BaseException as exc:
            notes.take(cur)  # rolled back: what it noted never happened
            if cur.begun:
                try:
                    conn.raw.execute_simple("ROLLBACK")
                except Exception:
                    healthy = False
            if is_unavailable(exc):
                healthy = False
                raise Unavailable("The database is unavailable.") from exc
            raise
        finally:
            self._checkin(conn, healthy)
        self._committed(committed)

    @contextmanager
    def autocommit(self) -> Iterator[Cursor]:
        """A cursor whose statements each run and commit on their own, with no transaction around them.

        For work that is one statement (a statement sees one snapshot and is atomic by itself): no BEGIN, no
        COMMIT, one round trip.
        """
        conn = self._checkout()
        healthy = True
        cur = Cursor(conn, transactional=False)
        try:
            yield cur
        except BaseException as exc:
            if is_unavailable(exc):
                healthy = False
                raise Unavailable("The database is unavailable.") from exc
            raise
        finally:
            self._checkin(conn, healthy)
            done = notes.take(cur)  # each statement committed as it ran, whatever came after
        self._committed(done)

    def _committed(self, noted: dict[str, list[Any]]) -> None:
        if noted and self.on_commit is not None:
            try:
                self.on_commit(noted)
            except Exception:  # the commit stands; whatever the listener missed, a sweep catches up with
                log.exception("after-commit work failed")

    def read(self):
        """A cursor for a read that is one statement: `autocommit()` under the name of what it is for."""
        return self.autocommit()

    def close(self) -> None:
        """Close the idle connections (and the Cloud SQL Connector behind them, if any)."""
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                break
            _close_quietly(conn.raw)
        closer = getattr(self._connect, "close", None)
        if callable(closer):
            closer()


def _close_quietly(conn) -> None:
    try:
        conn.close()
    except Exception:  # closing a broken socket may fail; the connection is gone either way
        pass


class _LocalFactory:
    """Connections to a plain PostgreSQL URL (embedded pgserver, DATABASE_URL)."""

    sets_session = True

    def __init__(self, kwargs: dict[str, Any], timeout: float):
        self._kwargs, self._timeout = kwargs, timeout

    def __call__(self):
        return pg8000.dbapi.connect(timeout=self._timeout, **self._kwargs)


def local_connector(url: str, *, timeout: float = 10.0, lock_timeout_ms: int = 30_000) -> Callable[[], Any]:
    """A connection factory for a plain PostgreSQL URL (embedded pgserver, DATABASE_URL)."""
    return _LocalFactory(dict(connect_kwargs(url), startup_params=session_settings(lock_timeout_ms)), timeout)


def cloud_sql_connector(instance: str, *, user: str, database: str, ip_type: str,
                        lock_timeout_ms: int = 30_000) -> Callable[[], Any]:
    """A connection factory through the Cloud SQL Python Connector with IAM database auth (no passwords)."""
    from google.cloud.sql.connector import Connector, IPTypes  # heavy import: only on the cloud path

    ip = {"public": IPTypes.PUBLIC, "private": IPTypes.PRIVATE, "psc": IPTypes.PSC}[ip_type]
    return _ConnectorFactory(Connector(refresh_strategy="lazy"),
                             dict(instance_connection_string=instance, driver="pg8000", user=user, db=database,
                                  enable_iam_auth=True, ip_type=ip,
                                  startup_params=session_settings(lock_timeout_ms),
                                  # The connector hands pg8000 a socket it has already wrapped in its own TLS.
                                  # Without this pg8000 would build a default SSL context (the system CA store,
                                  # ~50 ms of CPU) on every connection and ask for TLS again inside the tunnel.
                                  ssl_context=False))


class _ConnectorFactory:
    """Connections from one Cloud SQL Connector, which the pool closes with itself."""

    sets_session = True

    def __init__(self, connector, options: dict[str, Any]):
        self._connector, self._options = connector, options

    def __call__(self):
        return self._connector.connect(**self._options)

    def close(self) -> None:
        self._connector.close()
