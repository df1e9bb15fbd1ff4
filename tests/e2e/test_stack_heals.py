"""The local stack heals as Cloud Run would: what dies is started again, and what Google holds survives restarts.

A stack of its own: these tests kill its parts."""
from __future__ import annotations

import os
import signal
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.e2e.conftest import running_stack


@pytest.fixture(scope="module")
def own_stack():
    with running_stack("e2e-heal") as local:
        yield local


@pytest.fixture(scope="module")
def keys(own_stack):
    made = {}
    for role in ("service", "admin"):
        result = own_stack.ops("api-key", "--name", f"heal-{role}-{uuid.uuid4().hex[:6]}", "--role", role)
        assert result.returncode == 0, result.stderr
        made[role] = {"Authorization": f"Bearer {result.stdout.strip().splitlines()[-1]}"}
    return made


def body() -> dict:
    start = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0)
    return {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start.isoformat().replace("+00:00", "Z"),
            "scheduled_end": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            "external_reference": uuid.uuid4().hex}


def eventually(call, ok, timeout: float = 60):
    """Call until `ok(answer)`: a healing stack answers 503 (with Retry-After) until the part is back."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = call()
            if ok(answer):
                return answer
            assert answer.status_code == 503 and answer.headers.get("Retry-After"), (answer.status_code, answer.text)
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "the stack did not heal in time"
        time.sleep(0.5)


def create(stack, headers, payload=None):
    payload = payload or body()
    return eventually(lambda: requests.post(f"{stack.base}/v1/meetings", json=payload, headers=headers, timeout=30),
                      lambda a: a.status_code in (200, 201)).json()


def kill(stack, name: str) -> None:
    """SIGKILL one part, and wait until the stack says it has started it again (a new pid in stack.json)."""
    before = stack.info["pids"][name]
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while stack.info["pids"][name] == before:
        assert time.monotonic() < deadline, f"{name} was not restarted"
        time.sleep(0.3)


def check_all(stack, keys, meetings: list[dict]) -> None:
    """The end state: each meeting checked against Google stays live, with its one event; nothing PENDING."""
    from dev.fake_google import FakeGoogleControl

    google = FakeGoogleControl(stack.info["google_api_root"])
    try:
        events = [e["id"] for e in google.events()]
    finally:
        google.close()
    for meeting in meetings:
        summary = eventually(lambda m=meeting: requests.post(f"{stack.base}/internal/check-status",
                                                             json={"meeting_id": m["id"]}, headers=keys["admin"],
                                                             timeout=30), lambda a: a.status_code == 200).json()
        assert summary["status"] == "SCHEDULED", summary
        assert events.count(meeting["google_event_id"]) == 1


def test_a_killed_function_is_restarted(own_stack, keys):
    kill(own_stack, "create_meeting")
    made = create(own_stack, keys["service"])
    assert made["status"] == "CREATED"
    check_all(own_stack, keys, [made])


def test_a_killed_database_is_restarted(own_stack, keys):
    first = create(own_stack, keys["service"])
    pgdata = own_stack.state / "pgdata"
    os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
    eventually(lambda: requests.get(f"{own_stack.base}/v1/health", timeout=10), lambda a: a.status_code == 200)
    second = create(own_stack, keys["service"])
    check_all(own_stack, keys, [first, second])


def test_a_killed_fake_google_comes_back_with_its_events(own_stack, keys):
    made = create(own_stack, keys["service"])
    kill(own_stack, "fake-google")
    again = create(own_stack, keys["service"])
    check_all(own_stack, keys, [made, again])


def test_a_killed_tasks_emulator_is_restarted_and_delivers_with_the_invokers_token(own_stack, keys):
    kill(own_stack, "cloud-tasks")
    past = dict(body(), scheduled_start="2025-11-25T15:00:00Z", scheduled_end="2025-11-25T15:30:00Z")
    made = create(own_stack, keys["service"], past)
    # The sweeps are off in this stack: only a task delivered by the restarted emulator can finish the meeting.
    deadline = time.monotonic() + 30
    while requests.get(f"{own_stack.base}/v1/meetings/{made['id']}", headers=keys["service"],
                       timeout=10).json()["status"] != "FINISHED":
        assert time.monotonic() < deadline, "no follow-up task was delivered"
        time.sleep(0.3)


def test_a_restarted_stack_keeps_the_events_its_database_refers_to(own_stack, keys):
    made = [create(own_stack, keys["service"]) for _ in range(2)]
    assert own_stack.stop() == 0
    own_stack.start()
    check_all(own_stack, keys, made)
    listed = requests.get(f"{own_stack.base}/v1/meetings", headers=keys["service"], timeout=10).json()["items"]
    assert not [m for m in listed if m["status"] == "PENDING"]
