"""A function process killed mid-create (SIGKILL, as an instance can die) leaves nothing inconsistent."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from dev.ports import free_port
from tests.conftest import FAST_GOOGLE, new_principal
from tests.integration.helpers import ROOT, app_client, future_slot


@pytest.fixture
def standalone(pg_url, fake_google):
    """create_meeting alone under functions-framework, as Cloud Functions runs it, in its own process group."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=pg_url, GOOGLE_API_ROOT=fake_google.url, **FAST_GOOGLE)
    ff = str(Path(sys.executable).with_name("functions-framework"))
    process = subprocess.Popen([ff, "--target", "create_meeting", "--source",
                                str(ROOT / "functions/create_meeting/main.py"), "--host", "127.0.0.1",
                                "--port", str(port)], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=0.5)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield process, f"http://127.0.0.1:{port}"
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _pending_row(db, reference: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.transaction() as cur:
            cur.execute("SELECT id, status FROM meetings WHERE external_reference = :r", {"r": reference})
            row = cur.fetchone()
        if row:
            return str(row[0]), row[1]
        time.sleep(0.05)
    raise AssertionError("the meeting row was never written")


def _crash_mid_create(standalone, db, key: str, body: dict) -> str:
    process, base = standalone
    threading.Thread(target=lambda: _post_quietly(base, key, body), daemon=True).start()
    meeting_id, status = _pending_row(db, body["external_reference"])
    assert status == "PENDING"
    time.sleep(0.3)  # the insert is now in Google's hands
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return meeting_id


def _post_quietly(base, key, body):
    try:
        requests.post(f"{base}/v1/meetings", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    except requests.RequestException:
        pass  # the process is killed under this request


def body():
    start, end = future_slot()
    return {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start, "scheduled_end": end, "external_reference": uuid.uuid4().hex}


@pytest.mark.parametrize("google_got_it", [True, False], ids=["after-google-acted", "before-google-acted"])
def test_a_killed_create_is_finished_by_the_status_check_with_one_event(standalone, db, google, function_env,
                                                                        google_got_it):
    _, key = new_principal(db)
    google.set_latency(1500, operation="calendar.events.insert")
    if not google_got_it:
        google.add_fault(503, operation="calendar.events.insert", count=1)  # answered after the kill, never applied
    meeting_id = _crash_mid_create(standalone, db, key, body())
    time.sleep(1.5)  # Google finishes (or refuses) the orphaned insert
    assert len(google.events()) == (1 if google_got_it else 0)
    google.clear_latency()
    admin = new_principal(db, role="admin")[1]
    summary = app_client("check_status").post("/internal/check-status", json={"meeting_id": meeting_id},
                                             headers={"Authorization": f"Bearer {admin}"}).get_json()
    assert summary["status"] == "CREATED"
    [event] = google.events()
    with db.transaction() as cur:
        cur.execute("SELECT status, google_event_id, meet_link FROM meetings WHERE id = :id", {"id": meeting_id})
        status, event_id, link = cur.fetchone()
    assert (status, event_id, link) == ("CREATED", event["id"], event["hangoutLink"])


def test_a_killed_create_retried_by_the_client_adopts_the_event(standalone, db, google, function_env):
    principal, key = new_principal(db)
    google.set_latency(1500, operation="calendar.events.insert")
    payload = body()
    meeting_id = _crash_mid_create(standalone, db, key, payload)
    time.sleep(1.5)
    google.clear_latency()
    retried = app_client("create_meeting").post("/v1/meetings", json=payload,
                                                 headers={"Authorization": f"Bearer {key}"})
    assert retried.status_code == 201 and retried.get_json()["id"] == meeting_id
    assert len(google.events()) == 1 and retried.get_json()["meet_link"] == google.events()[0]["hangoutLink"]
