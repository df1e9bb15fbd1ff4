"""Firestore, the operational store: the job ledger (task-delivery dedupe, job runs, sweep leases) and the
idempotency store (Idempotency-Key answers kept 24 h).

PostgreSQL stays the system of record; Firestore only keeps work from running twice and says what ran.
When Firestore is off or failing, both degrade permissively (every handler is idempotent anyway) and log a
WARNING so the degradation is visible.

Claims are optimistic writes with preconditions (create-if-absent, or update-if-unchanged since read), so
every call carries the store's own timeout and retry: an outage costs one bounded wait, never a minute.

Firestore setup expected in the cloud:
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
from collections.abc import Callable, Iterator
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
    """What a claim found: NEW (the caller does the work), DONE (already done), RUNNING (someone else is on it)."""

    NEW = "new"
    DONE = "done"
    RUNNING = "running"


@dataclass(frozen=True)
class Claim:
    """What `IdempotencyStore.begin` found for a key: NEW (go ahead), RUNNING, or DONE with the stored answer."""

    state: str  # a Delivery value
    fingerprint: str | None = None
    response: dict | None = None


def delivery_doc_id(key: str) -> str:
    """The document id of a key: keys may hold '/' or exceed Firestore's id rules."""
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


def _live(data: dict, now: datetime, field: str = "lease_until") -> bool:
    until = data.get(field)
    return until is not None and _aware(until) > now


# --- the protocols the product speaks -------------------------------------------------------------------------

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


@runtime_checkable
class IdempotencyStore(Protocol):
    """Idempotency-Key answers: NEW (run it), DONE (replay `response` if `fingerprint` matches), RUNNING."""

    def begin(self, key: str, *, fingerprint: str, lease: timedelta = timedelta(minutes=2)) -> Claim: ...
    def finish(self, key: str, *, fingerprint: str, response: dict) -> None: ...  # kept 24 h
    def abort(self, key: str) -> None: ...


# --- Firestore off ----------------------------------------------------------------------------------------------

class NullLedger:
    """The ledger with Firestore off: every delivery is new, every lease granted, job records only logged."""

    def begin_delivery(self, key: str, *, lease: timedelta = timedelta(minutes=10)) -> Delivery:
        return Delivery.NEW

    def finish_delivery(self, key: str, *, outcome: dict) -> None:
        return None

    def abort_delivery(self, key: str) -> None:
        return None

    def start_job(self, kind: str, *, meeting_id: str | None = None, trigger: str) -> str:
        run_id = uuid.uuid4().hex
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


class NullIdempotencyStore:
    """Idempotency-Key with Firestore off: every request runs (the reference still dedupes creates)."""

    def begin(self, key: str, *, fingerprint: str, lease: timedelta = timedelta(minutes=2)) -> Claim:
        return Claim(Delivery.NEW.value)

    def finish(self, key: str, *, fingerprint: str, response: dict) -> None:
        return None

    def abort(self, key: str) -> None:
        return None


# --- Firestore --------------------------------------------------------------------------------------------------

class _Lost(Exception):
    """A concurrent writer changed the document between our read and our write."""


class _Documents:
    """The Firestore client, built on first use, and the one claim primitive both stores use."""

    def __init__(self, client: Any = None, *, project: str | None = None, database: str | None = None,
                 clock: Callable[[], datetime] = _utc_now, timeout: float = 5.0, retry_budget: float = 2.0,
                 max_attempts: int = 5):
        self._client = client
        self._project = project
        self._database = database
        self._clock = clock
        self._timeout = timeout
        self._retry_budget = min(retry_budget, timeout)
        self._max_attempts = max_attempts
        self._lock = threading.Lock()
        self._call_options: dict[str, Any] | None = None

    def _now(self) -> datetime:
        return _aware(self._clock())

    def _db(self):
        if self._client is None or self._call_options is None:
            with self._lock:
                if self._call_options is None:
                    from google.cloud import firestore

                    if self._client is None:
                        kwargs: dict[str, Any] = {"project": self._project}
                        if self._database:
                            kwargs["database"] = self._database
                        self._client = firestore.Client(**kwargs)
                    self._call_options = {"retry": _bounded_retry(self._retry_budget), "timeout": self._timeout}
        return self._client

    def _opts(self) -> dict[str, Any]:
        self._db()
        assert self._call_options is not None
        return self._call_options

    def _ref(self, collection: str, doc_id: str):
        return self._db().collection(collection).document(doc_id)

    def _claim(self, ref, decide: Callable[[dict, datetime], tuple[Any, dict | None]]) -> Any:
        """Read the document, let `decide(data, now)` say (answer, document to write or None), write it only
        if nobody wrote in between; raises _Lost when a concurrent writer won every attempt."""
        from google.api_core import exceptions

        opts = self._opts()
        for _ in range(self._max_attempts):
            snap = ref.get(**opts)
            data = (snap.to_dict() or {}) if snap.exists else {}
            answer, document = decide(data, self._now())
            if document is None:
                return answer
            try:
                if snap.exists:
                    self._replace(ref, snap, document)
                else:
                    ref.create(document, **opts)
                return answer
            except (exceptions.AlreadyExists, exceptions.FailedPrecondition):
                continue  # someone wrote first: decide again on what they wrote
        raise _Lost()

    def _replace(self, ref, snap, document: dict) -> None:
        from google.cloud import firestore

        client, opts = self._db(), self._opts()
        stale = {name: firestore.DELETE_FIELD for name in (snap.to_dict() or {}) if name not in document}
        ref.update({**document, **stale}, option=client.write_option(last_update_time=snap.update_time), **opts)

    def _delete_if(self, ref, keep: Callable[[dict], bool]) -> None:
        """Delete the document unless `keep(data)`; a concurrent change means it is no longer ours."""
        from google.api_core import exceptions

        opts = self._opts()
        snap = ref.get(**opts)
        if not snap.exists or keep(snap.to_dict() or {}):
            return
        try:
            ref.delete(option=self._db().write_option(last_update_time=snap.update_time), **opts)
        except (exceptions.FailedPrecondition, exceptions.NotFound):
            pass


class FirestoreLedger(_Documents):
    """The job ledger on a Firestore database."""

    def begin_delivery(self, key: str, *, lease: timedelta = timedelta(minutes=10)) -> Delivery:
        def decide(data: dict, now: datetime) -> tuple[Delivery, dict | None]:
            if data.get("state") == Delivery.DONE.value:
                return Delivery.DONE, None
            if data.get("state") == Delivery.RUNNING.value and _live(data, now):
                return Delivery.RUNNING, None
            return Delivery.NEW, {
                "key": key, "state": Delivery.RUNNING.value, "started_at": now, "lease_until": now + lease,
                "attempts": int(data.get("attempts", 0)) + 1,
                # A crashed delivery never finishes; its document still expires.
                "expires_at": now + DELIVERY_RETENTION,
            }

        try:
            return self._claim(self._ref(DELIVERIES, delivery_doc_id(key)), decide)
        except _Lost:
            return Delivery.RUNNING  # lost the race to a concurrent delivery of the same task

    def finish_delivery(self, key: str, *, outcome: dict) -> None:
        now = self._now()
        self._ref(DELIVERIES, delivery_doc_id(key)).set({
            "key": key, "state": Delivery.DONE.value, "outcome": dict(outcome), "finished_at": now,
            "expires_at": now + DELIVERY_RETENTION}, merge=True, **self._opts())

    def abort_delivery(self, key: str) -> None:
        self._ref(DELIVERIES, delivery_doc_id(key)).delete(**self._opts())

    def start_job(self, kind: str, *, meeting_id: str | None = None, trigger: str) -> str:
        run_id = uuid.uuid4().hex
        now = self._now()
        self._ref(JOB_RUNS, run_id).set({
            "run_id": run_id, "kind": kind, "meeting_id": meeting_id, "trigger": trigger, "state": "running",
            "started_at": now,
            "expires_at": now + JOB_RUN_RETENTION,  # a run that never ends still expires
        }, **self._opts())
        return run_id

    def end_job(self, run_id: str, *, outcome: str, counts: dict[str, int] | None = None,
                error: str | None = None) -> None:
        _check_outcome(outcome)
        now = self._now()
        # Merge, not update: a run whose start was not recorded (Firestore briefly down) still gets its end.
        self._ref(JOB_RUNS, run_id).set({
            "run_id": run_id, "state": "ended", "outcome": outcome,
            "counts": {str(name): int(value) for name, value in (counts or {}).items()},
            "error": scrub_error(error), "ended_at": now, "expires_at": now + JOB_RUN_RETENTION,
        }, merge=True, **self._opts())

    def recent_jobs(self, kind: str | None = None, limit: int = 20) -> list[dict]:
        from google.cloud.firestore import FieldFilter, Query

        query = self._db().collection(JOB_RUNS)
        if kind is not None:
            query = query.where(filter=FieldFilter("kind", "==", kind))
        query = query.order_by("started_at", direction=Query.DESCENDING).limit(limit)
        return [doc.to_dict() | {"run_id": doc.id} for doc in query.stream(**self._opts())]

    def acquire_lease(self, name: str, holder: str, *, ttl: timedelta) -> bool:
        _check_lease_name(name)

        def decide(data: dict, now: datetime) -> tuple[bool, dict | None]:
            if data.get("holder") not in (None, holder) and _live(data, now):
                return False, None
            renewing = data.get("holder") == holder and "acquired_at" in data
            return True, {"name": name, "holder": holder, "acquired_at": data["acquired_at"] if renewing else now,
                          "renewed_at": now, "lease_until": now + ttl, "expires_at": now + ttl + LEASE_RETENTION}

        try:
            return self._claim(self._ref(LEASES, name), decide)
        except _Lost:
            return False

    def release_lease(self, name: str, holder: str) -> None:
        _check_lease_name(name)
        self._delete_if(self._ref(LEASES, name), keep=lambda data: data.get("holder") != holder)


class FirestoreIdempotencyStore(_Documents):
    """Idempotency-Key answers on a Firestore database."""

    def begin(self, key: str, *, fingerprint: str, lease: timedelta = timedelta(minutes=2)) -> Claim:
        def decide(data: dict, now: datetime) -> tuple[Claim, dict | None]:
            if data and _live(data, now, "expires_at"):
                if data.get("state") == Delivery.DONE.value:
                    return Claim(Delivery.DONE.value, data.get("fingerprint"), data.get("response")), None
                if _live(data, now):
                    return Claim(Delivery.RUNNING.value, data.get("fingerprint")), None
            return Claim(Delivery.NEW.value, fingerprint), {
                "state": Delivery.RUNNING.value, "fingerprint": fingerprint, "started_at": now,
                "lease_until": now + lease, "expires_at": now + IDEMPOTENCY_RETENTION}

        try:
            return self._claim(self._ref(IDEMPOTENCY, delivery_doc_id(key)), decide)
        except _Lost:
            return Claim(Delivery.RUNNING.value, fingerprint)

    def finish(self, key: str, *, fingerprint: str, response: dict) -> None:
        now = self._now()
        self._ref(IDEMPOTENCY, delivery_doc_id(key)).set({
            "state": Delivery.DONE.value, "fingerprint": fingerprint, "response": response, "finished_at": now,
            "expires_at": now + IDEMPOTENCY_RETENTION}, **self._opts())

    def abort(self, key: str) -> None:
        self._ref(IDEMPOTENCY, delivery_doc_id(key)).delete(**self._opts())


# --- degrading on an outage ----------------------------------------------------------------------------------------

class _Resilient:
    """Calls `inner`; when Firestore fails, logs a WARNING and answers like `fallback` for that call.

    After a failure the next calls skip Firestore for `cooldown`, so an outage costs one timeout, not one per call.
    """

    def __init__(self, inner: Any, fallback: Any, *, cooldown: timedelta = timedelta(seconds=30)):
        self._inner = inner
        self._fallback = fallback
        self._cooldown_s = cooldown.total_seconds()
        self._skip_until = 0.0

    def _call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self._skip_until:
            log.warning("firestore %s skipped: Firestore failed in the last %.0f s; proceeding without it",
                        operation, self._cooldown_s, extra={"operation": f"firestore.{operation}"})
            return getattr(self._fallback, operation)(*args, **kwargs)
        try:
            return getattr(self._inner, operation)(*args, **kwargs)
        except Exception as exc:
            cause = _outage_cause(exc)
            if cause is None:
                raise
            self._skip_until = time.monotonic() + self._cooldown_s
            log.warning("firestore %s failed (%s: %s); proceeding without it", operation,
                        type(cause).__name__, _short(cause), extra={"operation": f"firestore.{operation}"})
            return getattr(self._fallback, operation)(*args, **kwargs)


class ResilientLedger(_Resilient):
    """A job ledger that degrades to NullLedger while Firestore fails."""

    def __init__(self, inner: Ledger, *, cooldown: timedelta = timedelta(seconds=30)):
        super().__init__(inner, NullLedger(), cooldown=cooldown)

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


class ResilientIdempotencyStore(_Resilient):
    """An idempotency store that degrades to running every request while Firestore fails."""

    def __init__(self, inner: IdempotencyStore, *, cooldown: timedelta = timedelta(seconds=30)):
        super().__init__(inner, NullIdempotencyStore(), cooldown=cooldown)

    def begin(self, key: str, *, fingerprint: str, lease: timedelta = timedelta(minutes=2)) -> Claim:
        return self._call("begin", key, fingerprint=fingerprint, lease=lease)

    def finish(self, key: str, *, fingerprint: str, response: dict) -> None:
        self._call("finish", key, fingerprint=fingerprint, response=response)

    def abort(self, key: str) -> None:
        self._call("abort", key)


def _project(settings: Any) -> str | None:
    project = getattr(settings, "gcp_project", None)
    if not project and os.environ.get("FIRESTORE_EMULATOR_HOST"):
        project = "local-dev"
    return project


def _warn_unconfigured() -> None:
    global _unconfigured_warned
    if not _unconfigured_warned:
        _unconfigured_warned = True
        log.warning("Firestore not configured (FIRESTORE_DATABASE unset): task deliveries are not deduplicated, "
                    "sweep leases are always granted, job runs are only logged and Idempotency-Key is not replayed")


def build_ledger(settings: Any, *, clock: Callable[[], datetime] = _utc_now) -> Ledger:
    """The instance's job ledger: Firestore when FIRESTORE_DATABASE is set, otherwise the permissive NullLedger."""
    database = getattr(settings, "firestore_database", None)
    if not database:
        _warn_unconfigured()
        return NullLedger()
    return ResilientLedger(FirestoreLedger(project=_project(settings), database=database, clock=clock))


def build_idempotency_store(settings: Any) -> IdempotencyStore:
    """The instance's Idempotency-Key store: Firestore when FIRESTORE_DATABASE is set, otherwise none."""
    database = getattr(settings, "firestore_database", None)
    if not database:
        _warn_unconfigured()
        return NullIdempotencyStore()
    return ResilientIdempotencyStore(FirestoreIdempotencyStore(project=_project(settings), database=database))


# --- error classification ------------------------------------------------------------------------------------------

def _bounded_retry(budget: float):
    """Retry transient unavailability for at most budget seconds; the per-call timeout caps each call too."""
    from google.api_core import exceptions, retry

    return retry.Retry(
        predicate=retry.if_exception_type(exceptions.ServiceUnavailable, exceptions.InternalServerError),
        initial=0.1, maximum=1.0, multiplier=2.0, timeout=budget,
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


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
