"""What a function's own server (gunicorn, under functions-framework, as Cloud Functions runs it) refuses, and bodies
that never arrive: problem+json and bounded time, with nothing written and nothing sent to Google."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from dev.ports import free_port, wait_for_port
from tests.conftest import FAST_GOOGLE, LOCAL_WORKSPACE, new_principal
from tests.raw_http import request, send

ROOT = Path(__file__).resolve().parents[2]
READ_SECONDS = 1.5


@pytest.fixture(scope="module")
def served(pg_url, fake_google, tmp_path_factory):
    """create_meeting and get_meeting under functions-framework's own server, on ports of their own."""
    env = dict(os.environ, DATABASE_URL=pg_url, GOOGLE_API_ROOT=fake_google.url, **LOCAL_WORKSPACE, **FAST_GOOGLE,
               BODY_READ_TIMEOUT_SECONDS=str(READ_SECONDS), PYTHONUNBUFFERED="1")
    ff = str(Path(sys.executable).with_name("functions-framework"))
    ports, processes = {}, []
    for name in ("create_meeting", "get_meeting"):
        ports[name] = free_port()
        log = (tmp_path_factory.mktemp("ff") / f"{name}.log").open("wb")
        processes.append(subprocess.Popen(
            [ff, "--target", name, "--source", str(ROOT / "functions" / name / "main.py"), "--host", "127.0.0.1",
             "--port", str(ports[name])], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True))
    try:
        for name, process in zip(ports, processes):
            wait_for_port(ports[name], process, 60, name)
        yield ports
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=15)


@pytest.fixture
def client(db, google):
    principal, key = new_principal(db)
    return _Client({"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, principal.client_id)


class _Client(dict):
    """A client's headers, and which client it is."""

    def __init__(self, headers: dict, client_id: str):
        super().__init__(headers)
        self.client_id = client_id


def seed() -> dict:
    return {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "external_reference": uuid.uuid4().hex}


def nothing_happened(db, google, client) -> None:
    """No meeting for the client, no Calendar work in Google."""
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM meetings WHERE client_id = :c", {"c": client.client_id})
        assert cur.fetchone()[0] == 0
    assert google.call_count("calendar.events.insert") == 0


@pytest.mark.parametrize("what, headers, status", [
    ("a 9 KiB header", {"X-Padding": "a" * 9 * 1024}, 431),
    ("a NUL in Authorization", {"Authorization": "Bearer mk_secret\x00tail"}, 400),
    ("a carriage return in a header value", {"X-Note": "a\rb"}, 400),
    ("101 headers", {f"X-H{i}": "v" for i in range(101)}, 431),
])
def test_what_the_server_refuses_before_the_app_is_problem_json(served, db, google, client, what, headers, status):
    body = json.dumps(seed()).encode()
    answer = send(served["create_meeting"], request("POST", "/v1/meetings", {**client, **headers}, body))
    assert answer.status == status, what
    problem = answer.problem
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert b"mk_secret" not in answer.body and b"<html" not in answer.body.lower()  # echoes nothing it was sent
    nothing_happened(db, google, client)


def test_a_64_kib_uri_is_answered_as_any_other_request(served, client):
    answer = send(served["get_meeting"], request("GET", "/v1/meetings?external_reference=" + "a" * 70_000, client))
    assert answer.status == 422 and answer.problem["errors"][0]["field"] == "external_reference"


def test_a_body_declared_longer_than_sent_is_a_408_within_the_bound(served, db, google, client):
    body = json.dumps(seed()).encode()
    answer = send(served["create_meeting"], request("POST", "/v1/meetings", client, body, declared=len(body) + 500))
    assert answer.status == 408 and answer.problem["status"] == 408
    assert READ_SECONDS - 0.2 < answer.seconds < READ_SECONDS + 3
    nothing_happened(db, google, client)


def test_a_body_no_answer_needs_holds_the_connection_no_longer(served, client):
    # Refused before the body is read (no key): functions-framework would still wait for every declared byte.
    headers = {"Content-Type": "application/json"}
    answer = send(served["create_meeting"], request("POST", "/v1/meetings", headers, b"{}", declared=5000))
    assert answer.status == 401 and answer.seconds < READ_SECONDS + 3
    wrong_method = send(served["get_meeting"], request("POST", "/v1/meetings/x", headers, b"{", declared=9000))
    assert wrong_method.status == 405 and wrong_method.seconds < READ_SECONDS + 3


def test_a_body_cut_short_by_the_client_is_a_400(served, db, google, client):
    body = json.dumps(seed()).encode()
    answer = send(served["create_meeting"], request("POST", "/v1/meetings", client, body, declared=len(body) + 10),
                  then_close_writing=True)
    assert answer.status == 400 and answer.seconds < READ_SECONDS
    nothing_happened(db, google, client)


def test_an_ordinary_request_is_untouched(served, client):
    answer = send(served["create_meeting"], request("POST", "/v1/meetings", client, json.dumps(seed()).encode()))
    assert answer.status == 201, answer.body
