"""Emails: the plain shape is checked without email-validator, and never accepts what the library refuses.

The product's rule is email-validator's (`validate_email(value, check_deliverability=False)`, plus a local part of
at most 64 characters): https://github.com/JoshData/python-email-validator#usage. The fast path only saves loading
the library for the addresses clinics send; these tests hold it to being a strict subset of the library's answer.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from shared.web import models

ROOT = Path(__file__).resolve().parents[2]
EMAIL = TypeAdapter(models.Email)


def _library_accepts(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.from_regex(models._PLAIN_EMAIL, fullmatch=True))
def test_every_address_of_the_plain_shape_is_one_the_library_accepts(value):
    if models.plain_email(value):
        assert _library_accepts(value), value


EDGES = [
    "doctor@clinica.com", "paciente@correo.com", "Dr.Perez+agenda@Clinica-Norte.com.co", "a@b.co", "x_y@z.io",
    "a..b@x.com", ".a@x.com", "a.@x.com", "a@x", "a@x.", "a@.x.com", "a@x..com", "a@-x.com", "a@x-.com",
    "a@x.c0m", "a@x.123", "a@localhost", "a@x.local", "a@x.test", "a@onion", "a@x.arpa", "a@ab--cd.com",
    "a@xn--bcher-kva.com", "josé@clinica.com", "a@clínica.com", '"a b"@x.com', "a@[127.0.0.1]", "a@@x.com",
    "a b@x.com", "a@x.com ", "a@" + "b" * 64 + ".com", "a@" + ".".join(["b" * 60] * 5) + ".com",
    "a" * 65 + "@x.com", "a@x.c", "a@x.co-m",
]


@pytest.mark.parametrize("value", EDGES)
def test_edges_the_fast_path_takes_are_accepted_by_the_library_and_the_answer_is_the_same(value):
    if models.plain_email(value):
        assert _library_accepts(value)
    try:
        EMAIL.validate_python(value)
        ours = True
    except ValidationError:
        ours = False
    assert ours == (_library_accepts(value) and len(value.rpartition("@")[0]) <= 64)


def test_an_address_off_the_path_is_refused_with_the_library_reason():
    with pytest.raises(ValidationError) as refused:
        EMAIL.validate_python("a..b@clinica.com")
    assert "not a valid email address" in str(refused.value) and "period" in str(refused.value)


PROBE = """
import json, sys
from pydantic import TypeAdapter
from shared.web import models
TypeAdapter(models.Email).validate_python("doctor@clinica.com")
plain = "email_validator" in sys.modules
TypeAdapter(models.Email).validate_python("josé@clínica.com")
print(json.dumps({"plain": plain, "intl": "email_validator" in sys.modules}))
"""


def test_a_plain_address_does_not_load_the_library_and_an_international_one_does():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=dict(os.environ), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"plain": False, "intl": True}
