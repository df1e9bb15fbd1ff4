"""The operator CLI against the running local stack: one meeting checked or synced now, a range backfilled, the
stack's URLs — the work going through Cloud Tasks as the product's own follow-ups do."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import requests

from tests.e2e.test_local_stack import auth


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def status(stack, key, meeting_id) -> str:
    return requests.get(f"{stack.base}/v1/meetings/{meeting_id}", headers=auth(key), timeout=10).json()["status"]


def test_ops_checks_one_meeting_and_backfills_a_range(stack, key):
    start = datetime.now(timezone.utc) + timedelta(days=40)  # beyond Cloud Tasks' 30 days: no follow-up task yet
    made = []
    for i in range(3):
        body = {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
                "scheduled_start": iso(start + timedelta(hours=i)),
                "scheduled_end": iso(start + timedelta(hours=i, minutes=30)),
                "external_reference": f"ops-{uuid.uuid4().hex[:8]}"}
        made.append(requests.post(f"{stack.base}/v1/meetings", json=body, headers=auth(key), timeout=30).json())
    assert [m["status"] for m in made] == ["CREATED"] * 3

    one = stack.ops("check", made[0]["id"])
    assert one.returncode == 0, one.stderr
    assert "enqueued 1" in one.stdout
    deadline = time.monotonic() + 30
    while status(stack, key, made[0]["id"]) != "SCHEDULED" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert status(stack, key, made[0]["id"]) == "SCHEDULED"  # the task ran the status check: Google confirmed it

    window = ("--from", iso(start - timedelta(minutes=1)), "--to", iso(start + timedelta(hours=2, minutes=1)))
    ranged = stack.ops("backfill", "check", *window)
    assert ranged.returncode == 0, ranged.stderr
    assert "3 meeting(s); enqueued 3" in ranged.stdout
    deadline = time.monotonic() + 30
    while {status(stack, key, m["id"]) for m in made} != {"SCHEDULED"} and time.monotonic() < deadline:
        time.sleep(0.3)
    assert {status(stack, key, m["id"]) for m in made} == {"SCHEDULED"}


def test_ops_refuses_clearly(stack):
    unknown = stack.ops("check", str(uuid.uuid4()))
    assert unknown.returncode != 0 and unknown.stderr.strip().startswith("ops: no meeting has id")
    backwards = stack.ops("backfill", "sync", "--from", "2026-02-01T00:00:00Z", "--to", "2026-01-01T00:00:00Z")
    assert backwards.returncode != 0 and "Traceback" not in backwards.stderr


def test_ops_prints_the_stack_urls(stack):
    out = stack.ops("stack")
    assert out.returncode == 0, out.stderr
    assert f"API:         {stack.base}" in out.stdout and "get_meeting" in out.stdout
