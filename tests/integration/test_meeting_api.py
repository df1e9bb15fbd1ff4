"""create_meeting and get_meeting through functions-framework's app, on a real database and the fake Google."""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import functions_framework
import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from tests.conftest import new_principal

ROOT = Path(__file__).resolve().parents[2]
MEET_LINK = re.compile(r"^https://meet\.google\.com/[a-z]{3}-[a-z]{4}-[a-z]{3}$")
SEED = {
    "organizer_email": "doctor@clinica.com",
    "invited_emails": ["paciente@correo.com"],
    "scheduled_start": "2025-11-25T15:00:00Z",
    "scheduled_end": "2025-11-25T15:30:00Z",
    "external_reference": "xoma_appointment_1234",
}


def app_client(name: str):
    return functions_framework.create_app(name, str(ROOT / "functions" / name / "main.py")).test_client()


@pytest.fixture
def api(function_env, db):
    """Both functions and a fresh client key; `api.post/get` carry the key."""

    class Api:
        create = app_client("create_meeting")
        read = app_client("get_meeting")
        principal, key = new_principal(db)
        auth = {"Authorization": f"Bearer {key}"}

        def post(self, body=SEED, *, headers=None, raw=None, content_type="application/json"):
            data = raw if raw is not None else json.dumps(body)
            return self.create.post("/v1/meetings", data=data, content_type=content_type,
                                    headers={**self.auth, **(headers or {})})

        def get(self, path, **kw):
            return self.read.get(path, headers={**self.auth, **kw.pop("headers", {})}, **kw)

        def count(self):
            return len(self.get("/v1/meetings?page_size=100").get_json()["items"])

    return Api()


def test_seed_request_creates_the_event_and_the_meeting(api, google):
    response = api.post()
    assert response.status_code == 201, response.get_data(as_text=True)
    meeting = response.get_json()
    assert response.headers["Location"] == f"/v1/meetings/{meeting['id']}"
    assert MEET_LINK.match(meeting["meet_link"]) and meeting["meet_link"].endswith(meeting["meeting_code"])
    assert meeting["participants_count"] == 2 and meeting["status"] == "CREATED"
    assert meeting["scheduled_start"] == "2025-11-25T15:00:00Z" and meeting["time_zone"] == "America/Bogota"
    assert meeting["title"] == "Video appointment" and meeting["invited_emails"] == ["paciente@correo.com"]
    [insert] = [r for r in google.requests(operation="calendar.events.insert") if r["status"] == 200]
    assert insert["query"]["conferenceDataVersion"] == "1" and insert["query"]["sendUpdates"] == "all"
    assert insert["body"]["id"] == meeting["google_event_id"]
    assert insert["body"]["conferenceData"]["createRequest"]["conferenceSolutionKey"] == {"type": "hangoutsMeet"}
    assert [a["email"] for a in insert["body"]["attendees"]] == ["doctor@clinica.com", "paciente@correo.com"]
    assert api.get(f"/v1/meetings/{meeting['id']}").get_json() == meeting


def test_a_replay_is_the_same_meeting_and_a_changed_body_a_conflict(api, google):
    first = api.post().get_json()
    again = api.post()
    assert again.status_code == 200 and again.get_json() == first
    changed = api.post(dict(SEED, scheduled_end="2025-11-25T16:00:00Z"))
    assert changed.status_code == 409 and changed.mimetype == "application/problem+json"
    assert google.ok_count("calendar.events.insert") == 1


def test_ten_concurrent_identical_posts_make_one_meeting_and_one_calendar_insert(api, google):
    google.set_latency(150, operation="calendar.events.insert")
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(api.post())) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers) == [200] * 9 + [201]
    assert len({r.get_json()["id"] for r in answers}) == 1
    assert google.call_count("calendar.events.insert") == 1 and api.count() == 1


def test_a_calendar_409_on_retry_adopts_the_existing_event(api, google):
    google.add_fault(503, operation="calendar.events.insert", count=None)
    failed = api.post()
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "2"
    [pending] = api.get("/v1/meetings").get_json()["items"]
    assert pending["status"] == "PENDING" and pending["meet_link"] is None
    google.clear_faults()
    # The insert reached Google after all (say, the answer was lost): the retry collides and adopts it.
    body = google.requests(operation="calendar.events.insert")[0]["body"]
    organizer = Credentials(google.user_token(SEED["organizer_email"], ["https://www.googleapis.com/auth/calendar"]))
    service = build("calendar", "v3", credentials=organizer, static_discovery=True,
                    client_options={"api_endpoint": google.url + "calendar/v3/"})
    made = service.events().insert(calendarId="primary", body=body, conferenceDataVersion=1).execute()
    retried = api.post()
    assert retried.status_code == 201 and retried.get_json()["meet_link"] == made["hangoutLink"]
    inserts = google.requests(operation="calendar.events.insert")
    assert [r["status"] for r in inserts][-1] == 409 and len(google.events()) == 1


def test_a_pending_conference_is_polled_and_never_recreated(api, google):
    google.configure(conference_mode="pending", pending_polls=3)
    meeting = api.post().get_json()
    assert MEET_LINK.match(meeting["meet_link"])
    assert google.call_count("calendar.events.insert") == 1
    assert google.call_count("calendar.events.get") == 3


def test_a_conference_pending_past_the_wait_is_created_without_link_then_filled(api, google):
    google.configure(conference_mode="pending", pending_polls=None)
    response = api.post()
    meeting = response.get_json()
    assert response.status_code == 201
    assert (meeting["status"], meeting["meet_link"], meeting["meeting_code"]) == ("CREATED", None, None)
    google.resolve_conference("primary", meeting["google_event_id"])
    again = api.post().get_json()
    assert MEET_LINK.match(again["meet_link"]) and google.call_count("calendar.events.insert") == 1


def test_a_failed_conference_is_a_502_and_a_retry_tries_again(api, google):
    google.configure(conference_mode="failure")
    failed = api.post()
    assert failed.status_code == 502 and failed.mimetype == "application/problem+json"
    [meeting] = api.get("/v1/meetings").get_json()["items"]
    assert meeting["status"] == "FAILED"
    assert google.events()[0]["status"] == "cancelled"
    google.configure(conference_mode="success")
    retried = api.post()
    assert retried.status_code == 201 and retried.get_json()["status"] == "CREATED"
    assert retried.get_json()["id"] == meeting["id"]


def test_google_down_answers_503_and_leaves_nothing_done(api, google):
    google.add_fault(500, operation="calendar.events.insert", count=None)
    response = api.post()
    assert response.status_code == 503 and "Retry-After" in response.headers
    assert [m["status"] for m in api.get("/v1/meetings").get_json()["items"]] == ["PENDING"]
    assert google.events() == []


def test_naive_times_are_read_in_the_given_time_zone(api, google):
    body = dict(SEED, scheduled_start="2025-11-25T10:00:00", scheduled_end="2025-11-25T10:45:00",
                time_zone="America/Bogota")
    meeting = api.post(body).get_json()
    assert (meeting["scheduled_start"], meeting["scheduled_end"]) == ("2025-11-25T15:00:00Z", "2025-11-25T15:45:00Z")
    event = google.events()[0]
    assert event["start"] == {"dateTime": "2025-11-25T10:00:00-05:00", "timeZone": "America/Bogota"}


def test_duplicate_invitees_merge_and_the_organizer_is_dropped(api, google):
    body = dict(SEED, invited_emails=["Paciente@correo.com", "paciente@CORREO.com", "DOCTOR@clinica.com"])
    meeting = api.post(body).get_json()
    assert meeting["invited_emails"] == ["Paciente@correo.com"] and meeting["participants_count"] == 2


BAD_BODIES = [
    ({"organizer_email": "not-an-email"}, "organizer_email"),
    ({"invited_emails": ["paciente@correo.com", "nope"]}, "invited_emails.1"),
    ({"invited_emails": []}, "invited_emails"),
    ({"invited_emails": [f"p{i}@correo.com" for i in range(101)]}, "invited_emails"),
    ({"invited_emails": ["doctor@clinica.com"]}, "invited_emails"),
    ({"scheduled_end": "2025-11-25T14:00:00Z"}, "scheduled_end"),
    ({"scheduled_end": "2025-11-26T15:30:00Z"}, "scheduled_end"),
    ({"scheduled_end": None}, "scheduled_end"),
    ({"scheduled_start": "yesterday"}, "scheduled_start"),
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"title": "x" * 201}, "title"),
    ({"description": "x" * 8001}, "description"),
    ({"external_reference": "x" * 256}, "external_reference"),
    ({"organizer_email": "a" * 250 + "@x.com"}, "organizer_email"),
    ({"title": "nul\u0000byte"}, "title"),
    ({"unexpected": 1}, "unexpected"),
]


@pytest.mark.parametrize("change, field", BAD_BODIES, ids=[f for _, f in BAD_BODIES])
def test_invalid_bodies_are_422_naming_the_field_and_write_nothing(api, google, change, field):
    response = api.post(dict(SEED, **change))
    assert response.status_code == 422, response.get_data(as_text=True)
    problem = response.get_json()
    assert response.mimetype == "application/problem+json" and problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]]
    assert api.count() == 0 and google.stats()["calls"] == {}


@pytest.mark.parametrize("raw, content_type, status", [
    (b"{not json", "application/json", 400),
    (b"\xff\xfe", "application/json", 400),
    (b"hello", "text/plain", 415),
    (json.dumps(SEED).encode(), "application/x-www-form-urlencoded", 415),
    (json.dumps(dict(SEED, description="x" * 70_000)).encode(), "application/json", 413),
])
def test_malformed_requests_get_their_status_and_write_nothing(api, google, raw, content_type, status):
    response = api.post(raw=raw, content_type=content_type)
    assert response.status_code == status and response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == status
    assert api.count() == 0 and google.stats()["calls"] == {}


def test_keys_are_required_and_checked(api):
    for headers in ({}, {"Authorization": "Bearer mk_unknown"}, {"Authorization": "Basic abc"}):
        response = api.create.post("/v1/meetings", json=SEED, headers=headers)
        assert response.status_code == 401 and response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert api.read.get("/v1/meetings", headers=headers).status_code == 401
    assert api.count() == 0


def test_unknown_routes_and_methods(api):
    assert api.get("/v1/nothing").status_code == 404
    wrong = api.read.delete("/v1/health")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET"
    assert wrong.mimetype == "application/problem+json"
    assert api.create.get("/v1/meetings", headers=api.auth).status_code == 405


def test_another_clients_meeting_is_a_404(api, db):
    meeting = api.post().get_json()
    _, other_key = new_principal(db)
    response = api.read.get(f"/v1/meetings/{meeting['id']}", headers={"Authorization": f"Bearer {other_key}"})
    assert response.status_code == 404
    _, admin_key = new_principal(db, role="admin")
    assert api.read.get(f"/v1/meetings/{meeting['id']}",
                        headers={"Authorization": f"Bearer {admin_key}"}).status_code == 200


def test_list_filters_and_pages(api):
    ids = [api.post(dict(SEED, external_reference=f"ref-{i}")).get_json()["id"] for i in range(3)]
    first = api.get("/v1/meetings?page_size=2").get_json()
    assert [m["id"] for m in first["items"]] == ids[:0:-1]
    second = api.get(f"/v1/meetings?page_size=2&page_token={first['next_page_token']}").get_json()
    assert [m["id"] for m in second["items"]] == ids[:1] and second["next_page_token"] is None
    by_ref = api.get("/v1/meetings?external_reference=ref-1").get_json()["items"]
    assert [m["id"] for m in by_ref] == [ids[1]]
    assert api.get("/v1/meetings?status=CREATED&organizer_email=DOCTOR@clinica.com").get_json()["items"][0]["id"] == ids[2]
    window = "/v1/meetings?scheduled_from=2025-11-25T15:00:00Z&scheduled_to=2025-11-25T15:00:01Z"
    assert len(api.get(window).get_json()["items"]) == 3


@pytest.mark.parametrize("query, field", [
    ("page_size=0", "page_size"), ("page_size=101", "page_size"), ("page_size=ten", "page_size"),
    ("status=DONE", "status"), ("scheduled_from=tomorrow", "scheduled_from"), ("page_token=%21%21", "page_token"),
])
def test_invalid_list_filters_are_422(api, query, field):
    response = api.get(f"/v1/meetings?{query}")
    assert response.status_code == 422 and field in [e["field"] for e in response.get_json()["errors"]]


def test_participants_recordings_health_and_docs(api):
    meeting = api.post().get_json()
    participants = api.get(f"/v1/meetings/{meeting['id']}/participants").get_json()["items"]
    assert [(p["email"], p["role"], p["attended"]) for p in participants] == [
        ("doctor@clinica.com", "organizer", None), ("paciente@correo.com", "guest", None)]
    assert api.get(f"/v1/meetings/{meeting['id']}/recordings").get_json() == {"items": []}
    assert api.get("/v1/meetings/00000000-0000-0000-0000-000000000000/participants").status_code == 404
    health = api.read.get("/v1/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    doc = api.read.get("/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert {(p, m) for p, ops in doc["paths"].items() for m in ops} >= {
        ("/v1/meetings", "post"), ("/v1/meetings", "get"), ("/v1/meetings/{meeting_id}", "get"),
        ("/v1/meetings/{meeting_id}/participants", "get"), ("/v1/meetings/{meeting_id}/recordings", "get"),
        ("/v1/health", "get")}
    page = api.read.get("/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html" and b"openapi.json" in page.data


def test_health_is_503_when_the_database_is_down(monkeypatch, function_env):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    from shared import bootstrap

    bootstrap.reset()
    response = app_client("get_meeting").get("/v1/health")
    assert response.status_code == 503 and response.get_json()["database"] == "unavailable"


def test_a_method_no_function_serves_lists_every_allowed_method(api):
    response = api.read.put("/v1/meetings/00000000-0000-0000-0000-000000000000", headers=api.auth)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "PATCH", "DELETE"}


def test_paths_the_router_cannot_match_still_get_problem_json(api):
    for path in ("/v1/meetings/%0A", "/v1/meetings/%0D%0A/participants"):
        response = api.read.get(path, headers=api.auth)
        assert response.status_code == 404 and response.mimetype == "application/problem+json"
