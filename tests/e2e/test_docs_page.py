"""/v1/docs in headless Chromium over the running stack: every operation rendered, try-it-out with a key, one host."""
from __future__ import annotations

import json

import pytest
import requests

from tests.e2e.tools import Browser, mint_key

OPERATION = "#operations-{tag}-{operation_id}"


@pytest.fixture(scope="module")
def browser():
    chrome = Browser()
    yield chrome
    chrome.close()


@pytest.fixture(scope="module")
def document(stack) -> dict:
    return requests.get(f"{stack.base}/v1/openapi.json", timeout=10).json()


def operations(document: dict) -> list[tuple[str, str, str]]:
    return [(op["tags"][0], op["operationId"], f"{method.upper()} {path}")
            for path, item in document["paths"].items() for method, op in item.items()]


def test_every_operation_is_rendered_with_its_schemas_and_examples(stack, browser, document):
    page = browser.open(f"{stack.base}/v1/docs#/meetings/createMeeting")
    page.wait_for("document.querySelectorAll('.opblock').length > 0")
    for tag, operation_id, label in operations(document):
        selector = OPERATION.format(tag=tag, operation_id=operation_id)
        shown = page.evaluate(f"(e => e && e.innerText)(document.querySelector({json.dumps(selector)}))")
        method, path = label.split(" ", 1)
        assert shown and method in shown and path in shown, (label, shown)
    # The deep link opened the create: its example body, its schema and its responses are on the page.
    create = page.wait_for("(e => e && e.innerText)(document.querySelector('#operations-meetings-createMeeting "
                           ".opblock-body'))")
    assert '"organizer_email": "doctor@clinica.com"' in create and "xoma_appointment_" in create
    for expected in ("Idempotency-Key", "Request body", "201", "Location", "Idempotent-Replayed", "422"):
        assert expected in create, expected
    assert "Example Value" in create and "Schema" in create
    # The request body's schema tab shows the model with its formats.
    page.evaluate("document.querySelector('#operations-meetings-createMeeting button.tablinks[data-name=model]')"
                  ".click()")
    schema = page.wait_for("(e => e && e.innerText.includes('MeetingCreate') && e.innerText)(document.querySelector("
                           "'#operations-meetings-createMeeting .opblock-body'))")
    assert "invited_emails" in schema and "idn-email" in schema, schema
    assert page.evaluate("document.querySelector('.servers select').value") == stack.base
    assert page.console_errors() == []


def test_try_it_out_calls_the_same_origin_with_the_bearer_key(stack, browser):
    key = mint_key(stack)
    page = browser.open(f"{stack.base}/v1/docs#/meetings/listMeetings")
    page.wait_for("!!document.querySelector('.btn.authorize')")
    page.evaluate("document.querySelector('.btn.authorize').click()")
    page.wait_for("!!document.querySelector('.auth-container input')")
    page.evaluate("document.querySelector('.auth-container input').focus()")
    page.type(key)
    page.evaluate("document.querySelector('.auth-btn-wrapper .authorize').click()")
    page.evaluate("document.querySelector('.btn-done, .auth-btn-wrapper .btn-done').click()")

    # Create from the example body, then read the list: both answered by this origin with the key.
    for operation_id, status in (("createMeeting", "201"), ("listMeetings", "200")):
        block = f"#operations-meetings-{operation_id}"
        if not page.evaluate(f"!!document.querySelector('{block} .try-out__btn')"):
            page.evaluate(f"document.querySelector('{block} .opblock-summary-control').click()")
        page.wait_for(f"!!document.querySelector('{block} .try-out__btn')")
        page.evaluate(f"document.querySelector('{block} .try-out__btn').click()")
        page.wait_for(f"!!document.querySelector('{block} .execute')")
        page.evaluate(f"document.querySelector('{block} .execute').click()")
        shown = page.wait_for(f"(e => e && e.innerText.trim())(document.querySelector("
                              f"'{block} .live-responses-table tr.response .response-col_status'))", timeout=30)
        assert shown.startswith(status), (operation_id, shown)
        curl = page.evaluate(f"document.querySelector('{block} .curl-command').innerText")
        assert f"Authorization: Bearer {key}" in curl and curl.count(stack.base) == 1, curl

    made = requests.get(f"{stack.base}/v1/meetings", headers={"Authorization": f"Bearer {key}"}, timeout=10).json()
    assert [m["external_reference"] for m in made["items"]] == ["xoma_appointment_1235"]
    foreign = [u for u in page.requested_urls() if not u.startswith((stack.base + "/", "data:", "about:"))]
    assert foreign == []
    assert page.console_errors() == []


def test_the_page_and_its_assets_come_from_the_packaged_swagger_ui(stack):
    page = requests.get(f"{stack.base}/v1/docs", timeout=10)
    assert page.status_code == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]
    for asset, kind in (("swagger-ui.css", "text/css"), ("swagger-ui-bundle.js", "text/javascript"),
                        ("docs.js", "text/javascript")):
        answer = requests.get(f"{stack.base}/v1/docs/{asset}", timeout=10)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith(kind), asset
        assert "max-age" in answer.headers["Cache-Control"]
    missing = requests.get(f"{stack.base}/v1/docs/swagger-ui-bundle.js.map", timeout=10)
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("application/problem+json")


def test_answers_through_the_gateway_carry_one_server_and_one_date(stack):
    for path in ("/v1/health", "/v1/docs", "/v1/meetings", "/v1/nowhere"):
        response = requests.get(stack.base + path, timeout=10)
        names = [name.lower() for name in response.raw.headers.keys()]
        assert names.count("server") == 1 and names.count("date") == 1, (path, response.raw.headers.items())
