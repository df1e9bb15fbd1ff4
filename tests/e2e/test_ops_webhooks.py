"""`python -m ops webhooks` against the running local stack: every client's endpoints and deliveries, and a retry
that goes through the webhooks queue and the Cloud Tasks emulator as the API's retry does."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from tests.e2e.test_local_stack import auth
from tests.receiver import Receiver


@pytest.fixture(scope="module")
def client_key(stack) -> tuple[str, str]:
    """A client of its own, so no other test's endpoint hears of these meetings."""
    name = f"ops-hooks-{uuid.uuid4().hex[:6]}"
    minted = stack.ops("api-key", "--name", name, "--role", "service")
    assert minted.returncode == 0, minted.stderr
    return name, minted.stdout.strip().splitlines()[-1]


def register(stack, key: str, url: str) -> dict:
    made = requests.post(f"{stack.base}/v1/webhook-endpoints", json={"url": url}, headers=auth(key), timeout=10)
    assert made.status_code == 201, made.text
    return made.json()


def create_meeting(stack, key: str) -> dict:
    start = (datetime.now(timezone.utc) + timedelta(days=45)).replace(microsecond=0)
    body = {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start.isoformat().replace("+00:00", "Z"),
            "scheduled_end": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            "external_reference": f"ops-hooks-{uuid.uuid4().hex[:8]}"}
    made = requests.post(f"{stack.base}/v1/meetings", json=body, headers=auth(key), timeout=30)
    assert made.status_code == 201, made.text
    return made.json()


def deliveries_of(stack, key: str, endpoint_id: str) -> list[dict]:
    return requests.get(f"{stack.base}/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=auth(key),
                        timeout=10).json()["items"]


def settled(stack, key: str, endpoint_id: str, ok, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        [delivery] = deliveries_of(stack, key, endpoint_id)
        if ok(delivery) or time.monotonic() > deadline:
            return delivery
        time.sleep(0.2)


def row_of(output: str, first_column: str) -> list[str]:
    [line] = [line for line in output.splitlines() if line.startswith(first_column)]
    return line.split()


def test_ops_lists_endpoints_and_deliveries_and_retries_one_through_cloud_tasks(stack, client_key):
    client, key = client_key
    receiver = Receiver(status=204)
    try:
        endpoint = register(stack, key, receiver.url + "/hooks?token=kept-out-of-listings")
        meeting = create_meeting(stack, key)
        _, first_headers, _ = receiver.next(timeout=30)
        delivery = settled(stack, key, endpoint["id"], lambda d: d["status"] == "delivered")
        assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 1, 204)

        listed = stack.ops("webhooks", "endpoints")
        assert listed.returncode == 0, listed.stderr
        assert row_of(listed.stdout, endpoint["id"])[1:3] == [client, "enabled"]
        assert row_of(listed.stdout, endpoint["id"])[-1] == receiver.url + "/hooks?…"
        assert endpoint["secret"] not in listed.stdout and "kept-out-of-listings" not in listed.stdout

        shown = stack.ops("webhooks", "deliveries", "--endpoint", endpoint["id"])
        assert shown.returncode == 0, shown.stderr
        assert len(shown.stdout.strip().splitlines()) == 2  # the header and this endpoint's one delivery
        columns = row_of(shown.stdout, delivery["id"])
        assert columns[1:5] == ["meeting.created", meeting["id"], "delivered", "1"]
        assert columns[-2:] == ["-", "204"]  # no next attempt; the receiver's last answer
        none_failed = stack.ops("webhooks", "deliveries", "--endpoint", endpoint["id"], "--status", "failed")
        assert none_failed.returncode == 0 and delivery["id"] not in none_failed.stdout

        retried = stack.ops("webhooks", "retry", delivery["id"])
        assert retried.returncode == 0, retried.stderr
        assert retried.stdout.strip() == f"{delivery['id']}: attempt 2 enqueued"
        # The task reaches deliver_webhooks through the emulator and the gateway: the same event, signed afresh.
        _, again, body = receiver.next(timeout=30)
        assert again["webhook-id"] == first_headers["webhook-id"] == delivery["event_id"]
        assert Webhook(endpoint["secret"]).verify(body, dict(again.items()))["data"]["meeting"]["id"] == meeting["id"]
        after = settled(stack, key, endpoint["id"], lambda d: d["attempts"] == 2 and d["status"] == "delivered")
        assert (after["status"], after["attempts"], after["last_status_code"]) == ("delivered", 2, 204)
    finally:
        receiver.close()


def test_ops_refuses_a_disabled_endpoint_and_unknown_ids_in_one_line(stack, client_key):
    _, key = client_key
    gone = Receiver(status=410)  # the receiver says it is gone for good: the endpoint is disabled
    try:
        endpoint = register(stack, key, gone.url + "/gone")
        create_meeting(stack, key)
        delivery = settled(stack, key, endpoint["id"], lambda d: d["status"] == "failed")
        assert delivery["status"] == "failed"
    finally:
        gone.close()
    listed = stack.ops("webhooks", "endpoints")
    assert row_of(listed.stdout, endpoint["id"])[2] == "disabled"

    refused = stack.ops("webhooks", "retry", delivery["id"])
    assert refused.returncode != 0
    assert refused.stderr.strip() == ("ops: The endpoint is disabled (its receiver answered 410 Gone): nothing more "
                                      "is sent to it.")
    assert settled(stack, key, endpoint["id"], lambda d: True)["status"] == "failed"  # left as it was

    for args in (("retry", str(uuid.uuid4())), ("retry", "not-an-id"), ("deliveries", "--endpoint", "nope")):
        out = stack.ops("webhooks", *args)
        assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert out.stderr.startswith("ops: No ") and "Traceback" not in out.stderr
    bad_limit = stack.ops("webhooks", "deliveries", "--limit", "0")
    assert bad_limit.returncode == 2 and "give a number from 1 to 1000" in bad_limit.stderr
