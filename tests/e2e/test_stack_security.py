"""The running stack refuses what no caller should get through: keyless internal calls, forwarded credentials from
anyone but the gateway, and hostile HTTP, each as problem+json, with nothing written and nothing sent to Google."""
from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from tests.raw_http import request, send


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def upcoming() -> dict:
    from datetime import datetime, timedelta, timezone

    start = (datetime.now(timezone.utc) + timedelta(days=2)).replace(microsecond=0)
    return {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start.isoformat().replace("+00:00", "Z"),
            "scheduled_end": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            "external_reference": uuid.uuid4().hex}


@pytest.fixture(scope="module")
def admin_key(stack) -> str:
    result = stack.ops("api-key", "--name", f"e2e-admin-{uuid.uuid4().hex[:6]}", "--role", "admin")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def port_of(url: str) -> int:
    return urlsplit(url).port or 80


def test_internal_endpoints_take_no_keyless_call_and_tell_nothing(stack, key):
    made = requests.post(f"{stack.base}/v1/meetings", json=upcoming(), headers=auth(key), timeout=30).json()
    for path in ("/internal/check-status", "/internal/sync-recordings"):
        answers = [requests.post(stack.base + path, json=body, timeout=10, headers={
            "X-CloudTasks-TaskName": f"check_status-{body.get('meeting_id', 'x')}-v1-end",
            "X-CloudTasks-QueueName": stack.info["tasks_queue"]})
            for body in ({}, {"meeting_id": made["id"]}, {"meeting_id": str(uuid.uuid4())})]
        assert [a.status_code for a in answers] == [401, 401, 401], path
        assert all(a.headers["Content-Type"].startswith("application/problem+json") for a in answers)
        assert len({a.json()["detail"] for a in answers}) == 1  # the same answer for a real id and an unknown one
    service = requests.post(f"{stack.base}/internal/check-status", json={}, headers=auth(key), timeout=10)
    assert service.status_code == 403


def test_an_admin_key_still_runs_the_internal_endpoints(stack, key, admin_key):
    made = requests.post(f"{stack.base}/v1/meetings", json=upcoming(), headers=auth(key), timeout=30).json()
    summary = requests.post(f"{stack.base}/internal/check-status", json={"meeting_id": made["id"]},
                            headers=auth(admin_key), timeout=30)
    assert summary.status_code == 200 and summary.json()["status"] == "SCHEDULED"


def test_a_forwarded_key_counts_only_on_the_gateways_own_calls(stack, key):
    made = requests.post(f"{stack.base}/v1/meetings", json=upcoming(), headers=auth(key), timeout=30).json()
    path = f"/v1/meetings/{made['id']}"
    smuggled = {"Authorization": "Bearer junk", "X-Forwarded-Authorization": f"Bearer {key}"}
    through_gateway = requests.get(stack.base + path, headers=smuggled, timeout=10)
    direct = requests.get(stack.info["functions"]["get_meeting"] + path, headers=smuggled, timeout=10)
    for answer in (through_gateway, direct):
        assert answer.status_code == 401 and answer.headers["Content-Type"].startswith("application/problem+json")
    # The caller's own key, as the gateway forwards it (and as a direct call carries it), still works.
    assert requests.get(stack.base + path, headers=auth(key), timeout=10).status_code == 200
    assert requests.get(stack.info["functions"]["get_meeting"] + path, headers=auth(key), timeout=10).status_code == 200


HOSTILE = [
    ("a 70 KiB URI", lambda key: request("GET", "/v1/meetings?x=" + "a" * 70_000, auth(key)), 414),
    ("a 9 KiB header", lambda key: request("GET", "/v1/meetings", {**auth(key), "X-Pad": "a" * 9216}), 431),
    ("a NUL in Authorization", lambda key: request("GET", "/v1/meetings", {"Authorization": f"Bearer {key}\x00"}),
     400),
    ("101 headers", lambda key: request("GET", "/v1/meetings", {**auth(key), **{f"X-H{i}": "v" for i in range(101)}}),
     431),
    ("a header line over 64 KiB", lambda key: request("GET", "/v1/meetings", {**auth(key), "X-Pad": "a" * 70_000}),
     431),
    ("a malformed request line", lambda key: b"GET /v1/meetings HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
]


@pytest.mark.parametrize("what, make, status", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_http_gets_problem_json_from_the_gateway(stack, key, google, what, make, status):
    answer = send(port_of(stack.base), make(key))
    assert answer.status == status, (what, answer.body[:300])
    assert answer.problem["status"] == status
    assert key.encode() not in answer.body and b"<html" not in answer.body.lower()
    assert google.stats()["calls"].get("calendar.events.insert", 0) == 0


def test_a_body_that_never_arrives_holds_the_gateway_three_seconds_not_seventy(stack, key, google):
    body = json.dumps(upcoming()).encode()
    headers = {**auth(key), "Content-Type": "application/json"}
    answer = send(port_of(stack.base), request("POST", "/v1/meetings", headers, body, declared=len(body) + 100))
    assert answer.status == 408 and answer.problem["status"] == 408
    assert answer.seconds < 3 + 3
    listed = requests.get(f"{stack.base}/v1/meetings", headers=auth(key), timeout=10).json()["items"]
    assert all(m["external_reference"] != json.loads(body)["external_reference"] for m in listed)
    assert google.call_count("calendar.events.insert") == 0


def test_a_forged_page_token_is_a_422(stack, key):
    import base64

    forged = base64.urlsafe_b64encode(json.dumps({"c": "2030-01-01T00:00:00+00:00",
                                                  "i": str(uuid.uuid4())}).encode()).decode().rstrip("=")
    answer = requests.get(f"{stack.base}/v1/meetings", params={"page_token": forged}, headers=auth(key), timeout=10)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "page_token"
