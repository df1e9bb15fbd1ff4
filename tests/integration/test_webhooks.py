"""Push events through the functions, on real PostgreSQL and the fake Google, to real HTTP receivers on loopback.

Every delivery is verified the way a receiver would verify it: with the `standardwebhooks` reference library
(the specification's own implementation, not the product's signing code) and the secret the API showed once.
Cloud Tasks is off here unless a test says otherwise, so the deliver_webhooks sweep sends what is due.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared import bootstrap
from shared.adapters.secret_box import new_key
from shared.web.webhook_models import EVENT_MODELS
from tests.conftest import new_principal
from tests.integration.helpers import Api, app_client, future_slot, iso
from tests.receiver import Receiver

FAST_RETRIES = "[0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]"


@pytest.fixture
def hooks_env(function_env, monkeypatch):
    """Webhooks on: an encryption key, local receivers allowed, retries a fraction of a second apart."""
    monkeypatch.setenv("WEBHOOK_SECRETS_KEY", new_key())
    monkeypatch.setenv("WEBHOOK_ALLOW_LOOPBACK_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE_SECONDS", FAST_RETRIES)
    bootstrap.reset()
    yield


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(status: int = 204, script: list | None = None) -> Receiver:
        made.append(Receiver(status, script))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


class Client:
    """One API client: its meetings (Api) and its webhook endpoints."""

    def __init__(self, key: str):
        self.key = key
        self.auth = {"Authorization": f"Bearer {key}"}
        self.api = Api(key)
        self.hooks = app_client("manage_webhooks")

    def register(self, url: str, **body):
        return self.hooks.post("/v1/webhook-endpoints", json={"url": url, **body}, headers=self.auth)

    def endpoint(self, url: str, **body) -> dict:
        response = self.register(url, **body)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    def call(self, method: str, path: str, **kwargs):
        return self.hooks.open(path, method=method, headers=self.auth, **kwargs)

    def deliveries(self, endpoint_id: str) -> list[dict]:
        response = self.call("GET", f"/v1/webhook-endpoints/{endpoint_id}/deliveries?page_size=100")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["items"]


@pytest.fixture
def client(hooks_env, db) -> Client:
    return Client(new_principal(db)[1])


@pytest.fixture
def admin(hooks_env, db) -> dict:
    return {"Authorization": f"Bearer {new_principal(db, role='admin')[1]}"}


@pytest.fixture
def sweep(admin):
    """The deliver_webhooks sweep, as Cloud Scheduler calls it; with Cloud Tasks off it sends what is due."""
    function = app_client("deliver_webhooks")

    def run() -> dict:
        response = function.post("/internal/deliver-webhooks", json={}, headers=admin)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return run


@pytest.fixture
def internal(admin):
    check, sync = app_client("check_status"), app_client("sync_recordings")

    def call(kind: str, meeting_id: str) -> dict:
        function, path = (check, "/internal/check-status") if kind == "check" else (sync, "/internal/sync-recordings")
        response = function.post(path, json={"meeting_id": meeting_id}, headers=admin)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return call


def body(start=None, end=None) -> dict:
    if start is None:
        start, end = future_slot()
    return {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start, "scheduled_end": end, "external_reference": uuid.uuid4().hex}


def verified(secret: str, delivery) -> dict:
    """The event as a receiver gets it, after the reference library checked its signature and timestamp."""
    _, headers, raw = delivery
    event = Webhook(secret).verify(raw, dict(headers.items()))
    assert headers["Content-Type"] == "application/json"
    EVENT_MODELS_BY_TYPE = {t.value: model for t, model in EVENT_MODELS.items()}
    EVENT_MODELS_BY_TYPE[event["type"]].model_validate_json(raw)  # the shape the OpenAPI `webhooks` document
    return event


def drain(receiver: Receiver, secret: str, *, quiet: float = 0.3) -> list[tuple[dict, dict]]:
    """Every delivery the receiver has got so far, verified, with its headers."""
    got = []
    while True:
        try:
            delivery = receiver.next(timeout=quiet)
        except Exception:
            return got
        got.append((verified(secret, delivery), dict(delivery[1].items())))


# --- every event type, once each ---------------------------------------------------------------------------------

def test_each_event_type_arrives_once_signed_with_a_growing_sequence(client, receivers, sweep, internal, google):
    receiver = receivers()
    endpoint = client.endpoint(receiver.url + "/hooks", description="XOMA")
    assert endpoint["secret"].startswith("whsec_") and endpoint["event_types"] == [t.value for t in EVENT_MODELS]
    secret = endpoint["secret"]
    now = datetime.now(timezone.utc)
    meeting = client.api.post(body(iso(now - timedelta(minutes=5)), iso(now + timedelta(minutes=25)))).get_json()

    def step(expected: list[str]) -> list[dict]:
        sweep()
        events = [event for event, _ in drain(receiver, secret)]
        assert [e["type"] for e in events] == expected
        return events

    created = step(["meeting.created"])
    assert created[0]["data"]["meeting"]["id"] == meeting["id"] and created[0]["data"]["meeting"]["status"] == "CREATED"
    step([])  # nothing changed, nothing sent
    assert client.api.patch(meeting["id"], {"title": "Control"}).status_code == 200
    edited = step(["meeting.updated"])
    assert edited[0]["data"]["meeting"]["title"] == "Control"

    record = google.create_conference(meeting_code=meeting["meeting_code"], start_time=iso(now - timedelta(minutes=4)),
                                      participants=[{"kind": "signedin", "user_id": "111", "email": "doctor@clinica.com",
                                                     "display_name": "Dra. Ruiz",
                                                     "sessions": [{"start": iso(now - timedelta(minutes=4)),
                                                                   "end": None}]}])
    assert internal("check", meeting["id"])["status"] == "IN_PROGRESS"
    started = step(["meeting.started"])
    internal("check", meeting["id"])
    step([])  # a repeated check changes nothing

    google.end_conference(record["name"])
    google.add_recording(record["name"], {"state": "FILE_GENERATED", "drive_file_id": "rec-1", "duration_seconds": 240,
                                          "start_time": iso(now - timedelta(minutes=4)), "end_time": iso(now)})
    google.add_transcript(record["name"], {"state": "FILE_GENERATED", "document_id": "doc-1",
                                           "start_time": iso(now - timedelta(minutes=4)), "end_time": iso(now)})
    assert internal("sync", meeting["id"])["status"] == "FINISHED"
    finished = step(["meeting.finished", "attendance.updated", "recording.ready", "transcript.ready"])
    assert finished[2]["data"]["recording"]["drive_file_id"] == "rec-1"
    assert finished[3]["data"]["transcript"]["document_id"] == "doc-1"
    assert {p["email"]: p["attended"] for p in finished[1]["data"]["meeting"]["participants"]}["doctor@clinica.com"]
    internal("sync", meeting["id"])
    step([])  # a repeated sync changes nothing

    other = client.api.post(body()).get_json()
    assert client.api.delete(other["id"]).status_code == 200
    cancelled = step(["meeting.created", "meeting.cancelled"])
    assert cancelled[1]["data"]["meeting"]["status"] == "CANCELLED"

    sequences = [e["data"]["sequence"] for e in created + edited + started + finished]
    assert sequences == list(range(1, len(sequences) + 1))
    assert [e["data"]["sequence"] for e in cancelled] == [1, 2]
    deliveries = client.deliveries(endpoint["id"])
    assert len(deliveries) == 9 and {d["status"] for d in deliveries} == {"delivered"}
    assert len({d["event_id"] for d in deliveries}) == 9
