"""The operational ledger in Firestore: task-delivery dedupe, job-run records and sweep leases.

PostgreSQL stays the system of record; the ledger only keeps background work from running twice
and says what ran. When Firestore is off or failing the ledger degrades permissively, because every
handler is idempotent anyway, and logs a WARNING so the degradation is visible.

Firestore setup the ledger expects in the cloud:
  - TTL policies on field `expires_at` of `task_deliveries`, `job_runs`, `leases` and `idempotency`;
  - a composite index on `job_runs` (kind ascending, started_at descending) for `recent_jobs(kind)`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

DELIVERIES = "task_deliveries"
JOB_RUNS = "job_runs"
LEASES = "leases"
IDEMPOTENCY = "idempotency"
IDEMPOTENCY_RETENTION = timedelta(hours=24)

DELIVERY_RETENTION = timedelta(days=7)
JOB_RUN_RETENTION = timedelta(days=30)
# A lease document outlives its lease by a day so ops can still see who held it last.
LEASE_RETENTION = timedelta(days=1)

OUTCOMES = frozenset({"ok", "error", "skipped"})

_LEASE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MAX_ERROR_CHARS = 1000

_unconfigured_warned = False


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Delivery(str, Enum):
    """What `begin_delivery` tells a task handler to do."""

    NEW = "new"  # this caller owns the delivery and does the work
    DONE = "done"  # already done: answer 200 and do nothing
    RUNNING = "running"  # another delivery works on it now: answer 409 so Cloud Tasks retries later


@dataclass(frozen=True)
class Claim:
    """What `begin_request` found for an Idempotency-Key: NEW (go ahead), RUNNING, or DONE with the stored answer."""

    state: Delivery
    fingerprint: str | None = None
    response: dict | None = None


@runtime_checkable
class Ledger(Protocol):
    """Dedupe, job records and leases for background work."""

    def begin_delivery(self, key: str, *, lease: timedelta = timedelta(minutes=10)) -> Delivery: ...

    def finish_delivery(self, key: str, *, outcome: dict) -> None: ...

    def abort_delivery(self, key: str) -> None: ...

    def start_job(self, kind: str, *, meeting_id: str | None = None, trigger: str) -> str: ...

    def end_job(self, run_id: str, *, outcome: str, counts: dict[str, int] | None = None,
                error: str | None = None) -> None: ...

    def acquire_lease(self, name: str, holder: str, *, ttl: timedelta) -> bool: ...

    def release_lease(self, name: str, holder: str) -> None: ...

    def recent_jobs(self, kind: str | None = None, limit: int = 20) -> list[dict]: ...

    def begin_request(self, key: str, *, fingerprint: str, lease: timedelta = timedelta(minutes=2)) -> Claim: ...
        # Idempotency-Key: NEW (do it), DONE (replay `response` if `fingerprint` matches), RUNNING (in flight)

    def finish_request(self, key: str, *, fingerprint: str, response: dict) -> None: ...  # kept 24 h

    def abort_request(self, key: str) -> None: ...


def delivery_doc_id(key: str) -> str:
    """The document id of a delivery key: keys may hold '/' or exceed Firestore's id rules."""
    return hashlib.sha256(key.encode()).hexdigest()


def scrub_error(error: str | None) -> str | None:
    """An error text safe to store and log: emails masked, length bounded."""
    if error is None:
        return None
    text = _EMAIL.sub("<email>", str(error))
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def _check_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}, not {outcome!r}")


def _check_lease_name(name: str) -> None:
    if not _LEASE_NAME.fullmatch(name) or name.startswith("__"):
        raise ValueError(f"lease name {name!r} must match {_LEASE_NAME.pattern} (it is the document id)")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _new_run_id() -> str:
    return uuid.uuid4().hex


class NullLedger:
    """The ledger with Firestore off: every delivery is new, every lease granted, job records only logged."""

    def begin_delivery(self, key: str, *, lease: timedelta = timedelta(minutes=10)) -> Delivery:
        return Delivery.NEW

    def finish_delivery(self, key: str, *, outcome: dict) -> None:
        return None

    def abort_delivery(self, key: str) -> None:
        return None

    def start_job(self, kind: str, *, meeting_id: str | None = None, trigger: str) -> str:
        run_id = _new_run_id()
        log.info("job %s started (trigger %s, run %s)", kind, trigger, run_id,
                 extra={"operation": kind, **({"meeting_id": meeting_id} if meeting_id else {})})
        return run_id

    def end_job(self, run_id: str, *, outcome: str, counts: dict[str, int] | None = None,
                error: str | None = None) -> None:
        _check_outcome(outcome)
        error = scrub_error(error)
        log.info("job run %s ended: %s%s%s", run_id, outcome,
                 f" counts={dict(counts)}" if counts else "",
                 f" error={error[:200]}" if error else "",
                 extra={"status": outcome})

    def acquire_lease(self, name: str, holder: str, *, ttl: timedelta) -> bool:
        return True

    def release_lease(self, name: str, holder: str) -> None:
        return None

    def recent_jobs(self, kind: str | None = None, limit: int = 20) -> list[dict]:
        return []

    def begin_request(self, key: str, *, fingerprint: str, lease: timedelta = timedelta(minutes=2)) -> Claim:
        return Claim(Delivery.NEW)

    def finish_request(self, key: str, *, fingerprint: str, response: dict) -> None:
        return None

    def abort_request(self, key: str) -> None:
        return None


class FirestoreLedger:
    """The ledger on a Firestore database; the client is built on first use so cold starts stay light."""

    def __init__(
        self,
        client: Any = None,
        *,
        project: str | None = None,
        database: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
        timeout: float = 5.0,
        retry_budget: float = 2.0,
        max_attempts: int = 5,
    ):
        self._client = client
        self._project = project
        self._database = database
        self._clock = clock
        self._timeout = timeout
        self._retry_budget = min(retry_budget, timeout)
        self._max_attempts = max_attempts
        self._lock = threading.Lock()
        self._call_options: dict[str, Any] | None = None

    # -- plumbing ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return _aware(self._clock())

    def _db(self):
        if self._client is None or self._call_options is None:
            with self._lock:
                if self._call_options is None:
                    from google.cloud import firestore

                    if self._client is None:
                        kwargs = {"project": self._project}
                        if self._database:
                            kwargs["database"] = self._database
                        self._client = firestore.Client(**kwargs)
                    retry = _bounded_retry(self._retry_budget)
                    _bound_transaction_rpcs(self._client, retry, self._timeout)
                    self._call_options = {"retry": retry, "timeout": self._timeout}
        return self._client

    def _opts(self) -> dict[str, Any]:
        self._db()
        return self._call_options  # type: ignore[return-value]

    def _run_transaction(self, body: Callable[[Any], Any]) -> Any:
        from google.cloud import firestore

        client = self._db()
        # A fresh wrapper per call: the decorator keeps per-run state and is not thread-safe.
        return firestore.transactional(body)(client.transaction(max_attempts=self._max_attempts))

    # -- deliveries ----------------------------------------------------------------------------

    def begin_delivery(self, key: str, *, lease: timedelta = timedelta(minutes=10)) -> Delivery:
        client, opts = self._db(), self._opts()
        ref = client.collection(DELIVERIES).document(delivery_doc_id(key))

        def claim(transaction) -> Delivery:
            now = self._now()
            snap = ref.get(transaction=transaction, **opts)
            data = (snap.to_dict() or {}) if snap.exists else {}
            if data.get("state") == Delivery.DONE.value:
                return Delivery.DONE
            lease_until = data.get("lease_until")
            if data.get("state") == Delivery.RUNNING.value and lease_until and _aware(lease_until) > now:
                return Delivery.RUNNING
            transaction.set(ref, {
                "key": key,
                "state": Delivery.RUNNING.value,
                "started_at": now,
                "lease_until": now + lease,
                "attempts": int(data.get("attempts", 0)) + 1,
                # A crashed delivery never finishes; its document still expires.
                "expires_at": now + DELIVERY_RETENTION,
            })
            return Delivery.NEW

        try:
            return self._run_transaction(claim)
        except ValueError as exc:
            if _caused_by_contention(exc):
                # Lost the race to a concurrent delivery of the same task: it is running now.
                return Delivery.RUNNING
            raise

    def finish_delivery(self, key: str, *, outcome: dict) -> None:
        client, opts = self._db(), self._opts()
        now = self._now()
        client.collection(DELIVERIES).document(delivery_doc_id(key)).set({
            "key": key,
            "state": Delivery.DONE.value,
            "outcome": dict(outcome),
            "finished_at": now,
            "expires_at": now + DELIVERY_RETENTION,
        }, merge=True, **opts)

    def abort_delivery(self, key: str) -> None:
        client, opts = self._db(), self._opts()
        client.collection(DELIVERIES).document(delivery_doc_id(key)).delete(**opts)

    # -- idempotency keys ------------------------------------------------------------------------

    def begin_request(self, key: str, *, fingerprint: str, lease: timedelta = timedelta(minutes=2)) -> Claim:
        client, opts = self._db(), self._opts()
        ref = client.collection(IDEMPOTENCY).document(delivery_doc_id(key))

        def claim(transaction) -> Claim:
            now = self._now()
            snap = ref.get(transaction=transaction, **opts)
            data = (snap.to_dict() or {}) if snap.exists else {}
            expires = data.get("expires_at")
            if data and (expires is None or _aware(expires) > now):
                if data.get("state") == Delivery.DONE.value:
                    return Claim(Delivery.DONE, data.get("fingerprint"), data.get("response"))
                lease_until = data.get("lease_until")
                if lease_until and _aware(lease_until) > now:
                    return Claim(Delivery.RUNNING, data.get("fingerprint"))
            transaction.set(ref, {"state": Delivery.RUNNING.value, "fingerprint": fingerprint, "started_at": now,
                                  "lease_until": now + lease, "expires_at": now + IDEMPOTENCY_RETENTION})
            return Claim(Delivery.NEW, fingerprint)

        try:
            return self._run_transaction(claim)
        except ValueError as exc:
            if _caused_by_contention(exc):
                return Claim(Delivery.RUNNING, fingerprint)
            raise

    def finish_request(self, key: str, *, fingerprint: str, response: dict) -> None:
        client, opts = self._db(), self._opts()
        now = self._now()
        client.collection(IDEMPOTENCY).document(delivery_doc_id(key)).set({
            "state": Delivery.DONE.value, "fingerprint": fingerprint, "response": response, "finished_at": now,
            "expires_at": now + IDEMPOTENCY_RETENTION}, **opts)

    def abort_request(self, key: str) -> None:
        client, opts = self._db(), self._opts()
        client.collection(IDEMPOTENCY).document(delivery_doc_id(key)).delete(**opts)

    # -- job runs ------------------------------------------------------------------------------

    def start_job(self, kind: str, *, meeting_id: str | None = None, trigger: str) -> str:
        client, opts = self._db(), self._opts()
        run_id = _new_run_id()
        now = self._now()
        client.collection(JOB_RUNS).document(run_id).set({
            "run_id": run_id,
            "kind": kind,
            "meeting_id": meeting_id,
            "trigger": trigger,
            "state": "running",
            "started_at": now,
            # A run that never ends still expires.
            "expires_at": now + JOB_RUN_RETENTION,
        }, **opts)
        return run_id

    def end_job(self, run_id: str, *, outcome: str, counts: dict[str, int] | None = None,
                error: str | None = None) -> None:
        _check_outcome(outcome)
        client, opts = self._db(), self._opts()
        now = self._now()
        # Merge, not update: a run whose start was not recorded (Firestore briefly down) still gets its end.
        client.collection(JOB_RUNS).document(run_id).set({
            "run_id": run_id,
            "state": "ended",
            "outcome": outcome,
            "counts": {str(name): int(value) for name, value in (counts or {}).items()},
            "error": scrub_error(error),
            "ended_at": now,
            "expires_at": now + JOB_RUN_RETENTION,
        }, merge=True, **opts)

    def recent_jobs(self, kind: str | None = None, limit: int = 20) -> list[dict]:
        from google.cloud.firestore import FieldFilter, Query

        client, opts = self._db(), self._opts()
        query = client.collection(JOB_RUNS)
        if kind is not None:
            query = query.where(filter=FieldFilter("kind", "==", kind))
        query = query.order_by("started_at", direction=Query.DESCENDING).limit(limit)
        return [doc.to_dict() | {"run_id": doc.id} for doc in query.stream(**opts)]

    # -- leases --------------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, *, ttl: timedelta) -> bool:
        _check_lease_name(name)
        client, opts = self._db(), self._opts()
        ref = client.collection(LEASES).document(name)

        def take(transaction) -> bool:
            now = self._now()
            snap = ref.get(transaction=transaction, **opts)
            data = (snap.to_dict() or {}) if snap.exists else {}
            lease_until = data.get("lease_until")
            held_by_other = data.get("holder") not in (None, holder)
            if held_by_other and lease_until and _aware(lease_until) > now:
                return False
            transaction.set(ref, {
                "name": name,
                "holder": holder,
                "acquired_at": data["acquired_at"] if data.get("holder") == holder and "acquired_at" in data
                else now,
                "renewed_at": now,
                "lease_until": now + ttl,
                "expires_at": now + ttl + LEASE_RETENTION,
            })
            return True

        try:
            return self._run_transaction(take)
        except ValueError as exc:
            if _caused_by_contention(exc):
                return False
            raise

    def release_lease(self, name: str, holder: str) -> None:
        _check_lease_name(name)
        client, opts = self._db(), self._opts()
        ref = client.collection(LEASES).document(name)

        def drop(transaction) -> None:
            snap = ref.get(transaction=transaction, **opts)
            if snap.exists and (snap.to_dict() or {}).get("holder") == holder:
                transaction.delete(ref)

        try:
            self._run_transaction(drop)
        except ValueError as exc:
            if not _caused_by_contention(exc):
                raise
            # Someone else wrote the lease meanwhile, so it is no longer ours to release.


class ResilientLedger:
    """A Firestore ledger that, when Firestore fails, logs a WARNING and answers like NullLedger for that call.

    After a failure the next calls skip Firestore for `cooldown` so an outage costs one timeout, not one per call.
    """

    def __init__(self, inner: Ledger, *, cooldown: timedelta = timedelta(seconds=30)):
        self._inner = inner
        self._fallback = NullLedger()
        self._cooldown_s = cooldown.total_seconds()
        self._skip_until = 0.0

    def _call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self._skip_until:
            log.warning("ledger %s skipped: Firestore failed in the last %.0f s; proceeding without it",
                        operation, self._cooldown_s, extra={"operation": f"ledger.{operation}"})
            return getattr(self._fallback, operation)(*args, **kwargs)
        try:
            return getattr(self._inner, operation)(*args, **kwargs)
        except Exception as exc:
            cause = _outage_cause(exc)
            if cause is None:
                raise
            self._skip_until = time.monotonic() + self._cooldown_s
            log.warning("ledger %s failed (%s: %s); proceeding without it", operation,
                        type(cause).__name__, _short(cause), extra={"operation": f"ledger.{operation}"})
            return getattr(self._fallback, operation)(*args, **kwargs)

    def begin_delivery(self, key: str, *, lease: timedelta = timedelta(minutes=10)) -> Delivery:
        return self._call("begin_delivery", key, lease=lease)

    def finish_delivery(self, key: str, *, outcome: dict) -> None:
        self._call("finish_delivery", key, outcome=outcome)

    def abort_delivery(self, key: str) -> None:
        self._call("abort_delivery", key)

    def start_job(self, kind: str, *, meeting_id: str | None = None, trigger: str) -> str:
        return self._call("start_job", kind, meeting_id=meeting_id, trigger=trigger)

    def end_job(self, run_id: str, *, outcome: str, counts: dict[str, int] | None = None,
                error: str | None = None) -> None:
        _check_outcome(outcome)
        self._call("end_job", run_id, outcome=outcome, counts=counts, error=error)

    def acquire_lease(self, name: str, holder: str, *, ttl: timedelta) -> bool:
        _check_lease_name(name)
        return self._call("acquire_lease", name, holder, ttl=ttl)

    def release_lease(self, name: str, holder: str) -> None:
        _check_lease_name(name)
        self._call("release_lease", name, holder)

    def recent_jobs(self, kind: str | None = None, limit: int = 20) -> list[dict]:
        return self._call("recent_jobs", kind, limit)

    def begin_request(self, key: str, *, fingerprint: str, lease: timedelta = timedelta(minutes=2)) -> Claim:
        return self._call("begin_request", key, fingerprint=fingerprint, lease=lease)

    def finish_request(self, key: str, *, fingerprint: str, response: dict) -> None:
        self._call("finish_request", key, fingerprint=fingerprint, response=response)

    def abort_request(self, key: str) -> None:
        self._call("abort_request", key)


def build_ledger(settings: Any, *, clock: Callable[[], datetime] = _utc_now) -> Ledger:
    """The instance's ledger: Firestore when FIRESTORE_DATABASE is set, otherwise the permissive NullLedger."""
    global _unconfigured_warned

    database = getattr(settings, "firestore_database", None)
    if not database:
        if not _unconfigured_warned:
            _unconfigured_warned = True
            log.warning("Firestore ledger not configured (FIRESTORE_DATABASE unset): task deliveries are not "
                        "deduplicated, sweep leases are always granted and job runs are only logged")
        return NullLedger()
    project = getattr(settings, "gcp_project", None)
    if not project and os.environ.get("FIRESTORE_EMULATOR_HOST"):
        project = "local-dev"
    return ResilientLedger(FirestoreLedger(project=project, database=database, clock=clock))


# -- Firestore client tuning and error classification --------------------------------------------


def _bounded_retry(budget: float):
    """Retry transient unavailability for at most budget seconds; the per-call timeout caps each call too."""
    from google.api_core import exceptions, retry

    return retry.Retry(
        predicate=retry.if_exception_type(exceptions.ServiceUnavailable, exceptions.InternalServerError),
        initial=0.1, maximum=1.0, multiplier=2.0, timeout=budget,
    )


def _bound_transaction_rpcs(client: Any, retry: Any, timeout: float) -> None:
    """Give BeginTransaction, Commit and Rollback the ledger's timeout and retry.

    The transaction helpers call those RPCs without per-call options, so they would use the library
    defaults (retries for up to 60 s) and a Firestore outage would stall the request for a minute.
    """
    try:
        from google.api_core import gapic_v1

        transport = client._firestore_api._transport
        for name in ("begin_transaction", "commit", "rollback"):
            rpc = getattr(transport, name)
            if rpc not in transport._wrapped_methods:
                raise AttributeError(name)
            transport._wrapped_methods[rpc] = gapic_v1.method.wrap_method(
                rpc, default_retry=retry, default_timeout=timeout, client_info=client._client_info,
            )
    except AttributeError:
        log.warning("could not bound Firestore transaction timeouts (client library changed); "
                    "an outage may stall ledger transactions up to a minute")


def _chain(exc: BaseException):
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _caused_by_contention(exc: BaseException) -> bool:
    """True when a transaction gave up after repeated aborts, i.e. a concurrent writer won."""
    from google.api_core import exceptions

    return any(isinstance(e, exceptions.Aborted) for e in _chain(exc))


def _outage_cause(exc: BaseException) -> BaseException | None:
    """The Firestore, gRPC, auth or network error behind exc, or None when exc is a bug to raise."""
    import grpc
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions

    outage = (exceptions.GoogleAPIError, grpc.RpcError, auth_exceptions.GoogleAuthError, OSError)
    for error in _chain(exc):
        if isinstance(error, outage):
            return error
    return None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = _EMAIL.sub("<email>", text)
    return text if len(text) <= 200 else text[:199] + "…"
