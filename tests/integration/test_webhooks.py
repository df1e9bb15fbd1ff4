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
# One key for the session, as one deployment has: a sweep may meet another test's deliveries in the shared database.
KEY = new_key()


@pytest.fixture
def hooks_env(function_env, monkeypatch, google):
    """Webhooks on: an encryption key, local receivers allowed, retries a fraction of a second apart; Google reset."""
    monkeypatch.setenv("WEBHOOK_SECRETS_KEY", KEY)
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
    models = {t.value: model for t, model in EVENT_MODELS.items()}
    models[event["type"]].model_validate_json(raw)  # the shape the OpenAPI document's `webhooks` describe
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

    doctor = {"kind": "signedin", "user_id": "111", "email": "doctor@clinica.com", "display_name": "Dra. Ruiz",
              "sessions": [{"start": iso(now - timedelta(minutes=4)), "end": None}]}
    record = google.create_conference(meeting_code=meeting["meeting_code"], start_time=iso(now - timedelta(minutes=4)),
                                      participants=[doctor])
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


# --- retries, 410, rotation, filters ---------------------------------------------------------------------------------

def _due_now(db, endpoint_id: str) -> None:
    """Let the retry schedule's wait pass (here it is a fraction of a second; the sweep only sends what is due)."""
    import time

    time.sleep(0.3)


def test_retries_after_a_500_keep_the_webhook_id_then_fail_after_the_schedule(client, receivers, sweep, db):
    receiver = receivers(500)
    endpoint = client.endpoint(receiver.url)
    client.api.post(body())
    for _ in range(8):  # the first attempt and the schedule's seven retries
        sweep()
        _due_now(db, endpoint["id"])
    got = drain(receiver, endpoint["secret"])
    assert len(got) == 8
    assert len({headers["webhook-id"] for _, headers in got}) == 1
    assert {event["type"] for event, _ in got} == {"meeting.created"}
    sweep()
    receiver.assert_quiet(0.3)  # failed: nothing more is sent
    [delivery] = client.deliveries(endpoint["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 8, 500)
    assert delivery["next_attempt_at"] is None and delivery["event_id"] == got[0][1]["webhook-id"]


def test_a_retry_after_a_500_delivers_with_the_same_webhook_id(client, receivers, sweep, db):
    receiver = receivers(script=[500])
    endpoint = client.endpoint(receiver.url)
    client.api.post(body())
    sweep()
    [pending] = client.deliveries(endpoint["id"])
    assert (pending["status"], pending["attempts"], pending["last_status_code"]) == ("pending", 1, 500)
    assert pending["next_attempt_at"] is not None
    _due_now(db, endpoint["id"])
    sweep()
    first, second = drain(receiver, endpoint["secret"])
    assert first[1]["webhook-id"] == second[1]["webhook-id"] and first[0] == second[0]
    [delivered] = client.deliveries(endpoint["id"])
    assert (delivered["status"], delivered["attempts"], delivered["last_status_code"]) == ("delivered", 2, 204)


def test_a_410_disables_the_endpoint(client, receivers, sweep):
    receiver = receivers(410)
    endpoint = client.endpoint(receiver.url)
    meeting = client.api.post(body()).get_json()
    sweep()
    assert len(drain(receiver, endpoint["secret"])) == 1
    read = client.call("GET", f"/v1/webhook-endpoints/{endpoint['id']}").get_json()
    assert read["disabled_at"] is not None and "secret" not in read
    [delivery] = client.deliveries(endpoint["id"])
    assert (delivery["status"], delivery["last_status_code"]) == ("failed", 410)
    client.api.delete(meeting["id"])
    sweep()
    receiver.assert_quiet(0.3)
    assert len(client.deliveries(endpoint["id"])) == 1  # a disabled endpoint gets no new deliveries
    retried = client.call("POST", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{delivery['id']}/retry")
    assert retried.status_code == 409


def test_rotation_signs_with_both_secrets_for_24_hours(client, receivers, sweep, db):
    receiver = receivers()
    endpoint = client.endpoint(receiver.url)
    rotated = client.call("POST", f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.get_json()["secret"]
    assert new.startswith("whsec_") and new != endpoint["secret"]
    client.api.post(body())
    sweep()
    delivery = receiver.next()
    assert len(delivery[1]["webhook-signature"].split(" ")) == 2
    assert verified(endpoint["secret"], delivery) == verified(new, delivery)
    with db.transaction() as cur:  # a day later
        cur.execute("UPDATE webhook_secrets SET expires_at = now() - interval '1 second'"
                    " WHERE endpoint_id = :e AND expires_at IS NOT NULL", {"e": endpoint["id"]})
    client.api.post(body())
    sweep()
    later = receiver.next()
    assert len(later[1]["webhook-signature"].split(" ")) == 1
    verified(new, later)
    with pytest.raises(WebhookVerificationError):
        verified(endpoint["secret"], later)


def test_event_type_filters(client, receivers, sweep):
    everything, cancellations = receivers(), receivers()
    all_types = client.endpoint(everything.url)
    only = client.endpoint(cancellations.url, event_types=["meeting.cancelled", "meeting.cancelled"])
    assert only["event_types"] == ["meeting.cancelled"]
    meeting = client.api.post(body()).get_json()
    client.api.delete(meeting["id"])
    sweep()
    assert [e["type"] for e, _ in drain(everything, all_types["secret"])] == ["meeting.created", "meeting.cancelled"]
    assert [e["type"] for e, _ in drain(cancellations, only["secret"])] == ["meeting.cancelled"]
    unknown = client.register(everything.url, event_types=["meeting.deleted"])
    assert unknown.status_code == 422 and unknown.get_json()["errors"][0]["field"].startswith("event_types")
    assert client.register(everything.url, event_types=[]).status_code == 422


def test_tenancy(client, receivers, sweep, db):
    mine, theirs = receivers(), receivers()
    endpoint = client.endpoint(mine.url)
    other = Client(new_principal(db)[1])
    other_endpoint = other.endpoint(theirs.url)
    client.api.post(body())
    sweep()
    assert len(drain(mine, endpoint["secret"])) == 1
    theirs.assert_quiet(0.3)  # another client's endpoint hears nothing of my meetings
    delivery = client.deliveries(endpoint["id"])[0]
    base = f"/v1/webhook-endpoints/{endpoint['id']}"
    for method, path in (("GET", base), ("DELETE", base), ("POST", base + "/rotate-secret"),
                         ("GET", base + "/deliveries"), ("POST", f"{base}/deliveries/{delivery['id']}/retry"),
                         ("POST", f"/v1/webhook-endpoints/{other_endpoint['id']}/deliveries/{delivery['id']}/retry")):
        answer = other.call(method, path)
        assert answer.status_code == 404, (method, path)
        assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert [e["id"] for e in other.call("GET", "/v1/webhook-endpoints").get_json()["items"]] == [other_endpoint["id"]]
    assert client.call("GET", base).status_code == 200
    assert client.call("DELETE", base).status_code == 204
    assert client.call("GET", base).status_code == 404
    assert client.call("DELETE", base).status_code == 404


def test_a_manual_retry_sends_again_now_with_the_same_webhook_id(client, receivers, sweep):
    receiver = receivers()
    endpoint = client.endpoint(receiver.url)
    client.api.post(body())
    sweep()
    first = receiver.next()
    [delivery] = client.deliveries(endpoint["id"])
    retried = client.call("POST", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{delivery['id']}/retry")
    assert retried.status_code == 202, retried.get_data(as_text=True)
    again = receiver.next()  # Cloud Tasks is off here: the request sent it itself
    assert again[1]["webhook-id"] == first[1]["webhook-id"] and again[2] == first[2]
    assert retried.get_json()["attempts"] == 2 and retried.get_json()["status"] == "delivered"


def test_deliveries_are_listed_newest_first_in_pages(client, receivers, sweep):
    endpoint = client.endpoint(receivers().url)
    for _ in range(3):
        client.api.post(body())
    base = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"
    first = client.call("GET", base + "?page_size=2").get_json()
    assert len(first["items"]) == 2 and first["next_page_token"]
    rest = client.call("GET", f"{base}?page_size=2&page_token={first['next_page_token']}").get_json()
    assert len(rest["items"]) == 1 and rest["next_page_token"] is None
    items = first["items"] + rest["items"]
    assert [i["created_at"] for i in items] == sorted((i["created_at"] for i in items), reverse=True)
    assert {i["status"] for i in items} == {"pending"}
    assert client.call("GET", base + "?page_size=0").status_code == 422
    assert client.call("GET", base + "?page_token=nope").status_code == 422


# --- which URLs may receive events -------------------------------------------------------------------------------

REFUSED = ["http://example.com/hooks", "https://127.0.0.1/hooks", "https://localhost/hooks", "https://10.0.0.7/x",
           "https://192.168.1.10/x", "https://172.16.0.1/x", "https://169.254.169.254/computeMetadata/v1/",
           "https://metadata.google.internal/computeMetadata/v1/", "https://[::1]/x", "https://[fd00::1]/x",
           "https://[::ffff:127.0.0.1]/x", "https://100.64.0.1/x", "https://0.0.0.0/x", "https://intranet/x",
           "https://printer.local/x", "https://user:secret@example.com/x", "ftp://example.com/x", "https://example.com/#x",
           "https://nonexistent-host.invalid/x", "not a url"]


@pytest.mark.parametrize("url", REFUSED)
def test_urls_naming_or_resolving_to_private_addresses_are_refused(function_env, monkeypatch, db, url):
    monkeypatch.setenv("WEBHOOK_SECRETS_KEY", KEY)
    bootstrap.reset()
    answer = Client(new_principal(db)[1]).register(url)
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert answer.get_json()["errors"][0]["field"] == "url"


def test_local_receivers_are_accepted_only_when_the_setting_allows_them(client, receivers, monkeypatch, db):
    receiver = receivers()
    assert client.register(receiver.url + "/x").status_code == 201
    assert client.register(receiver.url.replace("127.0.0.1", "localhost")).status_code == 201
    for url in ("http://10.0.0.7/x", "https://192.168.1.10/x", "http://169.254.169.254/"):
        assert client.register(url).status_code == 422, url
    monkeypatch.delenv("WEBHOOK_ALLOW_LOOPBACK_HTTP")
    bootstrap.reset()
    assert client.register(receiver.url + "/x").status_code == 422


def test_redirects_are_not_followed(client, receivers, sweep):
    target = receivers()
    redirecting = receivers(script=[(307, {"Location": target.url + "/elsewhere"})])
    endpoint = client.endpoint(redirecting.url)
    client.api.post(body())
    sweep()
    assert len(drain(redirecting, endpoint["secret"])) == 1
    target.assert_quiet(0.3)
    [delivery] = client.deliveries(endpoint["id"])
    assert (delivery["status"], delivery["last_status_code"]) == ("pending", 307)  # retried later, like any non-2xx


# --- at least once, and once per attempt ---------------------------------------------------------------------------

def test_a_duplicated_task_delivers_once(client, receivers, admin):
    receiver = receivers()
    endpoint = client.endpoint(receiver.url)
    client.api.post(body())
    [delivery] = client.deliveries(endpoint["id"])
    function = app_client("deliver_webhooks")
    task = {"delivery_id": delivery["id"], "attempt": 1}
    same = {**admin, "X-CloudTasks-TaskName": f"deliver_webhooks-{delivery['id']}-a1"}
    answers = [function.post("/", json=task, headers=same).get_json() for _ in range(2)]
    # The sweep's task for the same attempt (another name) finds it made, too.
    racing = function.post("/", json=task, headers={
        **admin, "X-CloudTasks-TaskName": f"deliver_webhooks-{delivery['id']}-a1-s1700000000"}).get_json()
    assert [a["outcome"] for a in answers + [racing]] == ["ok", "duplicate", "duplicate"]
    # A name that is not this body's delivery and attempt marks nothing.
    for name in (f"deliver_webhooks-{uuid.uuid4()}-a1", f"deliver_webhooks-{delivery['id']}-a2", "other-name"):
        forged = function.post("/", json=task, headers={**admin, "X-CloudTasks-TaskName": name})
        assert forged.status_code == 422 and forged.get_json()["errors"][0]["field"] == "X-CloudTasks-TaskName"
    assert len(drain(receiver, endpoint["secret"])) == 1
    gone = function.post("/", json={"delivery_id": str(uuid.uuid4()), "attempt": 1}, headers=admin)
    assert gone.status_code == 200 and gone.get_json()["outcome"] == "skipped"


def test_a_failed_creation_makes_no_event(client, db, google):
    """PENDING and FAILED are the product's own states: a creation Google refused is nothing the client hears of."""
    google.configure(conference_mode="failure")
    endpoint = client.endpoint("http://127.0.0.1:9/never")
    failed = client.api.post(body())
    assert failed.status_code == 502
    assert client.deliveries(endpoint["id"]) == []
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM webhook_events e JOIN meetings m ON m.id = e.meeting_id"
                    " WHERE m.client_id = (SELECT client_id FROM webhook_endpoints WHERE id = :e)",
                    {"e": endpoint["id"]})
        assert cur.fetchone()[0] == 0


def test_signing_secrets_are_stored_encrypted(client, db):
    endpoint = client.endpoint("http://127.0.0.1:9/x")
    with db.transaction() as cur:
        cur.execute("SELECT ciphertext FROM webhook_secrets WHERE endpoint_id = :e", {"e": endpoint["id"]})
        [(ciphertext,)] = cur.fetchall()
        cur.execute("SELECT row_to_json(e)::text FROM webhook_endpoints e WHERE id = :e", {"e": endpoint["id"]})
        row = cur.fetchone()[0]
    secret = endpoint["secret"]
    raw = __import__("base64").b64decode(secret.removeprefix("whsec_"))
    assert secret.encode() not in bytes(ciphertext) and raw not in bytes(ciphertext) and "whsec_" not in row


def test_webhooks_are_off_without_an_encryption_key(function_env, db):
    answer = Client(new_principal(db)[1]).register("https://example.com/hooks")
    assert answer.status_code == 503 and "WEBHOOK_SECRETS_KEY" in answer.get_json()["detail"]


# --- through the Cloud Tasks emulator, as `make run` and the cloud deliver ----------------------------------------

@pytest.fixture
def cloud_tasks(hooks_env, tasks_emulator, admin, monkeypatch):
    """deliver_webhooks served over HTTP behind the local gateway, which the emulator delivers the tasks to."""
    import threading

    import functions_framework
    from werkzeug.serving import make_server

    from dev.gateway import Gateway
    from tests.integration.helpers import ROOT

    function = make_server("127.0.0.1", 0, functions_framework.create_app(
        "deliver_webhooks", str(ROOT / "functions/deliver_webhooks/main.py")), threaded=True)
    function_url = f"http://127.0.0.1:{function.server_port}"
    # The emulator attaches the invoker's ID token to each task, as Cloud Tasks does; the gateway adds nothing.
    gateway = make_server("127.0.0.1", 0, Gateway({"deliver_webhooks": function_url}), threaded=True)
    for server in (function, gateway):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("TASKS_INVOKER_SA", tasks_emulator.invoker)
    monkeypatch.setenv("WEBHOOK_TASKS_QUEUE", tasks_emulator.queue_path)
    monkeypatch.setenv("TASKS_EMULATOR_HOST", tasks_emulator.host_port)
    monkeypatch.setenv("DELIVER_WEBHOOKS_URL", f"http://127.0.0.1:{gateway.server_port}/internal/deliver-webhooks")
    bootstrap.reset()
    yield tasks_emulator
    for server in (gateway, function):
        server.shutdown()


def test_cloud_tasks_delivers_each_attempt_on_schedule_with_the_same_webhook_id(cloud_tasks, client, receivers):
    receiver = receivers(script=[500, 503])
    endpoint = client.endpoint(receiver.url)
    client.api.post(body())  # its commit hands the delivery to Cloud Tasks: no sweep runs in this test
    got = [receiver.next(timeout=15) for _ in range(3)]
    assert len({headers["webhook-id"] for _, headers, _ in got}) == 1
    assert [verified(endpoint["secret"], d)["type"] for d in got] == ["meeting.created"] * 3
    receiver.assert_quiet(0.5)
    [delivery] = client.deliveries(endpoint["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 3, 204)


def test_a_manual_retry_goes_through_cloud_tasks(cloud_tasks, client, receivers):
    receiver = receivers()
    endpoint = client.endpoint(receiver.url)
    client.api.post(body())
    first = receiver.next(timeout=15)
    delivery = client.deliveries(endpoint["id"])[0]
    for _ in range(10):  # the first attempt's outcome is recorded just after the receiver answered
        if delivery["status"] == "delivered":
            break
        __import__("time").sleep(0.1)
        delivery = client.deliveries(endpoint["id"])[0]
    retried = client.call("POST", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{delivery['id']}/retry")
    assert retried.status_code == 202 and retried.get_json()["status"] == "pending"
    again = receiver.next(timeout=15)
    assert again[1]["webhook-id"] == first[1]["webhook-id"]
    verified(endpoint["secret"], again)


def _black_hole():
    """A TCP port that accepts connections and never answers: a Cloud Tasks call to it hangs until its deadline."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []

    def hold():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=hold, daemon=True).start()
    return server, f"127.0.0.1:{server.getsockname()[1]}"


def test_a_crash_between_the_commit_and_the_enqueue_loses_nothing(cloud_tasks, client, receivers, db, pg_url,
                                                                   fake_google, admin, sweep):
    """create_meeting, alone under functions-framework, is killed (SIGKILL) while it hands the delivery to Cloud
    Tasks: the event committed with the meeting, its task never existed. The sweep delivers it."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time
    from pathlib import Path

    import requests

    from dev.ports import free_port
    from tests.conftest import FAST_GOOGLE
    from tests.integration.helpers import ROOT

    receiver = receivers()
    endpoint = client.endpoint(receiver.url)
    hole, hole_address = _black_hole()
    port = free_port()
    env = dict(os.environ, DATABASE_URL=pg_url, GOOGLE_API_ROOT=fake_google.url, TASKS_EMULATOR_HOST=hole_address,
               **FAST_GOOGLE)
    process = subprocess.Popen([str(Path(sys.executable).with_name("functions-framework")), "--target",
                                "create_meeting", "--source", str(ROOT / "functions/create_meeting/main.py"),
                                "--host", "127.0.0.1", "--port", str(port)], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                requests.get(f"{base}/v1/health", timeout=0.5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        answers = []
        threading.Thread(target=lambda: answers.append(_post_quietly(base, client.key, body())), daemon=True).start()
        for _ in range(200):
            if client.deliveries(endpoint["id"]):
                break
            time.sleep(0.05)
        [delivery] = client.deliveries(endpoint["id"])  # committed with the meeting
        assert process.poll() is None and not answers  # still inside the after-commit enqueue
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        hole.close()
    receiver.assert_quiet(0.5)
    assert delivery["status"] == "pending" and delivery["attempts"] == 0
    with db.transaction() as cur:  # the sweep runs every few minutes; it steps in once the task is overdue
        cur.execute("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '2 minutes' WHERE id = :d",
                    {"d": delivery["id"]})
    assert sweep()["counts"]["enqueued"] >= 1
    event = verified(endpoint["secret"], receiver.next(timeout=15))
    assert event["type"] == "meeting.created"
    receiver.assert_quiet(0.5)


def _post_quietly(base, key, payload):
    import requests

    try:
        return requests.post(f"{base}/v1/meetings", json=payload, headers={"Authorization": f"Bearer {key}"},
                             timeout=30).status_code
    except requests.RequestException:
        return None


# --- Idempotency-Key on the answers that show a secret ------------------------------------------------------------

def test_an_idempotent_replay_answers_the_same_endpoint_without_its_secret(hooks_env, firestore_emulator, monkeypatch,
                                                                           db, receivers):
    from google.cloud import firestore

    from shared.adapters.firestore import IDEMPOTENCY

    monkeypatch.setenv("FIRESTORE_DATABASE", "(default)")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", firestore_emulator.project)
    bootstrap.reset()
    client = Client(new_principal(db)[1])
    key = {"Idempotency-Key": uuid.uuid4().hex}
    url = receivers().url
    first = client.hooks.post("/v1/webhook-endpoints", json={"url": url}, headers={**client.auth, **key})
    replay = client.hooks.post("/v1/webhook-endpoints", json={"url": url}, headers={**client.auth, **key})
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["id"] == first.get_json()["id"] and replay.get_json()["secret"] is None
    assert first.get_json()["secret"].startswith("whsec_")
    assert len(client.call("GET", "/v1/webhook-endpoints").get_json()["items"]) == 1
    rotate = f"/v1/webhook-endpoints/{first.get_json()['id']}/rotate-secret"
    rotated = client.hooks.post(rotate, headers={**client.auth, **key, "Idempotency-Key": "rotation-1"})
    again = client.hooks.post(rotate, headers={**client.auth, **key, "Idempotency-Key": "rotation-1"})
    assert rotated.get_json()["secret"].startswith("whsec_") and again.get_json() == {"secret": None}
    store = firestore.Client(project=firestore_emulator.project)
    kept = json.dumps([doc.to_dict() for doc in store.collection(IDEMPOTENCY).stream()], default=str)
    assert "whsec_" not in kept and first.get_json()["id"] in kept


# --- the documentation's receiver code ------------------------------------------------------------------------------

def _verify_from(doc) -> object:
    """The `verify` function a document shows receivers, executed as written."""
    import re

    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    [code] = [b for b in blocks if "def verify(" in b]
    namespace: dict = {}
    exec(compile(code, str(doc), "exec"), namespace)
    return namespace["verify"]


@pytest.mark.parametrize("doc", ["README.md", "docs/webhooks.md"])
def test_the_documented_verification_accepts_real_deliveries_and_nothing_else(client, receivers, sweep, doc):
    import time

    from shared.domain.webhooks import new_secret
    from tests.integration.helpers import ROOT

    verify = _verify_from(ROOT / doc)
    receiver = receivers()
    endpoint = client.endpoint(receiver.url)
    client.api.post(body())
    sweep()
    _, headers, raw = receiver.next()
    headers = dict(headers.items())
    assert verify(endpoint["secret"], headers, raw)["type"] == "meeting.created"
    for secret, sent_headers, sent in (
            (endpoint["secret"], headers, raw.replace(b'"CREATED"', b'"FINISHED"')),
            (new_secret(), headers, raw),
            (endpoint["secret"], {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}, raw),
            (endpoint["secret"], {k: v for k, v in headers.items() if k.lower() != "webhook-signature"}, raw)):
        with pytest.raises(ValueError):
            verify(secret, sent_headers, sent)


def test_the_documents_list_the_retry_schedule():
    from shared.settings import Settings
    from tests.integration.helpers import ROOT

    assert Settings.model_fields["webhook_retry_schedule_seconds"].default_factory() == [
        5, 300, 1800, 7200, 18000, 36000, 36000]
    for doc in ("README.md", "docs/webhooks.md", "docs/operations.md"):
        text = " ".join((ROOT / doc).read_text(encoding="utf-8").split()).replace("*", "")
        assert "5 s, 5 min, 30 min, 2 h, 5 h, 10 h" in text and "10 h" in text, doc


def test_changes_made_in_google_are_events_too(client, receivers, sweep, internal, google):
    from tests.integration.helpers import calendar_as_user

    receiver = receivers()
    endpoint = client.endpoint(receiver.url)
    google.configure(conference_mode="pending", pending_polls=None)
    meeting = client.api.post(body()).get_json()
    assert meeting["meet_link"] is None
    google.resolve_conference("primary", meeting["google_event_id"])
    assert internal("check", meeting["id"])["status"] == "SCHEDULED"  # the pending link is filled in
    start = datetime.fromisoformat(meeting["scheduled_start"].replace("Z", "+00:00")) + timedelta(hours=3)
    calendar_as_user(google).patch(calendarId="primary", eventId=meeting["google_event_id"], body={
        "start": {"dateTime": iso(start)}, "end": {"dateTime": iso(start + timedelta(minutes=45))}}).execute()
    internal("check", meeting["id"])  # moved in Google Calendar
    calendar_as_user(google).delete(calendarId="primary", eventId=meeting["google_event_id"]).execute()
    assert internal("check", meeting["id"])["status"] == "CANCELLED"  # deleted in Google Calendar
    sweep()
    events = [event for event, _ in drain(receiver, endpoint["secret"])]
    assert [e["type"] for e in events] == ["meeting.created", "meeting.updated", "meeting.updated",
                                           "meeting.cancelled"]
    created, linked, moved, cancelled = (e["data"]["meeting"] for e in events)
    assert created["meet_link"] is None and linked["meet_link"] and linked["meet_link"].startswith("https://meet.")
    assert moved["scheduled_start"] == iso(start) and cancelled["cancelled_at"]


def test_a_client_has_a_bounded_number_of_endpoints(client, monkeypatch):
    from shared.services import webhooks

    monkeypatch.setattr(webhooks, "MAX_ENDPOINTS", 2)
    for _ in range(2):
        client.endpoint("http://127.0.0.1:9/x")
    refused = client.register("http://127.0.0.1:9/x")
    assert refused.status_code == 409 and refused.get_json()["status"] == 409


def test_a_malformed_encryption_key_fails_at_cold_start(function_env, monkeypatch):
    from pydantic import ValidationError

    from shared.settings import Settings

    for bad in ("not-base64!", "c2hvcnQ=", f"{KEY},nope"):
        monkeypatch.setenv("WEBHOOK_SECRETS_KEY", bad)
        with pytest.raises(ValidationError, match="WEBHOOK_SECRETS_KEY") as refused:
            Settings()
        assert bad not in str(refused.value)
