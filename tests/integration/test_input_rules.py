"""Input rules of the contract through the functions: each a 422 naming the field, nothing written, nothing sent."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import new_principal
from tests.integration.helpers import Api, app_client, future_slot


@pytest.fixture
def api(function_env, db):
    return Api(new_principal(db)[1])


def body(**extra):
    start, end = future_slot()
    data = {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start, "scheduled_end": end, "external_reference": uuid.uuid4().hex, **extra}
    return {k: v for k, v in data.items() if v is not ...}


def rows(db, reference: str) -> int:
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM meetings WHERE external_reference = :r", {"r": reference})
        return cur.fetchone()[0]


def refused(api, db, google, request: dict, field: str):
    response = api.post(request)
    assert response.status_code == 422, response.get_data(as_text=True)
    problem = response.get_json()
    assert response.mimetype == "application/problem+json"
    assert field in [e["field"] for e in problem["errors"]], problem
    assert rows(db, request["external_reference"]) == 0
    assert google.call_count("calendar.events.insert") == 0
    return problem


@pytest.mark.parametrize("start, end, field", [
    ("0001-01-01T10:00:00Z", "0001-01-01T10:30:00Z", "scheduled_start"),
    ("1999-12-31T23:00:00Z", "1999-12-31T23:30:00Z", "scheduled_start"),
    ("9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59-05:00", "scheduled_start"),
    ("2045-01-01T10:00:00Z", "2045-01-01T10:30:00Z", "scheduled_start"),
])
def test_scheduled_times_outside_2000_to_five_years_ahead_are_refused(api, db, google, start, end, field):
    refused(api, db, google, body(scheduled_start=start, scheduled_end=end), field)


def test_a_slot_inside_a_dst_gap_is_empty_and_refused(api, db, google):
    """02:30 does not exist in New York on 2026-03-08: it and 03:30 are the same instant (PEP 495: a missing
    time maps through the offset before the change), so the slot is empty."""
    refused(api, db, google, body(scheduled_start="2026-03-08T02:30:00", scheduled_end="2026-03-08T03:30:00",
                                  time_zone="America/New_York"), "scheduled_end")


@pytest.mark.parametrize("zone", ["America", "localtime", "posixrules", "Factory", "right/UTC", "../etc/passwd"])
def test_only_iana_zone_names_are_time_zones(api, db, google, zone):
    refused(api, db, google, body(time_zone=zone), "time_zone")


def test_a_repeated_json_key_is_refused(api, db, google):
    request = body()
    raw = json.dumps(request)[:-1] + ', "organizer_email": "otro@clinica.com"}'
    response = api.create.post("/v1/meetings", data=raw, content_type="application/json", headers=api.auth)
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["organizer_email"]
    assert rows(db, request["external_reference"]) == 0 and google.call_count("calendar.events.insert") == 0


def test_a_local_part_over_64_characters_is_refused(api, db, google):
    refused(api, db, google, body(invited_emails=["p" * 65 + "@correo.com"]), "invited_emails.0")


def test_idna_spellings_of_one_mailbox_are_one_invitee(api):
    response = api.post(body(invited_emails=["p@clínica.com", "P@xn--clnica-4va.com", "otro@correo.com"]))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["invited_emails"] == ["p@clínica.com", "otro@correo.com"]


def test_invitees_with_display_names_are_the_richer_form(api, google):
    response = api.post(body(invited_emails=..., invitees=[
        {"email": "paciente@correo.com", "display_name": "Carlos Pérez"}, {"email": "madre@correo.com"}]))
    assert response.status_code == 201, response.get_data(as_text=True)
    meeting = response.get_json()
    assert meeting["invited_emails"] == ["paciente@correo.com", "madre@correo.com"]
    guests = [(p["email"], p["display_name"], p["matched_by"]) for p in meeting["participants"] if p["role"] == "guest"]
    assert guests == [("paciente@correo.com", "Carlos Pérez", None), ("madre@correo.com", None, None)]
    attendees = google.events()[0]["attendees"]
    assert {a["email"]: a.get("displayName") for a in attendees}["paciente@correo.com"] == "Carlos Pérez"
    # PATCH takes either form; the plain form keeps the names given.
    renamed = api.patch(meeting["id"], {"invitees": [{"email": "paciente@correo.com", "display_name": "Carlos P."}]})
    assert renamed.status_code == 200, renamed.get_data(as_text=True)
    assert [p["display_name"] for p in renamed.get_json()["participants"] if p["role"] == "guest"] == ["Carlos P."]
    again = api.patch(meeting["id"], {"invited_emails": ["PACIENTE@correo.com"]})
    assert [p["display_name"] for p in again.get_json()["participants"] if p["role"] == "guest"] == ["Carlos P."]


@pytest.mark.parametrize("change, field", [
    ({"invitees": [{"email": "paciente@correo.com"}]}, "invitees"),  # both forms
    ({"invited_emails": ...}, "invited_emails"),  # neither
    ({"invited_emails": ..., "invitees": [{"email": "p@correo.com", "display_name": "x" * 201}]},
     "invitees.0.display_name"),
    ({"invited_emails": ..., "invitees": [{"email": "p@correo.com", "name": "x"}]}, "invitees.0.name"),
])
def test_one_form_of_invitees_exactly(api, db, google, change, field):
    refused(api, db, google, body(**change), field)


def test_a_patch_outside_the_bounds_changes_nothing(api, google):
    meeting = api.post(body()).get_json()
    before = google.call_count("calendar.events.patch")
    response = api.patch(meeting["id"], {"scheduled_start": "9999-12-31T23:00:00-05:00"})
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "scheduled_start"
    assert google.call_count("calendar.events.patch") == before
    assert api.get(f"/v1/meetings/{meeting['id']}").get_json()["scheduled_start"] == meeting["scheduled_start"]


def test_an_internal_call_with_an_unknown_field_is_not_a_sweep(function_env, db):
    admin = new_principal(db, role="admin")[1]
    response = app_client("check_status").post("/internal/check-status", data=json.dumps({"meeting": "x"}),
                                               content_type="application/json",
                                               headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "meeting"
