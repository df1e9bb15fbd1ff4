"""Meeting use cases on a real PostgreSQL with an in-memory Calendar."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import SecretStr

from shared.adapters.postgres import repository as repo
from shared.services import meetings
from shared.domain.errors import Conflict, InvalidInput, NotFound, Unavailable, UpstreamFailed
from shared.web.models import MeetingCreate, MeetingListQuery
from shared.settings import Settings
from tests.conftest import new_principal
from tests.fakes import FakeCalendar, FakeQueue, MeetingCalendar

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def settings(pg_url) -> Settings:
    return Settings(database_url=pg_url, google_api_root="http://127.0.0.1:9", conference_wait_seconds=0.3,
                    conference_poll_interval_seconds=0.01)


@pytest.fixture
def calendar() -> FakeCalendar:
    return FakeCalendar()


def body(**overrides) -> MeetingCreate:
    data = {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": "2025-11-25T15:00:00Z", "scheduled_end": "2025-11-25T15:30:00Z",
            "external_reference": "xoma_appointment_1234"}
    data.update(overrides)
    return MeetingCreate.model_validate({k: v for k, v in data.items() if v is not ...})


def create(data, *, principal, db, calendar, settings, tasks=None):
    return meetings.create_meeting(data, principal=principal, db=db, calendar=MeetingCalendar(calendar),
                                   tasks=tasks or FakeQueue(),
                                   settings=settings, clock=lambda: NOW)


# --- the rules of a create request -------------------------------------------------------------------------

def test_naive_times_are_read_in_the_meeting_time_zone(settings):
    new = meetings.normalize(body(scheduled_start="2025-11-25T10:00:00", scheduled_end="2025-11-25T10:30:00",
                                  time_zone="America/Bogota"), settings=settings, now=NOW)
    assert new.scheduled_start == datetime(2025, 11, 25, 15, 0, tzinfo=timezone.utc)
    assert new.scheduled_end - new.scheduled_start == timedelta(minutes=30)


def test_without_times_the_meeting_starts_now_for_the_default_duration(settings):
    new = meetings.normalize(body(scheduled_start=..., scheduled_end=...), settings=settings, now=NOW)
    assert (new.scheduled_start, new.scheduled_end) == (NOW, NOW + timedelta(minutes=30))


@pytest.mark.parametrize("overrides, field", [
    ({"scheduled_end": ...}, "scheduled_end"),
    ({"scheduled_start": ...}, "scheduled_start"),
    ({"scheduled_end": "2025-11-25T14:00:00Z"}, "scheduled_end"),
    ({"scheduled_end": "2025-11-25T15:00:00Z"}, "scheduled_end"),
    ({"scheduled_end": "2025-11-26T15:00:01Z"}, "scheduled_end"),
    ({"invited_emails": ["Doctor@Clinica.com"]}, "invited_emails"),
])
def test_rule_violations_name_the_field(settings, overrides, field):
    with pytest.raises(InvalidInput) as caught:
        meetings.normalize(body(**overrides), settings=settings, now=NOW)
    assert [e["field"] for e in caught.value.errors] == [field]


def test_invitees_are_merged_case_insensitively_and_the_organizer_dropped(settings):
    new = meetings.normalize(body(invited_emails=["Ana@x.com", "ana@X.com", "doctor@CLINICA.com", "bo@x.com"]),
                             settings=settings, now=NOW)
    assert new.invited_emails == ["Ana@x.com", "bo@x.com"]


def test_a_full_day_is_allowed(settings):
    new = meetings.normalize(body(scheduled_end="2025-11-26T15:00:00Z"), settings=settings, now=NOW)
    assert new.scheduled_end - new.scheduled_start == timedelta(hours=24)


def test_event_ids_are_base32hex_and_change_per_attempt():
    first = meetings.event_id_for("0b6c3a4e-8a4b-4f53-9a40-1d6f0f3c2a11", 1)
    assert re.fullmatch(r"[a-v0-9]{26}", first)
    assert meetings.event_id_for("0b6c3a4e-8a4b-4f53-9a40-1d6f0f3c2a11", 2) == first + "2"


# --- create, exactly once -----------------------------------------------------------------------------------

def test_create_stores_the_meeting_with_its_link_and_participants(db, principal, calendar, settings):
    meeting, created = create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    assert created and meeting.status == "CREATED"
    assert re.fullmatch(r"https://meet\.google\.com/[a-z]{3}-[a-z]{4}-[a-z]{3}", meeting.meet_link)
    assert meeting.meet_link.endswith(meeting.meeting_code)
    assert meeting.participants_count == 2
    assert [(p.email, p.role) for p in meeting.participants] == [
        ("doctor@clinica.com", "organizer"), ("paciente@correo.com", "guest")]
    event = calendar.events[meeting.google_event_id]
    assert [a["email"] for a in event["attendees"]] == ["doctor@clinica.com", "paciente@correo.com"]
    assert event["conferenceData"]["createRequest"]["status"]["statusCode"] == "success"
    assert meetings.get_meeting(meeting.id, principal=principal, db=db) == meeting


def test_same_reference_and_body_is_the_same_meeting_with_one_event(db, principal, calendar, settings):
    first, _ = create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    again, created = create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    assert (again.id, created) == (first.id, False)
    assert calendar.count("insert") == 1 and len(calendar.events) == 1


def test_same_reference_with_another_body_is_a_conflict(db, principal, calendar, settings):
    create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    with pytest.raises(Conflict):
        create(body(title="Another"), principal=principal, db=db, calendar=calendar, settings=settings)


def test_references_are_scoped_to_the_client(db, principal, calendar, settings):
    other, _ = new_principal(db)
    mine, _ = create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    theirs, created = create(body(), principal=other, db=db, calendar=calendar, settings=settings)
    assert created and theirs.id != mine.id


def test_ten_concurrent_identical_creates_make_one_meeting_and_one_insert(db, principal, calendar, settings):
    results, errors = [], []

    def attempt():
        try:
            results.append(create(body(), principal=principal, db=db, calendar=calendar, settings=settings))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({m.id for m, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert calendar.count("insert") == 1


def test_google_unavailable_leaves_a_pending_row_that_a_retry_finishes(db, principal, calendar, settings):
    calendar.fail_next.append("insert")
    with pytest.raises(Unavailable):
        create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    page = meetings.list_meetings(MeetingListQuery(), principal=principal, db=db, settings=settings)
    assert [m.status for m in page.items] == ["PENDING"] and page.items[0].meet_link is None
    meeting, created = create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    assert created and meeting.status == "CREATED" and len(calendar.events) == 1


def test_an_event_made_before_a_crash_is_adopted_not_duplicated(db, principal, calendar, settings):
    calendar.fail_next.append("insert")
    with pytest.raises(Unavailable):
        create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    pending = meetings.list_meetings(MeetingListQuery(), principal=principal, db=db, settings=settings).items[0]
    # Google made the event, but the answer never reached the database (the process died in between).
    made = calendar.insert_event(None, {"id": meetings.event_id_for(pending.id, 1), "attendees": []})
    meeting, _ = create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    assert meeting.google_event_id == made["id"] and meeting.meet_link == made["hangoutLink"]
    assert len(calendar.events) == 1


def test_a_pending_conference_is_polled_never_recreated(db, principal, settings):
    calendar = FakeCalendar(conference="pending", pending_polls=3)
    meeting, _ = create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    assert meeting.meet_link and meeting.status == "CREATED"
    assert calendar.count("insert") == 1 and calendar.count("get") == 3


def test_a_conference_still_pending_after_the_wait_answers_without_a_link(db, principal, settings):
    calendar = FakeCalendar(conference="pending")
    meeting, _ = create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    assert (meeting.status, meeting.meet_link, meeting.meeting_code) == ("CREATED", None, None)
    calendar.resolve(meeting.google_event_id)
    again, created = create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    assert not created and again.meet_link == calendar.events[meeting.google_event_id]["hangoutLink"]
    assert calendar.count("insert") == 1


def test_a_failed_conference_removes_the_event_and_a_retry_tries_again(db, principal, settings):
    calendar = FakeCalendar(conference="failure")
    with pytest.raises(UpstreamFailed):
        create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    failed = meetings.list_meetings(MeetingListQuery(), principal=principal, db=db, settings=settings).items[0]
    assert failed.status == "FAILED"
    assert calendar.events[failed.google_event_id]["status"] == "cancelled"
    calendar.conference = "success"
    meeting, created = create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    assert created and meeting.id == failed.id and meeting.status == "CREATED"
    assert meeting.google_event_id == failed.google_event_id + "2"


# --- read and list ------------------------------------------------------------------------------------------

def test_another_clients_meeting_is_not_found_but_an_admin_sees_it(db, principal, calendar, settings):
    meeting, _ = create(body(), principal=principal, db=db, calendar=calendar, settings=settings)
    stranger, _ = new_principal(db)
    admin, _ = new_principal(db, role="admin")
    with pytest.raises(NotFound):
        meetings.get_meeting(meeting.id, principal=stranger, db=db)
    assert meetings.get_meeting(meeting.id, principal=admin, db=db).id == meeting.id
    with pytest.raises(NotFound):
        meetings.get_meeting("not-a-uuid", principal=admin, db=db)


def test_list_pages_newest_first_and_filters(db, principal, calendar, settings):
    made = []
    for i in range(5):
        start = f"2025-12-0{i + 1}T15:00:00Z"
        made.append(create(body(external_reference=f"ref-{i}", scheduled_start=start,
                                scheduled_end=start.replace("15:00", "15:30"),
                                organizer_email="Other@Clinica.com" if i == 4 else "doctor@clinica.com"),
                           principal=principal, db=db, calendar=calendar, settings=settings)[0])
    seen, token = [], None
    while True:
        page = meetings.list_meetings(MeetingListQuery(page_size=2, page_token=token), principal=principal, db=db,
                                      settings=settings)
        seen += [m.id for m in page.items]
        token = page.next_page_token
        if token is None:
            break
    assert seen == [m.id for m in reversed(made)]

    def ids(**filters):
        q = MeetingListQuery.model_validate(filters)
        return [m.id for m in meetings.list_meetings(q, principal=principal, db=db, settings=settings).items]

    assert ids(organizer_email="other@clinica.com") == [made[4].id]
    assert ids(external_reference="ref-2") == [made[2].id]
    assert ids(scheduled_from="2025-12-02T15:00:00Z", scheduled_to="2025-12-04T15:00:00Z") == [made[2].id, made[1].id]
    assert ids(status="CANCELLED") == []
    stranger, _ = new_principal(db)
    assert meetings.list_meetings(MeetingListQuery(), principal=stranger, db=db, settings=settings).items == []


def test_a_forged_page_token_is_invalid_input(db, principal, settings):
    with pytest.raises(InvalidInput) as caught:
        meetings.list_meetings(MeetingListQuery(page_token="bm9wZQ"), principal=principal, db=db, settings=settings)
    assert caught.value.errors[0]["field"] == "page_token"


def test_page_tokens_are_signed_so_a_forged_or_altered_one_is_invalid_input(db, principal, calendar, settings):
    import base64
    import json

    for i in range(3):
        create(body(external_reference=f"signed-{i}"), principal=principal, db=db, calendar=calendar, settings=settings)
    token = meetings.list_meetings(MeetingListQuery(page_size=1), principal=principal, db=db,
                                   settings=settings).next_page_token
    payload, _, mac = token.partition(".")
    seen = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    def forge(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    other_key = settings.model_copy(update={"page_token_key": SecretStr("k" * 40)})
    with db.transaction() as cur:
        last = repo.get_meeting(cur, seen["i"])
    forged = [
        payload,  # the signature left off (the unsigned tokens of before)
        f"{forge(dict(seen, c='2099-01-01T00:00:00+00:00'))}.{mac}",  # another position under the same signature
        meetings.encode_page_token(last, other_key),  # another deployment's key
        f"{payload}.{mac[:-2]}AA",
        f"{payload}.ñ{mac[1:]}", "Ê󱑴.𧈗9",  # any text a client sends: still a 422, never a 500
    ]
    for bad in forged:
        with pytest.raises(InvalidInput) as caught:
            meetings.list_meetings(MeetingListQuery(page_token=bad), principal=principal, db=db, settings=settings)
        assert caught.value.errors[0]["field"] == "page_token"
    # The one unsigned token accepted is the document's own example, so "Try it out" runs as printed.
    from shared.services import page_tokens
    from shared.web import examples

    assert examples.PAGE_TOKEN == page_tokens.EXAMPLE
    assert meetings.list_meetings(MeetingListQuery(page_token=examples.PAGE_TOKEN), principal=principal, db=db,
                                  settings=settings).items is not None
    # Rotation: with the new key first and the old one after it, tokens already handed out still work.
    rotated = settings.model_copy(update={"page_token_key": SecretStr("n" * 40 + "," + "k" * 40)})
    issued_before = meetings.encode_page_token(last, other_key)
    assert meetings.list_meetings(MeetingListQuery(page_token=issued_before), principal=principal, db=db,
                                  settings=rotated).items


def test_a_list_page_holds_twenty_meetings_by_default(db, principal, calendar, settings):
    for i in range(21):
        create(body(external_reference=f"page-{i}"), principal=principal, db=db, calendar=calendar, settings=settings)
    page = meetings.list_meetings(MeetingListQuery(), principal=principal, db=db, settings=settings)
    assert len(page.items) == 20 and page.next_page_token is not None
    rest = meetings.list_meetings(MeetingListQuery(page_token=page.next_page_token), principal=principal, db=db,
                                  settings=settings)
    assert len(rest.items) == 1 and rest.next_page_token is None
