"""What callers see when Google refuses or limits the calendar owner, through the functions (CONTRACT: "Google
identity, faults and what callers see")."""
from __future__ import annotations

import json
import uuid

import pytest

from shared.adapters.google import SCOPES
from tests.conftest import new_principal
from tests.integration.helpers import Api, app_client, future_slot


@pytest.fixture
def api(function_env, db):
    return Api(new_principal(db)[1])


def body(organizer: str = "doctor@clinica.com") -> dict:
    start, end = future_slot()
    return {"organizer_email": organizer, "invited_emails": ["paciente@correo.com"], "scheduled_start": start,
            "scheduled_end": end, "external_reference": uuid.uuid4().hex}


def status_of(db, reference: str) -> str:
    with db.transaction() as cur:
        cur.execute("SELECT status FROM meetings WHERE external_reference = :r", {"r": reference})
        return cur.fetchone()[0]


def test_a_suspended_organizer_is_a_502_a_failed_meeting_no_event_and_a_retry_after_reactivation_succeeds(
        api, db, google):
    """Google answers a delegation grant for a suspended user with 400 invalid_grant (OAuth 2.0 for server to
    server applications, "Handling errors"): the create is a 502 naming the cause, not the user."""
    google.suspend_user("dra.baja@clinica.com")
    request = body("dra.baja@clinica.com")
    refused = api.post(request)
    assert refused.status_code == 502 and refused.mimetype == "application/problem+json"
    detail = refused.get_json()["detail"]
    assert "suspended" in detail and "dra.baja" not in detail and "clinica.com" not in detail
    assert status_of(db, request["external_reference"]) == "FAILED"
    assert google.events() == [] and google.call_count("calendar.events.insert") == 0
    google.add_workspace_user("dra.baja@clinica.com", suspended=False)
    again = api.post(request)
    assert again.status_code == 201, again.get_data(as_text=True)
    assert again.get_json()["status"] == "CREATED" and len(google.events("dra.baja@clinica.com")) == 1


def test_a_scope_the_domain_did_not_authorize_fails_the_create(api, db, google):
    google.configure(delegation_scopes=[s for s in SCOPES if "calendar" not in s])
    request = body()
    refused = api.post(request)
    assert refused.status_code == 502 and "scopes" in refused.get_json()["detail"]
    assert status_of(db, request["external_reference"]) == "FAILED" and google.events() == []


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded",
                                    "dailyLimitExceeded"])
def test_a_persistent_usage_limit_is_a_503_then_exactly_one_event(api, db, google, reason):
    google.add_fault(403, operation="calendar.events.insert", reason=reason, count=None)
    request = body()
    limited = api.post(request)
    assert limited.status_code == 503 and "Retry-After" in limited.headers
    assert status_of(db, request["external_reference"]) == "PENDING"
    google.clear_faults()
    done = api.post(request)
    assert done.status_code == 201 and len(google.events()) == 1


def test_the_status_check_fails_a_pending_meeting_whose_owner_google_refuses(api, db, google):
    """Background work on a refused identity: the meeting fails once, answered 200, never a 500 or a loop."""
    google.add_fault(503, operation="calendar.events.insert", count=None)
    request = body("dr.ausente@clinica.com")
    assert api.post(request).status_code == 503
    google.clear_faults()
    google.remove_workspace_user("dr.ausente@clinica.com")
    google.configure(open_directory=False)
    with db.transaction() as cur:
        cur.execute("SELECT id FROM meetings WHERE external_reference = :r", {"r": request["external_reference"]})
        meeting_id = str(cur.fetchone()[0])
    admin = new_principal(db, role="admin")[1]
    checked = app_client("check_status").post("/internal/check-status", data=json.dumps({"meeting_id": meeting_id}),
                                              content_type="application/json",
                                              headers={"Authorization": f"Bearer {admin}"})
    assert checked.status_code == 200, checked.get_data(as_text=True)
    assert checked.get_json()["status"] == "FAILED"
    with db.transaction() as cur:
        cur.execute("SELECT status, next_check_at FROM meetings WHERE id = :id", {"id": meeting_id})
        assert list(cur.fetchone()) == ["FAILED", None]
