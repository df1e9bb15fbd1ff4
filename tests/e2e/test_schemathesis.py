"""Hostile input: schemathesis generates valid and invalid requests from /v1/openapi.json against the running stack.

Every answer must be documented: no 5xx, only the status codes, content types, headers and bodies the document
declares for the operation.
"""
from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

# Enough examples per operation to reach the edges of every field, few enough to stay well inside the e2e budget.
MAX_EXAMPLES = 40
SEED = 20251125


@pytest.fixture(scope="module")
def api_schema(stack, key):
    config = SchemathesisConfig.from_dict({
        "seed": SEED,
        # Slow or filter-heavy generation is the schema's nature (emails, datetimes), not a problem to report.
        "suppress-health-check": ["all"],
        "base-url": stack.base,
        "headers": {"Authorization": f"Bearer {key}"},
        "request-timeout": 30,
        "generation": {
            "mode": "all",  # valid and invalid requests alike
            "max-examples": MAX_EXAMPLES,
            # The same cases on every run: a failure here is reproducible, never a lucky draw.
            "deterministic": True,
            "database": "none",
        },
    })
    return schemathesis.openapi.from_url(f"{stack.base}/v1/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def tally():
    return Counter()


@pytest.fixture
def case_count(tally, record_property):
    yield tally
    record_property("schemathesis_cases", sum(tally.values()))
    for label, count in sorted(tally.items()):
        record_property(f"schemathesis_cases[{label}]", count)


@schema.parametrize()
def test_the_api_answers_hostile_input_as_documented(case, case_count):
    case_count[f"{case.operation.label} {case.meta.generation.mode.value if case.meta else '-'}"] += 1
    case.call_and_validate()
