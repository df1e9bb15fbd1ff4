"""sync_recordings through functions-framework against the fake Google: attendance, recordings, transcripts."""
from __future__ import annotations

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
def sync(function_env, db):
    client, key = app_client("sync_recordings"), new_principal(db, role="admin")[1]

    def call(meeting_id=None, **extra):
        payload = {} if meeting_id is None else {"meeting_id": meeting_id, **extra}
        response = client.post("/internal/sync-recordings", json=payload, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return call


@pytest.fixture
def meeting(api):
    body = {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": iso(START), "scheduled_end": iso(END), "external_reference": uuid.uuid4().hex}
    return api.post(body).get_json()


def person(user_id, email, name, *sessions, kind="signedin"):
    return {"kind": kind, "user_id": user_id, "email": email, "display_name": name,
            "sessions": [{"start": iso(s), "end": iso(e) if e else None} for s, e in sessions]}


def minutes(n):
    return START + timedelta(minutes=n)


def test_a_held_meeting_gets_attendance_recording_and_transcript(api, meeting, sync, google):
    google.create_conference(
        meeting_code=meeting["meeting_code"], start_time=iso(minutes(0)), end_time=iso(minutes(32)),
        participants=[person("111", "doctor@clinica.com", "Dra. Ruiz", (minutes(0), minutes(32))),
                      person("222", "Paciente@Correo.com", "Ana", (minutes(2), minutes(30)))],
        recordings=[{"state": "FILE_GENERATED", "drive_file_id": "rec-file-1", "duration_seconds": 1800,
                     "start_time": iso(minutes(1)), "end_time": iso(minutes(31))}],
        transcripts=[{"state": "FILE_GENERATED", "document_id": "doc-1", "start_time": iso(minutes(1)),
                      "end_time": iso(minutes(31))}])
    summary = sync(meeting["id"])
    assert summary["status"] == "FINISHED" and summary["counts"]["attended"] == 2
    read = api.get(f"/v1/meetings/{meeting['id']}").get_json()
    assert read["status"] == "FINISHED"
    by_email = {p["email"]: p for p in read["participants"]}
    assert by_email["doctor@clinica.com"]["attended"] is True
    assert by_email["doctor@clinica.com"]["attended_seconds"] == 32 * 60
    patient = by_email["paciente@correo.com"]
    assert (patient["attended"], patient["attended_seconds"], patient["display_name"]) == (True, 28 * 60, "Ana")
    assert (patient["joined_at"], patient["left_at"]) == (iso(minutes(2)), iso(minutes(30)))
    [recording] = read["recordings"]
    assert recording["drive_file_id"] == "rec-file-1" and recording["duration_seconds"] == 1800
    assert recording["state"] == "FILE_GENERATED" and "rec-file-1" in recording["drive_file_url"]
    assert recording["available_at"] is not None
    [transcript] = read["transcripts"]
    assert transcript["document_id"] == "doc-1" and "doc-1" in transcript["document_url"]
    assert api.get(f"/v1/meetings/{meeting['id']}/recordings").get_json()["items"] == read["recordings"]
    assert api.get(f"/v1/meetings/{meeting['id']}/participants").get_json()["items"] == read["participants"]


def test_a_no_show_is_recorded_when_only_the_organizer_joined(api, meeting, sync, google):
    google.create_conference(meeting_code=meeting["meeting_code"], start_time=iso(minutes(0)),
                             end_time=iso(minutes(10)),
                             participants=[person("111", "doctor@clinica.com", "Dra. Ruiz", (minutes(0), minutes(10)))])
    assert sync(meeting["id"])["counts"]["no_shows"] == 1
    patient = api.get(f"/v1/meetings/{meeting['id']}/participants").get_json()["items"][1]
    assert (patient["email"], patient["attended"], patient["attended_seconds"]) == ("paciente@correo.com", False, 0)
    assert patient["joined_at"] is None


def test_two_conference_records_add_up(api, meeting, sync, google):
    google.configure(max_page_size=1)
    for first, last in ((0, 10), (15, 30)):
        google.create_conference(meeting_code=meeting["meeting_code"], start_time=iso(minutes(first)),
                                 end_time=iso(minutes(last)), participants=[
                                     person("111", "doctor@clinica.com", "Dra. Ruiz", (minutes(first), minutes(last))),
                                     person("222", "paciente@correo.com", "Ana", (minutes(first + 1), minutes(last)))])
    sync(meeting["id"])
    patient = api.get(f"/v1/meetings/{meeting['id']}/participants").get_json()["items"][1]
    assert patient["attended_seconds"] == (9 + 14) * 60
    assert (patient["joined_at"], patient["left_at"]) == (iso(minutes(1)), iso(minutes(30)))
    assert google.call_count("meet.conferenceRecords.list") >= 2  # paginated


def test_unmatched_joiners_are_others_not_counted(api, meeting, sync, google):
    google.create_conference(meeting_code=meeting["meeting_code"], start_time=iso(minutes(0)),
                             end_time=iso(minutes(20)), participants=[
                                 person("111", "doctor@clinica.com", "Dra. Ruiz", (minutes(0), minutes(20))),
                                 person(None, None, "Intérprete", (minutes(5), minutes(20)), kind="anonymous"),
                                 person("333", None, "Hidden", (minutes(6), minutes(7)))])
    sync(meeting["id"])
    read = api.get(f"/v1/meetings/{meeting['id']}").get_json()
    others = [p for p in read["participants"] if p["role"] == "other"]
    assert sorted((p["display_name"], p["email"], p["attended_seconds"]) for p in others) == [
        ("Hidden", None, 60), ("Intérprete", None, 15 * 60)]
    assert read["participants_count"] == 2


def test_a_recording_not_ready_is_retried_until_it_is(api, meeting, sync, google, db):
    record = google.create_conference(
        meeting_code=meeting["meeting_code"], start_time=iso(minutes(0)), end_time=iso(minutes(30)),
        participants=[person("111", "doctor@clinica.com", "Dra. Ruiz", (minutes(0), minutes(30)))],
        recordings=[{"state": "ENDED", "start_time": iso(minutes(1)), "end_time": iso(minutes(29))}])
    first = sync(meeting["id"])
    assert first["detail"] and first["counts"]["recordings"] == 1
    [recording] = api.get(f"/v1/meetings/{meeting['id']}/recordings").get_json()["items"]
    assert recording["state"] == "ENDED" and recording["drive_file_id"] is None
    with db.transaction() as cur:
        cur.execute("SELECT next_sync_at, sync_attempts FROM meetings WHERE id = :id", {"id": meeting["id"]})
        next_sync, attempts = cur.fetchone()
    assert next_sync is not None and attempts == 1
    google.update_recording(record["name"], record["recordings"][0]["name"].rsplit("/", 1)[-1],
                            state="FILE_GENERATED", drive_file_id="late-file", duration_seconds=1740,
                            metadata_lag_gets=1)
    second = sync(meeting["id"], attempt=1)  # Drive's metadata still lags: not complete yet
    assert second["detail"]
    third = sync(meeting["id"], attempt=2)
    assert third["detail"] is None
    [recording] = api.get(f"/v1/meetings/{meeting['id']}/recordings").get_json()["items"]
    assert (recording["drive_file_id"], recording["duration_seconds"]) == ("late-file", 1740)
    with db.transaction() as cur:
        cur.execute("SELECT next_sync_at FROM meetings WHERE id = :id", {"id": meeting["id"]})
        assert cur.fetchone()[0] is None


def test_injected_429s_are_retried_and_a_repeated_sync_changes_nothing(api, meeting, sync, google, db):
    google.create_conference(
        meeting_code=meeting["meeting_code"], start_time=iso(minutes(0)), end_time=iso(minutes(30)),
        participants=[person("111", "doctor@clinica.com", "Dra. Ruiz", (minutes(0), minutes(30))),
                      person("222", "paciente@correo.com", "Ana", (minutes(3), minutes(30)))],
        recordings=[{"state": "FILE_GENERATED", "drive_file_id": "f-429", "duration_seconds": 1500}])
    google.add_fault(429, operation="meet.conferenceRecords.participants.list", count=1)
    google.add_fault(429, operation="drive.files.get", count=1)
    sync(meeting["id"])
    before = api.get(f"/v1/meetings/{meeting['id']}").get_json()
    with db.transaction() as cur:
        cur.execute("SELECT max(updated_at) FROM participants WHERE meeting_id = :id", {"id": meeting["id"]})
        touched = cur.fetchone()[0]
        cur.execute("SELECT max(updated_at) FROM recordings WHERE meeting_id = :id", {"id": meeting["id"]})
        recorded = cur.fetchone()[0]
    sync(meeting["id"])
    assert api.get(f"/v1/meetings/{meeting['id']}").get_json()["participants"] == before["participants"]
    with db.transaction() as cur:
        cur.execute("SELECT max(updated_at) FROM participants WHERE meeting_id = :id", {"id": meeting["id"]})
        assert cur.fetchone()[0] == touched
        cur.execute("SELECT max(updated_at) FROM recordings WHERE meeting_id = :id", {"id": meeting["id"]})
        assert cur.fetchone()[0] == recorded
    assert before["participants"][1]["attended_seconds"] == 27 * 60


def test_google_down_for_good_is_a_503_and_nothing_is_lost(api, meeting, sync, google, function_env, db):
    google.add_fault(503, operation="meet.conferenceRecords.list", count=None)
    client, key = app_client("sync_recordings"), new_principal(db, role="admin")[1]
    response = client.post("/internal/sync-recordings", json={"meeting_id": meeting["id"]},
                           headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 503 and "Retry-After" in response.headers
    with db.transaction() as cur:
        cur.execute("SELECT next_sync_at FROM meetings WHERE id = :id", {"id": meeting["id"]})
        assert cur.fetchone()[0] is not None  # still due: the next task or sweep tries again


def test_a_sweep_syncs_only_meetings_that_are_due(api, meeting, sync, db, google):
    with db.transaction() as cur:
        cur.execute("UPDATE meetings SET next_sync_at = now() + interval '1 day' WHERE next_sync_at IS NOT NULL")
        cur.execute("UPDATE meetings SET next_sync_at = now() - interval '1 minute' WHERE id = :id",
                    {"id": meeting["id"]})
    summary = sync()
    assert summary["mode"] == "sweep" and summary["counts"]["due"] == 1 and summary["counts"]["done"] == 1
