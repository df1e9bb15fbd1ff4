"""update_meeting, cancel_meeting and check_status through functions-framework, on real parts."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import new_principal
from tests.integration.helpers import Api, app_client, calendar_as_user, future_slot, iso

MEET_LINK = re.compile(r"^https://meet\.google\.com/[a-z]{3}-[a-z]{4}-[a-z]{3}$")


def body(start=None, end=None, **extra):
    if start is None:
        start, end = future_slot()
    return {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start, "scheduled_end": end, "external_reference": f"ref-{uuid.uuid4().hex[:8]}",
            **extra}


@pytest.fixture
def api(function_env, db):
    return Api(new_principal(db)[1])


@pytest.fixture
def internal(function_env, db):
    """check_status called with an admin key, as `make run`'s scheduler and tests do locally."""
    client, key = app_client("check_status"), new_principal(db, role="admin")[1]

    def check(meeting_id=None, **extra):
        payload = {} if meeting_id is None else {"meeting_id": meeting_id, **extra}
        return client.post("/internal/check-status", json=payload, headers={"Authorization": f"Bearer {key}"})

    check.client, check.key = client, key
    return check


# --- PATCH ---------------------------------------------------------------------------------------------------

def test_reschedule_keeps_the_link_and_patches_google_notifying_invitees(api, google):
    created = api.post(body()).get_json()
    start = datetime.fromisoformat(created["scheduled_start"].replace("Z", "+00:00")) + timedelta(days=1)
    response = api.patch(created["id"], {"scheduled_start": iso(start)})
    assert response.status_code == 200, response.get_data(as_text=True)
    moved = response.get_json()
    assert moved["meet_link"] == created["meet_link"] and moved["google_event_id"] == created["google_event_id"]
    assert moved["scheduled_start"] == iso(start) and moved["scheduled_end"] == iso(start + timedelta(minutes=30))
    [patch] = google.requests(operation="calendar.events.patch")
    assert patch["query"]["sendUpdates"] == "all"
    event = google.get_event("primary", created["google_event_id"])
    assert datetime.fromisoformat(event["start"]["dateTime"]) == start
    assert event["hangoutLink"] == created["meet_link"]


def test_retitle_and_invitee_changes_follow_into_participants_and_google(api, google):
    created = api.post(body(title="Control")).get_json()
    changed = api.patch(created["id"], {"title": None, "description": "Traer exámenes",
                                        "invited_emails": ["nueva@correo.com", "Paciente@correo.com"]}).get_json()
    assert changed["title"] == "Video appointment" and changed["description"] == "Traer exámenes"
    assert changed["invited_emails"] == ["nueva@correo.com", "paciente@correo.com"]
    assert changed["participants_count"] == 3
    event = google.get_event("primary", created["google_event_id"])
    assert [a["email"] for a in event["attendees"]] == ["doctor@clinica.com", "nueva@correo.com",
                                                         "Paciente@correo.com"]
    assert event["summary"] == "Video appointment"
    smaller = api.patch(created["id"], {"invited_emails": ["nueva@correo.com"]}).get_json()
    assert [p["email"] for p in smaller["participants"]] == ["doctor@clinica.com", "nueva@correo.com"]


def test_a_patch_that_changes_nothing_does_not_call_google(api, google):
    created = api.post(body()).get_json()
    same = api.patch(created["id"], {"scheduled_start": created["scheduled_start"]})
    assert same.status_code == 200 and google.call_count("calendar.events.patch") == 0


@pytest.mark.parametrize("patch, field, message", [
    ({"scheduled_start": None}, "scheduled_start", "cannot be null"),
    ({"invited_emails": None}, "invited_emails", "cannot be null"),
    ({"status": "FINISHED"}, "status", "is read-only"),
    ({"meet_link": "https://meet.google.com/aaa-bbbb-ccc"}, "meet_link", "is read-only"),
    ({"colour": "red"}, "colour", "unknown field"),
    ({"invited_emails": ["bad"]}, "invited_emails.0", None),
    ({"scheduled_end": "2020-01-01T00:00:00Z"}, "scheduled_end", "must be after scheduled_start"),
    ({"title": "x" * 201}, "title", None),
])
def test_invalid_patches_are_422_and_change_nothing(api, google, patch, field, message):
    created = api.post(body()).get_json()
    response = api.patch(created["id"], patch)
    assert response.status_code == 422, response.get_data(as_text=True)
    errors = {e["field"]: e["message"] for e in response.get_json()["errors"]}
    assert field in errors and (message is None or errors[field] == message)
    assert api.get(f"/v1/meetings/{created['id']}").get_json() == created
    assert google.call_count("calendar.events.patch") == 0


def test_patch_of_an_unknown_or_foreign_meeting_is_404(api, db):
    created = api.post(body()).get_json()
    stranger = Api(new_principal(db)[1])
    assert stranger.patch(created["id"], {"title": "x"}).status_code == 404
    assert api.patch(str(uuid.uuid4()), {"title": "x"}).status_code == 404


# --- DELETE --------------------------------------------------------------------------------------------------

def test_cancel_cancels_the_event_notifying_and_is_idempotent(api, google):
    created = api.post(body()).get_json()
    first = api.delete(created["id"])
    assert first.status_code == 200
    cancelled = first.get_json()
    assert cancelled["status"] == "CANCELLED" and cancelled["cancelled_at"]
    assert google.get_event("primary", created["google_event_id"])["status"] == "cancelled"
    [delete] = google.requests(operation="calendar.events.delete")
    assert delete["query"]["sendUpdates"] == "all"
    again = api.delete(created["id"])
    assert again.status_code == 200 and again.get_json() == cancelled
    assert google.call_count("calendar.events.delete") == 1
    assert api.patch(created["id"], {"title": "late"}).status_code == 409


def test_cancel_of_an_event_already_deleted_in_google_still_cancels(api, google):
    created = api.post(body()).get_json()
    calendar_as_user(google).delete(calendarId="primary", eventId=created["google_event_id"]).execute()
    response = api.delete(created["id"])
    assert response.status_code == 200 and response.get_json()["status"] == "CANCELLED"


def test_cancel_of_a_finished_meeting_is_409(api, internal):
    created = api.post(body(start="2025-11-25T15:00:00Z", end="2025-11-25T15:30:00Z")).get_json()
    assert internal(created["id"]).get_json()["status"] == "FINISHED"
    response = api.delete(created["id"])
    assert response.status_code == 409 and response.mimetype == "application/problem+json"


# --- check_status --------------------------------------------------------------------------------------------

def test_internal_endpoints_want_an_admin_key_or_the_invokers_token(api, internal, db):
    created = api.post(body()).get_json()
    no_creds = internal.client.post("/internal/check-status", json={"meeting_id": created["id"]})
    assert no_creds.status_code == 401 and no_creds.mimetype == "application/problem+json"
    service = internal.client.post("/internal/check-status", json={"meeting_id": created["id"]},
                                   headers=api.auth)
    assert service.status_code == 403 and service.mimetype == "application/problem+json"
    assert internal(str(uuid.uuid4())).status_code == 404
    assert internal("not-a-uuid").status_code == 404
    tasks_style = internal.client.post("/", json={"meeting_id": created["id"]},
                                       headers={"Authorization": f"Bearer {internal.key}"})
    assert tasks_style.status_code == 200


def test_a_confirmed_future_meeting_becomes_scheduled(api, internal):
    created = api.post(body()).get_json()
    summary = internal(created["id"]).get_json()
    assert summary["status"] == "SCHEDULED" and summary["outcome"] == "ok"
    assert api.get(f"/v1/meetings/{created['id']}").get_json()["status"] == "SCHEDULED"


def test_an_event_deleted_directly_in_google_is_reconciled_as_cancelled(api, internal, google):
    created = api.post(body()).get_json()
    calendar_as_user(google).delete(calendarId="primary", eventId=created["google_event_id"]).execute()
    assert internal(created["id"]).get_json()["status"] == "CANCELLED"
    meeting = api.get(f"/v1/meetings/{created['id']}").get_json()
    assert meeting["status"] == "CANCELLED" and meeting["cancelled_at"]


def test_an_event_moved_directly_in_google_gets_its_new_times(api, internal, google):
    created = api.post(body()).get_json()
    start = datetime.fromisoformat(created["scheduled_start"].replace("Z", "+00:00")) + timedelta(hours=3)
    calendar_as_user(google).patch(calendarId="primary", eventId=created["google_event_id"], body={
        "start": {"dateTime": iso(start)}, "end": {"dateTime": iso(start + timedelta(minutes=45))}}).execute()
    internal(created["id"])
    meeting = api.get(f"/v1/meetings/{created['id']}").get_json()
    assert meeting["scheduled_start"] == iso(start)
    assert meeting["scheduled_end"] == iso(start + timedelta(minutes=45))


def test_a_live_conference_is_in_progress_then_finished_when_it_ends(api, internal, google):
    now = datetime.now(timezone.utc)
    created = api.post(body(start=iso(now - timedelta(minutes=5)), end=iso(now + timedelta(minutes=25)))).get_json()
    record = google.create_conference(meeting_code=created["meeting_code"], start_time=iso(now - timedelta(minutes=4)))
    assert internal(created["id"]).get_json()["status"] == "IN_PROGRESS"
    google.end_conference(record["name"])
    assert internal(created["id"]).get_json()["status"] == "FINISHED"
    assert api.get(f"/v1/meetings/{created['id']}").get_json()["status"] == "FINISHED"


def test_a_slot_past_its_grace_period_finishes_without_a_conference(api, internal):
    created = api.post(body(start="2025-11-25T15:00:00Z", end="2025-11-25T15:30:00Z")).get_json()
    assert internal(created["id"]).get_json()["status"] == "FINISHED"


def test_a_meeting_left_half_created_is_finished_by_the_check(api, internal, google):
    google.add_fault(503, operation="calendar.events.insert", count=2)
    failed = api.post(body())
    assert failed.status_code == 503
    [pending] = api.get("/v1/meetings").get_json()["items"]
    assert pending["status"] == "PENDING"
    summary = internal(pending["id"]).get_json()
    assert summary["status"] == "CREATED"
    meeting = api.get(f"/v1/meetings/{pending['id']}").get_json()
    assert MEET_LINK.match(meeting["meet_link"]) and len(google.events()) == 1


def test_a_task_for_an_outdated_schedule_does_nothing(api, internal, google):
    created = api.post(body()).get_json()
    start, end = future_slot(days=2)
    api.patch(created["id"], {"scheduled_start": start, "scheduled_end": end})
    calls = google.call_count("calendar.events.get")
    summary = internal(created["id"], schedule_version=1).get_json()
    assert summary["outcome"] == "skipped" and google.call_count("calendar.events.get") == calls
    assert internal(created["id"], schedule_version=2).get_json()["outcome"] == "ok"


def test_a_sweep_checks_only_the_due_meetings(api, internal, db, google):
    ids = [api.post(body()).get_json()["id"] for _ in range(6)]
    with db.transaction() as cur:
        cur.execute("UPDATE meetings SET next_check_at = now() + interval '1 day' WHERE next_check_at IS NOT NULL")
        cur.execute("UPDATE meetings SET next_check_at = now() - interval '1 minute' WHERE id = ANY(:ids)",
                    {"ids": ids[:2]})
    summary = internal().get_json()
    assert summary["mode"] == "sweep" and summary["counts"]["due"] == 2 and summary["counts"]["done"] == 2
    with db.transaction() as cur:
        cur.execute("SELECT id FROM meetings WHERE last_checked_at IS NOT NULL AND id = ANY(:ids)", {"ids": ids})
        assert sorted(str(r[0]) for r in cur.fetchall()) == sorted(ids[:2])



@pytest.mark.parametrize("column, index", [("next_check_at", "meetings_check_due_idx"),
                                           ("next_sync_at", "meetings_sync_due_idx")])
def test_the_sweep_queries_are_served_by_their_partial_indexes(db, column, index):
    from shared.adapters.postgres import repository

    with db.transaction() as cur:
        # A tiny test table is cheaper to scan; forbid that to see whether the index can serve the query at all.
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + repository.DUE_SQL[column], {"now": datetime.now(timezone.utc), "limit": 10})
        plan = " ".join(r[0] for r in cur.fetchall())
    assert index in plan


@pytest.mark.parametrize("endpoint, index", [(False, "webhook_deliveries_newest_idx"),
                                             (True, "webhook_deliveries_endpoint_idx")])
def test_the_operators_deliveries_list_is_served_by_an_index(db, endpoint, index):
    """`python -m ops webhooks deliveries` reads the newest rows by index, not by sorting the whole table."""
    from shared.adapters.postgres import webhooks

    endpoint_id = "00000000-0000-0000-0000-000000000001" if endpoint else None
    sql, params = webhooks.recent_deliveries_query(endpoint_id=endpoint_id, status=None, limit=20)
    with db.transaction() as cur:
        # An empty test table is cheaper to scan and sort; forbid both to see whether the index serves the order.
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_sort = off")
        cur.execute("EXPLAIN " + sql, params)
        plan = " ".join(r[0] for r in cur.fetchall())
    assert index in plan and "Sort" not in plan, plan
