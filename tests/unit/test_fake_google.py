"""The fake Google Workspace server, driven through the real googleapiclient clients."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from dev.fake_google import FakeGoogle, FakeGoogleControl, FakeGoogleControlError

REPO_ROOT = Path(__file__).resolve().parents[2]
MEET_LINK = re.compile(r"^https://meet\.google\.com/[a-z]{3}-[a-z]{4}-[a-z]{3}$")
CAL = "doctor@clinica.com"
# What the clients of these tests may do, as CAL signed in: every API the fake serves.
USER_SCOPES = ["https://www.googleapis.com/auth/" + s for s in (
    "calendar", "meetings.space.readonly", "drive.readonly", "directory.readonly",
    "admin.directory.user.readonly")]


def _client(api: str, version: str, root: str, token: str):
    return build(api, version, credentials=Credentials(token), static_discovery=True, cache_discovery=False,
                 client_options={"api_endpoint": root})


@pytest.fixture(scope="module")
def fake(google_identity):
    server = FakeGoogle(service_accounts={google_identity.service_account: google_identity.private_key}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def control(fake):
    ctl = FakeGoogleControl(fake.url)
    yield ctl
    ctl.close()


@pytest.fixture(scope="module")
def token(control):
    """CAL's own access token (tokens outlive a reset, as the Cloud project's keys do)."""
    return control.user_token(CAL, USER_SCOPES)


@pytest.fixture(scope="module")
def clients(fake, token):
    return {
        "calendar": _client("calendar", "v3", fake.url, token),
        "meet": _client("meet", "v2", fake.url, token),
        "drive": _client("drive", "v3", fake.url, token),
        "people": _client("people", "v1", fake.url, token),
        "directory": _client("admin", "directory_v1", fake.url, token),
    }


@pytest.fixture(autouse=True)
def _clean(control):
    control.reset()
    # Spaces the control API makes for these tests belong to CAL, whose clients read them.
    control.configure(default_owner=CAL)


@pytest.fixture()
def calendar(clients):
    return clients["calendar"]


@pytest.fixture()
def meet(clients):
    return clients["meet"]


def _event_body(event_id: str | None = None, request_id: str = "req-1") -> dict:
    body = {
        "summary": "Consulta",
        "start": {"dateTime": "2030-01-10T10:00:00-03:00", "timeZone": "America/Sao_Paulo"},
        "end": {"dateTime": "2030-01-10T10:30:00-03:00", "timeZone": "America/Sao_Paulo"},
        "attendees": [{"email": CAL}, {"email": "patient@example.com"}],
        "conferenceData": {"createRequest": {"requestId": request_id,
                                             "conferenceSolutionKey": {"type": "hangoutsMeet"}}},
    }
    if event_id:
        body["id"] = event_id
    return body


def _insert(calendar, body: dict, version: int = 1) -> dict:
    return calendar.events().insert(calendarId=CAL, body=body, conferenceDataVersion=version,
                                    sendUpdates="none").execute()


def _reason(err: HttpError) -> str:
    return err.error_details[0]["reason"]


def _list_all(method, prev_request_fn, key: str, **kwargs) -> tuple[list, int]:
    request, items, pages = method(**kwargs), [], 0
    while request is not None:
        response = request.execute()
        items.extend(response.get(key, []))
        pages += 1
        request = prev_request_fn(request, response)
    return items, pages


def test_insert_with_id_creates_meet_link_and_space(calendar, meet, control):
    event = _insert(calendar, _event_body("consulta00001"))

    assert event["id"] == "consulta00001"
    assert event["status"] == "confirmed"
    assert MEET_LINK.match(event["hangoutLink"])
    conference = event["conferenceData"]
    assert conference["createRequest"]["status"]["statusCode"] == "success"
    assert conference["entryPoints"][0]["uri"] == event["hangoutLink"]
    assert conference["conferenceSolution"]["key"]["type"] == "hangoutsMeet"
    assert [a["responseStatus"] for a in event["attendees"]] == ["needsAction", "needsAction"]
    assert event["attendees"][0]["organizer"] is True
    assert event["organizer"] == {"email": CAL, "self": True}

    space = meet.spaces().get(name=f"spaces/{conference['conferenceId']}").execute()
    assert space["meetingUri"] == event["hangoutLink"]
    assert "activeConference" not in space
    assert meet.spaces().get(name=space["name"]).execute()["meetingCode"] == conference["conferenceId"]

    fetched = calendar.events().get(calendarId=CAL, eventId="consulta00001").execute()
    assert fetched["hangoutLink"] == event["hangoutLink"]

    logged = control.requests(operation="calendar.events.insert")
    assert logged[0]["query"]["conferenceDataVersion"] == "1"
    assert logged[0]["body"]["id"] == "consulta00001"
    assert logged[0]["status"] == 200


def test_duplicate_and_invalid_ids(calendar):
    _insert(calendar, _event_body("consulta00002"))
    with pytest.raises(HttpError) as dup:
        _insert(calendar, _event_body("consulta00002"))
    assert dup.value.status_code == 409
    assert _reason(dup.value) == "duplicate"

    calendar.events().delete(calendarId=CAL, eventId="consulta00002").execute()
    with pytest.raises(HttpError) as dup_after_delete:
        _insert(calendar, _event_body("consulta00002"))
    assert dup_after_delete.value.status_code == 409

    for bad in ("abc", "UPPERCASE123", "wxyz12345"):
        with pytest.raises(HttpError) as invalid:
            _insert(calendar, _event_body(bad))
        assert invalid.value.status_code == 400

    generated = _insert(calendar, _event_body())
    assert re.match(r"^[a-v0-9]{5,1024}$", generated["id"])


def test_create_request_ignored_without_conference_data_version(calendar):
    event = _insert(calendar, _event_body("consulta00003"), version=0)
    assert "conferenceData" not in event
    assert "hangoutLink" not in event


def test_pending_conference_resolves_after_polls(calendar, control):
    control.configure(conference_mode="pending", pending_polls=2)
    event = _insert(calendar, _event_body("consulta00004"))
    assert event["conferenceData"]["createRequest"]["status"]["statusCode"] == "pending"
    assert "hangoutLink" not in event
    assert "entryPoints" not in event["conferenceData"]

    first = calendar.events().get(calendarId=CAL, eventId="consulta00004").execute()
    assert first["conferenceData"]["createRequest"]["status"]["statusCode"] == "pending"
    second = calendar.events().get(calendarId=CAL, eventId="consulta00004").execute()
    assert second["conferenceData"]["createRequest"]["status"]["statusCode"] == "success"
    assert MEET_LINK.match(second["hangoutLink"])


def test_pending_conference_resolved_through_control(calendar, control):
    control.configure(conference_mode="pending", pending_polls=None)
    _insert(calendar, _event_body("consulta00005"))
    _insert(calendar, _event_body("consulta00006"))
    for _ in range(3):
        got = calendar.events().get(calendarId=CAL, eventId="consulta00005").execute()
        assert got["conferenceData"]["createRequest"]["status"]["statusCode"] == "pending"

    control.resolve_conference(CAL, "consulta00005", "success")
    control.resolve_conference(CAL, "consulta00006", "failure")
    resolved = calendar.events().get(calendarId=CAL, eventId="consulta00005").execute()
    assert MEET_LINK.match(resolved["hangoutLink"])
    failed = calendar.events().get(calendarId=CAL, eventId="consulta00006").execute()
    assert failed["conferenceData"]["createRequest"]["status"]["statusCode"] == "failure"
    assert "hangoutLink" not in failed
    assert control.get_event(CAL, "consulta00006")["id"] == "consulta00006"


def test_failure_mode(calendar, control):
    control.configure(conference_mode="failure")
    event = _insert(calendar, _event_body("consulta00007"))
    assert event["conferenceData"]["createRequest"]["status"]["statusCode"] == "failure"
    assert "hangoutLink" not in event
    assert "entryPoints" not in event["conferenceData"]


def test_patch_update_delete_and_gone(calendar):
    _insert(calendar, _event_body("consulta00008"))
    patched = calendar.events().patch(calendarId=CAL, eventId="consulta00008",
                                      body={"summary": "Retorno", "attendees": [{"email": "other@example.com"}]}
                                      ).execute()
    assert patched["summary"] == "Retorno"
    assert [a["email"] for a in patched["attendees"]] == ["other@example.com"]
    assert patched["sequence"] == 1
    assert MEET_LINK.match(patched["hangoutLink"])

    updated = calendar.events().update(calendarId=CAL, eventId="consulta00008",
                                       body={"summary": "Só o título", "start": patched["start"],
                                             "end": patched["end"]}).execute()
    assert updated["summary"] == "Só o título"
    assert "attendees" not in updated
    assert updated["sequence"] == 2

    assert calendar.events().delete(calendarId=CAL, eventId="consulta00008").execute() == ""
    cancelled = calendar.events().get(calendarId=CAL, eventId="consulta00008").execute()
    assert cancelled["status"] == "cancelled"

    with pytest.raises(HttpError) as gone:
        calendar.events().delete(calendarId=CAL, eventId="consulta00008").execute()
    assert gone.value.status_code == 410
    assert _reason(gone.value) == "deleted"

    repatched = calendar.events().patch(calendarId=CAL, eventId="consulta00008", body={"summary": "x"}).execute()
    assert repatched["status"] == "cancelled"

    for call in (calendar.events().get, calendar.events().delete):
        with pytest.raises(HttpError) as missing:
            call(calendarId=CAL, eventId="naoexiste0").execute()
        assert missing.value.status_code == 404
        assert _reason(missing.value) == "notFound"
    with pytest.raises(HttpError) as missing_patch:
        calendar.events().patch(calendarId=CAL, eventId="naoexiste0", body={}).execute()
    assert missing_patch.value.status_code == 404


def test_cancel_via_patch(calendar):
    _insert(calendar, _event_body("consulta00009"))
    calendar.events().patch(calendarId=CAL, eventId="consulta00009", body={"status": "cancelled"}).execute()
    with pytest.raises(HttpError) as gone:
        calendar.events().delete(calendarId=CAL, eventId="consulta00009").execute()
    assert gone.value.status_code == 410


def test_list_events_paginates(calendar, control):
    control.configure(max_page_size=1)
    for n in range(3):
        _insert(calendar, _event_body(f"lista0000{n}", request_id=f"r{n}"))
    calendar.events().delete(calendarId=CAL, eventId="lista00001").execute()

    items, pages = _list_all(calendar.events().list, calendar.events().list_next, "items", calendarId=CAL)
    assert [e["id"] for e in items] == ["lista00000", "lista00002"]
    assert pages == 2
    with_deleted, _ = _list_all(calendar.events().list, calendar.events().list_next, "items",
                                calendarId=CAL, showDeleted=True)
    assert len(with_deleted) == 3


def test_faults_do_not_change_state(calendar, control):
    control.add_fault(status=429, operation="calendar.events.insert", retry_after=1)
    with pytest.raises(HttpError) as limited:
        _insert(calendar, _event_body("consulta00010"))
    assert limited.value.status_code == 429
    assert _reason(limited.value) == "rateLimitExceeded"
    assert limited.value.resp.get("retry-after") == "1"
    assert control.events() == []

    event = _insert(calendar, _event_body("consulta00010"))
    assert MEET_LINK.match(event["hangoutLink"])
    stats = control.stats()
    assert stats["calls"]["calendar.events.insert"] == 2
    assert stats["ok"]["calendar.events.insert"] == 1
    assert [r["fault"] for r in control.requests(operation="calendar.events.insert")] == [True, False]


def test_fault_after_and_path_regex(calendar, control):
    _insert(calendar, _event_body("consulta00011"))
    control.add_fault(status=503, path_regex=r"/events/consulta00011$", method="GET", after=1, count=2)
    calendar.events().get(calendarId=CAL, eventId="consulta00011").execute()
    for _ in range(2):
        with pytest.raises(HttpError) as unavailable:
            calendar.events().get(calendarId=CAL, eventId="consulta00011").execute()
        assert unavailable.value.status_code == 503
        assert _reason(unavailable.value) == "backendError"
    calendar.events().get(calendarId=CAL, eventId="consulta00011").execute()
    assert control.faults() == []

    control.add_fault(status=500, operation="calendar.events.get", count=None)
    control.clear_faults()
    calendar.events().get(calendarId=CAL, eventId="consulta00011").execute()


def test_latency(calendar, control):
    _insert(calendar, _event_body("consulta00012"))
    control.set_latency(150, operation="calendar.events.get")
    started = time.monotonic()
    calendar.events().get(calendarId=CAL, eventId="consulta00012").execute()
    assert time.monotonic() - started >= 0.15
    control.set_latency(0)
    started = time.monotonic()
    calendar.events().get(calendarId=CAL, eventId="consulta00012").execute()
    assert time.monotonic() - started < 0.15


def _conference_spec(code: str) -> dict:
    return {
        "meeting_code": code,
        "start_time": "2030-01-10T13:00:00Z",
        "end_time": None,
        "participants": [
            {"kind": "signedin", "user_id": "111", "email": "doctor@clinica.com", "workspace": True,
             "display_name": "Dr. X",
             "sessions": [{"start": "2030-01-10T13:00:00Z", "end": "2030-01-10T13:10:00Z"},
                          {"start": "2030-01-10T13:12:00Z", "end": "2030-01-10T13:31:00Z"}]},
            {"kind": "signedin", "user_id": "222", "email": None, "display_name": "Paciente",
             "sessions": [{"start": "2030-01-10T13:02:00Z", "end": None}]},
            {"kind": "anonymous", "display_name": "Acompanhante"},
            {"kind": "phone", "display_name": "+55 11 ****-1234"},
        ],
        "recordings": [{"state": "FILE_GENERATED", "duration_seconds": 1800, "metadata_lag_gets": 2,
                        "start_time": "2030-01-10T13:01:00Z", "end_time": "2030-01-10T13:31:00Z"},
                       {"state": "STARTED"}],
        "transcripts": [{"state": "FILE_GENERATED", "document_id": "doc-1"}],
    }


def test_meet_records_participants_and_sessions_paginate(calendar, meet, control):
    event = _insert(calendar, _event_body("consulta00013"))
    code = event["conferenceData"]["conferenceId"]
    created = control.create_conference(**_conference_spec(code))
    control.create_conference(meeting_code="zzz-zzzz-zzz", start_time="2030-01-09T10:00:00Z",
                              end_time="2030-01-09T11:00:00Z")
    control.configure(max_page_size=1)
    records = meet.conferenceRecords()

    found, pages = _list_all(records.list, records.list_next, "conferenceRecords",
                             filter=f'space.meeting_code  =   "{code}"')
    assert [r["name"] for r in found] == [created["name"]]
    space = meet.spaces().get(name=f"spaces/{code}").execute()
    assert found[0]["space"] == space["name"]
    assert space["activeConference"]["conferenceRecord"] == created["name"]
    by_space, _ = _list_all(records.list, records.list_next, "conferenceRecords",
                            filter=f'space.name="{space["name"]}"')
    assert [r["name"] for r in by_space] == [created["name"]]
    everything, pages = _list_all(records.list, records.list_next, "conferenceRecords", pageSize=50)
    assert len(everything) == 2 and pages == 2

    assert records.get(name=created["name"]).execute()["startTime"] == "2030-01-10T13:00:00Z"
    participants, pages = _list_all(records.participants().list, records.participants().list_next,
                                    "participants", parent=created["name"])
    assert pages == 4
    by_name = {(p.get("signedinUser") or p.get("anonymousUser") or p.get("phoneUser"))["displayName"]: p
               for p in participants}
    doctor = by_name["Dr. X"]
    assert doctor["signedinUser"]["user"] == "users/111"
    assert doctor["earliestStartTime"] == "2030-01-10T13:00:00Z"
    assert doctor["latestEndTime"] == "2030-01-10T13:31:00Z"
    assert "latestEndTime" not in by_name["Paciente"]
    assert "anonymousUser" in by_name["Acompanhante"] and "phoneUser" in by_name["+55 11 ****-1234"]
    assert records.participants().get(name=doctor["name"]).execute() == doctor

    sessions_api = records.participants().participantSessions()
    sessions, pages = _list_all(sessions_api.list, sessions_api.list_next, "participantSessions",
                                parent=doctor["name"])
    assert pages == 2
    assert sorted((s["startTime"], s["endTime"]) for s in sessions) == [
        ("2030-01-10T13:00:00Z", "2030-01-10T13:10:00Z"), ("2030-01-10T13:12:00Z", "2030-01-10T13:31:00Z")]

    recordings, _ = _list_all(records.recordings().list, records.recordings().list_next, "recordings",
                              parent=created["name"])
    assert [r["state"] for r in recordings] == ["FILE_GENERATED", "STARTED"]
    file_id = recordings[0]["driveDestination"]["file"]
    assert recordings[0]["driveDestination"]["exportUri"] == f"https://drive.google.com/file/d/{file_id}/view"
    assert "driveDestination" not in recordings[1]
    transcripts = records.transcripts().list(parent=created["name"]).execute()["transcripts"]
    assert transcripts[0]["docsDestination"]["document"] == "doc-1"

    control.update_conference(created["name"], end_time="2030-01-10T13:40:00Z")
    assert "activeConference" not in meet.spaces().get(name=f"spaces/{code}").execute()
    patient = records.participants().get(name=by_name["Paciente"]["name"]).execute()
    assert patient["latestEndTime"] == "2030-01-10T13:40:00Z"

    with pytest.raises(HttpError) as missing:
        records.get(name="conferenceRecords/nope").execute()
    assert missing.value.status_code == 404


def test_drive_metadata_lag_and_late_recording(meet, clients, control):
    drive = clients["drive"]
    created = control.create_conference(**_conference_spec("abc-defg-hij"))
    recording = created["recordings"][0]
    file_id = recording["driveDestination"]["file"]
    first = drive.files().get(fileId=file_id, fields="*", supportsAllDrives=True).execute()
    second = drive.files().get(fileId=file_id, supportsAllDrives=True).execute()
    third = drive.files().get(fileId=file_id, supportsAllDrives=True).execute()
    assert "videoMediaMetadata" not in first and "videoMediaMetadata" not in second
    assert third["videoMediaMetadata"]["durationMillis"] == "1800000"
    assert third["mimeType"] == "video/mp4"
    assert third["webViewLink"] == f"https://drive.google.com/file/d/{file_id}/view"

    late = created["recordings"][1]
    control.update_recording(created["id"], late["id"], state="FILE_GENERATED", drive_file_id="late-file-1",
                             duration_seconds=60)
    listed = meet.conferenceRecords().recordings().list(parent=created["name"]).execute()["recordings"]
    assert listed[1]["driveDestination"]["file"] == "late-file-1"
    assert drive.files().get(fileId="late-file-1").execute()["videoMediaMetadata"]["durationMillis"] == "60000"

    with pytest.raises(HttpError) as missing:
        drive.files().get(fileId="unknown").execute()
    assert missing.value.status_code == 404


def test_people_and_directory(clients, control):
    control.create_conference(**_conference_spec("abc-defg-hij"))
    people, directory = clients["people"], clients["directory"]
    doctor = people.people().get(resourceName="people/111", personFields="emailAddresses").execute()
    assert doctor["resourceName"] == "people/111"
    assert doctor["emailAddresses"][0]["value"] == "doctor@clinica.com"
    assert doctor["emailAddresses"][0]["metadata"]["primary"] is True
    hidden = people.people().get(resourceName="people/222", personFields="emailAddresses").execute()
    assert "emailAddresses" not in hidden
    with pytest.raises(HttpError) as missing:
        people.people().get(resourceName="people/999", personFields="emailAddresses").execute()
    assert missing.value.status_code == 404

    # Non-admins read the Directory's domain-public view only (Admin SDK users.get, viewType).
    user = directory.users().get(userKey="111", viewType="domain_public").execute()
    assert user["primaryEmail"] == "doctor@clinica.com"
    assert user["name"]["fullName"] == "Dr. X"
    assert directory.users().get(userKey="doctor@clinica.com", viewType="domain_public").execute()["id"] == "111"
    with pytest.raises(HttpError) as not_workspace:
        directory.users().get(userKey="222", viewType="domain_public").execute()
    assert not_workspace.value.status_code == 404


def test_service_path_endpoint_and_in_process_state(fake, control, token):
    calendar = _client("calendar", "v3", fake.url + "calendar/v3/", token)
    event = _insert(calendar, _event_body("consulta00014"))
    assert fake.state.get_event(CAL, "consulta00014", poll=False)["hangoutLink"] == event["hangoutLink"]
    assert fake.state.ok_count("calendar.events.insert") == 1
    assert control.requests(path_contains="/calendar/v3/")[0]["operation"] == "calendar.events.insert"

    unknown = requests.get(fake.url + "v2/nothing", timeout=5)
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    with pytest.raises(FakeGoogleControlError) as bad:
        control.configure(conference_mode="sometimes")
    assert bad.value.status == 400


def test_concurrent_inserts_with_same_id_create_one_event(fake, control, token):
    url = fake.url + f"calendar/v3/calendars/{CAL}/events?conferenceDataVersion=1"
    auth = {"Authorization": f"Bearer {token}"}
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: requests.post(url, json=_event_body("corrida0001"), headers=auth,
                                                         timeout=5).status_code, range(16)))
    assert sorted(statuses) == [200] + [409] * 15
    assert len(control.events()) == 1
    assert control.stats()["ok"]["calendar.events.insert"] == 1


def test_module_entry_point_serves_until_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "dev.fake_google", "--port", "0"], cwd=REPO_ROOT,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        url = None
        deadline = time.monotonic() + 10
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            match = re.search(r"ready: (http://\S+)", line)
            url = match.group(1) if match else None
        assert url, "server did not report readiness"
        assert FakeGoogleControl(url).health()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- persistence: the world outlives a restart -----------------------------------------------------------------

def test_a_restarted_fake_with_a_state_file_keeps_its_world(tmp_path):
    import requests as http

    from dev.fake_google import FakeGoogle

    state = tmp_path / "world.json"
    with FakeGoogle(state_file=state) as first:
        control = first.control()
        token = control.user_token("doctor@clinica.com", ["https://www.googleapis.com/auth/calendar"])
        made = http.post(first.url + "calendar/v3/calendars/primary/events", timeout=10,
                         headers={"Authorization": f"Bearer {token}"},
                         json={"summary": "x", "start": {"dateTime": "2030-01-01T10:00:00Z"},
                               "end": {"dateTime": "2030-01-01T11:00:00Z"},
                               "conferenceData": {"createRequest": {
                                   "requestId": "r1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}}},
                         params={"conferenceDataVersion": 1}).json()
        assert made["id"], made
        control.create_conference(start_time="now", participants=[{"kind": "anonymous", "display_name": "P"}])
        control.add_workspace_user("suspended@clinica.com", suspended=True)
        control.configure(conference_mode="pending")
        before = (control.events(), control.workspace_users(), control.config())
        assert len(before[0]) == 1
        control.close()
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    with FakeGoogle(state_file=state) as second:
        control = second.control()
        assert (control.events(), control.workspace_users(), control.config()) == before
        # Tokens it issued before still work, as Google's outlive a restart of any one server.
        again = http.get(second.url + f"calendar/v3/calendars/primary/events/{made['id']}", timeout=10,
                         headers={"Authorization": f"Bearer {token}"})
        assert again.status_code == 200 and again.json()["id"] == made["id"]
        control.close()


def test_an_unreadable_state_file_is_set_aside_not_trusted(tmp_path):
    from dev.fake_google import FakeGoogle

    state = tmp_path / "world.json"
    state.write_text("{not json")
    with FakeGoogle(state_file=state) as fake:
        control = fake.control()
        assert control.events() == []
        control.close()
    assert (tmp_path / "world.json.unreadable").read_text() == "{not json"


# --- the connection, as Google's front ends keep it -----------------------------------------------------------

def test_a_connection_stays_open_between_requests_as_googles_do():
    """HTTP/1.1 persistent connections (RFC 9112 section 9.3): Google keeps a client's connection open between
    requests, so the fake does too; a client that opened one per call would otherwise look the same here as one that
    reuses them. Bodies of either length, and an error answer, leave the connection usable."""
    import http.client

    with FakeGoogle() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        for body in ("grant_type=x", "grant_type=" + "x" * 5000, ""):
            connection.request("POST", "/token", body=body,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
            answer = connection.getresponse()
            assert answer.status == 400 and answer.getheader("Connection") is None
            assert answer.read().startswith(b'{"error":')
            connection.request("GET", "/calendar/v3/calendars/primary/events")
            assert connection.getresponse().read()
        assert server.connections_opened == 1
        # Each answer is written in pieces: without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK
        # would hold every kept connection's next answer some 40 ms.
        import socket

        [served] = server._connections
        assert served.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        connection.close()


def test_a_chunked_request_is_answered_and_its_connection_closed():
    import http.client

    with FakeGoogle() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("POST", "/token", body=iter([b"grant_type=", b"x"]), encode_chunked=True,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        answer = connection.getresponse()
        assert answer.status == 400 and answer.getheader("Connection") == "close"
        answer.read()


def test_a_stopped_fake_answers_nothing_even_on_a_kept_connection():
    """Tests stop the fake to play "Google unreachable": a connection kept from before must not be served on."""
    import http.client

    server = FakeGoogle().start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/calendar/v3/calendars/primary/events")
    connection.getresponse().read()
    server.stop()
    with pytest.raises((http.client.HTTPException, OSError)):
        connection.request("GET", "/calendar/v3/calendars/primary/events")
        connection.getresponse()
