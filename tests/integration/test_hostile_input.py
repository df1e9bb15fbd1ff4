"""Hostile and odd input: stored verbatim or refused cleanly, never a 500; the database down is a 503."""
from __future__ import annotations

import json
import uuid

import pytest

from shared import bootstrap
from tests.conftest import new_principal
from tests.integration.helpers import Api, future_slot


@pytest.fixture
def api(function_env, db):
    return Api(new_principal(db)[1])


def body(**extra):
    start, end = future_slot()
    return {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start, "scheduled_end": end, "external_reference": uuid.uuid4().hex, **extra}


@pytest.mark.parametrize("text", [
    "Robert'); DROP TABLE meetings;--",
    "' OR '1'='1",
    "1; SELECT pg_sleep(5)",
    "Consulta de control — niño, corazón, 東京, 🩺💉",
    "\u202eRTL override",
    "tab\tnew\nline\r\\back\"quote",
    "x" * 200,
])
def test_texts_are_stored_and_sent_to_google_verbatim(api, google, text):
    created = api.post(body(title=text, description=text * 3, external_reference=text[:255]))
    assert created.status_code == 201, created.get_data(as_text=True)
    meeting = created.get_json()
    assert (meeting["title"], meeting["description"], meeting["external_reference"]) == (text, text * 3, text[:255])
    assert google.events()[0]["summary"] == text
    found = api.get(f"/v1/meetings?external_reference={json.dumps(text[:255])[1:-1]}")
    assert found.status_code == 200


def test_unicode_emails_are_accepted(api):
    response = api.post(body(invited_emails=["josé.pérez@correo.com", "用户@例子.广告"]))
    assert response.status_code == 201
    assert response.get_json()["invited_emails"] == ["josé.pérez@correo.com", "用户@例子.广告"]


@pytest.mark.parametrize("change", [
    {"title": 12}, {"invited_emails": "paciente@correo.com"}, {"invited_emails": [None]},
    {"invited_emails": [["nested@x.com"]]}, {"scheduled_start": 1732546800}, {"time_zone": "../../etc/passwd"},
    {"organizer_email": "a@b.c" + "\u0000"}, {"external_reference": ""},
    {"invited_emails": ["p@x.com"] * 5000},
])
def test_malformed_fields_are_422(api, change):
    response = api.post(body(**change))
    assert response.status_code in (413, 422), response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("raw", [b"[]", b"null", b"42", b'"x"', b"{" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000,
                                 b'{"description": "\\ud800"}'])
def test_json_that_is_not_an_object_is_refused(api, raw):
    response = api.create.post("/v1/meetings", data=raw, content_type="application/json", headers=api.auth)
    assert response.status_code in (400, 422) and response.mimetype == "application/problem+json"


def test_huge_query_strings_and_paths_are_refused_cleanly(api):
    assert api.get("/v1/meetings?external_reference=" + "x" * 5000).status_code == 422
    assert api.get("/v1/meetings/" + "9" * 5000).status_code == 404
    assert api.get("/v1/meetings?page_size=99999999999999999999").status_code == 422


def test_the_database_down_is_a_503_with_retry_after(function_env, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    bootstrap.reset()
    api = Api("mk_anything")
    for response in (api.post(body()), api.get("/v1/meetings"), api.delete(str(uuid.uuid4()))):
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert response.mimetype == "application/problem+json"
