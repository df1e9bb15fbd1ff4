"""Structured JSON logs for Cloud Logging: severity, message, trace; never personal data."""
from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from datetime import datetime, timezone

_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)
_configured = False


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
            "message": record.getMessage(),
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
            entry["stack_trace"] = self.formatException(record.exc_info)
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
