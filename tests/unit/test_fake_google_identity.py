"""The fake Google's identity: delegated tokens issued and refused as Google does, scopes checked per method,
data kept per delegated user. Each test names the Google behaviour it holds the fake to."""

from __future__ import annotations

import base64
import json
import time

import httplib2
import pytest
import requests
from google.auth import crypt, jwt
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import Request
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from dev.fake_google.app import CERTS_OPERATION, OPERATIONS, TOKEN_OPERATION
from dev.fake_google.identity import JWT_BEARER, generate_private_key_pem, method_scopes
from shared.adapters.google import SCOPES

DOCTOR, AGENDA = "doctor@clinica.com", "agenda@clinica.com"
AUTH = "https://www.googleapis.com/auth/"


def delegated(fake, identity, subject, scopes=SCOPES, key=None, account=None):
    """google-auth's service-account credentials, as the product builds them, against the fake's token URI."""
    return service_account.Credentials(crypt.RSASigner.from_string(key or identity.private_key),
                                       account or identity.service_account, fake.token_uri, scopes=list(scopes),
                                       subject=subject, additional_claims={"aud": fake.token_uri})


def grant(fake, identity, key=None, **claims):
    """POST /token with an assertion carrying `claims` over sensible defaults (None drops a claim)."""
    now = int(time.time())
    payload = {"iss": identity.service_account, "sub": DOCTOR, "scope": " ".join(SCOPES), "aud": fake.token_uri,
               "iat": now, "exp": now + 3600}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    assertion = jwt.encode(crypt.RSASigner.from_string(key or identity.private_key), payload).decode()
    return requests.post(fake.token_uri, data={"grant_type": JWT_BEARER, "assertion": assertion}, timeout=10)


def api(fake, name, version, credentials):
    root = fake.url + {"calendar": "calendar/v3/", "drive": "drive/v3/"}.get(name, "")
    return build(name, version, credentials=credentials, static_discovery=True, cache_discovery=False,
                 client_options={"api_endpoint": root})


def event(event_id):
    return {"id": event_id, "summary": "Consulta",
            "start": {"dateTime": "2030-01-10T10:00:00Z"}, "end": {"dateTime": "2030-01-10T10:30:00Z"},
            "conferenceData": {"createRequest": {"requestId": event_id,
                                                 "conferenceSolutionKey": {"type": "hangoutsMeet"}}}}


def error_of(exc: HttpError) -> dict:
    return json.loads(exc.content)["error"]


# ---------------------------------------------------------------------------------------------- token endpoint


def test_a_jwt_bearer_grant_for_a_workspace_user_gets_a_bearer_token(fake_google, google, google_identity):
    """Google's token endpoint answers a valid JWT-bearer grant (RFC 7523 section 2.1) with an access token, its
    type and lifetime (RFC 6749 section 5.1; developers.google.com/identity/protocols/oauth2/service-account:
    {"access_token", "token_type": "Bearer", "expires_in": 3599})."""
    response = grant(fake_google, google_identity)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["access_token"]
    [logged] = google.requests(operation=TOKEN_OPERATION)
    assert logged["body"]["sub"] == DOCTOR and logged["subject"] == DOCTOR and "assertion" not in logged["body"]


@pytest.mark.parametrize("subject, setup", [
    ("nadie@correo.com", None),                     # not in the Workspace domain
    ("baja@clinica.com", "suspend"),                # suspended
    ("borrado@clinica.com", "delete"),              # deleted
    ("desconocido@clinica.com", "closed"),          # unknown to a directory that lists only its users
])
def test_a_subject_who_is_not_an_active_workspace_user_is_invalid_grant(fake_google, google, google_identity,
                                                                       subject, setup):
    """Domain-wide delegation impersonates only users of the domain; an unknown or suspended `sub` is refused with
    400 {"error": "invalid_grant", "error_description": "Invalid email or User ID"} (the token endpoint's answer
    for a bad subject; RFC 6749 section 5.2: invalid_grant, status 400)."""
    if setup == "suspend":
        google.suspend_user(subject)
    elif setup == "delete":
        google.remove_workspace_user(subject)
    elif setup == "closed":
        google.configure(open_directory=False)
    response = grant(fake_google, google_identity, sub=subject)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "Invalid email or User ID"}


def test_the_default_directory_has_the_clinic_users_and_any_address_of_the_domain(fake_google, google,
                                                                                   google_identity):
    """The Workspace in miniature: agenda@ and doctor@ are listed users; an open directory (the default) also
    has every other address of clinica.com, so `make run` accepts any organizer of the domain."""
    assert {u["email"] for u in google.workspace_users()} >= {AGENDA, DOCTOR}
    assert grant(fake_google, google_identity, sub=AGENDA).status_code == 200
    assert grant(fake_google, google_identity, sub="Dra.Lopez@Clinica.com").status_code == 200
    google.configure(open_directory=False)
    assert grant(fake_google, google_identity, sub=DOCTOR).status_code == 200
    assert grant(fake_google, google_identity, sub="dra.lopez@clinica.com").status_code == 400


def test_a_scope_not_authorized_for_delegation_is_unauthorized_client(fake_google, google, google_identity):
    """The Admin console authorizes a client id for a list of scopes; asking for any other is refused with
    401 {"error": "unauthorized_client", "error_description": "Client is unauthorized to retrieve access tokens
    using this method, or client not authorized for any of the scopes requested."} (the body and status quoted in
    n8n's Gmail node docs and googleapis/google-api-php-client#1379). By default exactly the product's scopes
    are authorized."""
    assert google.config()["delegation_scopes"] == list(SCOPES)
    refused = grant(fake_google, google_identity, scope=" ".join([*SCOPES, AUTH + "drive"]))
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized_client"
    assert "not authorized for any of the scopes requested" in refused.json()["error_description"]
    google.configure(delegation_scopes=[AUTH + "calendar.events"])
    assert grant(fake_google, google_identity).status_code == 401
    assert grant(fake_google, google_identity, scope=AUTH + "calendar.events").status_code == 200


@pytest.mark.parametrize("case", ["signature", "unknown-account", "audience", "expired", "too-long", "alg"])
def test_an_assertion_google_cannot_trust_is_invalid_grant(fake_google, google_identity, case):
    """Google checks the assertion itself before its claims: an RS256 signature by a key of the `iss` service
    account ("Invalid JWT Signature."), a known account ("Invalid grant: account not found"), `aud` = the token
    endpoint ("Invalid JWT: Failed audience check"), and `iat`/`exp` at most an hour apart around now ("Invalid
    JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe"); each is 400 invalid_grant
    (developers.google.com/identity/protocols/oauth2/service-account, "Forming the JWT claim set")."""
    now = int(time.time())
    claims = {
        "signature": {"key": generate_private_key_pem()},
        "unknown-account": {"iss": "someone@else.iam.gserviceaccount.com"},
        "audience": {"aud": "https://oauth2.googleapis.com/token"},
        "expired": {"iat": now - 7200, "exp": now - 3600},
        "too-long": {"exp": now + 7200},
        "alg": {},
    }[case]
    if case == "alg":
        payload = {"iss": google_identity.service_account, "sub": DOCTOR, "scope": " ".join(SCOPES),
                   "aud": fake_google.token_uri, "iat": now, "exp": now + 3600}
        forged = jwt.encode(crypt.RSASigner.from_string(google_identity.private_key), payload).decode()
        _, body, signature = forged.split(".")
        none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).decode().rstrip("=")
        response = requests.post(fake_google.token_uri, timeout=10,
                                 data={"grant_type": JWT_BEARER, "assertion": f"{none}.{body}.{signature}"})
    else:
        response = grant(fake_google, google_identity, **claims)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_other_grants_and_missing_parameters_are_refused(fake_google, google_identity):
    """RFC 6749 section 5.2: an unknown grant_type is unsupported_grant_type, a missing parameter invalid_request,
    and Google answers an assertion without `scope` with invalid_scope ("Invalid OAuth scope or ID token audience
    provided.")."""
    other = requests.post(fake_google.token_uri, data={"grant_type": "client_credentials"}, timeout=10)
    assert (other.status_code, other.json()["error"]) == (400, "unsupported_grant_type")
    missing = requests.post(fake_google.token_uri, data={"grant_type": JWT_BEARER}, timeout=10)
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    no_scope = grant(fake_google, google_identity, scope=None)
    assert (no_scope.status_code, no_scope.json()["error"]) == (400, "invalid_scope")


def test_google_auth_gets_and_reuses_a_token_until_shortly_before_it_expires(fake_google, google, google_identity):
    """google-auth's service-account credentials send the grant to token_uri and keep the token while it is
    valid: `expired` turns true REFRESH_THRESHOLD (3 min 45 s) before `expires_in` runs out
    (google/auth/_helpers.py, google/auth/credentials.py)."""
    creds = delegated(fake_google, google_identity, DOCTOR)
    calendar = api(fake_google, "calendar", "v3", creds).events()
    calendar.insert(calendarId="primary", body=event("reuso00001"), conferenceDataVersion=1).execute()
    calendar.get(calendarId="primary", eventId="reuso00001").execute()
    assert google.call_count(TOKEN_OPERATION) == 1

    google.configure(token_lifetime_seconds=60)  # shorter than the refresh threshold: every call refreshes
    short = api(fake_google, "calendar", "v3", delegated(fake_google, google_identity, DOCTOR)).events()
    short.get(calendarId="primary", eventId="reuso00001").execute()
    short.get(calendarId="primary", eventId="reuso00001").execute()
    assert google.call_count(TOKEN_OPERATION) == 3


def test_google_auth_raises_refresh_error_with_the_token_endpoint_answer(fake_google, google, google_identity):
    """google-auth turns a refused grant into RefreshError(details, response_data), retryable only for 5xx/429
    (google/oauth2/_client.py `_handle_error_response`, `_can_retry`): what the product maps."""
    google.suspend_user("baja@clinica.com")
    with pytest.raises(RefreshError) as refused:
        delegated(fake_google, google_identity, "baja@clinica.com").refresh(Request(httplib2.Http()))
    assert refused.value.args[1]["error"] == "invalid_grant" and not refused.value.retryable


# ---------------------------------------------------------------------------------------------- API calls


def test_every_api_method_takes_the_scopes_its_discovery_document_lists():
    """Each method accepts a token carrying at least one of the `scopes` its discovery document lists (the
    documents bundled with google-api-python-client)."""
    scopes = method_scopes()
    for operation in OPERATIONS:
        if operation not in (TOKEN_OPERATION, CERTS_OPERATION):  # Google's own endpoints, open to all
            assert scopes[operation], operation
    assert scopes["calendar.events.insert"] >= {AUTH + "calendar.events"}
    assert AUTH + "calendar.events.readonly" not in scopes["calendar.events.insert"]
    assert AUTH + "drive.meet.readonly" in scopes["drive.files.get"]
    assert AUTH + "directory.readonly" in scopes["people.people.get"]


def test_a_call_without_a_valid_token_is_401_in_googles_shape(fake_google, google):
    """Google answers a request without credentials 401 UNAUTHENTICATED, reason `required` ("Login Required."),
    and one with a bad or expired token 401, reason `authError` ("Invalid Credentials"), location Authorization
    header, with `WWW-Authenticate: Bearer ... error="invalid_token"` (Calendar API "Handle API errors",
    401: Invalid Credentials)."""
    url = fake_google.url + "calendar/v3/calendars/primary/events/x12345"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401
    error = missing.json()["error"]
    assert (error["status"], error["errors"][0]["reason"]) == ("UNAUTHENTICATED", "required")
    assert error["errors"][0]["location"] == "Authorization"
    expired = google.user_token(DOCTOR, [AUTH + "calendar"], lifetime_seconds=1)
    time.sleep(1.1)
    for bad in ("ya29.not-ours", expired):
        answer = requests.get(url, headers={"Authorization": f"Bearer {bad}"}, timeout=10)
        assert answer.status_code == 401
        assert answer.json()["error"]["errors"][0] == {"message": "Invalid Credentials", "domain": "global",
                                                       "reason": "authError", "location": "Authorization",
                                                       "locationType": "header"}
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert google.call_count("calendar.events.get") == 3


def test_a_token_without_a_scope_of_the_method_is_403_insufficient_permissions(fake_google, google):
    """A token lacking every scope a method accepts: 403 PERMISSION_DENIED "Request had insufficient authentication
    scopes.", reason insufficientPermissions, ErrorInfo ACCESS_TOKEN_SCOPE_INSUFFICIENT, and
    `WWW-Authenticate: ... error="insufficient_scope"` (as reported in analogdotnow/Analog#296 and
    kwent/react-google-contacts#6)."""
    readonly = Credentials(google.user_token(DOCTOR, [AUTH + "calendar.events.readonly"]))
    calendar = api(fake_google, "calendar", "v3", readonly).events()
    with pytest.raises(HttpError) as denied:
        calendar.insert(calendarId="primary", body=event("solo00001")).execute()
    assert denied.value.status_code == 403
    error = error_of(denied.value)
    assert error["message"] == "Request had insufficient authentication scopes."
    assert (error["status"], error["errors"][0]["reason"]) == ("PERMISSION_DENIED", "insufficientPermissions")
    assert error["details"][0]["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    assert 'error="insufficient_scope"' in denied.value.resp["www-authenticate"]
    assert google.events() == []
    with pytest.raises(HttpError) as missing:  # the scope suffices for a read: Google's answer, not a 403
        calendar.get(calendarId="primary", eventId="solo00001").execute()
    assert missing.value.status_code == 404


def test_a_user_suspended_after_the_token_was_issued_loses_it(fake_google, google, google_identity):
    """Suspending a user revokes their tokens: calls with one answer 401 and google-auth's retry after refreshing
    meets invalid_grant (google_auth_httplib2.AuthorizedHttp refreshes once on 401)."""
    creds = delegated(fake_google, google_identity, "temporal@clinica.com")
    calendar = api(fake_google, "calendar", "v3", creds).events()
    calendar.insert(calendarId="primary", body=event("temporal01")).execute()
    google.suspend_user("temporal@clinica.com")
    with pytest.raises(RefreshError):
        calendar.get(calendarId="primary", eventId="temporal01").execute()


# ---------------------------------------------------------------------------------------------- per-user data


def test_primary_is_the_delegated_users_own_calendar(fake_google, google, google_identity):
    """With domain-wide delegation the token acts as `sub`: calendarId `primary` is that user's calendar, whose
    events name them organizer; another user's calendar is not shared with them (Calendar answers 404 notFound)."""
    doctor = api(fake_google, "calendar", "v3", delegated(fake_google, google_identity, DOCTOR)).events()
    agenda = api(fake_google, "calendar", "v3", delegated(fake_google, google_identity, AGENDA)).events()
    made = doctor.insert(calendarId="primary", body=event("propio0001"), conferenceDataVersion=1).execute()
    assert made["organizer"] == {"email": DOCTOR, "self": True}
    assert doctor.get(calendarId=DOCTOR, eventId="propio0001").execute()["id"] == "propio0001"
    for calendar_id in ("primary", DOCTOR):
        with pytest.raises(HttpError) as hidden:
            agenda.get(calendarId=calendar_id, eventId="propio0001").execute()
        assert hidden.value.status_code == 404
    assert [e["calendarId"] for e in google.events()] == [DOCTOR]
    assert google.get_event("primary", "propio0001")["id"] == "propio0001"  # the control API sees every calendar
    [insert] = google.requests(operation="calendar.events.insert")
    assert insert["subject"] == DOCTOR


def test_a_meet_space_and_its_conferences_are_visible_to_their_owner(fake_google, google, google_identity):
    """Meet shows a space and its conference records to the user who owns it (the organizer whose Calendar event
    made it): another user gets 403 PERMISSION_DENIED for the space and an empty conferenceRecords.list."""
    doctor_creds = delegated(fake_google, google_identity, DOCTOR)
    agenda_creds = delegated(fake_google, google_identity, AGENDA)
    made = api(fake_google, "calendar", "v3", doctor_creds).events().insert(
        calendarId="primary", body=event("sala000001"), conferenceDataVersion=1).execute()
    code = made["conferenceData"]["conferenceId"]
    record = google.create_conference(meeting_code=code, start_time="2030-01-10T10:00:00Z",
                                      end_time="2030-01-10T10:20:00Z")
    assert record["owner"] == DOCTOR
    doctor, agenda = api(fake_google, "meet", "v2", doctor_creds), api(fake_google, "meet", "v2", agenda_creds)
    assert doctor.spaces().get(name=f"spaces/{code}").execute()["meetingCode"] == code
    listed = doctor.conferenceRecords().list(filter=f'space.meeting_code = "{code}"').execute()
    assert [r["name"] for r in listed["conferenceRecords"]] == [record["name"]]
    with pytest.raises(HttpError) as denied:
        agenda.spaces().get(name=f"spaces/{code}").execute()
    assert denied.value.status_code == 403 and error_of(denied.value)["status"] == "PERMISSION_DENIED"
    assert agenda.conferenceRecords().list(filter=f'space.meeting_code = "{code}"').execute() == {
        "conferenceRecords": []}
    with pytest.raises(HttpError) as participants:
        agenda.conferenceRecords().participants().list(parent=record["name"]).execute()
    assert participants.value.status_code == 403


def test_meet_recordings_land_in_the_owners_drive_and_drive_meet_readonly_sees_only_them(fake_google, google,
                                                                                          google_identity):
    """Meet saves recordings to the Drive of the meeting's organizer (Meet REST API guide "Work with artifacts");
    drive.meet.readonly is "See and download your Google Drive files that were created or edited by Google Meet"
    and drive.files.get lists it (drive.v3 discovery); Drive answers 404 for a file the caller may not see."""
    google.create_space(meeting_code="abc-defg-hij", owner=DOCTOR)
    record = google.create_conference(meeting_code="abc-defg-hij", start_time="2030-01-10T10:00:00Z",
                                      end_time="2030-01-10T10:30:00Z",
                                      recordings=[{"state": "FILE_GENERATED", "drive_file_id": "grabacion1"}])
    assert record["recordings"][0]["driveDestination"]["file"] == "grabacion1"
    google.add_drive_file(file_id="subido1", owner=DOCTOR)  # uploaded by the doctor, not made by Meet
    doctor = api(fake_google, "drive", "v3", delegated(fake_google, google_identity, DOCTOR)).files()
    assert doctor.get(fileId="grabacion1").execute()["mimeType"] == "video/mp4"
    agenda = api(fake_google, "drive", "v3", delegated(fake_google, google_identity, AGENDA)).files()
    for files, file_id in ((agenda, "grabacion1"), (doctor, "subido1")):
        with pytest.raises(HttpError) as hidden:
            files.get(fileId=file_id).execute()
        assert hidden.value.status_code == 404
    wide = api(fake_google, "drive", "v3", Credentials(google.user_token(DOCTOR, [AUTH + "drive.readonly"])))
    assert wide.files().get(fileId="subido1").execute()["id"] == "subido1"


def test_keys_and_tokens_outlive_a_reset_of_the_workspace(fake_google, google, google_identity):
    """Service-account keys and issued tokens belong to the Cloud project, not to the Workspace data a test
    resets: a running function keeps working across resets."""
    token = google.user_token(DOCTOR, [AUTH + "calendar"])
    google.reset()
    assert {a["email"] for a in google.service_accounts()} >= {google_identity.service_account}
    calendar = api(fake_google, "calendar", "v3", Credentials(token)).events()
    assert calendar.list(calendarId="primary").execute()["items"] == []
    other = generate_private_key_pem()
    google.register_service_account("otra@local-dev.iam.gserviceaccount.com", other)
    assert grant(fake_google, google_identity, key=other,
                 iss="otra@local-dev.iam.gserviceaccount.com").status_code == 200
    google.remove_service_account("otra@local-dev.iam.gserviceaccount.com")
    assert grant(fake_google, google_identity, key=other,
                 iss="otra@local-dev.iam.gserviceaccount.com").status_code == 400


def test_people_reveals_an_email_only_within_the_workspace_domain(fake_google, google, google_identity):
    """people.get on another account returns its public profile; the email only for a user of the caller's own
    Workspace domain (People API "Get a person": contact and domain profile data need the directory scope and the
    same domain; a consumer account's email is not public). The Meet participant of a patient's gmail account is
    therefore known by a name alone."""
    google.add_user("501", email="colega@clinica.com", workspace=True, display_name="Dra. Colega")
    google.add_user("502", email="paciente@gmail.com", display_name="Carlos Pérez")
    people = api(fake_google, "people", "v1", delegated(fake_google, google_identity, DOCTOR)).people()
    inside = people.get(resourceName="people/501", personFields="emailAddresses,names").execute()
    outside = people.get(resourceName="people/502", personFields="emailAddresses,names").execute()
    assert inside["emailAddresses"][0]["value"] == "colega@clinica.com"
    assert "emailAddresses" not in outside and outside["names"][0]["displayName"] == "Carlos Pérez"


def test_the_directory_serves_non_admins_only_the_domain_public_view(fake_google, google, google_identity):
    """Admin SDK Directory users.get: a non-administrator gets 403 unless viewType=domain_public."""
    google.add_user("501", email="colega@clinica.com", workspace=True, display_name="Dra. Colega")
    credentials = delegated(fake_google, google_identity, DOCTOR, scopes=[AUTH + "admin.directory.user.readonly"])
    google.configure(delegation_scopes=[*SCOPES, AUTH + "admin.directory.user.readonly"])
    users = api(fake_google, "admin", "directory_v1", credentials).users()
    with pytest.raises(HttpError) as refused:
        users.get(userKey="501").execute()
    assert refused.value.status_code == 403
    assert users.get(userKey="501", viewType="domain_public").execute()["primaryEmail"] == "colega@clinica.com"
