"""Patient-safe rooms through the functions and the fake Google (CONTRACT: "Patient-safe rooms"): the policy is
applied to the meeting's Meet space with spaces.patch and shown with its state.

Google's side, as the fake holds it (tests/unit/test_fake_google_rooms.py): spaces.get takes `spaces/{meetingCode}`,
spaces.patch the space's own name, an `updateMask` of `config.*` paths, and one of the scopes
meetings.space.created or meetings.space.settings (meet.v2 discovery document; Meet REST v2 reference,
spaces.patch and SpaceConfig: accessType OPEN/TRUSTED/RESTRICTED, artifactConfig recordingConfig
autoRecordingGeneration and transcriptionConfig autoTranscriptionGeneration ON/OFF).
"""
from __future__ import annotations

import io
import json
import logging
import uuid
from datetime import datetime, timezone

import pytest

from shared import logs
from shared.logs import JsonFormatter
from tests.conftest import new_principal
from tests.integration.helpers import Api, app_client, future_slot

RECORDING = ("artifactConfig", "recordingConfig", "autoRecordingGeneration")
TRANSCRIPTION = ("artifactConfig", "transcriptionConfig", "autoTranscriptionGeneration")
DEFAULT_ROOM = {"access_type": "RESTRICTED", "auto_recording": False, "auto_transcription": False}


def body(organizer: str = "doctor@clinica.com", **extra) -> dict:
    start, end = future_slot()
    return {"organizer_email": organizer, "invited_emails": ["paciente@correo.com"], "scheduled_start": start,
            "scheduled_end": end, "external_reference": f"room-{uuid.uuid4().hex[:10]}", **extra}


def setting(config: dict, path: tuple[str, ...]):
    for part in path:
        config = config[part]
    return config


@pytest.fixture
def api(function_env, db):
    return Api(new_principal(db)[1])


@pytest.fixture
def check(function_env, db):
    """check_status for one meeting, with an admin key, as the sweep's task calls it."""
    client, key = app_client("check_status"), new_principal(db, role="admin")[1]
    return lambda meeting_id: client.post("/internal/check-status", json={"meeting_id": meeting_id},
                                          headers={"Authorization": f"Bearer {key}"})


def test_a_meeting_without_a_room_gets_the_restricted_default_in_its_meet_space(api, google):
    created = api.post(body())
    assert created.status_code == 201, created.get_data(as_text=True)
    meeting = created.get_json()
    assert meeting["room"] == dict(DEFAULT_ROOM, state="APPLIED")
    space = google.space(meeting["meeting_code"])
    assert space["config"]["accessType"] == "RESTRICTED"
    assert setting(space["config"], RECORDING) == "OFF" and setting(space["config"], TRANSCRIPTION) == "OFF"
    # Only what differed is patched, by the space's name, as the calendar owner (the doctor, in the Workspace).
    [patch] = google.requests(operation="meet.spaces.patch")
    assert patch["query"]["updateMask"] == "config.accessType"
    assert patch["path"] == "/v2/" + space["name"] and patch["subject"] == "doctor@clinica.com"
    [get] = google.requests(operation="meet.spaces.get")
    assert get["path"] == f"/v2/spaces/{meeting['meeting_code']}"
    assert api.get(f"/v1/meetings/{meeting['id']}").get_json()["room"] == meeting["room"]


def test_an_explicit_policy_is_applied_as_asked(api, google):
    room = {"access_type": "OPEN", "auto_recording": True, "auto_transcription": True}
    meeting = api.post(body(room=room)).get_json()
    assert meeting["room"] == dict(room, state="APPLIED")
    config = google.space(meeting["meeting_code"])["config"]
    assert config["accessType"] == "OPEN"
    assert setting(config, RECORDING) == "ON" and setting(config, TRANSCRIPTION) == "ON"
    [patch] = google.requests(operation="meet.spaces.patch")
    assert patch["query"]["updateMask"].split(",") == [
        "config.accessType", "config.artifactConfig.recordingConfig.autoRecordingGeneration",
        "config.artifactConfig.transcriptionConfig.autoTranscriptionGeneration"]


def test_fields_left_out_take_the_defaults_and_a_policy_already_in_place_is_not_patched(api, google):
    meeting = api.post(body(room={"access_type": "TRUSTED"})).get_json()
    assert meeting["room"] == dict(DEFAULT_ROOM, access_type="TRUSTED", state="APPLIED")
    # The fake's new spaces are TRUSTED with nothing automatic: nothing to change, so no patch.
    assert google.call_count("meet.spaces.patch") == 0 and google.call_count("meet.spaces.get") == 1


def test_an_organizer_outside_the_workspace_has_the_policy_applied_by_the_calendar_owner(api, google):
    meeting = api.post(body("dr.externo@otra-clinica.com")).get_json()
    assert meeting["room"]["state"] == "APPLIED"
    [patch] = google.requests(operation="meet.spaces.patch")
    assert patch["subject"] == "agenda@clinica.com"
    assert google.space(meeting["meeting_code"])["owner"] == "agenda@clinica.com"


def test_patch_changes_the_policy_field_by_field_and_applies_it(api, google):
    meeting = api.post(body()).get_json()
    google.clear_requests()
    changed = api.patch(meeting["id"], {"room": {"auto_transcription": True}})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.get_json()["room"] == dict(DEFAULT_ROOM, auto_transcription=True, state="APPLIED")
    config = google.space(meeting["meeting_code"])["config"]
    assert config["accessType"] == "RESTRICTED" and setting(config, TRANSCRIPTION) == "ON"
    [patch] = google.requests(operation="meet.spaces.patch")
    assert patch["query"]["updateMask"] == "config.artifactConfig.transcriptionConfig.autoTranscriptionGeneration"
    # The Calendar event is not touched by a room change, and the same policy again changes nothing.
    assert google.call_count("calendar.events.patch") == 0
    again = api.patch(meeting["id"], {"room": {"auto_transcription": True}})
    assert again.get_json() == changed.get_json() and google.call_count("meet.spaces.patch") == 1


def test_google_unavailable_leaves_the_policy_pending_and_the_status_check_applies_it(api, google, check, db):
    google.add_fault(503, operation="meet.spaces.patch", count=None)
    created = api.post(body())
    assert created.status_code == 201
    meeting = created.get_json()
    assert meeting["status"] == "CREATED" and meeting["room"] == dict(DEFAULT_ROOM, state="PENDING")
    assert google.space(meeting["meeting_code"])["config"]["accessType"] == "TRUSTED"
    with db.transaction() as cur:
        cur.execute("SELECT next_check_at FROM meetings WHERE id = :id", {"id": meeting["id"]})
        next_check = cur.fetchone()[0]
    # Looked at again within minutes, well before the slot (a day away), not only around it.
    assert (next_check - datetime.now(timezone.utc)).total_seconds() <= 5 * 60 + 5
    google.clear_faults()
    assert check(meeting["id"]).status_code == 200
    after = api.get(f"/v1/meetings/{meeting['id']}").get_json()
    assert after["room"]["state"] == "APPLIED" and after["status"] == "SCHEDULED"
    assert google.space(meeting["meeting_code"])["config"]["accessType"] == "RESTRICTED"


def test_a_link_still_pending_leaves_the_policy_pending_until_the_check_fills_the_link(api, google, check):
    google.configure(conference_mode="pending", pending_polls=None)
    meeting = api.post(body()).get_json()
    assert meeting["meet_link"] is None and meeting["room"]["state"] == "PENDING"
    assert google.call_count("meet.spaces.get") == 0
    google.resolve_conference("primary", meeting["google_event_id"])
    assert check(meeting["id"]).status_code == 200
    after = api.get(f"/v1/meetings/{meeting['id']}").get_json()
    assert after["meet_link"] and after["room"]["state"] == "APPLIED"
    assert google.space(after["meeting_code"])["config"]["accessType"] == "RESTRICTED"


@pytest.fixture
def captured(function_env):
    logs.configure()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_google_refusing_the_policy_fails_it_logged_and_the_meeting_stays_usable(api, google, check, captured):
    """A 403 of spaces.patch (e.g. PERMISSION_DENIED) is not retried: FAILED, logged without personal data; the
    meeting works; the status check leaves it be; a PATCH of `room` tries again."""
    google.add_fault(403, operation="meet.spaces.patch", reason="forbidden", count=None)
    created = api.post(body("dra.reservada@clinica.com"))
    assert created.status_code == 201
    meeting = created.get_json()
    assert meeting["status"] == "CREATED" and meeting["meet_link"]
    assert meeting["room"] == dict(DEFAULT_ROOM, state="FAILED")
    refused = [json.loads(line) for line in captured.getvalue().splitlines() if "room policy refused" in line]
    assert refused and refused[0]["severity"] == "WARNING" and refused[0]["meeting_id"] == meeting["id"]
    assert "dra.reservada" not in captured.getvalue() and "clinica.com" not in captured.getvalue()
    calls = google.call_count("meet.spaces.patch")
    assert check(meeting["id"]).get_json()["status"] == "SCHEDULED"
    assert google.call_count("meet.spaces.patch") == calls
    assert api.patch(meeting["id"], {"title": "Control"}).status_code == 200
    google.clear_faults()
    retried = api.patch(meeting["id"], {"room": {"access_type": "RESTRICTED"}}).get_json()
    assert retried["room"]["state"] == "APPLIED" and retried["title"] == "Control"


def test_the_status_check_re_applies_a_policy_changed_in_the_meet_ui(api, google, check):
    meeting = api.post(body(room={"auto_recording": True})).get_json()
    code = meeting["meeting_code"]
    # The organizer opens the room to anyone and turns recording off, in Meet's host controls.
    google.change_space_config(code, {"accessType": "OPEN",
                                      "artifactConfig": {"recordingConfig": {"autoRecordingGeneration": "OFF"}}})
    google.clear_requests()
    assert check(meeting["id"]).status_code == 200
    config = google.space(code)["config"]
    assert config["accessType"] == "RESTRICTED" and setting(config, RECORDING) == "ON"
    [patch] = google.requests(operation="meet.spaces.patch")
    assert patch["query"]["updateMask"] == \
        "config.accessType,config.artifactConfig.recordingConfig.autoRecordingGeneration"
    # The same spaces.get served the live-conference check: one read of the space per check.
    assert google.call_count("meet.spaces.get") == 1
    assert api.get(f"/v1/meetings/{meeting['id']}").get_json()["room"]["state"] == "APPLIED"
    assert check(meeting["id"]).status_code == 200 and google.call_count("meet.spaces.patch") == 1


@pytest.mark.parametrize("room, field, message", [
    (None, "room", "cannot be null"),
    ({"access_type": None}, "room.access_type", "cannot be null"),
    ({"access_type": "EVERYONE"}, "room.access_type", None),
    ({"auto_recording": "yes"}, "room.auto_recording", None),
    ({"state": "APPLIED"}, "room.state", "is read-only"),
    ({"colour": "red"}, "room.colour", "unknown field"),
])
def test_an_invalid_room_is_422_and_nothing_is_made(api, google, room, field, message):
    refused = api.post(body(room=room))
    assert refused.status_code == 422, refused.get_data(as_text=True)
    errors = {e["field"]: e["message"] for e in refused.get_json()["errors"]}
    assert field in errors and (message is None or errors[field] == message)
    assert google.events() == []


def test_an_invalid_room_on_patch_is_422_and_changes_nothing(api, google):
    meeting = api.post(body()).get_json()
    for room, field in (({"access_type": None}, "room.access_type"), (None, "room")):
        refused = api.patch(meeting["id"], {"room": room})
        assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == field
    assert api.get(f"/v1/meetings/{meeting['id']}").get_json() == meeting
    assert google.call_count("meet.spaces.patch") == 1


def test_a_replay_is_the_same_meeting_and_another_room_is_another_body(api, google):
    request = body(room={"auto_recording": True})
    first = api.post(request)
    again = api.post(request)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"] and google.call_count("meet.spaces.patch") == 1
    assert api.post(dict(request, room={"auto_recording": False})).status_code == 409


def test_a_creation_the_status_check_finishes_gets_its_room_policy_too(api, google, check):
    google.add_fault(503, operation="calendar.events.insert", count=None)
    request = body()
    assert api.post(request).status_code == 503
    google.clear_faults()
    [pending] = api.get(f"/v1/meetings?external_reference={request['external_reference']}").get_json()["items"]
    assert pending["status"] == "PENDING" and pending["room"]["state"] == "PENDING"
    assert check(pending["id"]).get_json()["status"] == "CREATED"
    done = api.get(f"/v1/meetings/{pending['id']}").get_json()
    assert done["room"] == dict(DEFAULT_ROOM, state="APPLIED")
    assert google.space(done["meeting_code"])["config"]["accessType"] == "RESTRICTED"


def test_a_meeting_made_before_room_policies_is_left_alone_until_a_patch_gives_it_one(api, google, check, db):
    meeting = api.post(body()).get_json()
    with db.transaction() as cur:  # as migration 0006 leaves the meetings made before it
        cur.execute("UPDATE meetings SET room_access_type = NULL, room_auto_recording = NULL,"
                    " room_auto_transcription = NULL, room_state = NULL WHERE id = :id", {"id": meeting["id"]})
    google.change_space_config(meeting["meeting_code"], {"accessType": "OPEN"})
    assert api.get(f"/v1/meetings/{meeting['id']}").get_json()["room"] is None
    calls = google.call_count("meet.spaces.patch")
    assert check(meeting["id"]).status_code == 200 and google.call_count("meet.spaces.patch") == calls
    assert google.space(meeting["meeting_code"])["config"]["accessType"] == "OPEN"
    given = api.patch(meeting["id"], {"room": {"auto_recording": True}}).get_json()
    assert given["room"] == dict(DEFAULT_ROOM, auto_recording=True, state="APPLIED")
    assert google.space(meeting["meeting_code"])["config"]["accessType"] == "RESTRICTED"
