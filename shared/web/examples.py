"""Example values of the API document: XOMA's seed body, an upcoming appointment, and what the API answers."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from shared.services import page_tokens

# XOMA's body as it sends it today (the contract's seed): its slot is in the past, so the status check soon marks
# such a meeting FINISHED and it can no longer be rescheduled or cancelled.
SEED: Any = {
    "organizer_email": "doctor@clinica.com",
    "invited_emails": ["paciente@correo.com"],
    "scheduled_start": "2025-11-25T15:00:00Z",
    "scheduled_end": "2025-11-25T15:30:00Z",
    "external_reference": "xoma_appointment_1234",
}

# Next year, so an example copied into a request is always an appointment that can still be moved and cancelled.
_YEAR = datetime.now(timezone.utc).year + 1
UPCOMING_START = f"{_YEAR}-11-25T15:00:00Z"
UPCOMING_END = f"{_YEAR}-11-25T15:30:00Z"
UPCOMING: Any = dict(SEED, scheduled_start=UPCOMING_START, scheduled_end=UPCOMING_END,
                external_reference="xoma_appointment_1235")
RESCHEDULE: Any = {"scheduled_start": f"{_YEAR}-11-26T16:00:00Z"}
# A room only the invitees enter, recorded by Meet, in a slot refused if the doctor is busy then.
ROOM: Any = {"access_type": "RESTRICTED", "auto_recording": True, "auto_transcription": False}
PROTECTED: Any = dict(SEED, scheduled_start=f"{_YEAR}-11-25T18:00:00Z", scheduled_end=f"{_YEAR}-11-25T18:30:00Z",
                      external_reference="xoma_appointment_1236", room=ROOM, reject_conflicts=True)
ROOM_CHANGE: Any = {"room": {"auto_transcription": True}}
RESCHEDULE_IF_FREE: Any = {"scheduled_start": f"{_YEAR}-11-27T16:00:00Z", "reject_conflicts": True}
RETITLE: Any = {"title": "Control de seguimiento", "description": None}
NEW_INVITEES: Any = {"invited_emails": ["paciente@correo.com", "acompanante@correo.com"]}

MEETING_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def idempotency_key(operation_id: str) -> str:
    """An example key, one per operation: a key already used for another request (method or path) is a 422."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"meet-middleware:{operation_id}"))


PARTICIPANTS: Any = [
    {"email": "doctor@clinica.com", "display_name": "Dra. Laura Gómez", "role": "organizer", "attended": True,
     "joined_at": "2025-11-25T14:58:12Z", "left_at": "2025-11-25T15:31:40Z", "attended_seconds": 2008},
    {"email": "paciente@correo.com", "display_name": "Carlos Pérez", "role": "guest", "attended": True,
     "joined_at": "2025-11-25T15:01:05Z", "left_at": "2025-11-25T15:29:50Z", "attended_seconds": 1725},
]
RECORDINGS: Any = [
    {"drive_file_id": "1AbCdEfGhIjKlMnOpQrStUvWxYz012345", "duration_seconds": 1800,
     "drive_file_url": "https://drive.google.com/file/d/1AbCdEfGhIjKlMnOpQrStUvWxYz012345/view",
     "available_at": "2025-11-25T15:45:10Z", "state": "FILE_GENERATED"},
]
TRANSCRIPTS: Any = [
    {"document_id": "1ZyXwVuTsRqPoNmLkJiHgFeDcBa987654",
     "document_url": "https://docs.google.com/document/d/1ZyXwVuTsRqPoNmLkJiHgFeDcBa987654/edit",
     "state": "FILE_GENERATED"},
]

MEETING: Any = {
    "id": MEETING_ID,
    "external_reference": SEED["external_reference"],
    "google_event_id": "fu7ajm3j7d0odi5ms3v3j6ol3s",
    "meet_link": "https://meet.google.com/abc-defg-hij",
    "meeting_code": "abc-defg-hij",
    "organizer_email": SEED["organizer_email"],
    "invited_emails": SEED["invited_emails"],
    "title": "Video appointment",
    "description": None,
    "time_zone": "America/Bogota",
    "scheduled_start": SEED["scheduled_start"],
    "scheduled_end": SEED["scheduled_end"],
    "status": "CREATED",
    "participants_count": 2,
    "participants": [dict(p, display_name=None, attended=None, joined_at=None, left_at=None, attended_seconds=None)
                     for p in PARTICIPANTS],
    "recordings": [],
    "transcripts": [],
    "room": {"access_type": "RESTRICTED", "auto_recording": False, "auto_transcription": False, "state": "APPLIED"},
    "created_at": "2025-11-20T09:12:31Z",
    "updated_at": "2025-11-20T09:12:33Z",
    "cancelled_at": None,
}
UPCOMING_MEETING: Any = dict(MEETING, external_reference=UPCOMING["external_reference"], scheduled_start=UPCOMING_START,
                        scheduled_end=UPCOMING_END)
RESCHEDULED_MEETING: Any = dict(UPCOMING_MEETING, scheduled_start=RESCHEDULE["scheduled_start"],
                           scheduled_end=f"{_YEAR}-11-26T16:30:00Z", updated_at="2025-11-21T10:00:02Z")
CANCELLED_MEETING: Any = dict(UPCOMING_MEETING, status="CANCELLED", updated_at="2025-11-22T08:30:00Z",
                         cancelled_at="2025-11-22T08:30:00Z")
FINISHED_MEETING: Any = dict(MEETING, status="FINISHED", participants=PARTICIPANTS, recordings=RECORDINGS,
                        transcripts=TRANSCRIPTS, updated_at="2025-11-25T16:40:00Z")
PAGE: Any = {"items": [UPCOMING_MEETING], "next_page_token": None}
# The documented page token (the page after the example meeting): the one unsigned token the API accepts.
PAGE_TOKEN = page_tokens.EXAMPLE
assert page_tokens.EXAMPLE_POSITION["i"] == MEETING_ID
LIST_FILTERS: Any = {"status": "CREATED", "organizer_email": SEED["organizer_email"],
                "external_reference": UPCOMING["external_reference"], "scheduled_from": f"{_YEAR}-11-01T00:00:00Z",
                "scheduled_to": f"{_YEAR}-12-01T00:00:00Z", "page_size": 20, "page_token": PAGE_TOKEN}
HEALTH: Any = {"status": "ok", "database": "ok", "version": "1.0.0"}
ROOM_APPLIED: Any = MEETING["room"]
AVAILABILITY_QUERY: Any = {"email": SEED["organizer_email"], "from": f"{_YEAR}-11-25T00:00:00Z",
                           "to": f"{_YEAR}-11-26T00:00:00Z"}
AVAILABILITY: Any = dict(AVAILABILITY_QUERY, busy=[{"start": UPCOMING_START, "end": UPCOMING_END},
                                                   {"start": f"{_YEAR}-11-25T18:00:00Z",
                                                    "end": f"{_YEAR}-11-25T19:30:00Z"}])
BUSY: Any = {"type": "urn:meet-middleware:problem:conflict", "title": "Conflict", "status": 409,
             "detail": "The organizer is busy at some moment of this slot.",
             "conflicts": [{"start": f"{_YEAR}-11-25T18:00:00Z", "end": f"{_YEAR}-11-25T18:15:00Z"}]}

# One problem per status the API answers, as it words them.
PROBLEMS: Any = {
    400: ("malformed-request", "Malformed request", "The body is not valid JSON.", None),
    401: ("unauthenticated", "Unauthorized", "Send an API key as `Authorization: Bearer <key>`.", None),
    403: ("forbidden", "Forbidden", "This key may not do this.", None),
    404: ("not-found", "Not found", "No meeting has this id.", None),
    409: ("conflict", "Conflict", "A FINISHED meeting cannot be changed.", None),
    413: ("payload-too-large", "Payload too large", "The body is larger than 65536 bytes.", None),
    415: ("unsupported-media-type", "Unsupported media type", "Send the body as application/json.", None),
    422: ("invalid-input", "Invalid input", "The request has invalid fields.",
          [{"field": "scheduled_end", "message": "must be after scheduled_start"}]),
    502: ("upstream-failed", "Bad gateway", "Google Calendar refused the event.", None),
    503: ("unavailable", "Service unavailable", "Google Calendar is unavailable; retry later.", None),
}


def problem(status: int) -> dict:
    slug, title, detail, errors = PROBLEMS[status]
    body = {"type": f"urn:meet-middleware:problem:{slug}", "title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return body


# --- webhooks ---------------------------------------------------------------------------------------------------
ENDPOINT_ID: Any = "3f2b8c1e-5d4a-4e7b-9c6f-1a2b3c4d5e6f"
DELIVERY_ID: Any = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
EVENT_ID: Any = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
# The first example is a receiver on the machine of `make run` (which accepts loopback receivers), so "Try it out"
# and generated collections work locally; in production the URL is https to a public host.
WEBHOOK_CREATE_LOCAL: Any = {"url": "http://127.0.0.1:8099/webhooks/meet", "description": "Receptor local de pruebas"}
WEBHOOK_CREATE: Any = {"url": "https://xoma.example.com/webhooks/meet",
                       "event_types": ["meeting.finished", "attendance.updated", "recording.ready"],
                       "description": "XOMA producción"}
WEBHOOK_ENDPOINT: Any = {"id": ENDPOINT_ID, "url": WEBHOOK_CREATE["url"], "event_types": WEBHOOK_CREATE["event_types"],
                         "description": WEBHOOK_CREATE["description"], "created_at": "2025-11-20T09:00:00Z",
                         "disabled_at": None}
WEBHOOK_SECRET: Any = {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
WEBHOOK_CREATED: Any = dict(WEBHOOK_ENDPOINT, **WEBHOOK_SECRET)
WEBHOOK_DELIVERY: Any = {"id": DELIVERY_ID, "event_id": EVENT_ID, "event_type": "meeting.finished",
                         "meeting_id": MEETING_ID, "status": "delivered", "attempts": 1, "last_status_code": 200,
                         "last_attempt_at": "2025-11-25T16:31:05Z", "next_attempt_at": None,
                         "created_at": "2025-11-25T16:31:00Z"}
WEBHOOK_DELIVERIES: Any = {"items": [WEBHOOK_DELIVERY], "next_page_token": None}
