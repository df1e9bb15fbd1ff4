"""Idempotency-Key on POST, PATCH and DELETE, kept in the Firestore ledger (emulator)."""
from __future__ import annotations

import threading
import uuid

import pytest

from shared import bootstrap
from tests.conftest import new_principal
from tests.integration.helpers import Api, future_slot


def body(**extra):
    start, end = future_slot()
    return {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start, "scheduled_end": end, **extra}


@pytest.fixture
def api(function_env, firestore_emulator, monkeypatch, db):
    monkeypatch.setenv("FIRESTORE_DATABASE", "(default)")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", firestore_emulator.project)
    bootstrap.reset()
    return Api(new_principal(db)[1])


def key():
    return {"Idempotency-Key": uuid.uuid4().hex}


def test_a_post_without_reference_is_replayed_for_the_same_key(api, google):
    k = key()
    first = api.post(body(), **k)
    again = api.post(body(), **k)
    assert first.status_code == 201 and again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert google.call_count("calendar.events.insert") == 1
    other = api.post(body(), **key())
    assert other.get_json()["id"] != first.get_json()["id"]


def test_the_same_key_with_another_body_is_422(api, google):
    k = key()
    api.post(body(), **k)
    response = api.post(body(title="Otra"), **k)
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "Idempotency-Key"
    assert google.call_count("calendar.events.insert") == 1


def test_concurrent_posts_with_one_key_make_one_meeting(api, google):
    google.set_latency(300, operation="calendar.events.insert")
    k, answers = key(), []
    payload = body()
    threads = [threading.Thread(target=lambda: answers.append(api.post(payload, **k))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.status_code for r in answers} == {201}
    assert len({r.get_json()["id"] for r in answers}) == 1
    assert google.call_count("calendar.events.insert") == 1


def test_patch_and_delete_replay_their_first_answer(api, google):
    meeting = api.post(body()).get_json()
    k = key()
    first = api.patch(meeting["id"], {"title": "Control"}, **k)
    api.patch(meeting["id"], {"title": "Changed since"})
    replay = api.patch(meeting["id"], {"title": "Control"}, **k)
    assert replay.get_json() == first.get_json() and replay.headers["Idempotent-Replayed"] == "true"
    d = key()
    cancelled = api.delete(meeting["id"], **d)
    assert api.delete(meeting["id"], **d).get_json() == cancelled.get_json()
    assert google.call_count("calendar.events.delete") == 1


def test_keys_are_scoped_to_the_client(api, db, google):
    k = key()
    mine = api.post(body(), **k).get_json()
    theirs = Api(new_principal(db)[1]).post(body(), **k)
    assert theirs.status_code == 201 and theirs.get_json()["id"] != mine["id"]


def test_a_failed_attempt_is_not_replayed(api, google):
    k = key()
    google.add_fault(503, operation="calendar.events.insert", count=2)
    assert api.post(body(), **k).status_code == 503
    retried = api.post(body(), **k)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers


def test_a_bad_key_is_422(api):
    response = api.post(body(), **{"Idempotency-Key": "x" * 256})
    assert response.status_code == 422


def test_without_firestore_requests_still_succeed(function_env, db, google, monkeypatch):
    from dev.ports import free_port

    monkeypatch.setenv("FIRESTORE_DATABASE", "(default)")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    bootstrap.reset()
    api = Api(new_principal(db)[1])
    assert api.post(body(), **key()).status_code == 201
