"""The composition root: wires real adapters from settings, lazily, once per instance."""
from __future__ import annotations

import functools
import logging
from datetime import datetime, timezone

from shared.settings import DatabaseSettings, Settings, get_settings

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def database(settings: DatabaseSettings, *, size: int | None = None, on_commit=None):
    """The pool the settings name: DATABASE_URL, or Cloud SQL through the connector with IAM auth."""
    from shared.adapters.postgres.db import Database, cloud_sql_connector, local_connector

    s = settings
    if s.database_url:
        connect = local_connector(s.database_url, lock_timeout_ms=s.db_lock_timeout_ms)
    else:
        assert s.cloud_sql_instance and s.db_iam_user  # DatabaseSettings refuses anything else
        connect = cloud_sql_connector(s.cloud_sql_instance, user=s.db_iam_user, database=s.db_name,
                                      ip_type=s.cloud_sql_ip_type, lock_timeout_ms=s.db_lock_timeout_ms)
    return Database(connect, size=size or s.db_pool_size, lock_timeout_ms=s.db_lock_timeout_ms, on_commit=on_commit)


class Deps:
    """The adapters of one instance; each is built on first use so a route pays only for what it touches."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.clock = utc_now

    @functools.cached_property
    def db(self):
        # The webhooks' outbox: deliveries a transaction recorded go to Cloud Tasks once it has committed.
        return database(self.settings, on_commit=self._after_commit)

    def _after_commit(self, noted: dict) -> None:
        from shared.adapters.postgres.webhooks import NEW_DELIVERIES

        if noted.get(NEW_DELIVERIES):
            from shared.services import webhooks

            webhooks.enqueue_deliveries(noted[NEW_DELIVERIES], tasks=self.webhook_tasks, settings=self.settings,
                                        clock=self.clock)

    @functools.cached_property
    def key_cache(self):
        """API keys this instance resolved recently (a revoked key stops working within a minute)."""
        from shared.services.auth import KeyCache

        return KeyCache()

    @functools.cached_property
    def google(self):
        from shared.adapters.google import GoogleApis

        return GoogleApis(self.settings)

    @functools.cached_property
    def calendar(self):
        """The Calendar port of the use cases: meetings in, domain values out."""
        from shared.adapters.google import Calendar, MeetingCalendar

        return MeetingCalendar(Calendar(self.google))

    @functools.cached_property
    def meet(self):
        """The Meet port of the use cases: rooms, conference records, joiners and their files."""
        from shared.adapters.google import Meet, MeetRooms

        return MeetRooms(Meet(self.google), self.directory, self.drive)

    @functools.cached_property
    def directory(self):
        from shared.adapters.google import Directory

        return Directory(self.google)

    @functools.cached_property
    def drive(self):
        from shared.adapters.google import Drive

        return Drive(self.google)

    @functools.cached_property
    def tasks(self):
        from shared.adapters.cloud_tasks import build_queue

        return build_queue(self.settings)

    @functools.cached_property
    def webhook_tasks(self):
        """The queue of webhook deliveries (WEBHOOK_TASKS_QUEUE, else TASKS_QUEUE)."""
        from shared.adapters.cloud_tasks import build_webhook_queue

        return build_webhook_queue(self.settings)

    @functools.cached_property
    def secret_box(self):
        """Encryption of the webhook signing secrets, or None while WEBHOOK_SECRETS_KEY is not set."""
        from shared.adapters.secret_box import SecretBox

        key = self.settings.webhook_secrets_key
        if key is None:
            log.warning("webhooks off: WEBHOOK_SECRETS_KEY is not set, endpoints cannot be created or served")
            return None
        return SecretBox(key.get_secret_value())

    @functools.cached_property
    def webhook_sender(self):
        from shared.adapters.webhook_sender import WebhookSender

        return WebhookSender(allow_loopback=self.settings.webhook_allow_loopback_http,
                             timeout=self.settings.webhook_timeout_seconds)

    @functools.cached_property
    def ledger(self):
        """The job ledger: task-delivery dedupe, job runs, sweep leases."""
        from shared.adapters.firestore import build_ledger

        return build_ledger(self.settings)

    @functools.cached_property
    def idempotency(self):
        """Where Idempotency-Key answers are kept."""
        from shared.adapters.firestore import build_idempotency_store

        return build_idempotency_store(self.settings)


@functools.cache
def deps() -> Deps:
    """The instance's adapters (tests call `reset()` after changing the environment)."""
    return Deps(get_settings())


def reset() -> None:
    """Forget cached settings and adapters, closing the pool."""
    if deps.cache_info().currsize:
        current = deps()
        if "db" in current.__dict__:
            current.db.close()
    deps.cache_clear()
    get_settings.cache_clear()
