"""The identities of Google's own services as the local stack has them: ID tokens the fake Google issues and publishes
certificates for, verified by the functions with the code the cloud runs.

Internal functions take only the invoker's token (or an admin key), task dedupe trusts no header, and public
functions read X-Forwarded-Authorization only beside API Gateway's token."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import grpc
import pytest
from google.api_core.exceptions import PermissionDenied
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from dev.fake_google.identity import generate_private_key_pem
from dev.id_tokens import IdTokenSource
from shared import bootstrap
from shared.services import auth
from tests.conftest import new_principal
from tests.integration.helpers import Api, app_client, future_slot

INVOKER = "meet-invoker@local-dev.iam.gserviceaccount.com"
GATEWAY = "meet-gateway@local-dev.iam.gserviceaccount.com"
STRANGER = "someone@local-dev.iam.gserviceaccount.com"
CHECK_URL = "http://127.0.0.1:1/internal/check-status"
SYNC_URL = "http://127.0.0.1:1/internal/sync-recordings"
READ_URL = "http://127.0.0.1:2"  # the address the gateway calls get_meeting at (its tokens' audience)


@pytest.fixture(scope="module")
def accounts(fake_google, tmp_path_factory):
    """Service accounts with keys the fake trusts (as uploaded keys), each an ID-token source."""
    control = fake_google.control()
    sources = {}
    for email in (INVOKER, GATEWAY, STRANGER):
        pem = generate_private_key_pem()
        key = tmp_path_factory.mktemp("keys") / "key.pem"
        key.write_text(pem)
        control.register_service_account(email, pem)
        sources[email] = IdTokenSource(email, key, fake_google.token_uri)
    control.close()
    return sources


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def identities(function_env, monkeypatch, accounts):
    """Functions configured as make run configures them: the invoker and gateway accounts, certificates from the
    Google root (OIDC_CERTS_URL is not set: GOOGLE_API_ROOT implies it)."""
    monkeypatch.setenv("TASKS_INVOKER_SA", INVOKER)
    monkeypatch.setenv("GATEWAY_SA", GATEWAY)
    monkeypatch.setenv("CHECK_STATUS_URL", CHECK_URL)
    monkeypatch.setenv("SYNC_RECORDINGS_URL", SYNC_URL)
    monkeypatch.setenv("OIDC_AUDIENCES", json.dumps([READ_URL]))
    bootstrap.reset()
    return SimpleNamespace(invoker=accounts[INVOKER], gateway=accounts[GATEWAY], stranger=accounts[STRANGER])


def api_calls(google) -> dict[str, int]:
    """Calls of Google's APIs so far (the token and certificate endpoints are identity, not work)."""
    return {op: n for op, n in google.stats()["calls"].items() if not op.startswith("oauth2.")}


def meeting_body():
    start, end = future_slot()
    return {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start, "scheduled_end": end}


# --- the fake's ID tokens are Google's, as google-auth verifies them -----------------------------------------------

def test_the_fake_issues_id_tokens_that_google_auth_verifies(fake_google, accounts):
    from google.auth.transport.requests import Request
    from google.oauth2 import id_token

    token = accounts[INVOKER].token(CHECK_URL)
    claims = id_token.verify_token(token, Request(), audience=CHECK_URL, certs_url=fake_google.certs_url)
    assert claims["iss"] == "https://accounts.google.com" and claims["email"] == INVOKER
    assert claims["email_verified"] is True and claims["aud"] == CHECK_URL and claims["exp"] > claims["iat"]
    assert accounts[INVOKER].token(CHECK_URL) == token  # reused until it nears expiry


def test_a_key_the_fake_does_not_trust_gets_no_id_token(fake_google, tmp_path):
    from google.auth.exceptions import RefreshError

    key = tmp_path / "k.pem"
    key.write_text(generate_private_key_pem())
    with pytest.raises(RefreshError):
        IdTokenSource(INVOKER, key, fake_google.token_uri).token(CHECK_URL)


# --- internal functions: the invoker's verified token, or an admin key, and nothing else ---------------------------

def test_internal_functions_take_the_invokers_token_and_refuse_others(identities, db):
    check = app_client("check_status")
    assert check.post("/", json={}, headers=bearer(identities.invoker.token(CHECK_URL))).status_code == 200
    sync = app_client("sync_recordings")
    assert sync.post("/", json={}, headers=bearer(identities.invoker.token(SYNC_URL))).status_code == 200
    refused = {
        "another account": (bearer(identities.stranger.token(CHECK_URL)), 403),
        "the gateway": (bearer(identities.gateway.token(CHECK_URL)), 403),
        "another audience": (bearer(identities.invoker.token("http://elsewhere.example/fn")), 401),
        "a service key": (bearer(new_principal(db)[1]), 403),
        "a task name alone": ({"X-CloudTasks-TaskName": "check_status-x-v1-end"}, 401),
        "nothing": ({}, 401),
    }
    for what, (headers, status) in refused.items():
        response = check.post("/", json={}, headers=headers)
        assert (response.status_code, response.mimetype) == (status, "application/problem+json"), what


def test_a_keyless_call_learns_nothing_about_which_meetings_exist(identities, db):
    meeting = Api(new_principal(db)[1]).post(meeting_body()).get_json()
    check = app_client("check_status")
    headers = {"X-CloudTasks-TaskName": f"check_status-{meeting['id']}-v1-end"}
    known = check.post("/", json={"meeting_id": meeting["id"]}, headers=headers)
    unknown = check.post("/", json={"meeting_id": str(uuid.uuid4())}, headers=headers)
    assert known.status_code == unknown.status_code == 401
    assert known.get_json()["detail"] == unknown.get_json()["detail"]


def test_unreachable_certificates_are_a_503_not_a_refusal(identities, monkeypatch):
    from dev.ports import free_port

    token = identities.invoker.token(CHECK_URL)
    monkeypatch.setenv("OIDC_CERTS_URL", f"http://127.0.0.1:{free_port()}/oauth2/v1/certs")
    bootstrap.reset()
    auth._certs_cache.clear()
    response = app_client("check_status").post("/", json={}, headers=bearer(token))
    assert response.status_code == 503 and response.headers["Retry-After"]


# --- task dedupe: keyed on what the task does, after authentication ------------------------------------------------

@pytest.fixture
def ledger(identities, firestore_emulator, monkeypatch):
    monkeypatch.setenv("FIRESTORE_DATABASE", "(default)")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", firestore_emulator.project)
    bootstrap.reset()
    return identities


def _task(meeting_id: str, version: int = 1, purpose: str = "end") -> tuple[dict, str]:
    return ({"meeting_id": meeting_id, "schedule_version": version, "purpose": purpose, "attempt": 0},
            f"check_status-{meeting_id}-v{version}-{purpose}")


def test_a_task_name_on_another_meetings_body_is_refused_and_marks_nothing(ledger, db, google):
    api = Api(new_principal(db)[1])
    real, other = (api.post(meeting_body()).get_json() for _ in range(2))
    check = app_client("check_status")
    invoker = bearer(ledger.invoker.token(CHECK_URL))
    real_body, real_name = _task(real["id"])
    calls = api_calls(google)
    for body in (_task(other["id"])[0], _task(real["id"], version=2)[0], _task(real["id"], purpose="final")[0],
                 {"meeting_id": real["id"]}):
        forged = check.post("/", json=body, headers={**invoker, "X-CloudTasks-TaskName": real_name})
        assert forged.status_code == 422 and forged.get_json()["errors"][0]["field"] == "X-CloudTasks-TaskName"
    assert api_calls(google) == calls  # nothing was sent to Google's APIs
    delivered = check.post("/", json=real_body, headers={**invoker, "X-CloudTasks-TaskName": real_name})
    assert delivered.status_code == 200 and delivered.get_json()["outcome"] == "ok"
    again = check.post("/", json=real_body, headers={**invoker, "X-CloudTasks-TaskName": real_name})
    assert again.get_json()["outcome"] == "duplicate"


def test_an_unauthenticated_delivery_cannot_pre_empt_the_real_task(ledger, db, google):
    meeting = Api(new_principal(db)[1]).post(meeting_body()).get_json()
    body, name = _task(meeting["id"])
    check = app_client("check_status")
    for headers in ({}, bearer("not-a-token"), bearer(ledger.stranger.token(CHECK_URL))):
        assert check.post("/", json=body, headers={**headers, "X-CloudTasks-TaskName": name}).status_code in (401, 403)
    delivered = check.post("/", json=body, headers={**bearer(ledger.invoker.token(CHECK_URL)),
                                                     "X-CloudTasks-TaskName": name})
    assert delivered.get_json()["outcome"] == "ok" and delivered.get_json()["status"] == "SCHEDULED"


# --- public functions: X-Forwarded-Authorization only on API Gateway's calls ---------------------------------------

def test_the_forwarded_key_counts_only_beside_the_gateways_token(identities, db):
    a_key, b_key = new_principal(db)[1], new_principal(db)[1]
    meeting = Api(a_key).post(meeting_body()).get_json()
    read = app_client("get_meeting")
    path = f"/v1/meetings/{meeting['id']}"
    as_a = {"X-Forwarded-Authorization": f"Bearer {a_key}"}
    gateway = bearer(identities.gateway.token(READ_URL))
    assert read.get(path, headers={**gateway, **as_a}).status_code == 200
    cases = {
        "junk beside it": ({**bearer("junk"), **as_a}, 401),
        "another account's token": ({**bearer(identities.stranger.token(READ_URL)), **as_a}, 401),
        "the gateway's token for another audience": ({**bearer(identities.gateway.token("http://x.example")), **as_a},
                                                     401),
        "the invoker's token": ({**bearer(identities.invoker.token(READ_URL)), **as_a}, 401),
        "B's own key beside it": ({**bearer(b_key), **as_a}, 404),  # runs as B, who cannot see A's meeting
        "the gateway's token alone": (gateway, 401),
    }
    for what, (headers, status) in cases.items():
        response = read.get(path, headers=headers)
        assert (response.status_code, response.mimetype) == (status, "application/problem+json"), what


def test_without_a_gateway_account_the_forwarded_header_is_ignored(function_env, db):
    a_key = new_principal(db)[1]
    meeting = Api(a_key).post(meeting_body()).get_json()
    read = app_client("get_meeting")
    forwarded = {"X-Forwarded-Authorization": f"Bearer {a_key}", "Authorization": "Bearer junk"}
    assert read.get(f"/v1/meetings/{meeting['id']}", headers=forwarded).status_code == 401


# --- Cloud Tasks' part: the emulator attaches the task's ID token ---------------------------------------------------

@pytest.fixture(scope="module")
def oidc_tasks(fake_google, accounts, tmp_path_factory):
    from dev.emulators import start_cloud_tasks
    from dev.ports import free_port

    key = tmp_path_factory.mktemp("invoker") / "invoker.pem"
    key.write_text(accounts[INVOKER]._key_file.read_text())
    emulator = start_cloud_tasks(free_port(), project="meet-oidc", location="us-central1", queue="q", max_retries=0,
                                 log_dir=tmp_path_factory.mktemp("tasks-oidc"),
                                 oidc={"token_uri": fake_google.token_uri, "keys": {INVOKER: str(key)}})
    channel = grpc.insecure_channel(emulator.host_port)
    yield tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel)), \
        "projects/meet-oidc/locations/us-central1/queues/q"
    channel.close()
    emulator.stop()


def _http_task(queue: str, url: str, account: str, audience: str = "") -> tasks_v2.Task:
    return tasks_v2.Task(
        name=f"{queue}/tasks/t-{uuid.uuid4().hex}", schedule_time=datetime.now(timezone.utc) - timedelta(seconds=1),
        http_request=tasks_v2.HttpRequest(url=url, http_method=tasks_v2.HttpMethod.POST, body=b"{}",
                                          oidc_token=tasks_v2.OidcToken(service_account_email=account,
                                                                        audience=audience)))


def test_the_emulator_attaches_an_id_token_of_the_tasks_account(oidc_tasks, receiver, fake_google):
    client, queue = oidc_tasks
    url = f"{receiver.url}/internal/check-status"
    client.create_task(parent=queue, task=_http_task(queue, url, INVOKER))
    _, headers, _ = receiver.next(timeout=15)
    settings = SimpleNamespace(check_status_url=url, sync_recordings_url=None, oidc_audiences=[],
                               oidc_certs_url=fake_google.certs_url)
    claims = auth.verify_oidc_token(headers["Authorization"].removeprefix("Bearer "), settings)
    assert claims["email"] == INVOKER and claims["aud"] == url  # no audience given: the task's URL


def test_the_emulator_refuses_a_task_for_an_account_it_cannot_act_as(oidc_tasks, receiver):
    client, queue = oidc_tasks
    with pytest.raises(PermissionDenied):
        client.create_task(parent=queue, task=_http_task(queue, receiver.url, STRANGER))
    receiver.assert_quiet(0.5)


def test_the_scheduler_loop_posts_sweeps_with_the_invokers_token(accounts, receiver, fake_google):
    import threading

    from dev.stack import scheduler_loop

    stopping = threading.Event()
    urls = [f"{receiver.url}/internal/check-status", f"{receiver.url}/internal/sync-recordings"]
    threading.Thread(target=scheduler_loop, args=(urls, accounts[INVOKER], 0.05, stopping), daemon=True).start()
    try:
        got = {path: headers["Authorization"] for path, headers, _ in (receiver.next() for _ in range(2))}
    finally:
        stopping.set()
    for url in urls:
        settings = SimpleNamespace(check_status_url=url, sync_recordings_url=None, oidc_audiences=[],
                                   oidc_certs_url=fake_google.certs_url)
        path = url.removeprefix(receiver.url)
        assert auth.verify_oidc_token(got[path].removeprefix("Bearer "), settings)["email"] == INVOKER
