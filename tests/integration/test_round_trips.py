"""What a warm request costs the database, counted: statements and round trips per request, so they cannot creep.

Counts, not timings: every figure below is what pg8000 sends through a counting connection factory.
"""
from __future__ import annotations

import json

import pytest

from dev.roundtrips import RoundTrips
from shared import bootstrap
from shared.adapters.postgres.db import Database, local_connector
from tests.conftest import new_principal
from tests.integration.helpers import app_client, future_slot


@pytest.fixture
def counted(function_env, pg_url):
    """The instance's pool, counted; set before the first request so every function of this test uses it."""
    trips = RoundTrips()
    deps = bootstrap.deps()
    deps.__dict__["db"] = Database(trips.wrap(local_connector(pg_url)), size=4)
    return trips


def _body(reference: str) -> str:
    start, end = future_slot(days=2)
    return json.dumps({"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
                       "scheduled_start": start, "scheduled_end": end, "external_reference": reference})


def _measure(trips: RoundTrips, send) -> dict[str, int]:
    trips.reset()
    response = send()
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return trips.snapshot()


def test_a_warm_read_is_one_statement_in_one_round_trip(counted, db, google):
    _, key = new_principal(db)
    auth = {"Authorization": f"Bearer {key}"}
    create, read = app_client("create_meeting"), app_client("get_meeting")
    made = create.post("/v1/meetings", data=_body("rt-read"), content_type="application/json", headers=auth)
    meeting_id = made.get_json()["id"]

    read.get(f"/v1/meetings/{meeting_id}", headers=auth)  # the connection prepares the key and meeting statements
    # A key the instance has not resolved in the last minute costs one more statement; then it is cached.
    bootstrap.deps().key_cache.clear()
    uncached = _measure(counted, lambda: read.get(f"/v1/meetings/{meeting_id}", headers=auth))
    assert uncached == {"statements": 2, "round_trips": 2, "connections": 0}, counted.texts

    for path in (f"/v1/meetings/{meeting_id}", "/v1/meetings?page_size=20",
                 f"/v1/meetings/{meeting_id}/participants", f"/v1/meetings/{meeting_id}/recordings"):
        def send(path=path):
            return read.get(path, headers=auth)

        _measure(counted, send)  # prepares this route's statement on a connection
        warm = _measure(counted, send)
        assert warm == {"statements": 1, "round_trips": 1, "connections": 0}, (path, counted.texts)


def test_health_is_one_simple_query(counted):
    read = app_client("get_meeting")
    read.get("/v1/health")
    assert _measure(counted, lambda: read.get("/v1/health")) == {"statements": 1, "round_trips": 1, "connections": 0}


def test_a_warm_create_is_one_insert_then_one_locked_transaction(counted, db, google):
    _, key = new_principal(db)
    auth = {"Authorization": f"Bearer {key}"}
    create = app_client("create_meeting")
    create.post("/v1/meetings", data=_body("rt-warm-up"), content_type="application/json", headers=auth)

    made = _measure(counted, lambda: create.post("/v1/meetings", data=_body("rt-create"),
                                                 content_type="application/json", headers=auth))
    # The row and its people in one autocommitted INSERT; then BEGIN, the row locked, the outcome written (the
    # UPDATE returns the row), meeting.created recorded in the outbox (its sequence, then the event with its
    # deliveries), COMMIT. No read-back: the answer is the row the UPDATE returned.
    assert made == {"statements": 7, "round_trips": 7, "connections": 0}, counted.texts
    assert sum(n for text, n in counted.texts.items() if text.startswith("BEGIN")) == 1

    def again():
        return create.post("/v1/meetings", data=_body("rt-create"), content_type="application/json", headers=auth)

    again()  # the replay's own statement is prepared once per connection
    replay = _measure(counted, again)
    # The same reference again: the INSERT collides, the row is read, one locked transaction finds it done.
    assert replay == {"statements": 5, "round_trips": 5, "connections": 0}, counted.texts


def test_a_created_answer_is_what_a_read_returns(counted, db, google):
    _, key = new_principal(db)
    auth = {"Authorization": f"Bearer {key}"}
    made = app_client("create_meeting").post("/v1/meetings", data=_body("rt-same"), content_type="application/json",
                                             headers=auth)
    assert made.status_code == 201
    read = app_client("get_meeting").get(f"/v1/meetings/{made.get_json()['id']}", headers=auth)
    assert read.get_json() == made.get_json()
