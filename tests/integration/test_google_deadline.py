"""A request waits on Google only so long, retries included: then 503 with Retry-After, and the status check finishes
the work, with one Calendar event."""
from __future__ import annotations

import time
import uuid

import pytest

from shared import bootstrap
from tests.conftest import new_principal
from tests.integration.helpers import Api, app_client, future_slot

LATENCY = 4.0  # seconds Google takes per call, far more than the request may wait in all


@pytest.fixture
def slow_google(function_env, monkeypatch, google):
    # Scaled down from the defaults (30 s in all, 20 s a call, 4 retries): without the deadline, five attempts of
    # 1.5 s each and their backoff would take 8 s or more.
    monkeypatch.setenv("GOOGLE_DEADLINE_SECONDS", "2.5")
    monkeypatch.setenv("GOOGLE_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("GOOGLE_NUM_RETRIES", "4")
    bootstrap.reset()
    google.set_latency(int(LATENCY * 1000), operation="calendar.events.insert")
    return google


def test_a_create_against_a_slow_google_is_a_503_within_the_deadline(slow_google, db):
    api = Api(new_principal(db)[1])
    start, end = future_slot()
    body = {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start, "scheduled_end": end, "external_reference": uuid.uuid4().hex}
    began = time.monotonic()
    answer = api.post(body)
    took = time.monotonic() - began
    assert answer.status_code == 503 and answer.mimetype == "application/problem+json", answer.get_json()
    assert int(answer.headers["Retry-After"]) > 0
    assert took < 2.5 + 1.0
    meeting_id = _only_meeting(db, body["external_reference"])
    with db.transaction() as cur:
        cur.execute("SELECT status FROM meetings WHERE id = :id", {"id": meeting_id})
        assert cur.fetchone()[0] == "PENDING"  # written first, finished later: never half-done

    # Google finishes what it was sent (the slow inserts land); then the status check finishes the meeting.
    slow_google.clear_latency()
    time.sleep(LATENCY + 0.5)
    admin = {"Authorization": f"Bearer {new_principal(db, role='admin')[1]}"}
    summary = app_client("check_status").post("/", json={"meeting_id": meeting_id}, headers=admin)
    assert summary.status_code == 200 and summary.get_json()["status"] in ("CREATED", "SCHEDULED")
    meeting = api.get(f"/v1/meetings/{meeting_id}").get_json()
    assert meeting["meet_link"] and meeting["status"] in ("CREATED", "SCHEDULED")
    events = [e for e in slow_google.events() if e["id"] == meeting["google_event_id"]]
    assert len(events) == 1 and len(slow_google.events()) == 1  # one event, however many attempts reached Google
    # The client's retry now gets the finished meeting.
    again = api.post(body)
    assert again.status_code in (200, 201) and again.get_json()["id"] == meeting_id


def _only_meeting(db, reference: str) -> str:
    with db.transaction() as cur:
        cur.execute("SELECT id FROM meetings WHERE external_reference = :r", {"r": reference})
        rows = cur.fetchall()
    assert len(rows) == 1
    return str(rows[0][0])
