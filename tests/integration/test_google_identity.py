"""The Google adapter's identity and faults against the fake Google: who each call acts as, and what a refused
token, a quota 403, a broken connection or a cancelled event become."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest
from google.auth.exceptions import TransportError

from shared.adapters.google import SCOPES, Calendar, Directory, Drive, GoogleApis, Meet
from shared.domain.errors import CancelledEventExists, IdentityRefused, Unavailable, UpstreamFailed
from shared.settings import Settings
from tests.conftest import new_principal
from tests.integration.helpers import Api, app_client, future_slot

DOCTOR, AGENDA = "doctor@clinica.com", "agenda@clinica.com"


@pytest.fixture
def settings(fake_google, google) -> Settings:
    """A function's settings locally (the signing key and service account come from google_identity)."""
    return Settings(database_url="postgresql://unused@127.0.0.1/unused", google_api_root=fake_google.url,
                    google_num_retries=2, workspace_domain="clinica.com", default_calendar_owner=AGENDA)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def apis(settings, sleeps) -> GoogleApis:
    return GoogleApis(settings, sleep=sleeps.append)


def event(event_id: str | None = None) -> dict:
    event_id = event_id or uuid.uuid4().hex  # hex digits are base32hex, as Calendar ids must be
    return {"id": event_id, "summary": "Consulta", "start": {"dateTime": "2030-01-10T10:00:00Z"},
            "end": {"dateTime": "2030-01-10T10:30:00Z"}, "attendees": [{"email": "paciente@correo.com"}],
            "conferenceData": {"createRequest": {"requestId": event_id,
                                                 "conferenceSolutionKey": {"type": "hangoutsMeet"}}}}


def test_every_call_acts_as_the_calendar_owner_with_one_delegated_token(apis, google, fake_google,
                                                                        google_identity):
    """Domain-wide delegation (developers.google.com/identity/protocols/oauth2/service-account): a JWT-bearer
    grant (RFC 7523) whose assertion has iss = the service account, sub = the user, scope = the scopes
    space-separated, aud = the token URI, iat/exp an hour apart; then `Authorization: Bearer` on every call, the
    token reused while valid. The fake accepts nothing else, so each logged call below carried that token."""
    made = Calendar(apis).insert_event(DOCTOR, event())
    code = made["conferenceData"]["conferenceId"]
    record = google.create_conference(meeting_code=code, start_time="2030-01-10T10:00:00Z",
                                      end_time="2030-01-10T10:30:00Z",
                                      participants=[{"user_id": "111", "email": DOCTOR, "workspace": True}],
                                      recordings=[{"state": "FILE_GENERATED", "drive_file_id": "grabacion1"}])
    meet = Meet(apis)
    assert meet.space(DOCTOR, code)["meetingCode"] == code
    assert [r["name"] for r in meet.conference_records(DOCTOR, code)] == [record["name"]]
    assert Drive(apis).file(DOCTOR, "grabacion1")["id"] == "grabacion1"
    assert Directory(apis).email_of(DOCTOR, "users/111") == DOCTOR

    [token] = google.requests(operation="oauth2.token")
    claims = token["body"]
    assert claims["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert (claims["iss"], claims["sub"], claims["aud"]) == (google_identity.service_account, DOCTOR,
                                                             fake_google.token_uri)
    assert claims["scope"].split() == list(SCOPES)
    calls = [r for r in google.requests() if r["operation"] != "oauth2.token"]
    assert {r["operation"] for r in calls} == {"calendar.events.insert", "meet.spaces.get",
                                              "meet.conferenceRecords.list", "drive.files.get", "people.people.get"}
    assert {r["subject"] for r in calls} == {DOCTOR} and all(r["status"] == 200 for r in calls)


def test_a_thread_reuses_its_connections_for_every_api_and_every_delegated_user(apis, fake_google):
    """Google keeps HTTP/1.1 connections open (and so does the fake): a thread's calls, whatever the API and
    whichever user they act as, go over the one connection the thread opened, tokens included. One transport per
    (user, API) pair would open, in the cloud, a TLS connection for each pair a thread meets."""
    calendar, meet = Calendar(apis), Meet(apis)
    made = calendar.insert_event(DOCTOR, event())  # the thread's first call opens its connection
    opened = fake_google.connections_opened
    for owner in (DOCTOR, AGENDA, "enfermera@clinica.com"):
        created = calendar.insert_event(owner, event())
        meet.space(owner, created["conferenceData"]["conferenceId"])
    calendar.get_event(DOCTOR, made["id"])
    assert fake_google.connections_opened == opened


def test_a_thread_builds_each_api_client_once_whatever_the_number_of_users(apis, monkeypatch):
    """A discovery-built client holds its API's parsed discovery document (about half a MiB for Calendar): one per
    delegated user, per thread, grew an instance by more than a MiB for each doctor a thread served. Clients are
    built once per API and thread; each request goes out as its user through that user's authorized transport."""
    from shared.adapters import google as adapter

    built: list[str] = []
    real_build = adapter.build
    monkeypatch.setattr(adapter, "build", lambda api, *a, **k: (built.append(api), real_build(api, *a, **k))[1])
    calendar, meet = Calendar(apis), Meet(apis)
    owners = [DOCTOR, AGENDA, *(f"medico{i}@clinica.com" for i in range(8))]
    for owner in owners:
        made = calendar.insert_event(owner, event())
        assert meet.space(owner, made["conferenceData"]["conferenceId"])["meetingCode"]
    assert sorted(built) == ["calendar", "meet"]


def test_the_subject_is_the_organizer_in_the_domain_else_the_default_owner(function_env, db, google):
    """The contract's "Google identity": the product acts as the organizer when in WORKSPACE_DOMAIN, else as
    DEFAULT_CALENDAR_OWNER; check_status reads the event and the space as that same user."""
    api, admin = Api(new_principal(db)[1]), new_principal(db, role="admin")[1]
    check = app_client("check_status")
    start, end = future_slot()
    for organizer, subject in (("dra.ruiz@clinica.com", "dra.ruiz@clinica.com"), ("ana@hospital.com.co", AGENDA)):
        google.clear_requests()
        created = api.post({"organizer_email": organizer, "invited_emails": ["paciente@correo.com"],
                            "scheduled_start": start, "scheduled_end": end,
                            "external_reference": uuid.uuid4().hex})
        assert created.status_code == 201, created.get_json()
        answer = check.post("/internal/check-status", json={"meeting_id": created.get_json()["id"]},
                            headers={"Authorization": f"Bearer {admin}"})
        assert answer.status_code == 200
        calls = [r for r in google.requests() if r["operation"] != "oauth2.token"]
        assert {"calendar.events.insert", "calendar.events.get", "meet.spaces.get"} <= {r["operation"] for r in calls}
        assert {r["subject"] for r in calls} == {subject}
        assert [e["calendarId"] for e in google.events() if e["id"] == created.get_json()["google_event_id"]] == [
            subject]


@pytest.mark.parametrize("setup", ["suspended", "unknown"])
def test_a_calendar_owner_google_will_not_impersonate_is_identity_refused(apis, google, setup):
    """Google refuses a delegated token for a suspended or unknown user with 400 invalid_grant; google-auth raises
    RefreshError (google/oauth2/_client.py). The product answers 502 with the cause and never the email."""
    owner = "baja@clinica.com"
    if setup == "suspended":
        google.suspend_user(owner)
    else:
        google.configure(open_directory=False)
    with pytest.raises(IdentityRefused) as refused:
        Calendar(apis).insert_event(owner, event())
    assert isinstance(refused.value, UpstreamFailed)
    assert "unknown or suspended" in refused.value.detail
    assert "baja" not in refused.value.detail and "clinica.com" not in refused.value.detail
    assert google.call_count("calendar.events.insert") == 0 and google.events() == []


def test_scopes_not_authorized_for_delegation_are_identity_refused(apis, google):
    """A scope the Admin console did not authorize for the client: 401 unauthorized_client from the token endpoint
    (n8n Gmail node docs; googleapis/google-api-php-client#1379)."""
    google.configure(delegation_scopes=[s for s in SCOPES if "drive" not in s])
    with pytest.raises(IdentityRefused) as refused:
        Meet(apis).space(DOCTOR, "abc-defg-hij")
    assert "not authorized for the scopes" in refused.value.detail
    assert google.call_count("meet.spaces.get") == 0


@pytest.mark.parametrize("reason", ["quotaExceeded", "dailyLimitExceeded", "rateLimitExceeded",
                                    "userRateLimitExceeded"])
def test_a_persistent_usage_limit_403_is_retried_then_unavailable(settings, google, reason):
    """Calendar answers 403 usageLimits with these reasons when a quota or rate limit is hit, and asks for
    exponential backoff (Calendar API "Handle API errors"). The adapter retries all four with the client library's
    backoff schedule (its own loop, so that a request's deadline bounds the waits), then answers 503."""
    sleeps: list[float] = []
    apis = GoogleApis(settings.model_copy(update={"google_num_retries": 1}), sleep=sleeps.append)
    google.add_fault(403, operation="calendar.events.insert", reason=reason, count=None)
    with pytest.raises(Unavailable):
        Calendar(apis).insert_event(DOCTOR, event())
    assert google.call_count("calendar.events.insert") == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 2


def test_a_passing_quota_403_is_retried_and_the_call_succeeds(apis, google, sleeps):
    """The same backoff for a quotaExceeded that clears: the second attempt gets the event."""
    google.add_fault(403, operation="calendar.events.insert", reason="quotaExceeded", count=1)
    made = Calendar(apis).insert_event(DOCTOR, event())
    assert made["status"] == "confirmed" and len(sleeps) == 1 and 0 <= sleeps[0] <= 2
    assert google.call_count("calendar.events.insert") == 2


def test_any_other_403_is_upstream_failed_without_retry(apis, google, sleeps):
    """403 with any other reason (e.g. forbiddenForServiceAccounts) is definitive: 502, no retry."""
    google.add_fault(403, operation="calendar.events.insert", reason="forbiddenForServiceAccounts", count=None)
    with pytest.raises(UpstreamFailed) as failed:
        Calendar(apis).insert_event(DOCTOR, event())
    assert not isinstance(failed.value, Unavailable)
    assert google.call_count("calendar.events.insert") == 1 and sleeps == []


@pytest.fixture
def hanging_up_root():
    """A loopback port that reads each request and hangs up without answering."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)  # read the request, then hang up without a status line
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    stop.set()
    server.close()


def test_a_token_endpoint_that_hangs_up_is_unavailable(settings, hanging_up_root):
    """google-auth's httplib2 transport raises google.auth.exceptions.TransportError when the token request
    fails on the wire (google_auth_httplib2.Request); that is Google unreachable: 503."""
    apis = GoogleApis(settings.model_copy(update={"google_api_root": hanging_up_root}), sleep=lambda _: None)
    with pytest.raises(Unavailable) as unavailable:
        Calendar(apis).get_event(DOCTOR, "cualquiera1")
    assert isinstance(unavailable.value.__cause__, TransportError)


def test_a_token_endpoint_answering_5xx_is_unavailable(apis, google):
    """google-auth retries a 5xx token answer, then raises a retryable RefreshError (google/oauth2/_client.py
    `_can_retry`): Google unavailable, 503, not a refusal."""
    google.add_fault(503, operation="oauth2.token", count=None)
    started = time.monotonic()
    with pytest.raises(Unavailable) as unavailable:
        Calendar(apis).get_event(DOCTOR, "cualquiera1")
    assert not isinstance(unavailable.value, IdentityRefused)
    assert google.call_count("oauth2.token") >= 2 and time.monotonic() - started < 15


def test_a_409_adopts_a_live_event_but_never_a_cancelled_one(apis, google):
    """Calendar answers 409 duplicate for an id already used, even by a cancelled (deleted) event, which keeps
    its id (Calendar API events.insert: "the ID must be unique per calendar"); adopting the cancelled one would
    hand out a dead Meet link, so it is CancelledEventExists instead (an UpstreamFailed the use case handles)."""
    calendar, body = Calendar(apis), event()
    first = calendar.insert_event(DOCTOR, body)
    assert calendar.insert_event(DOCTOR, body)["hangoutLink"] == first["hangoutLink"]
    assert calendar.delete_event(DOCTOR, body["id"]) is True
    with pytest.raises(CancelledEventExists) as cancelled:
        calendar.insert_event(DOCTOR, body)
    assert isinstance(cancelled.value, UpstreamFailed)
    assert [r["status"] for r in google.requests(operation="calendar.events.insert")] == [200, 409, 409]


def test_emails_come_from_people_alone(apis, google):
    """People `people.get` with directory.readonly returns the Workspace domain profile, email included, of a
    user of the caller's own domain (developers.google.com/people: domain profile data when directory.readonly is
    granted), so the Directory API and its admin scope are not needed."""
    google.create_space(meeting_code="abc-defg-hij", owner=DOCTOR)
    google.create_conference(meeting_code="abc-defg-hij", start_time="2030-01-10T10:00:00Z", participants=[
        {"user_id": "111", "email": DOCTOR, "workspace": True}, {"user_id": "222", "email": None}])
    directory = Directory(apis)
    assert directory.email_of(DOCTOR, "users/111") == DOCTOR
    assert directory.email_of(DOCTOR, "users/222") is None
    assert directory.email_of(DOCTOR, "users/999") is None
    assert google.call_count("directory.users.get") == 0


def test_drive_meet_readonly_reads_recordings_not_other_files(apis, google):
    """drive.meet.readonly ("files that were created or edited by Google Meet", drive.v3 discovery lists it for
    files.get) is enough for a recording's metadata; any other file of the owner stays out of reach (404)."""
    google.create_space(meeting_code="abc-defg-hij", owner=DOCTOR)
    google.create_conference(meeting_code="abc-defg-hij", start_time="2030-01-10T10:00:00Z",
                             end_time="2030-01-10T10:30:00Z",
                             recordings=[{"state": "FILE_GENERATED", "drive_file_id": "grabacion1",
                                          "duration_seconds": 1800}])
    google.add_drive_file(file_id="subido1", owner=DOCTOR)
    drive = Drive(apis)
    assert drive.file(DOCTOR, "grabacion1")["videoMediaMetadata"]["durationMillis"] == "1800000"
    assert drive.file(DOCTOR, "subido1") is None
    assert drive.file(AGENDA, "grabacion1") is None
