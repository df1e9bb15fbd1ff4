"""The fake Google's Meet space settings (spaces.get, spaces.patch) and Calendar free/busy (freebusy.query), held
to Google's documented behaviour and driven through the real google-api-python-client."""
from __future__ import annotations

import json

import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from dev.fake_google.identity import method_scopes

DOCTOR, OTHER = "doctor@clinica.com", "dra.otra@clinica.com"
AUTH = "https://www.googleapis.com/auth/"
SETTINGS, READONLY, FREEBUSY = AUTH + "meetings.space.settings", AUTH + "meetings.space.readonly", \
    AUTH + "calendar.freebusy"


def client(google, api: str, version: str, user: str, *scopes: str):
    root = google.url + {"calendar": "calendar/v3/"}.get(api, "")
    return build(api, version, credentials=Credentials(google.user_token(user, list(scopes))),
                 static_discovery=True, cache_discovery=False, client_options={"api_endpoint": root})


def error_of(exc: HttpError) -> dict:
    return json.loads(exc.content)["error"]


def event(event_id: str, start: str, end: str, **extra) -> dict:
    return {"id": event_id, "summary": "Consulta", "start": {"dateTime": start}, "end": {"dateTime": end},
            "conferenceData": {"createRequest": {"requestId": event_id,
                                                 "conferenceSolutionKey": {"type": "hangoutsMeet"}}}, **extra}


@pytest.fixture
def room(google):
    """A Meet space made by an event on the doctor's calendar (so the doctor owns it), and its meeting code."""
    events = client(google, "calendar", "v3", DOCTOR, AUTH + "calendar.events").events()
    made = events.insert(calendarId="primary", conferenceDataVersion=1,
                         body=event("room0001", "2030-01-10T10:00:00Z", "2030-01-10T10:30:00Z")).execute()
    return made["conferenceData"]["conferenceId"]


def test_the_space_of_an_event_is_read_by_its_meeting_code_with_its_settings(google, room):
    """spaces.get takes `spaces/{meetingCode}` as an alias of the space's name (Space.meetingCode), and its config
    carries every setting with a value (SpaceConfig: "never returned" UNSPECIFIED)."""
    meet = client(google, "meet", "v2", DOCTOR, SETTINGS)
    space = meet.spaces().get(name=f"spaces/{room}").execute()
    assert space["meetingCode"] == room and space["name"].startswith("spaces/") and room not in space["name"]
    assert space["config"]["accessType"] == "TRUSTED"
    artifacts = space["config"]["artifactConfig"]
    assert artifacts["recordingConfig"]["autoRecordingGeneration"] == "OFF"
    assert artifacts["transcriptionConfig"]["autoTranscriptionGeneration"] == "OFF"
    assert google.space(room)["owner"] == DOCTOR


def test_patch_changes_what_the_update_mask_names_and_nothing_else(google, room):
    """spaces.patch: "Field mask used to specify the fields to be updated"; a field the body gives but the mask
    does not name stays as it was."""
    spaces = client(google, "meet", "v2", DOCTOR, SETTINGS).spaces()
    name = spaces.get(name=f"spaces/{room}").execute()["name"]
    body = {"config": {"accessType": "RESTRICTED",
                       "artifactConfig": {"recordingConfig": {"autoRecordingGeneration": "ON"},
                                          "transcriptionConfig": {"autoTranscriptionGeneration": "ON"}}}}
    patched = spaces.patch(name=name, body=body, updateMask="config.accessType,"
                           "config.artifactConfig.recordingConfig.autoRecordingGeneration").execute()
    config = patched["config"]
    assert config["accessType"] == "RESTRICTED"
    assert config["artifactConfig"]["recordingConfig"]["autoRecordingGeneration"] == "ON"
    assert config["artifactConfig"]["transcriptionConfig"]["autoTranscriptionGeneration"] == "OFF"
    assert google.space(room)["config"] == config
    [logged] = google.requests(operation="meet.spaces.patch")
    assert logged["query"]["updateMask"].startswith("config.accessType")


def test_a_masked_field_the_body_leaves_out_is_reset_and_star_replaces_the_config(google, room):
    """updateMask paths absent from the body are cleared to their default; `*` updates every field, "including
    deleting fields not set in the request"; without a mask, the fields the body gives are updated."""
    spaces = client(google, "meet", "v2", DOCTOR, SETTINGS).spaces()
    name = spaces.get(name=f"spaces/{room}").execute()["name"]
    spaces.patch(name=name, body={"config": {"accessType": "OPEN", "moderation": "ON"}}).execute()
    config = google.space(room)["config"]
    assert config["accessType"] == "OPEN" and config["moderation"] == "ON"
    spaces.patch(name=name, body={"config": {}}, updateMask="config.accessType").execute()
    config = google.space(room)["config"]
    assert config["accessType"] == "TRUSTED" and config["moderation"] == "ON"
    spaces.patch(name=name, body={"config": {"accessType": "RESTRICTED"}}, updateMask="*").execute()
    config = google.space(room)["config"]
    assert config["accessType"] == "RESTRICTED" and config["moderation"] == "OFF"


@pytest.mark.parametrize("mask, body, status", [
    ("config.colour", {"config": {}}, 400),                                  # not a field of SpaceConfig
    ("meetingUri", {"config": {}}, 400),                                     # output only
    ("config.accessType", {"config": {"accessType": "EVERYONE"}}, 400),      # not in the enum
    ("config.accessType", {"config": {"colour": "red"}}, 400),               # unknown field in the body
])
def test_patch_refuses_masks_and_values_the_space_does_not_have(google, room, mask, body, status):
    spaces = client(google, "meet", "v2", DOCTOR, SETTINGS).spaces()
    name = spaces.get(name=f"spaces/{room}").execute()["name"]
    with pytest.raises(HttpError) as refused:
        spaces.patch(name=name, body=body, updateMask=mask).execute()
    assert refused.value.resp.status == status and error_of(refused.value)["status"] == "INVALID_ARGUMENT"
    assert google.space(room)["config"]["accessType"] == "TRUSTED"


def test_only_the_owner_patches_and_only_by_the_spaces_own_name(google, room):
    """A space shows to and changes for its owner (403 PERMISSION_DENIED otherwise); the meeting code is an alias
    "to get the space" only (Space.meetingCode), so a patch by it names no space."""
    name = client(google, "meet", "v2", DOCTOR, SETTINGS).spaces().get(name=f"spaces/{room}").execute()["name"]
    other = client(google, "meet", "v2", OTHER, SETTINGS).spaces()
    with pytest.raises(HttpError) as stranger:
        other.patch(name=name, body={"config": {"accessType": "OPEN"}}, updateMask="config.accessType").execute()
    assert stranger.value.resp.status == 403
    own = client(google, "meet", "v2", DOCTOR, SETTINGS).spaces()
    with pytest.raises(HttpError) as by_code:
        own.patch(name=f"spaces/{room}", body={"config": {"accessType": "OPEN"}},
                  updateMask="config.accessType").execute()
    assert by_code.value.resp.status == 404
    assert google.space(room)["config"]["accessType"] == "TRUSTED"


def test_patch_takes_the_scopes_its_discovery_document_lists(google, room):
    """meet.spaces.patch lists meetings.space.created and meetings.space.settings (meet.v2 discovery document);
    meetings.space.readonly reads a space but cannot change it."""
    assert method_scopes()["meet.spaces.patch"] == {AUTH + "meetings.space.created", SETTINGS}
    assert SETTINGS in method_scopes()["meet.spaces.get"]
    reader = client(google, "meet", "v2", DOCTOR, READONLY).spaces()
    name = reader.get(name=f"spaces/{room}").execute()["name"]
    with pytest.raises(HttpError) as refused:
        reader.patch(name=name, body={"config": {"accessType": "OPEN"}}, updateMask="config.accessType").execute()
    assert refused.value.resp.status == 403 and error_of(refused.value)["errors"][0]["reason"] == \
        "insufficientPermissions"


def test_a_change_made_in_the_meet_ui_shows_in_the_space(google, room):
    google.change_space_config(room, {"accessType": "OPEN",
                                      "artifactConfig": {"recordingConfig": {"autoRecordingGeneration": "ON"}}})
    space = client(google, "meet", "v2", DOCTOR, READONLY).spaces().get(name=f"spaces/{room}").execute()
    assert space["config"]["accessType"] == "OPEN"
    assert space["config"]["artifactConfig"]["recordingConfig"]["autoRecordingGeneration"] == "ON"
    assert space["config"]["artifactConfig"]["transcriptionConfig"]["autoTranscriptionGeneration"] == "OFF"


# --- Calendar freebusy.query ---------------------------------------------------------------------------------

def test_freebusy_answers_each_calendars_busy_periods_clipped_to_the_range(google):
    """freebusy.query (calendar.v3): `calendars` keyed by the ids asked for, each with `busy` periods; an event
    marked free (`transparency: transparent`) or cancelled does not make the calendar busy."""
    events = client(google, "calendar", "v3", DOCTOR, AUTH + "calendar.events").events()
    events.insert(calendarId="primary",
                  body=event("evt00001", "2030-01-10T09:00:00Z", "2030-01-10T10:00:00Z")).execute()
    events.insert(calendarId="primary", body=event("evt00002", "2030-01-10T11:00:00-05:00",
                                                   "2030-01-10T11:30:00-05:00")).execute()
    events.insert(calendarId="primary", body=event("free0001", "2030-01-10T12:00:00Z", "2030-01-10T13:00:00Z",
                                                   transparency="transparent")).execute()
    events.insert(calendarId="primary",
                  body=event("gone0001", "2030-01-10T13:00:00Z", "2030-01-10T14:00:00Z")).execute()
    events.delete(calendarId="primary", eventId="gone0001").execute()
    freebusy = client(google, "calendar", "v3", DOCTOR, FREEBUSY).freebusy()
    answer = freebusy.query(body={"timeMin": "2030-01-10T09:30:00Z", "timeMax": "2030-01-11T00:00:00Z",
                                  "items": [{"id": DOCTOR}, {"id": OTHER}]}).execute()
    assert answer["kind"] == "calendar#freeBusy"
    assert answer["calendars"][DOCTOR]["busy"] == [
        {"start": "2030-01-10T09:30:00Z", "end": "2030-01-10T10:00:00Z"},
        {"start": "2030-01-10T16:00:00Z", "end": "2030-01-10T16:30:00Z"}]
    # Another user's calendar is not shared with the doctor: an error for that calendar, not for the request.
    assert answer["calendars"][OTHER]["errors"] == [{"domain": "global", "reason": "notFound"}]


def test_freebusy_takes_a_freebusy_scope_and_both_bounds(google):
    """freebusy.query lists calendar, calendar.events.freebusy, calendar.freebusy and calendar.readonly (not
    calendar.events); timeMin and timeMax are required."""
    assert AUTH + "calendar.freebusy" in method_scopes()["calendar.freebusy.query"]
    assert AUTH + "calendar.events" not in method_scopes()["calendar.freebusy.query"]
    events_only = client(google, "calendar", "v3", DOCTOR, AUTH + "calendar.events").freebusy()
    with pytest.raises(HttpError) as refused:
        events_only.query(body={"timeMin": "2030-01-10T00:00:00Z", "timeMax": "2030-01-11T00:00:00Z",
                                "items": [{"id": DOCTOR}]}).execute()
    assert refused.value.resp.status == 403
    freebusy = client(google, "calendar", "v3", DOCTOR, FREEBUSY).freebusy()
    with pytest.raises(HttpError) as missing:
        freebusy.query(body={"timeMin": "2030-01-10T00:00:00Z", "items": [{"id": DOCTOR}]}).execute()
    assert missing.value.resp.status == 400
    empty = freebusy.query(body={"timeMin": "2030-01-10T00:00:00Z", "timeMax": "2030-01-11T00:00:00Z",
                                 "items": [{"id": "primary"}]}).execute()
    assert empty["calendars"]["primary"]["busy"] == []
