"""Logs are JSON lines with severity and the request's trace, and carry no emails or keys."""
from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from shared import bootstrap, logs
from shared.logs import JsonFormatter
from tests.conftest import new_principal
from tests.integration.helpers import Api, future_slot

TRACE = "105445aa7843bc8bf206b12000100000"


@pytest.fixture
def captured(function_env, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "meet-prod")
    bootstrap.reset()
    logs.configure()  # what every function does at cold start: it replaces the root handlers once
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def test_request_logs_are_structured_traced_and_free_of_personal_data(captured, db, google):
    _, key = new_principal(db)
    api = Api(key)
    start, end = future_slot()
    body = {"organizer_email": "secret.doctor@clinica.com", "invited_emails": ["hidden.patient@correo.com"],
            "scheduled_start": start, "scheduled_end": end, "external_reference": uuid.uuid4().hex}
    trace = {"X-Cloud-Trace-Context": f"{TRACE}/1;o=1"}
    meeting = api.post(body, **trace).get_json()
    api.post(dict(body, title="different"), **trace)                       # 409
    api.post(dict(body, invited_emails=["hidden.patient@"]), **trace)      # 422
    google.add_fault(503, operation="calendar.events.get", count=None)
    api.get("/v1/meetings?organizer_email=secret.doctor@clinica.com", **trace)
    api.patch(meeting["id"], {"invited_emails": ["other.patient@correo.com"]}, **trace)
    api.delete(meeting["id"], **trace)
    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines and all(line["severity"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") for line in lines)
    requests = [line for line in lines if line.get("logger") == "shared.web.app" and "operation" in line]
    assert len(requests) == 6
    assert all(line["logging.googleapis.com/trace"] == f"projects/meet-prod/traces/{TRACE}" for line in requests)
    assert {line["status"] for line in requests} >= {201, 409, 422, 200}
    for secret in ("secret.doctor", "hidden.patient", "other.patient", "clinica.com", key, key[3:]):
        assert secret not in text


def test_a_database_error_logged_with_its_traceback_carries_no_row_values(captured, db, principal):
    """PostgreSQL's error detail echoes the failing row ("Failing row contains (..., secret@x.com, ...)"); the
    JSON formatter keeps SQLSTATE and message and drops the detail, and masks any email left."""
    log = logging.getLogger("shared.web.app")
    try:
        with db.transaction() as cur:
            cur.execute("INSERT INTO participants (meeting_id, email, role, position)"
                        " VALUES (gen_random_uuid(), 'leaky.patient@correo.com', 'nobody', 0)")
    except Exception:
        log.exception("unhandled error while inserting lenient.person@example.org")
    text = captured.getvalue()
    line = json.loads([entry for entry in text.splitlines() if "unhandled error" in entry][-1])
    assert "SQLSTATE 23" in line["stack_trace"]
    assert "leaky.patient" not in text and "lenient.person" not in text and "Failing row" not in text
