"""Clinician availability and `reject_conflicts` through the functions and the fake Google (CONTRACT: "Clinician
availability").

Google's side: freebusy.query (Calendar v3 reference; FreeBusyRequest timeMin/timeMax/items, FreeBusyResponse
calendars.{id}.busy) as the user, with the narrowest scope the calendar.v3 discovery document lists for it that
reads one's own calendar, calendar.freebusy ("View your availability in your calendars").
"""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import new_principal
from tests.integration.helpers import Api, calendar_as_user, iso

DAY = (datetime.now(timezone.utc) + timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0)


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def organizer() -> str:
    """A clinician of the Workspace of one's own (any address of the fake's domain is an active user): the
    database outlives each test, so slots are never shared with another test's meetings."""
    return f"dra.{uuid.uuid4().hex[:8]}@clinica.com"


def body(who: str, start: datetime, end: datetime, **extra) -> dict:
    return {"organizer_email": who, "invited_emails": ["paciente@correo.com"], "scheduled_start": iso(start),
            "scheduled_end": iso(end), "external_reference": f"slot-{uuid.uuid4().hex[:10]}", **extra}


def busy_event(google, who: str, start: datetime, end: datetime, **extra) -> dict:
    """An event the clinician put in their own calendar in Google Calendar."""
    return calendar_as_user(google, who).insert(calendarId="primary", body={
        "summary": "Junta médica", "start": {"dateTime": iso(start)}, "end": {"dateTime": iso(end)},
        **extra}).execute()


@pytest.fixture
def api(function_env, db):
    return Api(new_principal(db)[1])


def availability(api, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.get(f"/v1/availability?{query}")


def meetings_of(db, who: str) -> list:
    with db.transaction() as cur:
        cur.execute("SELECT status FROM meetings WHERE lower(organizer_email) = lower(:o)", {"o": who})
        return [row[0] for row in cur.fetchall()]


# --- GET /v1/availability ------------------------------------------------------------------------------------

def test_availability_is_the_users_busy_time_merged_sorted_and_clipped(api, google):
    who = organizer()
    busy_event(google, who, at(14), at(15))
    busy_event(google, who, at(9), at(10))
    busy_event(google, who, at(9.5), at(10.5))       # overlaps the 9:00 one
    busy_event(google, who, at(10.5), at(11))        # touches it
    busy_event(google, who, at(12), at(13), transparency="transparent")  # marked free
    busy_event(google, who, at(20), at(23))          # runs past the range
    answer = availability(api, email=who, **{"from": iso(at(8)), "to": iso(at(21))})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"email": who, "from": iso(at(8)), "to": iso(at(21)), "busy": [
        {"start": iso(at(9)), "end": iso(at(11))}, {"start": iso(at(14)), "end": iso(at(15))},
        {"start": iso(at(20)), "end": iso(at(21))}]}
    [query] = google.requests(operation="calendar.freebusy.query")
    assert query["subject"] == who and query["body"]["items"] == [{"id": who}]
    assert query["body"]["timeMin"] == iso(at(8)) and query["body"]["timeMax"] == iso(at(21))


def test_a_range_without_an_offset_is_read_in_the_default_time_zone(api, google):
    who = organizer()
    busy_event(google, who, at(15), at(16))
    local = DAY.strftime("%Y-%m-%dT")  # America/Bogota is UTC-5: 10:00 there is 15:00 UTC
    answer = availability(api, email=who, **{"from": local + "10:00:00", "to": local + "12:00:00"}).get_json()
    assert answer["from"] == iso(at(15)) and answer["to"] == iso(at(17))
    assert answer["busy"] == [{"start": iso(at(15)), "end": iso(at(16))}]


@pytest.mark.parametrize("params, field", [
    ({"email": "paciente@correo.com"}, "email"),             # not a user of the Workspace
    ({"from": iso(at(10)), "to": iso(at(10))}, "to"),        # empty
    ({"from": iso(at(11)), "to": iso(at(10))}, "to"),        # backwards
    ({"to": iso(at(24 * 91))}, "to"),                        # more than 90 days
    ({"from": "mañana"}, "from"),
    ({"from": None}, "from"),                                # missing
    ({"email": None}, "email"),
])
def test_a_bad_availability_request_is_422_and_google_is_not_asked(api, google, params, field):
    query = {"email": "doctor@clinica.com", "from": iso(at(0)), "to": iso(at(24)), **params}
    answer = availability(api, **{k: v for k, v in query.items() if v is not None})
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert field in {e["field"] for e in answer.get_json()["errors"]}
    assert google.call_count("calendar.freebusy.query") == 0


def test_ninety_days_exactly_is_allowed(api, google):
    answer = availability(api, email=organizer(), **{"from": iso(at(0)), "to": iso(at(24 * 90))})
    assert answer.status_code == 200 and answer.get_json()["busy"] == []


def test_availability_with_google_unavailable_is_503_with_retry_after(api, google):
    google.add_fault(503, operation="calendar.freebusy.query", count=None)
    answer = availability(api, email=organizer(), **{"from": iso(at(0)), "to": iso(at(24))})
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert answer.mimetype == "application/problem+json"


def test_availability_needs_a_key(function_env):
    from tests.integration.helpers import app_client

    answer = app_client("get_meeting").get(f"/v1/availability?email=doctor@clinica.com&from={iso(at(0))}"
                                           f"&to={iso(at(1))}")
    assert answer.status_code == 401


# --- reject_conflicts ----------------------------------------------------------------------------------------

def test_a_slot_busy_in_google_calendar_is_409_with_the_conflicts_and_nothing_is_made(api, google, db):
    who = organizer()
    busy_event(google, who, at(10), at(11))
    refused = api.post(body(who, at(10.5), at(11.5), reject_conflicts=True))
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    assert refused.get_json()["conflicts"] == [{"start": iso(at(10.5)), "end": iso(at(11))}]
    assert meetings_of(db, who) == [] and len(google.events(who)) == 1
    # Without the flag nothing is checked: today's behaviour.
    assert api.post(body(who, at(10.5), at(11.5))).status_code == 201


def test_a_free_slot_is_created_and_touching_a_busy_one_is_not_a_conflict(api, google):
    who = organizer()
    busy_event(google, who, at(10), at(11))
    created = api.post(body(who, at(11), at(11.5), reject_conflicts=True))
    assert created.status_code == 201, created.get_data(as_text=True)


def test_another_live_meeting_of_the_organizer_is_a_conflict_even_one_still_being_created(api, google, db):
    """The middleware's own meetings count whatever Google's calendar says: a meeting whose creation Google left
    half-done (PENDING, no event yet) holds its slot, and so does one made by another client."""
    who = organizer()
    google.add_fault(503, operation="calendar.events.insert", count=None)
    assert api.post(body(who, at(9), at(10))).status_code == 503
    google.clear_faults()
    assert meetings_of(db, who) == ["PENDING"]
    refused = api.post(body(who, at(9.5), at(10.5), reject_conflicts=True))
    assert refused.status_code == 409 and refused.get_json()["conflicts"] == [
        {"start": iso(at(9.5)), "end": iso(at(10))}]
    other_client = Api(new_principal(db)[1])
    assert other_client.post(body(who, at(9), at(9.5), reject_conflicts=True)).status_code == 409


def test_an_organizer_outside_the_workspace_is_checked_against_their_meetings_here(api, google, db):
    """Google lets the middleware read only Workspace users' calendars: for others, their meetings here count."""
    who = f"dr.{uuid.uuid4().hex[:8]}@otra-clinica.com"
    assert api.post(body(who, at(9), at(10))).status_code == 201
    refused = api.post(body(who, at(9.5), at(10.5), reject_conflicts=True))
    assert refused.status_code == 409
    assert google.call_count("calendar.freebusy.query") == 0
    cancelled = api.post(body(who, at(12), at(13))).get_json()
    api.delete(cancelled["id"])
    assert api.post(body(who, at(12), at(13), reject_conflicts=True)).status_code == 201


def test_a_replay_of_a_create_with_reject_conflicts_is_the_same_meeting(api, google):
    who = organizer()
    request = body(who, at(9), at(10), reject_conflicts=True)
    first, again = api.post(request), api.post(request)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"] and len(google.events(who)) == 1


def test_patch_within_its_own_slot_is_allowed_and_into_a_busy_one_is_409_changing_nothing(api, google):
    who = organizer()
    mine = api.post(body(who, at(10), at(11), reject_conflicts=True)).get_json()
    inside = api.patch(mine["id"], {"scheduled_start": iso(at(10.25)), "scheduled_end": iso(at(10.75)),
                                    "reject_conflicts": True})
    assert inside.status_code == 200, inside.get_data(as_text=True)
    assert inside.get_json()["scheduled_start"] == iso(at(10.25))
    # Moving later, partly over its old slot, still does not collide with itself.
    later = api.patch(mine["id"], {"scheduled_start": iso(at(10.5)), "reject_conflicts": True})
    assert later.status_code == 200
    busy_event(google, who, at(14), at(15))
    other = api.post(body(who, at(16), at(17))).get_json()
    patches = google.call_count("calendar.events.patch")
    for start, end, conflicts in ((at(14.5), at(15.5), [(at(14.5), at(15))]),
                                  (at(15.5), at(16.5), [(at(16), at(16.5))])):
        refused = api.patch(mine["id"], {"scheduled_start": iso(start), "scheduled_end": iso(end),
                                         "reject_conflicts": True})
        assert refused.status_code == 409, refused.get_data(as_text=True)
        assert refused.get_json()["conflicts"] == [{"start": iso(s), "end": iso(e)} for s, e in conflicts]
    assert api.get(f"/v1/meetings/{mine['id']}").get_json() == later.get_json()
    assert google.call_count("calendar.events.patch") == patches
    assert api.get(f"/v1/meetings/{other['id']}").get_json()["scheduled_start"] == iso(at(16))


def test_a_patch_that_does_not_move_the_meeting_is_not_checked(api, google):
    who = organizer()
    mine = api.post(body(who, at(10), at(11))).get_json()
    busy_event(google, who, at(10), at(11))
    assert api.patch(mine["id"], {"title": "Control", "reject_conflicts": True}).status_code == 200
    assert google.call_count("calendar.freebusy.query") == 0


def test_google_unavailable_during_the_check_is_503_and_nothing_is_made(api, google, db):
    who = organizer()
    google.add_fault(503, operation="calendar.freebusy.query", count=None)
    refused = api.post(body(who, at(9), at(10), reject_conflicts=True))
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert meetings_of(db, who) == [] and google.events(who) == []
    assert google.call_count("calendar.events.insert") == 0


def test_of_five_concurrent_creates_for_overlapping_slots_exactly_one_succeeds(api, google, db):
    """The organizer's advisory lock serialises the check and the row it claims: the first request to hold it
    takes the slot, and each of the others then finds that slot taken (its PENDING or CREATED row) — whether or
    not Google's calendar shows the first one's event yet."""
    who = organizer()
    clients = [Api(api.auth["Authorization"].split(" ", 1)[1]) for _ in range(5)]
    answers: list = [None] * 5
    gate = threading.Barrier(5)

    def create(i: int) -> None:
        start = at(9) + timedelta(minutes=10 * i)
        gate.wait()
        answers[i] = clients[i].post(body(who, start, start + timedelta(minutes=45), reject_conflicts=True))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 409, 409, 409, 409], [a.get_data(as_text=True) for a in answers]
    assert all(a.get_json()["conflicts"] for a in answers if a.status_code == 409)
    assert meetings_of(db, who) == ["CREATED"] and len(google.events(who)) == 1
