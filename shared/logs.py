"""Structured JSON logs for Cloud Logging: severity, message, trace; never personal data."""
from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import traceback
from datetime import datetime, timezone

_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)
_configured = False
_EMAIL = re.compile(r"[^\s@'\"<>()\[\],;:]+@[^\s@'\"<>()\[\],;:]+\.[A-Za-z0-9-]{2,}")


def scrub(text: str) -> str:
    """A log text with any email address masked."""
    return _EMAIL.sub("<email>", text)


def _database_error(exc: BaseException) -> str | None:
    """A PostgreSQL error without its detail: the server's `D` field echoes row values ("Failing row ...")."""
    fields = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else None
    if fields is None or "C" not in fields:
        return None
    return f"SQLSTATE {fields.get('C')}: {fields.get('M', '')}"


def format_exception(exc_info) -> str:
    """A traceback that carries no row values and no emails."""
    kind, value, tb = exc_info
    lines: list[str] = []
    current: BaseException | None = value
    chain: list[BaseException] = []
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for exc in reversed(chain):
        lines += traceback.format_tb(exc.__traceback__)
        safe = _database_error(exc)
        lines.append(f"{type(exc).__module__}.{type(exc).__qualname__}: {safe if safe is not None else exc}\n")
    return scrub("".join(lines))


def set_trace(header: str | None, project: str | None) -> None:
    """Bind the request's `X-Cloud-Trace-Context` so every log line of the request carries it."""
    trace_id = (header or "").split("/", 1)[0].strip()
    if not trace_id:
        _trace.set(None)
    elif project:
        _trace.set(f"projects/{project}/traces/{trace_id}")
    else:
        _trace.set(trace_id)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, in the shape Cloud Logging parses."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": record.levelname,
            "message": scrub(record.getMessage()),
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "logger": record.name,
        }
        trace = _trace.get()
        if trace:
            entry["logging.googleapis.com/trace"] = trace
        for key in ("meeting_id", "function", "operation", "status", "duration_ms", "client"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["stack_trace"] = format_exception(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "INFO") -> None:
    """Install the JSON handler on the root logger, once per process."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("LOG_LEVEL", level))
    # Client libraries log request URLs at INFO/DEBUG; URLs can carry emails (calendar ids).
    for noisy in ("googleapiclient", "urllib3", "google.auth", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True
