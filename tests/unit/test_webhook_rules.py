"""The pure webhook decisions: which events a change makes, which URLs may receive them, signatures, retries."""
from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook

from shared.domain import events
from shared.domain.events import EventType, between
from shared.domain.meeting import Meeting, Participant, Recording, Status, Transcript
from shared.domain.webhooks import (DeliveryTask, UnsafeTarget, after_attempt, blocked, check_addresses, new_secret,
                                    parse_target, signed_headers)

T0 = datetime(2026, 5, 4, 14, 0, tzinfo=timezone.utc)
SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]


def meeting(**changes) -> Meeting:
    base = Meeting(id="7d3c9a52-8a43-4f6e-9a0c-3b7f3f1f5d10", client_id="c", status=Status.CREATED,
                   organizer_email="doctor@clinica.com", title="Consulta", description=None, time_zone="UTC",
                   scheduled_start=T0, scheduled_end=T0 + timedelta(minutes=30), google_event_id="ev",
                   meet_link="https://meet.google.com/abc-defg-hij", meeting_code="abc-defg-hij",
                   participants=(Participant("doctor@clinica.com", "organizer"),
                                 Participant("paciente@correo.com", "guest")))
    return base.but(**changes)


def types(before: Meeting, after: Meeting) -> list[str]:
    return [e.type.value for e in between(before, after)]


# --- events of a change -----------------------------------------------------------------------------------------

def test_status_moves_make_their_events():
    pending = meeting(status=Status.PENDING, google_event_id=None, meet_link=None, meeting_code=None)
    assert types(pending, meeting()) == ["meeting.created"]
    assert types(meeting(), meeting(status=Status.SCHEDULED)) == []
    assert types(meeting(status=Status.SCHEDULED), meeting(status=Status.IN_PROGRESS)) == ["meeting.started"]
    assert types(meeting(status=Status.IN_PROGRESS), meeting(status=Status.FINISHED)) == ["meeting.finished"]
    assert types(meeting(), meeting(status=Status.CANCELLED, cancelled_at=T0)) == ["meeting.cancelled"]
    assert types(pending, pending.but(status=Status.FAILED, google_event_id="ev")) == []
    assert types(pending.but(status=Status.FAILED), pending) == []


def test_edits_are_updates_and_bookkeeping_is_nothing():
    before = meeting()
    assert types(before, before.but(scheduled_start=T0 + timedelta(days=1), schedule_version=2)) == ["meeting.updated"]
    assert types(before, before.but(title="Control")) == ["meeting.updated"]
    assert types(before.but(meet_link=None, meeting_code=None, conference_status="pending"),
                 before.but(conference_status="success")) == ["meeting.updated"]  # a pending link filled in
    invitees = before.but(participants=before.participants[:1] + (Participant("otra@correo.com", "guest"),))
    assert types(before, invitees) == ["meeting.updated"]
    assert types(before, before.but(last_checked_at=T0, next_check_at=T0, sync_attempts=3, updated_at=T0)) == []
    moved_and_over = before.but(status=Status.FINISHED, scheduled_end=T0 + timedelta(hours=1), finished_at=T0)
    assert types(before, moved_and_over) == ["meeting.updated", "meeting.finished"]


def test_what_counts_as_the_meetings_content_is_a_decision():
    """A new column of Meeting is content (an edit makes meeting.updated) unless it is listed as bookkeeping."""
    assert set(events.CONTENT) == {"organizer_email", "title", "description", "time_zone", "scheduled_start",
                                   "scheduled_end", "external_reference", "google_event_id", "meet_link",
                                   "meeting_code", "room_access_type", "room_auto_recording",
                                   "room_auto_transcription"}


def test_attendance_and_files_are_reported_once():
    before = meeting(status=Status.FINISHED)
    seen = before.but(participants=(Participant("doctor@clinica.com", "organizer", attended=True, attended_seconds=60),
                                    Participant("paciente@correo.com", "guest", attended=False, attended_seconds=0)))
    assert types(before, seen) == ["attendance.updated"]
    assert types(seen, seen) == []
    recording = Recording(state="FILE_GENERATED", drive_file_id="f1", drive_file_url="https://drive/f1")
    started = seen.but(recordings=(Recording(state="STARTED"),), transcripts=(Transcript(state="STARTED"),))
    assert types(seen, started) == []
    ready = started.but(recordings=(recording,), transcripts=(Transcript("FILE_GENERATED", "d1", "https://docs/d1"),))
    [rec, doc] = between(started, ready)
    assert (rec.type, rec.recording, doc.type, doc.transcript.document_id) == (
        EventType.RECORDING_READY, recording, EventType.TRANSCRIPT_READY, "d1")
    later = ready.but(recordings=(Recording("FILE_GENERATED", "f1", "https://drive/f1", duration_seconds=60),))
    assert types(ready, later) == []  # Drive's metadata arriving later is not a second ready


# --- retries -------------------------------------------------------------------------------------------------------

def test_the_retry_schedule():
    waits = [after_attempt(n, 500, now=T0, schedule=SCHEDULE).next_attempt_at - T0 for n in range(1, 8)]
    assert [w.total_seconds() for w in waits] == SCHEDULE
    assert after_attempt(8, 500, now=T0, schedule=SCHEDULE).status == "failed"
    assert after_attempt(1, None, now=T0, schedule=SCHEDULE).status == "pending"  # no answer at all
    assert after_attempt(3, 204, now=T0, schedule=SCHEDULE).status == "delivered"
    assert after_attempt(1, 302, now=T0, schedule=SCHEDULE).status == "pending"
    gone = after_attempt(1, 410, now=T0, schedule=SCHEDULE)
    assert (gone.status, gone.disable_endpoint, gone.next_attempt_at) == ("failed", True, None)


def test_delivery_task_names_are_per_attempt():
    task = DeliveryTask("0b7c2a9e-3f1d-4c8e-9a51-2d6f0e4b7c13", 2, T0)
    assert task.name == "deliver_webhooks-0b7c2a9e-3f1d-4c8e-9a51-2d6f0e4b7c13-a2"
    assert DeliveryTask(task.delivery_id, 2, T0, tag="s123").name == task.name + "-s123"
    assert task.body() == {"delivery_id": task.delivery_id, "attempt": 2}
    with pytest.raises(ValueError):
        DeliveryTask(task.delivery_id, 0, T0)


# --- signatures, checked by the specification's reference library ----------------------------------------------------

def test_signatures_verify_with_the_reference_library():
    old, new = new_secret(), new_secret()
    assert old.startswith("whsec_") and len(old) == len("whsec_") + 44  # 32 bytes in base64
    timestamp = int(datetime.now(timezone.utc).timestamp())
    body = '{"type":"meeting.created","data":{"texto":"Pérez"}}'
    headers = signed_headers([new, old], "msg-1", timestamp, body)
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["type"] == "meeting.created"
    with pytest.raises(Exception):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(Exception):
        Webhook(new).verify(body.replace("created", "updated"), headers)


# --- URLs --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "loopback"), ("10.1.2.3", "private"), ("172.31.0.1", "private"), ("192.168.0.1", "private"),
    ("169.254.169.254", "metadata"), ("169.254.1.1", "link-local"), ("100.64.0.1", "non-public"),
    ("0.0.0.0", "private"), ("224.0.0.1", "non-public"), ("::1", "loopback"), ("fe80::1", "link-local"),
    ("fd00::1", "private"), ("fd00:ec2::254", "metadata"), ("::ffff:10.0.0.1", "private"),
    ("64:ff9b::a00:1", "private"), ("2002:a00:1::", "private"), ("8.8.8.8", None), ("2001:4860:4860::8888", None),
])
def test_addresses(address, reason):
    assert blocked(ipaddress.ip_address(address)) == reason


def test_urls_are_checked_by_their_text_and_their_addresses():
    target = parse_target("https://hooks.xoma.example/v1/meet?x=1", allow_loopback=False)
    assert (target.host, target.port, target.path, target.host_header) == (
        "hooks.xoma.example", 443, "/v1/meet?x=1", "hooks.xoma.example")
    check_addresses(target, ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
    for addresses in (["93.184.216.34", "10.0.0.1"], ["127.0.0.1"], ["169.254.169.254"], []):
        with pytest.raises(UnsafeTarget):
            check_addresses(target, addresses)  # one private answer is enough to refuse (DNS rebinding)
    for url in ("http://hooks.xoma.example/", "https://10.0.0.1/", "https://intranet/", "https://a.internal/",
                "https://u:p@hooks.xoma.example/", "https://hooks.xoma.example:99999/", "https://x.example/#f",
                "https://exa mple.com/", "https://ejemplo.com/ñ", "https://" + "a" * 2050 + ".com/", "gopher://x.com"):
        with pytest.raises(UnsafeTarget):
            parse_target(url, allow_loopback=False)


def test_local_receivers_need_the_setting():
    with pytest.raises(UnsafeTarget):
        parse_target("http://127.0.0.1:8000/hooks", allow_loopback=False)
    local = parse_target("http://127.0.0.1:8000/hooks", allow_loopback=True)
    assert local.loopback and local.host_header == "127.0.0.1:8000"
    check_addresses(local, ["127.0.0.1"])
    assert parse_target("http://localhost:8000/", allow_loopback=True).loopback
    with pytest.raises(UnsafeTarget):
        parse_target("http://10.0.0.1:8000/", allow_loopback=True)  # only loopback, never the private network
    public = parse_target("https://hooks.xoma.example/", allow_loopback=True)
    with pytest.raises(UnsafeTarget):
        check_addresses(public, ["127.0.0.1"])  # a public name resolving to loopback is still refused


# --- the OpenAPI document ------------------------------------------------------------------------------------------

def test_the_document_describes_every_event_and_the_webhook_routes():
    from shared.web import openapi

    doc = openapi.document()
    assert set(doc["webhooks"]) == {t.value for t in EventType}
    schemas = doc["components"]["schemas"]
    for event_type, item in doc["webhooks"].items():
        body = item["post"]["requestBody"]["content"]["application/json"]["schema"]["allOf"]
        assert body[0]["$ref"].rsplit("/", 1)[-1] in schemas
        assert body[1]["properties"]["type"]["const"] == event_type
        assert {p["name"] for p in item["post"]["parameters"]} == {"webhook-id", "webhook-timestamp",
                                                                   "webhook-signature"}
    assert "recording" in schemas["RecordingEventData"]["properties"]
    deleted = doc["paths"]["/v1/webhook-endpoints/{endpoint_id}"]["delete"]["responses"]["204"]
    assert deleted["description"] == "Done (no content)" and "content" not in deleted
    assert set(deleted.get("headers", {})) <= {"Idempotent-Replayed"}
    created = schemas["WebhookEndpointCreated"]["properties"]
    assert {"id", "url", "event_types", "description", "secret", "created_at", "disabled_at"} <= set(created)
    assert not any(path.startswith("/internal") for path in doc["paths"])
