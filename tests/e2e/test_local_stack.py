"""The local stack over HTTP: the seed request, the contract's errors, concurrency, and a restart."""
from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

MEET_LINK = re.compile(r"^https://meet\.google\.com/[a-z]{3}-[a-z]{4}-[a-z]{3}$")


def seed(tag: str | None = None) -> dict:
    tag = tag or uuid.uuid4().hex[:8]
    return {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": "2025-11-25T15:00:00Z", "scheduled_end": "2025-11-25T15:30:00Z",
            "external_reference": f"xoma_appointment_{tag}"}


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_the_readme_quick_start(stack):
    """As the README prints it: next year's November 25, so the reschedule and the cancel after it succeed."""
    headers = auth(stack.dev_key)
    day = f"{time.gmtime().tm_year + 1}-11-25"
    body = dict(seed(), scheduled_start=f"{day}T15:00:00Z", scheduled_end=f"{day}T15:30:00Z")
    created = requests.post(f"{stack.base}/v1/meetings", json=body, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    meeting = created.json()
    assert MEET_LINK.match(meeting["meet_link"]) and meeting["participants_count"] == 2
    assert created.headers["Location"] == f"/v1/meetings/{meeting['id']}"
    read = requests.get(stack.base + created.headers["Location"], headers=headers, timeout=10)
    assert read.json() == meeting
    found = requests.get(f"{stack.base}/v1/meetings", params={"external_reference": body["external_reference"]},
                         headers=headers, timeout=10).json()
    assert [m["id"] for m in found["items"]] == [meeting["id"]]
    moved = requests.patch(f"{stack.base}/v1/meetings/{meeting['id']}", json={"scheduled_start": f"{day}T16:00:00Z"},
                           headers=headers, timeout=30)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["scheduled_start"], moved.json()["scheduled_end"]) == (f"{day}T16:00:00Z", f"{day}T16:30:00Z")
    assert moved.json()["meet_link"] == meeting["meet_link"]
    cancelled = requests.delete(f"{stack.base}/v1/meetings/{meeting['id']}", headers=headers, timeout=30)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED", cancelled.text


def test_a_key_minted_while_the_stack_runs_works_and_tenancy_holds(stack, key):
    mine = requests.post(f"{stack.base}/v1/meetings", json=seed(), headers=auth(key), timeout=30).json()
    assert requests.get(f"{stack.base}/v1/meetings/{mine['id']}", headers=auth(key), timeout=10).status_code == 200
    other = requests.get(f"{stack.base}/v1/meetings/{mine['id']}", headers=auth(stack.dev_key), timeout=10)
    assert other.status_code == 404 and other.headers["Content-Type"].startswith("application/problem+json")


def test_errors_through_the_gateway_are_problem_json(stack, key):
    base, headers = stack.base, auth(key)
    cases = [
        (requests.get(f"{base}/v1/unknown", headers=headers, timeout=10), 404),
        (requests.put(f"{base}/v1/meetings", headers=headers, timeout=10), 405),
        (requests.get(f"{base}/v1/meetings", timeout=10), 401),
        (requests.post(f"{base}/v1/meetings", data=b"{", headers={**headers, "Content-Type": "application/json"},
                       timeout=10), 400),
        (requests.post(f"{base}/v1/meetings", data=b"x", headers={**headers, "Content-Type": "text/plain"},
                       timeout=10), 415),
        (requests.post(f"{base}/v1/meetings", json=dict(seed(), invited_emails=[]), headers=headers, timeout=10), 422),
        (requests.post(f"{base}/v1/meetings", data=b" " * 70_000,
                       headers={**headers, "Content-Type": "application/json"}, timeout=10), 413),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.text)
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert response.json()["status"] == status
    assert "Allow" in cases[1][0].headers and "Bearer" in cases[2][0].headers["WWW-Authenticate"]


def test_concurrent_duplicates_over_http_make_one_meeting(stack, key, google):
    body = seed()
    google.set_latency(200, operation="calendar.events.insert")

    def post(_):
        return requests.post(f"{stack.base}/v1/meetings", json=body, headers=auth(key), timeout=60)

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(post, range(50)))
    assert sorted(r.status_code for r in answers) == [200] * 49 + [201]
    assert len({r.json()["id"] for r in answers}) == 1
    assert google.call_count("calendar.events.insert") == 1


def test_docs_and_openapi_are_served(stack):
    doc = requests.get(f"{stack.base}/v1/openapi.json", timeout=10).json()
    assert doc["openapi"] == "3.1.0" and "/v1/meetings" in doc["paths"]
    page = requests.get(f"{stack.base}/v1/docs", timeout=10)
    assert page.headers["Content-Type"].startswith("text/html") and "openapi.json" in page.text


def test_follow_up_tasks_are_delivered_by_the_emulator_and_change_the_meeting(stack, key, google):
    """The sweeps are off in this stack: only a Cloud Task can move the meeting, through the gateway."""
    made = requests.post(f"{stack.base}/v1/meetings", json=seed(), headers=auth(key), timeout=30).json()
    assert made["status"] == "CREATED"
    deadline = time.monotonic() + 30
    status = made["status"]
    while time.monotonic() < deadline and status != "FINISHED":
        time.sleep(0.3)
        status = requests.get(f"{stack.base}/v1/meetings/{made['id']}", headers=auth(key), timeout=10).json()["status"]
    assert status == "FINISHED"  # the seed slot is long past: the status check task finished it
    assert google.call_count("calendar.events.get") >= 1


def test_data_survives_a_restart(stack, key):
    # A slot ahead: a past one would be finished by its follow-up task, racing the restart.
    made = requests.post(f"{stack.base}/v1/meetings", json=upcoming(seed()), headers=auth(key), timeout=30).json()
    info = stack.info
    assert stack.stop() == 0
    # SIGTERM stopped everything it started: no function, emulator or fake Google still answers.
    for url in [*info["functions"].values(), info["google_api_root"], "http://" + info["firestore"], stack.base]:
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)
    stack.start()
    again = requests.get(f"{stack.base}/v1/meetings/{made['id']}", headers=auth(key), timeout=10)
    assert again.status_code == 200 and again.json() == made


def test_ids_with_url_characters_reach_the_function_as_ids(stack, key):
    for raw in ("%3F", "%23", "%3Fstatus%3DCANCELLED"):
        for suffix in ("", "/participants"):
            response = requests.get(f"{stack.base}/v1/meetings/{raw}{suffix}", headers=auth(key), timeout=10)
            assert response.status_code == 404, (raw, suffix, response.text)
            assert response.headers["Content-Type"].startswith("application/problem+json")


def upcoming(body: dict, days: int = 3) -> dict:
    """The body with its slot moved `days` ahead of now."""
    from datetime import datetime, timedelta, timezone

    start = (datetime.now(timezone.utc) + timedelta(days=days)).replace(microsecond=0)
    return dict(body, scheduled_start=start.isoformat().replace("+00:00", "Z"),
                scheduled_end=(start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"))
