"""Hostile input: schemathesis drives the running stack from /v1/openapi.json with valid and invalid requests.

Every answer must be one the document declares: no 5xx, and only the operation's status codes, content types,
headers and body schemas. Failures are product bugs: fix the product, not this file.
"""
from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events

# Enough examples per operation to reach the edges of every field, few enough to keep the file near a minute.
MAX_EXAMPLES = 100
# Sequences of calls over meetings the API itself created (create, then read, reschedule, cancel them).
SCENARIOS = 100
SCENARIO_STEPS = 8
# A suite ends early when a replay meets a database that moved on; further suites (next seeds) make up the count.
MAX_SUITES = 4
SEED = 20251125

# An id is text the gateway and each function parse again: characters that end or restructure a path when decoded
# too early are drawn far more often than random text alone would draw them.
URL_BREAKERS = ["?", "#", "%", "%3F", "%2F", "/", "..", ".", "?status=CANCELLED", "x#y", "x?y=1", "\n", "\r\n", "\t",
                " ", "\\", ";", "&", "+", "\u00e9", "\U0001f600", "\u2028", "\x7f"]

# The document can only say "string" for emails, time zones and a start-end pair whose order and length are checked
# together; random text almost never satisfies them, so without real values every create would be a 422 and the
# paths behind validation (Calendar, the row, the sequences over a created meeting) would go untested.
ORGANIZERS = ["doctor@clinica.com", "Dra.Lopez@Clinica.com", "josé.pérez@clínica.co"]
INVITEES = ["paciente@correo.com", "PACIENTE@Correo.com", "ana.maria+citas@hospital.com.co", "o'brien@mail.example.org"]
ZONES = ["America/Bogota", "UTC", "Asia/Kolkata", "Pacific/Chatham", "America/St_Johns"]
# Every start is before every end, and no pair is more than 24 h apart.
STARTS = ["2030-01-07T08:00:00Z", "2030-01-07T03:00:00-05:00", "2030-01-07T13:30:00.5+05:30"]
ENDS = ["2030-01-07T14:00:00Z", "2030-01-07T09:30:00-05:00", "2030-01-07T20:15+05:30"]

CHECKS = {
    # DELETE cancels: the meeting stays readable with status CANCELLED (README, "Meeting states"), so a 200 after
    # it is the documented answer, not a deleted resource leaking back.
    "use_after_free": {"enabled": False},
    # An Idempotency-Key replay answers the stored first response (contract), and the document's example key is one
    # value: a sequence that deletes a webhook endpoint and then repeats its creation with that key gets the stored
    # 201 of the endpoint it has since deleted, whose id then answers 404 as documented.
    "ensure_resource_availability": {"enabled": False},
    # The document types emails, time zones and page tokens as plain strings; their rules (an address
    # email-validator accepts, an IANA zone, a token this API issued, start before end, at most 24 h) are documented
    # 422s that JSON Schema cannot state, so a schema-valid request is legitimately refused here.
    "positive_data_acceptance": {"enabled": False},
    # A body over the 64 KiB limit is refused whole with the documented 413 before any field is read; schemathesis'
    # default list of rejections simply lacks that status.
    "negative_data_rejection": {"expected-statuses": [
        "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]},
}


def _load(stack, key, seed: int = SEED, **phases) -> schemathesis.BaseSchema:
    config = SchemathesisConfig.from_dict({
        "seed": seed,
        # Emails and datetimes are costly to generate and to filter; that is the schema's nature, not a defect.
        "suppress-health-check": ["all"],
        # No state carried from an earlier run (a .schemathesis/ folder in the work tree): each run stands alone.
        "cache": {"enabled": False},
        "base-url": stack.base,
        # Through the document's bearer scheme (not a fixed header): the auth checks then probe without and with a
        # wrong key, also on operations that declare header parameters such as Idempotency-Key.
        "auth": {"openapi": {"apiKey": {"bearer": key}}},
        "request-timeout": 30,
        "workers": 1,
        "generation": {
            "mode": "all",  # schema-valid and schema-violating requests alike
            "max-examples": MAX_EXAMPLES,
            # The same cases on every run, and no example database: a failure reproduces, never a lucky draw.
            "deterministic": True,
            "database": "none",
        },
        "phases": phases,
        "dictionaries": {name: {"values": values} for name, values in (
            ("url-breakers", URL_BREAKERS), ("organizers", ORGANIZERS), ("invitees", INVITEES), ("zones", ZONES),
            ("starts", STARTS), ("ends", ENDS))},
        "parameters": {
            "path.meeting_id": {"dictionary": "url-breakers", "probability": 0.25},
            "body.organizer_email": {"dictionary": "organizers", "probability": 0.85},
            "body.invited_emails[*]": {"dictionary": "invitees", "probability": 0.97},
            "body.time_zone": {"dictionary": "zones", "probability": 0.8},
            "body.scheduled_start": {"dictionary": "starts", "probability": 0.85},
            "body.scheduled_end": {"dictionary": "ends", "probability": 0.85},
        },
        "checks": CHECKS,
    })
    return schemathesis.openapi.from_url(f"{stack.base}/v1/openapi.json", config=config)


@pytest.fixture(scope="module")
def api_schema(stack, key):
    return _load(stack, key)


schema = schemathesis.pytest.from_fixture("api_schema")


class Tally:
    """Requests sent per operation and generation mode, and answers per operation and status code."""

    def __init__(self):
        self.sent: Counter[str] = Counter()
        self.answered: Counter[tuple[str, int]] = Counter()

    def request(self, case) -> None:
        mode = case.meta.generation.mode.value if case.meta is not None else "explicit"
        self.sent[f"{case.operation.label} {mode}"] += 1

    def response(self, case, status: int) -> None:
        self.answered[(case.operation.label, status)] += 1

    def statuses(self, label: str) -> set[int]:
        return {status for (operation, status) in self.answered if operation == label}


@pytest.fixture
def cases(record_property):
    """The tally of one test; its totals land in the test's properties (junit XML, report hooks)."""
    tally = Tally()
    yield tally
    record_property("schemathesis_cases", sum(tally.sent.values()))
    for label, count in sorted(tally.sent.items()):
        record_property(f"schemathesis_cases[{label}]", count)
    for (label, status), count in sorted(tally.answered.items()):
        record_property(f"schemathesis_answers[{label} {status}]", count)


@schema.parametrize()
def test_every_operation_answers_hostile_input_as_documented(case, cases):
    cases.request(case)
    response = case.call_and_validate()
    cases.response(case, response.status_code)


def _describe(check, interaction) -> str:
    """One failed check as the lead needs it: what broke, the answer, and the calls that reproduce it."""
    failure = check.failure_info.failure
    answer = ""
    if interaction is not None and interaction.response is not None:
        body = interaction.response.content.decode("utf-8", "replace")
        answer = f"[{interaction.response.status_code}] {body[:300]}\n"
    return f"{check.name}: {failure.title}\n{failure.message}\n{answer}{check.failure_info.code_sample}"


def test_sequences_over_real_meetings_answer_as_documented(stack, key, cases):
    # Links between operations are inferred from the document (the id a create returns feeds the reads, PATCH and
    # DELETE), so the operations on one meeting meet real rows, not only 404s. The engine runs them as the CLI does:
    # a sequence whose replay differs because the database moved on is not reported as a failure of its own.
    off = {"enabled": False}
    failures, errors, scenarios = [], [], 0
    writes = ("POST /v1/meetings", "PATCH /v1/meetings/{meeting_id}", "DELETE /v1/meetings/{meeting_id}")

    def reached() -> bool:
        return all(any(200 <= status < 300 for status in cases.statuses(label)) for label in writes)

    for suite in range(MAX_SUITES):
        # Another suite (another seed) when the first did not reach real meetings with every write: whether a
        # seed's sequences do depends on what earlier answers left in the database, not on the product's rules.
        if scenarios >= SCENARIOS and reached():
            break
        sequences = _load(stack, key, seed=SEED + suite, examples=off, coverage=off, fuzzing=off,
                          stateful={"max-steps": SCENARIO_STEPS, "generation": {"max-examples": SCENARIOS}})
        for event in schemathesis.engine.from_schema(sequences).execute():
            if isinstance(event, events.ScenarioFinished):
                scenarios += 1
                recorder = event.recorder
                for case_id, node in recorder.cases.items():
                    cases.request(node.value)
                    interaction = recorder.interactions.get(case_id)
                    if interaction is not None and interaction.response is not None:
                        cases.response(node.value, interaction.response.status_code)
                for case_id, checks in recorder.checks.items():
                    for check in checks:
                        if check.failure_info is not None:
                            failures.append(_describe(check, recorder.interactions.get(case_id)))
            elif isinstance(event, (events.NonFatalError, events.FatalError)):
                errors.append(str(getattr(event, "info", None) or getattr(event, "exception", event)))
    assert not errors, "\n\n".join(errors)
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    # The point of the sequences: the writes on an id reached meetings that exist, not only 404s.
    for label in writes:
        assert any(200 <= status < 300 for status in cases.statuses(label)), (label, sorted(cases.answered.items()))
