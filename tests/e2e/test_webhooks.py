"""Push events on the running local stack: the Cloud Tasks emulator delivers each attempt through the gateway."""
from __future__ import annotations

import time
import uuid

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from tests.receiver import Receiver


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def receiver():
    target = Receiver(script=[500])  # the first attempt fails: the second comes on the schedule, about 5 s later
    yield target
    target.close()


def test_a_meeting_change_reaches_a_local_receiver_signed_and_retried(stack, key, receiver):
    base, headers = stack.base, auth(key)
    registered = requests.post(f"{base}/v1/webhook-endpoints", json={"url": receiver.url + "/meet"}, headers=headers,
                               timeout=10)
    assert registered.status_code == 201, registered.text
    endpoint = registered.json()
    assert registered.headers["Location"] == f"/v1/webhook-endpoints/{endpoint['id']}"
    meeting = requests.post(f"{base}/v1/meetings", headers=headers, timeout=30, json={
        "organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
        "scheduled_start": "2030-01-07T15:00:00Z", "scheduled_end": "2030-01-07T15:30:00Z",
        "external_reference": f"xoma_{uuid.uuid4().hex[:8]}"}).json()
    first, second = receiver.next(timeout=30), receiver.next(timeout=30)
    for path, sent, body in (first, second):
        event = Webhook(endpoint["secret"]).verify(body, dict(sent.items()))
        assert path == "/meet" and event["type"] == "meeting.created"
        assert event["data"]["meeting"]["id"] == meeting["id"] and event["data"]["sequence"] == 1
    assert first[1]["webhook-id"] == second[1]["webhook-id"]
    deadline = time.monotonic() + 10
    while True:
        [delivery] = requests.get(f"{base}/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=headers,
                                  timeout=10).json()["items"]
        if delivery["status"] == "delivered" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 2, 204)
    # Another client's key cannot see the endpoint.
    other = requests.get(f"{base}/v1/webhook-endpoints/{endpoint['id']}", headers=auth(stack.dev_key), timeout=10)
    assert other.status_code == 404


def test_the_openapi_document_describes_every_event(stack):
    doc = requests.get(f"{stack.base}/v1/openapi.json", timeout=10).json()
    assert set(doc["webhooks"]) == {"meeting.created", "meeting.updated", "meeting.cancelled", "meeting.started",
                                    "meeting.finished", "attendance.updated", "recording.ready", "transcript.ready"}
    assert "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry" in doc["paths"]
    assert "/internal/deliver-webhooks" not in doc["paths"]
