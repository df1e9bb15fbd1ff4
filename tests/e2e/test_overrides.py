"""`make run` honours DATABASE_URL and GOOGLE_API_ROOT: it then starts neither its own database nor its fake."""
from __future__ import annotations

import uuid

import requests

from tests.e2e.conftest import running_stack


def test_the_stack_uses_the_given_database_and_google_root(pg_url, fake_google, db):
    from tests.conftest import new_principal

    google = fake_google.control()
    google.reset()
    _, key = new_principal(db)  # a key in the given database, so the stack must be reading it
    try:
        with running_stack(overrides={"DATABASE_URL": pg_url, "GOOGLE_API_ROOT": fake_google.url}) as stack:
            assert stack.info["google_api_root"] == fake_google.url
            assert not (stack.state / "pgdata").exists()
            body = {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
                    "scheduled_start": "2030-01-07T15:00:00Z", "scheduled_end": "2030-01-07T15:30:00Z",
                    "external_reference": uuid.uuid4().hex}
            made = requests.post(f"{stack.base}/v1/meetings", json=body, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30)
            assert made.status_code == 201
            assert [e["id"] for e in google.events()] == [made.json()["google_event_id"]]
            with db.transaction() as cur:
                cur.execute("SELECT status FROM meetings WHERE id = :id", {"id": made.json()["id"]})
                assert cur.fetchone()[0] == "CREATED"
    finally:
        google.close()
