"""Clients made from /v1/openapi.json by tools integrators use, run against the stack as they come out."""
from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest
import requests

from tests.e2e.tools import CLIENT_VENV, client_generator, mint_key, node_tool

# create -> get -> list -> reschedule -> cancel, written as an integrator would with the generated package.
CLIENT_FLOW = textwrap.dedent('''
    import datetime, sys
    from meet_middleware_api_client import AuthenticatedClient
    from meet_middleware_api_client.api.meetings import (cancel_meeting, create_meeting, get_meeting,
                                                         list_meetings, update_meeting)
    from meet_middleware_api_client.models import MeetingCreate, MeetingOut, MeetingPage, MeetingUpdate

    base_url, key = sys.argv[1], sys.argv[2]
    client = AuthenticatedClient(base_url=base_url, token=key, raise_on_unexpected_status=True)
    start = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(days=7)
    made = create_meeting.sync_detailed(client=client, body=MeetingCreate(
        organizer_email="doctor@clinica.com", invited_emails=["paciente@correo.com"], scheduled_start=start,
        scheduled_end=start + datetime.timedelta(minutes=30), external_reference="client-flow-1"))
    assert made.status_code == 201 and isinstance(made.parsed, MeetingOut), made
    assert made.headers["Location"] == f"/v1/meetings/{made.parsed.id}"
    meeting = made.parsed
    assert isinstance(meeting.scheduled_start, datetime.datetime) and meeting.scheduled_start == start
    assert isinstance(meeting.created_at, datetime.datetime) and meeting.status.value == "CREATED"

    read = get_meeting.sync(meeting.id, client=client)
    assert isinstance(read, MeetingOut) and read.meet_link == meeting.meet_link

    page = list_meetings.sync(client=client, external_reference="client-flow-1")
    assert isinstance(page, MeetingPage) and [m.id for m in page.items] == [meeting.id]

    later = start + datetime.timedelta(days=1)
    moved = update_meeting.sync(meeting.id, client=client, body=MeetingUpdate(scheduled_start=later))
    assert isinstance(moved, MeetingOut)
    assert moved.scheduled_start == later and moved.scheduled_end == later + datetime.timedelta(minutes=30)
    assert moved.meet_link == meeting.meet_link

    cancelled = cancel_meeting.sync(meeting.id, client=client)
    assert isinstance(cancelled, MeetingOut) and cancelled.status.value == "CANCELLED"
    assert isinstance(cancelled.cancelled_at, datetime.datetime)
    print("client flow ok")
''')


def test_a_client_generated_with_openapi_python_client_works_as_generated(stack, tmp_path):
    generator = client_generator()
    spec = tmp_path / "openapi.json"
    spec.write_text(requests.get(f"{stack.base}/v1/openapi.json", timeout=10).text)
    env = dict(os.environ, PATH=f"{CLIENT_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}")
    package = tmp_path / "meet_middleware_api_client"
    out = subprocess.run([str(generator), "generate", "--path", str(spec), "--meta", "none",
                          "--output-path", str(package)], capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    # Nothing but the one progress line: no "Warning(s) encountered", no skipped endpoint or model.
    assert (out.stdout + out.stderr).strip().splitlines() == [f"Generating {package}"], out.stdout + out.stderr
    # Datetimes are datetimes, not strings.
    model = (package / "models" / "meeting_out.py").read_text()
    assert "scheduled_start: datetime.datetime" in model and "created_at: datetime.datetime" in model

    key = mint_key(stack)
    run = subprocess.run([str(CLIENT_VENV / "bin" / "python"), "-c", CLIENT_FLOW, stack.info["gateway"], key],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0 and "client flow ok" in run.stdout, run.stdout + run.stderr


# The order an integrator runs them in: a webhook endpoint first (so the meeting's events have somewhere to go),
# then create, the reads, the reschedule, the cancel, the endpoint's deliveries, and the endpoint's removal.
ORDER = ["createWebhookEndpoint", "listWebhookEndpoints", "getWebhookEndpoint", "rotateWebhookSecret",
         "createMeeting", "listMeetings", "getMeeting", "listParticipants", "listRecordings", "updateMeeting",
         "cancelMeeting", "listWebhookDeliveries", "retryWebhookDelivery", "deleteWebhookEndpoint",
         "getAvailability", "health", "openapi", "docs", "docsAsset"]
# Later requests work on what earlier ones made: Postman's usual chaining through collection variables.
CAPTURE = {"createMeeting": "pm.collectionVariables.set('meeting_id', pm.response.json().id);",
           "createWebhookEndpoint": "pm.collectionVariables.set('endpoint_id', pm.response.json().id);",
           "listWebhookDeliveries": "pm.collectionVariables.set('delivery_id', pm.response.json().items[0].id);"}


def test_the_document_as_a_postman_collection_runs_green_in_newman(stack, tmp_path):
    convert, newman = node_tool("openapi2postmanv2"), node_tool("newman")
    document = requests.get(f"{stack.base}/v1/openapi.json", timeout=10).json()
    expected = {op["operationId"]: int(next(iter(op["responses"]))) for item in document["paths"].values()
                for op in item.values()}
    assert sorted(expected) == sorted(ORDER)
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))
    collection_path = tmp_path / "collection.json"
    out = subprocess.run([str(convert), "-s", str(spec), "-o", str(collection_path), "-p",
                          "-O", "folderStrategy=Tags,parametersResolution=Example"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and collection_path.exists(), out.stdout + out.stderr
    collection = json.loads(collection_path.read_text())

    requests_by_operation = {}
    for folder in collection["item"]:
        for item in folder.get("item", [folder]):
            method = item["request"]["method"].lower()
            segments = item["request"]["url"]["path"]
            path = "/" + "/".join("{" + p[1:] + "}" if p.startswith(":") else p for p in segments)
            item["name"] = document["paths"][path][method]["operationId"]
            requests_by_operation[item["name"]] = item
    for item in requests_by_operation.values():
        for variable in item["request"]["url"].get("variable", []):
            if variable["key"] in ("meeting_id", "endpoint_id", "delivery_id"):
                variable["value"] = "{{" + variable["key"] + "}}"
    # The first page of deliveries: no page token (the document's example token is a meetings list's).
    deliveries = requests_by_operation["listWebhookDeliveries"]["request"]["url"]
    deliveries["query"] = [q for q in deliveries.get("query", []) if q["key"] != "page_token"]
    for name, script in CAPTURE.items():
        requests_by_operation[name].setdefault("event", []).append(
            {"listen": "test", "script": {"type": "text/javascript", "exec": [script]}})
    collection["item"] = [requests_by_operation[name] for name in ORDER]
    collection_path.write_text(json.dumps(collection))

    report = tmp_path / "report.json"
    run = subprocess.run([str(newman), "run", str(collection_path), "--env-var", f"bearerToken={mint_key(stack)}",
                          "--reporters", "cli,json", "--reporter-json-export", str(report), "--timeout-request",
                          "30000", "--color", "off"], capture_output=True, text=True, timeout=300)
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    executions = json.loads(report.read_text())["run"]["executions"]
    answered = {e["item"]["name"]: e.get("response", {}).get("code") for e in executions}
    assert answered == {name: expected[name] for name in ORDER}, run.stdout[-3000:]
    assert run.returncode == 0, run.stdout[-3000:]


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch):
    # The generated client and newman see no proxy settings of the machine: they talk to loopback only.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
