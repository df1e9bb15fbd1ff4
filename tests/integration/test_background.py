"""Background work on real emulators: the Firestore ledger's guarantees and tasks enqueued through Cloud Tasks."""
from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import bootstrap
from tests.conftest import new_principal
from tests.integration.helpers import Api, app_client, future_slot


def body(start=None, end=None):
    if start is None:
        start, end = future_slot()
    return {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start, "scheduled_end": end, "external_reference": uuid.uuid4().hex}


@pytest.fixture
def ledger_env(function_env, firestore_emulator, monkeypatch):
    monkeypatch.setenv("FIRESTORE_DATABASE", "(default)")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", firestore_emulator.project)
    bootstrap.reset()
    yield firestore_emulator


@pytest.fixture
def admin(db):
    return {"Authorization": f"Bearer {new_principal(db, role='admin')[1]}"}


def test_a_task_delivered_twice_does_its_work_once(ledger_env, db, admin, google):
    api = Api(new_principal(db)[1])
    meeting = api.post(body()).get_json()
    check = app_client("check_status")
    headers = {**admin, "X-CloudTasks-TaskName": f"check_status-{meeting['id']}-v1-end",
               "X-CloudTasks-QueueName": "projects/meet-test/locations/us-central1/queues/meet-tasks"}
    task = {"meeting_id": meeting["id"], "schedule_version": 1, "purpose": "end"}
    first = check.post("/", json=task, headers=headers)
    gets = google.call_count("calendar.events.get")
    second = check.post("/", json=task, headers=headers)
    assert first.get_json()["outcome"] == "ok" and second.get_json()["outcome"] == "duplicate"
    assert second.status_code == 200 and google.call_count("calendar.events.get") == gets
    # This meeting's runs only: the emulator is shared, and other tests record runs dated by their own clocks.
    runs = bootstrap.deps().ledger.recent_jobs("check_status", limit=200)
    assert [r["outcome"] for r in runs if r.get("meeting_id") == meeting["id"]] == ["ok"]


def test_overlapping_sweeps_run_once(ledger_env, db, admin, google):
    api = Api(new_principal(db)[1])
    ids = [api.post(body()).get_json()["id"] for _ in range(2)]
    with db.transaction() as cur:
        cur.execute("UPDATE meetings SET next_check_at = now() + interval '1 day' WHERE next_check_at IS NOT NULL")
        cur.execute("UPDATE meetings SET next_check_at = now() - interval '1 minute' WHERE id = ANY(:ids)",
                    {"ids": ids})
    google.set_latency(400, operation="calendar.events.get")
    check = app_client("check_status")

    def sweep(_):
        return check.post("/internal/check-status", json={}, headers=admin).get_json()

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(s["outcome"] for s in pool.map(sweep, range(2)))
    assert outcomes == ["ok", "skipped"]
    assert google.call_count("calendar.events.get") == 2  # each due meeting checked once


def test_with_firestore_down_the_api_and_the_jobs_still_work(function_env, monkeypatch, db, admin, google):
    from dev.ports import free_port

    monkeypatch.setenv("FIRESTORE_DATABASE", "(default)")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")  # nothing listens there
    bootstrap.reset()
    api = Api(new_principal(db)[1])
    created = api.post(body())
    assert created.status_code == 201
    meeting = created.get_json()
    assert api.get(f"/v1/meetings/{meeting['id']}").status_code == 200
    task = {"meeting_id": meeting["id"], "schedule_version": 1, "purpose": "end"}
    summary = app_client("check_status").post("/internal/check-status", json=task, headers={
        **admin, "X-CloudTasks-TaskName": f"check_status-{meeting['id']}-v1-end"})
    assert summary.status_code == 200 and summary.get_json()["status"] == "SCHEDULED"
    assert api.delete(meeting["id"]).get_json()["status"] == "CANCELLED"


def test_create_and_reschedule_enqueue_versioned_tasks_through_cloud_tasks(function_env, tasks_emulator, monkeypatch,
                                                                           db, receiver):
    monkeypatch.setenv("TASKS_QUEUE", tasks_emulator.queue_path)
    monkeypatch.setenv("TASKS_EMULATOR_HOST", tasks_emulator.host_port)
    monkeypatch.setenv("CHECK_STATUS_URL", receiver.url + "/check")
    monkeypatch.setenv("SYNC_RECORDINGS_URL", receiver.url + "/sync")
    monkeypatch.setenv("GRACE_PERIOD_MINUTES", "0")
    bootstrap.reset()
    api = Api(new_principal(db)[1])
    # An appointment that already ended: its follow-ups are due at once, so the emulator delivers them now.
    meeting = api.post(body("2025-11-25T15:00:00Z", "2025-11-25T15:30:00Z")).get_json()
    got = sorted(_deliveries(receiver, 3))
    assert [(path, name) for path, name, _ in got] == [
        ("/check", f"check_status-{meeting['id']}-v1-end"), ("/check", f"check_status-{meeting['id']}-v1-final"),
        ("/sync", f"sync_recordings-{meeting['id']}-v1-sync")]
    assert all(payload["meeting_id"] == meeting["id"] and payload["schedule_version"] == 1 for _, _, payload in got)
    moved = api.patch(meeting["id"], {"scheduled_start": "2025-11-26T15:00:00Z"})
    assert moved.status_code == 200
    again = sorted(_deliveries(receiver, 3))
    assert {name.rsplit("-", 2)[-2] for _, name, _ in again} == {"v2"}
    receiver.assert_quiet(0.5)


def _deliveries(receiver, count: int) -> list:
    return [(path, headers["X-CloudTasks-TaskName"], json.loads(body))
            for path, headers, body in (receiver.next(timeout=15) for _ in range(count))]
