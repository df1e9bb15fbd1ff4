"""The delegation identity is configured explicitly: a misconfigured function fails at cold start, naming what."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import Settings

DB = "postgresql://nobody@127.0.0.1:5432/none"
SA = "sa@p.iam.gserviceaccount.com"


@pytest.fixture
def no_identity(monkeypatch, tmp_path):
    for name in ("GOOGLE_SIGNING_KEY_FILE", "GOOGLE_DELEGATION_SA", "GOOGLE_API_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path / "state"))  # no key of `make run` there


def test_a_local_google_root_needs_the_key_that_signs_for_it(no_identity, tmp_path):
    with pytest.raises(ValidationError, match="GOOGLE_SIGNING_KEY_FILE"):
        Settings(database_url=DB, google_api_root="http://127.0.0.1:9/", google_delegation_sa=SA)
    with pytest.raises(ValidationError, match="GOOGLE_SIGNING_KEY_FILE names no readable file"):
        Settings(database_url=DB, google_api_root="http://127.0.0.1:9/", google_delegation_sa=SA,
                 google_signing_key_file=str(tmp_path / "missing.pem"))


def test_the_delegation_service_account_is_required_in_the_cloud(no_identity):
    with pytest.raises(ValidationError, match="GOOGLE_DELEGATION_SA"):
        Settings(database_url=DB)


def test_a_function_run_alone_takes_the_identity_make_run_made(no_identity, tmp_path, monkeypatch):
    """The contract: with just DATABASE_URL and GOOGLE_API_ROOT set, a function works against `make run`'s fake,
    so the key `make run` made under the state dir (which its fake trusts) and its account are the defaults."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "google-signing-key.pem").write_text("unused")
    local = Settings(database_url=DB, google_api_root="http://127.0.0.1:9/")
    assert local.google_signing_key_file == str(state / "google-signing-key.pem")
    assert local.google_delegation_sa == "meet-delegation@local-dev.iam.gserviceaccount.com"


def test_a_key_file_has_no_place_in_the_cloud(no_identity, tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("unused")
    with pytest.raises(ValidationError, match="signed through IAM"):
        Settings(database_url=DB, google_delegation_sa=SA, google_signing_key_file=str(key))


def test_cloud_and_local_identities_validate(no_identity, tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("unused")
    cloud = Settings(database_url=DB, google_delegation_sa=SA)
    local = Settings(database_url=DB, google_delegation_sa=SA,
                     google_api_root="http://127.0.0.1:9", google_signing_key_file=str(key))
    assert cloud.google_signing_key_file is None and local.google_api_root == "http://127.0.0.1:9/"
