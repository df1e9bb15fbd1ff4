"""Settings read from the environment (shared/settings.py reads it itself; decision 0012).

The rules are the ones the product had under pydantic-settings (env_prefix "", case_sensitive False,
env_ignore_empty True, complex values as JSON), which Terraform's rendered environment and the local stack rely on:
https://docs.pydantic.dev/latest/concepts/pydantic_settings/#parsing-environment-variable-values
"""
from __future__ import annotations

import json
import sys

import pytest
from pydantic import ValidationError

from shared.settings import DatabaseSettings, Settings

LOCAL = {"DATABASE_URL": "postgresql://u@127.0.0.1:5432/meet", "GOOGLE_DELEGATION_SA": "sa@p.iam.gserviceaccount.com"}


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv("GOOGLE_SIGNING_KEY_FILE", raising=False)  # the session's local identity: a cloud setup here
    monkeypatch.delenv("GOOGLE_API_ROOT", raising=False)
    for name, value in LOCAL.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_each_setting_is_the_variable_of_its_name_converted_and_validated(env):
    env.setenv("DB_POOL_SIZE", "7")
    env.setenv("WEBHOOK_ALLOW_LOOPBACK_HTTP", "true")
    env.setenv("GOOGLE_TIMEOUT_SECONDS", "2.5")
    env.setenv("PAGE_TOKEN_KEY", "k" * 32)
    s = Settings()
    assert (s.db_pool_size, s.webhook_allow_loopback_http, s.google_timeout_seconds) == (7, True, 2.5)
    assert s.page_token_key is not None and s.page_token_key.get_secret_value() == "k" * 32
    assert s.database_url == LOCAL["DATABASE_URL"]


def test_lists_come_as_json(env):
    env.setenv("OIDC_AUDIENCES", json.dumps(["https://a.run.app", "https://b.run.app"]))
    env.setenv("WEBHOOK_RETRY_SCHEDULE_SECONDS", "[1, 2.5]")
    s = Settings()
    assert s.oidc_audiences == ["https://a.run.app", "https://b.run.app"]
    assert s.webhook_retry_schedule_seconds == [1.0, 2.5]


def test_a_list_that_is_not_json_is_refused_naming_the_setting_not_its_value(env):
    env.setenv("OIDC_AUDIENCES", "https://secret-audience.example,b")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert [e["loc"] for e in refused.value.errors()] == [("oidc_audiences",)]
    assert "secret-audience" not in str(refused.value)


def test_an_empty_variable_counts_as_unset(env):
    env.setenv("TASKS_QUEUE", "")
    env.setenv("DB_POOL_SIZE", "")
    s = Settings()
    assert s.tasks_queue is None and s.db_pool_size == 4


@pytest.mark.skipif(sys.platform == "win32", reason="the environment is case-insensitive there anyway")
def test_names_are_case_insensitive(env):
    env.setenv("db_pool_size", "9")
    assert Settings().db_pool_size == 9


def test_an_alias_names_the_variable_and_the_field_name_works_in_code(env):
    env.setenv("GOOGLE_CLOUD_PROJECT", "clinic-prod")
    assert Settings().gcp_project == "clinic-prod"
    assert Settings(gcp_project="other").gcp_project == "other"


def test_values_given_to_the_constructor_win_over_the_environment(env):
    env.setenv("DB_POOL_SIZE", "7")
    assert Settings(db_pool_size=3).db_pool_size == 3
    assert DatabaseSettings(database_url="postgresql://other/db").database_url == "postgresql://other/db"


def test_a_bad_value_is_refused_without_repeating_it(env):
    env.setenv("DATABASE_URL", "")
    env.setenv("CLOUD_SQL_INSTANCE", "p:r:i")
    env.setenv("DB_POOL_SIZE", "999")
    with pytest.raises(ValidationError) as refused:
        DatabaseSettings()
    assert "999" not in str(refused.value)
    assert any(e["loc"] == ("db_pool_size",) for e in refused.value.errors())
