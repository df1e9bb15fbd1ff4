"""One validated settings object, read once per instance from the environment.

The environment is read here rather than by pydantic-settings, whose import added 40 to 45 ms to every cold start
on top of pydantic's own (decision 0012): a setting is the environment variable of its name (or alias), upper- or
lower-case; an empty variable counts as unset; a list is given as JSON; values passed to the constructor win over
the environment.
"""
from __future__ import annotations

import functools
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# The delegation identity of a local Google root (`make run` makes the key once and has its fake trust it).
LOCAL_DELEGATION_SA = "meet-delegation@local-dev.iam.gserviceaccount.com"
LOCAL_SIGNING_KEY = "google-signing-key.pem"
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"


def local_state_dir() -> Path:
    """Where the local stack keeps its data: LOCAL_STATE_DIR, else .local/ beside the product's code."""
    return Path(os.environ.get("LOCAL_STATE_DIR") or Path(__file__).resolve().parents[1] / ".local")


def _structured(annotation: Any) -> bool:
    """Whether a field's values come as JSON (a list), not as text that pydantic converts."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_structured(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return typing.get_origin(annotation) in (list, tuple, set, dict)


def from_environment(model: type[BaseModel], given: dict[str, Any]) -> dict[str, Any]:
    """The values of `model`'s fields in the environment, beside (and overridden by) those `given`."""
    environ = {name.lower(): value for name, value in os.environ.items() if value != ""}
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        if name in given or key in given or key.lower() not in environ:
            continue
        raw = environ[key.lower()]
        if _structured(field.annotation):
            try:
                values[key] = json.loads(raw)
            except ValueError:
                values[key] = raw  # refused by validation, naming the setting: "Input should be a valid list"
        else:
            values[key] = raw
    return {**values, **given}


class EnvironmentSettings(BaseModel):
    """Settings whose fields are read from the environment when the constructor is not given them."""

    # An empty variable counts as unset: deploy tooling often renders absent values as "". A refused value is not
    # repeated in the error (it may be a key or a URL with a password): the message names the setting and the rule.
    # Validators are built on first use (defer_build), so a function builds only the Settings it instantiates.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True, defer_build=True)

    def __init__(self, **given: Any) -> None:
        super().__init__(**from_environment(type(self), given))


class DatabaseSettings(EnvironmentSettings):
    """Where the database is: all that operator commands (migrations, keys) need."""

    # Database: DATABASE_URL locally (or any PostgreSQL), the Cloud SQL connector in the cloud.
    database_url: str | None = None
    cloud_sql_instance: str | None = Field(None, description="project:region:instance")
    db_name: str = "meet"
    db_iam_user: str | None = Field(None, description="runtime service account, without .gserviceaccount.com")
    cloud_sql_ip_type: Literal["public", "private", "psc"] = "public"
    db_pool_size: int = Field(4, ge=1, le=50)
    db_lock_timeout_ms: int = Field(30_000, ge=100)

    @model_validator(mode="after")
    def _one_database(self) -> "DatabaseSettings":
        if not self.database_url and not self.cloud_sql_instance:
            raise ValueError("set DATABASE_URL, or CLOUD_SQL_INSTANCE with DB_IAM_USER for Cloud SQL")
        if self.cloud_sql_instance and not self.database_url and not self.db_iam_user:
            raise ValueError("CLOUD_SQL_INSTANCE needs DB_IAM_USER (IAM database authentication)")
        return self


class FirestoreSettings(EnvironmentSettings):
    """Where the operational ledger is (job runs, task dedupe, leases, Idempotency-Key answers)."""

    firestore_database: str | None = Field(None, description="Firestore database of the ledger; off when unset")
    gcp_project: str | None = Field(None, alias="GOOGLE_CLOUD_PROJECT")


class TasksSettings(EnvironmentSettings):
    """Where background work is enqueued (Cloud Tasks: a meeting's follow-ups, webhook deliveries) and which URLs
    and identity it calls."""

    tasks_queue: str | None = Field(None, description="projects/P/locations/L/queues/Q; Cloud Tasks off when unset")
    tasks_emulator_host: str | None = Field(None, description="host:port of a local Cloud Tasks emulator")
    check_status_url: str | None = None
    sync_recordings_url: str | None = None
    tasks_invoker_sa: str | None = Field(None, description="the account whose OIDC tokens invoke internal functions")
    webhook_tasks_queue: str | None = Field(None, description="queue of webhook deliveries; TASKS_QUEUE when unset")
    deliver_webhooks_url: str | None = None


class Settings(DatabaseSettings, FirestoreSettings, TasksSettings):
    """Every knob of the product; names are the environment variables, upper-cased."""

    # Google: GOOGLE_API_ROOT points every API at a Google-compatible root (the local fake).
    google_api_root: str | None = None
    google_delegation_sa: str | None = Field(None, description="the service account authorized for delegation")
    google_signing_key_file: str | None = Field(
        None, description="with GOOGLE_API_ROOT only: PEM RSA key signing the delegation assertions (IAM in the cloud)")
    workspace_domain: str | None = None
    default_calendar_owner: str | None = Field(None, description="calendar for organizers outside the domain")
    google_num_retries: int = Field(4, ge=0, le=10)
    google_timeout_seconds: float = Field(20.0, gt=0)
    google_deadline_seconds: float = Field(
        30.0, gt=0, description="all the time a public request may wait on Google, retries included (then 503)")
    conference_wait_seconds: float = Field(10.0, ge=0)
    conference_poll_interval_seconds: float = Field(0.5, gt=0)

    # Background work: Cloud Tasks for one meeting, Cloud Scheduler sweeps, the Firestore ledger.
    gateway_sa: str | None = Field(None, description="the account API Gateway calls the public functions as; only "
                                   "beside its ID token is X-Forwarded-Authorization read")
    oidc_certs_url: str = Field(GOOGLE_CERTS_URL, description="Google's ID-token certificates; with "
                                "GOOGLE_API_ROOT by default that root's /oauth2/v1/certs")
    oidc_audiences: list[str] = Field(default_factory=list, description="further accepted OIDC audiences")
    status_check_delay_minutes: int = Field(5, ge=0, description="first status check after scheduled_end")
    recording_sync_delay_minutes: int = Field(10, ge=0, description="first recording sync after scheduled_end")
    sync_give_up_hours: int = Field(48, ge=1, le=30 * 24, description="stop waiting for recordings after the end")
    sync_backoff_base_minutes: float = Field(5, gt=0)
    sync_backoff_max_minutes: float = Field(120, gt=0)
    sweep_batch_size: int = Field(200, ge=1, le=5000)

    # Push events (webhooks): one Cloud Task per delivery attempt, signing secrets encrypted at rest.
    webhook_secrets_key: SecretStr | None = Field(
        None, description="base64 AES-256 key(s) encrypting the signing secrets, comma-separated; the first encrypts")
    webhook_allow_loopback_http: bool = Field(
        False, description="also accept http(s)://127.0.0.1 and localhost receivers (the local stack sets it)")
    webhook_timeout_seconds: float = Field(15.0, gt=0, le=60)
    webhook_retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        description="the wait before each retry of a delivery; after the last one it is failed")

    # Domain defaults.
    default_time_zone: str = "America/Bogota"
    default_duration_minutes: int = Field(30, ge=1, le=24 * 60)
    grace_period_minutes: int = Field(60, ge=0)
    default_title: str = "Video appointment"
    default_room_access: Literal["OPEN", "TRUSTED", "RESTRICTED"] = Field(
        "RESTRICTED", description="who enters a meeting's Meet room without knocking when the request names no one: "
                                  "RESTRICTED, only invitees")

    # HTTP.
    page_token_key: SecretStr | None = Field(
        None, description="HMAC key(s) of page tokens, comma-separated, the first signing (Secret Manager in the "
                          "cloud; make run makes one under .local/)")
    max_body_bytes: int = 64 * 1024
    body_read_timeout_seconds: float = Field(10.0, gt=0, le=300, description="a body not in within this is a 408")
    retry_after_seconds: int = 5
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("default_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def page_token_keys(self) -> list[bytes]:
        """The page-token keys, the signing one first (none when unset)."""
        value = self.page_token_key.get_secret_value() if self.page_token_key else ""
        return [part.strip().encode() for part in value.split(",") if part.strip()]

    @field_validator("page_token_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and any(len(k.strip()) < 32 for k in value.get_secret_value().split(",") if k.strip()):
            raise ValueError("each PAGE_TOKEN_KEY key needs at least 32 characters")
        return value

    @field_validator("webhook_secrets_key")
    @classmethod
    def _usable_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from shared.adapters.secret_box import SecretBox, SecretBoxError  # no heavy import: base64 only

            try:
                SecretBox(value.get_secret_value())
            except SecretBoxError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("webhook_retry_schedule_seconds")
    @classmethod
    def _sane_schedule(cls, value: list[float]) -> list[float]:
        if len(value) > 20 or any(not 0 < wait <= 7 * 24 * 3600 for wait in value):
            raise ValueError("at most 20 waits, each more than 0 s and at most 7 days")
        return value

    @field_validator("google_api_root")
    @classmethod
    def _root_with_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") + "/" if value else value

    @model_validator(mode="after")
    def _google_identity(self) -> "Settings":
        if self.google_api_root:
            # A Google root stands for all of Google, the publisher of ID-token certificates included.
            if "oidc_certs_url" not in self.model_fields_set:
                self.oidc_certs_url = f"{self.google_api_root}oauth2/v1/certs"
            # A local Google root: by default the identity `make run` made under .local/, which its fake trusts, so
            # a function run alone needs only DATABASE_URL and GOOGLE_API_ROOT.
            self.google_delegation_sa = self.google_delegation_sa or LOCAL_DELEGATION_SA
            made = local_state_dir() / LOCAL_SIGNING_KEY
            if not self.google_signing_key_file and made.is_file():
                self.google_signing_key_file = str(made)
        if not self.google_delegation_sa:
            raise ValueError("set GOOGLE_DELEGATION_SA: the service account authorized for domain-wide delegation")
        # The signer is the one difference between the cloud and a local Google root: IAM there, a key file here.
        if self.google_api_root and not self.google_signing_key_file:
            raise ValueError("GOOGLE_API_ROOT needs GOOGLE_SIGNING_KEY_FILE, the PEM key that signs delegation "
                             "assertions for that root (make run generates one under .local/)")
        if self.google_signing_key_file and not self.google_api_root:
            raise ValueError("GOOGLE_SIGNING_KEY_FILE is only for a local GOOGLE_API_ROOT: in the cloud the "
                             "delegation assertion is signed through IAM, with no key file")
        if self.google_signing_key_file and not Path(self.google_signing_key_file).is_file():
            raise ValueError("GOOGLE_SIGNING_KEY_FILE names no readable file")
        return self


@functools.cache
def get_settings() -> Settings:
    """The instance's settings; a misconfigured function fails here, loudly, at cold start."""
    return Settings()
