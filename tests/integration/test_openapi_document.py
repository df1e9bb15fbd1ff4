"""The OpenAPI document holds what the contract lists, and its examples and nullability match what the API does."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema_rs
import pytest

from tests.conftest import new_principal
from tests.integration.helpers import ROOT, Api, app_client

SEED = {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
        "scheduled_start": "2025-11-25T15:00:00Z", "scheduled_end": "2025-11-25T15:30:00Z",
        "external_reference": "xoma_appointment_1234"}
TAGS = {"meetings", "webhooks", "availability", "health"}


@pytest.fixture
def document(function_env) -> dict:
    return app_client("get_meeting").get("/v1/openapi.json").get_json()


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, op in item.items():
            yield path, method, op


def validator(document: dict, schema: dict):
    return jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]},
                                              validate_formats=True)


def resolve(document: dict, response: dict) -> dict:
    if "$ref" in response:
        return document["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    return response


def test_every_body_parameter_and_response_has_a_valid_example(document):
    checked = 0
    for path, method, op in operations(document):
        for param in op.get("parameters", []):
            assert "example" in param, (path, method, param["name"])
            assert validator(document, param["schema"]).is_valid(param["example"]), (path, param)
            checked += 1
        if "requestBody" in op:
            media = op["requestBody"]["content"]["application/json"]
            assert media.get("examples"), (path, method)
            for name, example in media["examples"].items():
                assert validator(document, media["schema"]).is_valid(example["value"]), (path, method, name)
                checked += 1
        for status, response in op["responses"].items():
            for media_type, media in resolve(document, response).get("content", {}).items():  # 204: none
                assert "example" in media, (path, method, status, media_type)
                if media_type.endswith("json"):
                    errors = [e.message for e in validator(document, media["schema"]).iter_errors(media["example"])]
                    assert errors == [], (path, method, status, errors)
                checked += 1
    assert checked > 60


def test_the_create_example_is_the_seed_body_and_every_example_body_is_accepted(document, api):
    create = document["paths"]["/v1/meetings"]["post"]["requestBody"]["content"]["application/json"]
    assert {"seed": SEED}.items() <= {k: v["value"] for k, v in create["examples"].items()}.items()
    assert document["components"]["schemas"]["MeetingCreate"]["examples"] == [SEED]
    made = {}
    for name, example in create["examples"].items():
        answer = api.post(example["value"])
        assert answer.status_code == 201, (name, answer.get_json())
        made[name] = answer.get_json()
    update = document["paths"]["/v1/meetings/{meeting_id}"]["patch"]["requestBody"]["content"]["application/json"]
    for name, example in update["examples"].items():
        answer = api.patch(made["upcoming"]["id"], example["value"])
        assert answer.status_code == 200, (name, answer.get_json())


def test_formats_on_datetimes_emails_ids_and_links(document):
    schemas = document["components"]["schemas"]
    meeting = schemas["MeetingOut"]["properties"]

    def formats(prop):
        return {b.get("format") for b in prop.get("anyOf", [prop])} - {None}

    for name in ("scheduled_start", "scheduled_end", "created_at", "updated_at", "cancelled_at"):
        assert formats(meeting[name]) == {"date-time"}, name
    for name in ("joined_at", "left_at"):
        assert formats(schemas["ParticipantOut"]["properties"][name]) == {"date-time"}, name
    assert formats(schemas["RecordingOut"]["properties"]["available_at"]) == {"date-time"}
    assert formats(meeting["organizer_email"]) == {"idn-email"}
    assert meeting["invited_emails"]["items"]["format"] == "idn-email"
    assert formats(meeting["id"]) == {"uuid"} and formats(meeting["meet_link"]) == {"uri"}
    create = schemas["MeetingCreate"]["properties"]
    assert "date-time" in formats(create["scheduled_start"]) and formats(create["organizer_email"]) == {"idn-email"}
    for path, _, op in operations(document):
        for param in op.get("parameters", []):
            if param["name"] == "meeting_id":
                assert param["schema"]["format"] == "uuid", path


def test_the_contract_headers_are_documented(document):
    for path, method, op in operations(document):
        names = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
        if method in ("post", "patch", "delete"):
            assert "Idempotency-Key" in names, (path, method)
            success = op["responses"][next(iter(op["responses"]))]
            assert "Idempotent-Replayed" in success["headers"], (path, method)
    create = document["paths"]["/v1/meetings"]["post"]["responses"]
    assert create["201"]["headers"]["Location"]["required"] and create["200"]["headers"]["Location"]["required"]
    responses = document["components"]["responses"]
    assert responses["Problem401"]["headers"]["WWW-Authenticate"]["required"]
    assert responses["Problem503"]["headers"]["Retry-After"]["required"]


def test_operations_are_tagged_by_resource(document):
    assert {t["name"] for t in document["tags"]} <= TAGS
    for path, method, op in operations(document):
        assert len(op["tags"]) == 1 and op["tags"][0] in TAGS, (path, method)
        assert (op["tags"][0] == "meetings") == path.startswith("/v1/meetings"), (path, method)


def test_servers_is_the_origin_the_caller_used(function_env):
    client = app_client("get_meeting")
    assert client.get("/v1/openapi.json").get_json()["servers"][0]["url"] == "http://localhost"
    behind = client.get("/v1/openapi.json", headers={"X-Forwarded-Host": "api.clinica.com",
                                                     "X-Forwarded-Proto": "https"}).get_json()
    assert behind["servers"][0]["url"] == "https://api.clinica.com"
    hostile = client.get("/v1/openapi.json", headers={"X-Forwarded-Host": "evil.com/x?<script>"}).get_json()
    assert hostile["servers"][0]["url"] == "http://localhost"


@pytest.mark.parametrize("field,value", [("scheduled_start", None), ("scheduled_end", None), ("title", None),
                                         ("description", None), ("invited_emails", None)])
def test_patch_nullability_in_the_schema_matches_the_api(document, api, field, value):
    prop = document["components"]["schemas"]["MeetingUpdate"]["properties"][field]
    documented = validator(document, prop).is_valid(value)
    meeting = api.post(dict(SEED, scheduled_start="2030-01-07T15:00:00Z", scheduled_end="2030-01-07T15:30:00Z",
                            external_reference=None)).get_json()
    answer = api.patch(meeting["id"], {field: value})
    assert answer.status_code == (200 if documented else 422), (field, answer.get_json())


def test_the_docs_assets_are_served_without_loading_them_at_cold_start(function_env):
    client = app_client("get_meeting")
    page = client.get("/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    for src in ("/v1/docs/swagger-ui.css", "/v1/docs/swagger-ui-bundle.js", "/v1/docs/docs.js"):
        assert src.encode() in page.data
        asset = client.get(src)
        assert asset.status_code == 200 and len(asset.data) > 500, src
    assert b"SwaggerUIBundle" in client.get("/v1/docs/swagger-ui-bundle.js").data
    assert client.get("/v1/docs/../openapi.json").status_code == 404
    assert client.get("/v1/docs/nothing.js").status_code == 404
    # The asset package is located on the docs routes, never imported, and not touched by a cold start.
    probe = ("import json, runpy, sys; runpy.run_path(sys.argv[1], run_name='main'); "
             "print(json.dumps(sorted(m for m in sys.modules if 'swagger' in m or 'flask_openapi' in m)))")
    env = dict(os.environ, DATABASE_URL="postgresql://nobody@192.0.2.1:5432/none",
               GOOGLE_API_ROOT="http://192.0.2.1:9/", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", probe, str(ROOT / "functions/get_meeting/main.py")], env=env,
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0 and json.loads(out.stdout.strip().splitlines()[-1]) == [], out.stderr
    assert not any("flask_openapi" in m for m in sys.modules)


@pytest.fixture
def api(function_env, db) -> Api:
    return Api(new_principal(db)[1])
