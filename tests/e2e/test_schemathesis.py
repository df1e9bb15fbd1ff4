"""Hostile input: schemathesis drives the running stack from /v1/openapi.json with valid and invalid requests.

Every answer must be one the document declares: no 5xx, and only the operation's status codes, content types,
headers and body schemas. Failures are product bugs: fix the product, not this file.
"""
from __future__ import annotations

from collections import Counter

import hypothesis
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

# Enough examples per operation to reach the edges of every field, few enough to keep the file near a minute.
MAX_EXAMPLES = 40
# Sequences of calls over meetings the API itself created (create, then read, reschedule, cancel them).
SCENARIOS = 40
SCENARIO_STEPS = 8
SEED = 20251125
OPERATIONS = 9  # every operation of /v1/openapi.json: a new one must be covered here too

CHECKS = {
    # DELETE cancels: the meeting stays readable with status CANCELLED (README, "Meeting states"), so a 200 after
    # it is the documented answer, not a deleted resource leaking back.
    "use_after_free": {"enabled": False},
    # The document types emails, time zones and page tokens as plain strings; their rules (an address
    # email-validator accepts, an IANA zone, a token this API issued, start before end, at most 24 h) are documented
    # 422s that JSON Schema cannot state, so a schema-valid request is legitimately refused here.
    "positive_data_acceptance": {"enabled": False},
}


@pytest.fixture(scope="module")
def api_schema(stack, key):
    config = SchemathesisConfig.from_dict({
        "seed": SEED,
        # Emails and datetimes are costly to generate and to filter; that is the schema's nature, not a defect.
        "suppress-health-check": ["all"],
        "base-url": stack.base,
        "headers": {"Authorization": f"Bearer {key}"},
        "request-timeout": 30,
        "generation": {
            "mode": "all",  # schema-valid and schema-violating requests alike
            "max-examples": MAX_EXAMPLES,
            # The same cases on every run, and no example database: a failure reproduces, never a lucky draw.
            "deterministic": True,
            "database": "none",
        },
        "phases": {"stateful": {"max-steps": SCENARIO_STEPS}},
        "checks": CHECKS,
    })
    return schemathesis.openapi.from_url(f"{stack.base}/v1/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def cases(record_property):
    """Counts the requests sent per operation and generation mode; the totals land in the test's properties."""
    counter: Counter[str] = Counter()
    yield counter
    record_property("schemathesis_cases", sum(counter.values()))
    for label, count in sorted(counter.items()):
        record_property(f"schemathesis_cases[{label}]", count)


def _label(case) -> str:
    mode = case.meta.generation.mode.value if case.meta is not None else "explicit"
    return f"{case.operation.label} {mode}"


@schema.parametrize()
def test_every_operation_answers_hostile_input_as_documented(case, cases):
    cases[_label(case)] += 1
    case.call_and_validate()


def test_sequences_over_real_meetings_answer_as_documented(api_schema, cases):
    # Links between operations are inferred from the document (the id a create returns feeds the reads, PATCH and
    # DELETE), so the operations on one meeting meet real rows, not only 404s.
    class Workflow(api_schema.as_state_machine()):
        def after_call(self, response, case):
            super().after_call(response, case)
            cases[_label(case)] += 1

    configured = api_schema.config.get_hypothesis_settings(phase="stateful")
    # Generation only: shrinking would replay sequences against a database the first run already changed.
    Workflow.run(settings=hypothesis.settings(configured, max_examples=SCENARIOS, phases=[hypothesis.Phase.generate]))
    reached = {label.rsplit(" ", 1)[0] for label in cases}
    assert {"POST /v1/meetings", "PATCH /v1/meetings/{meeting_id}", "DELETE /v1/meetings/{meeting_id}"} <= reached
