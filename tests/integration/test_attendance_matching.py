"""Attendance through a real sync against the strict fake: Google hides the emails of personal accounts, so
patients are matched by their given display name or by elimination, and a test call in the same room the day
before changes nothing (CONTRACT: "Attendance: how joiners are matched to invitees")."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import new_principal
from tests.integration.helpers import Api, app_client, iso

NOW = datetime.now(timezone.utc).replace(microsecond=0)
START, END = NOW - timedelta(hours=2), NOW - timedelta(hours=1, minutes=30)


@pytest.fixture
def api(function_env, db):
    return Api(new_principal(db)[1])


@pytest.fixture
def internal(function_env, db):
    key = new_principal(db, role="admin")[1]

    def call(function: str, meeting_id: str) -> dict:
        path = "/internal/" + function.replace("_", "-")
        response = app_client(function).post(path, data=json.dumps({"meeting_id": meeting_id}),
                                             content_type="application/json",
                                             headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return call


def create(api, **invitees) -> dict:
    body = {"organizer_email": "doctor@clinica.com", "scheduled_start": iso(START), "scheduled_end": iso(END),
            "external_reference": uuid.uuid4().hex, **invitees}
    response = api.post(body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def at(minutes: int) -> str:
    return iso(START + timedelta(minutes=minutes))


def joiner(user_id, email, name, first=2, last=25, kind="signedin"):
    return {"kind": kind, "user_id": user_id, "email": email, "display_name": name,
            "sessions": [{"start": at(first), "end": at(last)}]}


def doctor():
    return joiner("100", "doctor@clinica.com", "Dra. Ruiz", 0, 30)


def guests(api, meeting) -> dict:
    items = api.get(f"/v1/meetings/{meeting['id']}/participants").get_json()["items"]
    return {p["email"]: p for p in items if p["role"] != "other"}


def test_a_patient_on_a_personal_account_is_matched_by_elimination(api, internal, google):
    meeting = create(api, invited_emails=["paciente@gmail.com"])
    google.create_conference(meeting_code=meeting["meeting_code"], start_time=at(0), end_time=at(30),
                             participants=[doctor(), joiner("200", "paciente@gmail.com", "Carlos")])
    internal("sync_recordings", meeting["id"])
    people = guests(api, meeting)
    assert (people["doctor@clinica.com"]["matched_by"], people["doctor@clinica.com"]["attended"]) == ("email", True)
    patient = people["paciente@gmail.com"]
    assert (patient["attended"], patient["matched_by"], patient["attended_seconds"], patient["display_name"]) == (
        True, "elimination", 23 * 60, "Carlos")
    assert google.call_count("people.people.get") >= 1  # asked, and Google did not tell


def test_display_names_given_match_patients_across_case_and_accents(api, internal, google):
    meeting = create(api, invitees=[{"email": "carlos@gmail.com", "display_name": "Carlos Pérez"},
                                    {"email": "ana@gmail.com", "display_name": "Ana Gómez"}])
    google.create_conference(meeting_code=meeting["meeting_code"], start_time=at(0), end_time=at(30),
                             participants=[doctor(), joiner("201", "ana@gmail.com", "ANA GOMEZ", 5, 20),
                                           joiner(None, None, "carlos perez", 3, 28, kind="anonymous")])
    internal("sync_recordings", meeting["id"])
    people = guests(api, meeting)
    assert (people["carlos@gmail.com"]["matched_by"], people["carlos@gmail.com"]["attended_seconds"]) == (
        "display_name", 25 * 60)
    assert (people["ana@gmail.com"]["matched_by"], people["ana@gmail.com"]["attended_seconds"]) == (
        "display_name", 15 * 60)
    assert people["carlos@gmail.com"]["display_name"] == "Carlos Pérez"  # the name given is what is shown


def test_two_invitees_and_one_unmatched_joiner_leave_both_undetermined(api, internal, google):
    meeting = create(api, invited_emails=["ana@gmail.com", "bo@gmail.com"])
    google.create_conference(meeting_code=meeting["meeting_code"], start_time=at(0), end_time=at(30),
                             participants=[doctor(), joiner("202", None, "Alguien")])
    summary = internal("sync_recordings", meeting["id"])
    people = guests(api, meeting)
    assert people["ana@gmail.com"]["attended"] is None and people["bo@gmail.com"]["attended"] is None
    assert summary["counts"]["no_shows"] == 0 and summary["counts"]["undetermined"] == 2
    read = api.get(f"/v1/meetings/{meeting['id']}").get_json()
    assert [p["display_name"] for p in read["participants"] if p["role"] == "other"] == ["Alguien"]
    assert read["participants_count"] == 3


def test_a_no_show_is_certain_when_no_joiner_is_left(api, internal, google):
    meeting = create(api, invited_emails=["paciente@gmail.com"])
    google.create_conference(meeting_code=meeting["meeting_code"], start_time=at(0), end_time=at(30),
                             participants=[doctor()])
    assert internal("sync_recordings", meeting["id"])["counts"]["no_shows"] == 1
    patient = guests(api, meeting)["paciente@gmail.com"]
    assert (patient["attended"], patient["attended_seconds"], patient["matched_by"]) == (False, 0, None)


def test_a_test_call_the_day_before_in_the_same_room_changes_nothing(api, internal, google):
    """The Calendar event's Meet room is reused, so conferenceRecords.list returns every conference held in it;
    only those overlapping the meeting's window count, for the status and for attendance."""
    start = NOW + timedelta(minutes=30)
    response = api.post({"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@gmail.com"],
                         "scheduled_start": iso(start), "scheduled_end": iso(start + timedelta(minutes=30)),
                         "external_reference": uuid.uuid4().hex})
    meeting = response.get_json()
    yesterday = NOW - timedelta(days=1)
    google.create_conference(meeting_code=meeting["meeting_code"], start_time=iso(yesterday),
                             end_time=iso(yesterday + timedelta(minutes=10)),
                             participants=[{"kind": "signedin", "user_id": "100", "email": "doctor@clinica.com",
                                            "display_name": "Dra. Ruiz",
                                            "sessions": [{"start": iso(yesterday),
                                                          "end": iso(yesterday + timedelta(minutes=10))}]}])
    checked = internal("check_status", meeting["id"])
    assert checked["status"] in ("CREATED", "SCHEDULED")
    synced = internal("sync_recordings", meeting["id"])
    assert synced["counts"]["conferences"] == 0
    assert guests(api, meeting)["doctor@clinica.com"]["attended"] is None
