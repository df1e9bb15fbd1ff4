"""The Firestore ledger against the real Firestore emulator, and its degraded modes."""
from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from dev import emulators
from dev.ports import free_port
from shared.adapters import firestore as ledger_module
from shared.adapters.firestore import (
    DELIVERIES,
    JOB_RUNS,
    LEASES,
    Delivery,
    FirestoreLedger,
    Ledger,
    NullLedger,
    ResilientLedger,
    build_ledger,
)

START = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


class FakeClock:
    """A settable UTC clock so lease expiry is tested without sleeping."""

    def __init__(self, now: datetime = START):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(firestore_emulator, clock) -> FirestoreLedger:
    """A ledger on an emptied emulator database."""
    emulators.clear_firestore(firestore_emulator.host_port, firestore_emulator.project)
    return FirestoreLedger(project=firestore_emulator.project, clock=clock)


def raw(ledger: FirestoreLedger, collection: str, doc_id: str) -> dict | None:
    """The stored document, read straight from Firestore."""
    return ledger._db().collection(collection).document(doc_id).get().to_dict()


# -- task deliveries ---------------------------------------------------------------------------


def test_delivery_is_new_then_running_then_done(ledger, clock):
    key = unique("check_status/meeting-1")
    assert ledger.begin_delivery(key) is Delivery.NEW
    assert ledger.begin_delivery(key) is Delivery.RUNNING

    ledger.finish_delivery(key, outcome={"status": "ended", "changed": True})

    assert ledger.begin_delivery(key) is Delivery.DONE
    doc = raw(ledger, DELIVERIES, hashlib.sha256(key.encode()).hexdigest())
    assert doc["key"] == key
    assert doc["state"] == "done"
    assert doc["outcome"] == {"status": "ended", "changed": True}
    assert doc["expires_at"] == START + timedelta(days=7)


def test_aborted_delivery_is_new_again(ledger):
    key = unique("sync_recordings/meeting-2")
    assert ledger.begin_delivery(key) is Delivery.NEW
    ledger.abort_delivery(key)
    assert ledger.begin_delivery(key) is Delivery.NEW


def test_expired_running_delivery_is_taken_over(ledger, clock):
    key = unique("check_status/meeting-3")
    assert ledger.begin_delivery(key, lease=timedelta(minutes=10)) is Delivery.NEW
    clock.advance(timedelta(minutes=9, seconds=59))
    assert ledger.begin_delivery(key) is Delivery.RUNNING

    clock.advance(timedelta(seconds=2))

    assert ledger.begin_delivery(key) is Delivery.NEW
    doc = raw(ledger, DELIVERIES, hashlib.sha256(key.encode()).hexdigest())
    assert doc["attempts"] == 2
    assert doc["lease_until"] == clock.now + timedelta(minutes=10)


def test_concurrent_deliveries_of_one_task_get_one_new(firestore_emulator, ledger, clock):
    key = unique("check_status/meeting-race")
    ledgers = [FirestoreLedger(project=firestore_emulator.project, clock=clock) for _ in range(10)]
    barrier = threading.Barrier(len(ledgers))
    results: list[Delivery] = []
    errors: list[BaseException] = []

    def deliver(instance: FirestoreLedger) -> None:
        instance._db()  # connect before the race so the race is about the transaction
        barrier.wait()
        try:
            results.append(instance.begin_delivery(key))
        except BaseException as exc:  # surfaced below with the results
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(instance,)) for instance in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    assert sorted(results) == sorted([Delivery.NEW] + [Delivery.RUNNING] * 9)


# -- job runs ----------------------------------------------------------------------------------


def test_job_run_records_outcome_counts_and_expiry(ledger, clock):
    run_id = ledger.start_job("check_status", meeting_id="m-123", trigger="task")
    started = raw(ledger, JOB_RUNS, run_id)
    assert started["state"] == "running"
    assert started["started_at"] == START
    assert started["expires_at"] == START + timedelta(days=30)

    clock.advance(timedelta(seconds=42))
    ledger.end_job(run_id, outcome="error", counts={"checked": 3, "failed": 1},
                   error="calendar of ana.perez@example.com not found")

    doc = raw(ledger, JOB_RUNS, run_id)
    assert doc["kind"] == "check_status"
    assert doc["meeting_id"] == "m-123"
    assert doc["trigger"] == "task"
    assert doc["state"] == "ended"
    assert doc["outcome"] == "error"
    assert doc["counts"] == {"checked": 3, "failed": 1}
    assert doc["error"] == "calendar of <email> not found"
    assert doc["ended_at"] == START + timedelta(seconds=42)
    assert doc["expires_at"] == START + timedelta(seconds=42) + timedelta(days=30)


def test_end_job_rejects_an_unknown_outcome(ledger):
    run_id = ledger.start_job("sweep_status", trigger="scheduler")
    with pytest.raises(ValueError):
        ledger.end_job(run_id, outcome="fine")


def test_recent_jobs_newest_first_by_kind_and_limit(ledger, clock):
    made = []
    for kind in ["sweep_status", "check_status", "sweep_status", "sync_recordings", "sweep_status"]:
        made.append((kind, ledger.start_job(kind, trigger="scheduler")))
        clock.advance(timedelta(minutes=1))
    ledger.end_job(made[4][1], outcome="ok", counts={"due": 0})

    everything = ledger.recent_jobs()
    sweeps = ledger.recent_jobs("sweep_status")

    assert [job["run_id"] for job in everything] == [run_id for _, run_id in reversed(made)]
    assert [job["run_id"] for job in sweeps] == [made[4][1], made[2][1], made[0][1]]
    assert sweeps[0]["outcome"] == "ok" and sweeps[0]["counts"] == {"due": 0}
    assert [job["run_id"] for job in ledger.recent_jobs(limit=2)] == [made[4][1], made[3][1]]


# -- leases ------------------------------------------------------------------------------------


def test_only_one_holder_gets_a_lease(ledger):
    name = unique("sweep_status")
    assert ledger.acquire_lease(name, "run-a", ttl=timedelta(minutes=5)) is True
    assert ledger.acquire_lease(name, "run-b", ttl=timedelta(minutes=5)) is False


def test_the_holder_may_reacquire_its_lease(ledger, clock):
    name = unique("sweep_status")
    assert ledger.acquire_lease(name, "run-a", ttl=timedelta(minutes=5))
    clock.advance(timedelta(minutes=4))
    assert ledger.acquire_lease(name, "run-a", ttl=timedelta(minutes=5))
    doc = raw(ledger, LEASES, name)
    assert doc["holder"] == "run-a"
    assert doc["acquired_at"] == START
    assert doc["lease_until"] == START + timedelta(minutes=9)
    clock.advance(timedelta(minutes=4))
    assert ledger.acquire_lease(name, "run-b", ttl=timedelta(minutes=5)) is False


def test_an_expired_lease_goes_to_the_other_holder(ledger, clock):
    name = unique("sweep_recordings")
    assert ledger.acquire_lease(name, "run-a", ttl=timedelta(minutes=5))
    clock.advance(timedelta(minutes=5, seconds=1))
    assert ledger.acquire_lease(name, "run-b", ttl=timedelta(minutes=5))
    assert ledger.acquire_lease(name, "run-a", ttl=timedelta(minutes=5)) is False
    assert raw(ledger, LEASES, name)["holder"] == "run-b"


def test_release_only_by_the_holder(ledger):
    name = unique("sweep_status")
    assert ledger.acquire_lease(name, "run-a", ttl=timedelta(minutes=5))

    ledger.release_lease(name, "run-b")
    assert ledger.acquire_lease(name, "run-b", ttl=timedelta(minutes=5)) is False

    ledger.release_lease(name, "run-a")
    assert raw(ledger, LEASES, name) is None
    assert ledger.acquire_lease(name, "run-b", ttl=timedelta(minutes=5))


def test_concurrent_sweeps_get_one_lease(firestore_emulator, ledger, clock):
    name = unique("sweep_status")
    ledgers = [FirestoreLedger(project=firestore_emulator.project, clock=clock) for _ in range(6)]
    barrier = threading.Barrier(len(ledgers))
    granted: list[bool] = []

    def sweep(index: int, instance: FirestoreLedger) -> None:
        instance._db()
        barrier.wait()
        granted.append(instance.acquire_lease(name, f"run-{index}", ttl=timedelta(minutes=5)))

    threads = [threading.Thread(target=sweep, args=pair) for pair in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(granted) == [False] * 5 + [True]


def test_lease_names_must_be_document_ids(ledger):
    with pytest.raises(ValueError):
        ledger.acquire_lease("sweeps/status", "run-a", ttl=timedelta(minutes=5))


# -- Firestore down ----------------------------------------------------------------------------


@pytest.fixture
def dead_firestore(monkeypatch) -> str:
    """An emulator host where nothing listens."""
    host = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host)
    return host


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def ledger_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "shared.adapters.firestore" and r.levelno == logging.WARNING]


def test_firestore_down_degrades_permissively_and_fast(dead_firestore, caplog):
    caplog.set_level(logging.WARNING, logger="shared.adapters.firestore")
    resilient = ResilientLedger(FirestoreLedger(project="meet-test"), cooldown=timedelta(0))

    delivery, begin_s = timed(lambda: resilient.begin_delivery(unique("task")))
    granted, lease_s = timed(lambda: resilient.acquire_lease("sweep_status", "run-a", ttl=timedelta(minutes=5)))
    run_id, job_s = timed(lambda: resilient.start_job("sweep_status", trigger="scheduler"))

    assert delivery is Delivery.NEW and begin_s < 6
    assert granted is True and lease_s < 6
    assert run_id and job_s < 6
    warnings = ledger_warnings(caplog)
    assert len(warnings) == 3
    assert all("proceeding without it" in r.getMessage() for r in warnings)
    assert all(r.exc_info is None for r in warnings)


def test_firestore_down_every_operation_carries_on(dead_firestore, caplog):
    caplog.set_level(logging.WARNING, logger="shared.adapters.firestore")
    resilient = ResilientLedger(FirestoreLedger(project="meet-test", retry_budget=0.2), cooldown=timedelta(0))

    resilient.finish_delivery(unique("task"), outcome={"status": "ended"})
    resilient.abort_delivery(unique("task"))
    resilient.end_job("run-1", outcome="ok", counts={"due": 0})
    resilient.release_lease("sweep_status", "run-a")
    assert resilient.recent_jobs() == []

    assert len(ledger_warnings(caplog)) == 5


def test_an_unresponsive_firestore_times_out_in_transactions(monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="shared.adapters.firestore")
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:%d" % silent.getsockname()[1])
        resilient = ResilientLedger(FirestoreLedger(project="meet-test", timeout=1.0), cooldown=timedelta(0))

        delivery, begin_s = timed(lambda: resilient.begin_delivery(unique("task")))
        granted, lease_s = timed(lambda: resilient.acquire_lease("sweep_status", "run-a", ttl=timedelta(minutes=1)))

    assert delivery is Delivery.NEW and begin_s < 3
    assert granted is True and lease_s < 3
    assert len(ledger_warnings(caplog)) == 2


def test_after_a_failure_the_ledger_skips_firestore_for_the_cooldown(dead_firestore, caplog):
    caplog.set_level(logging.WARNING, logger="shared.adapters.firestore")
    resilient = ResilientLedger(FirestoreLedger(project="meet-test"), cooldown=timedelta(minutes=1))
    assert resilient.begin_delivery(unique("task")) is Delivery.NEW

    granted, lease_s = timed(lambda: resilient.acquire_lease("sweep_status", "run-a", ttl=timedelta(minutes=5)))

    assert granted is True and lease_s < 0.2
    assert "skipped" in ledger_warnings(caplog)[-1].getMessage()


def test_bugs_are_not_mistaken_for_an_outage():
    class Broken(NullLedger):
        def begin_delivery(self, key, *, lease=timedelta(minutes=10)):
            raise TypeError("a bug")

    with pytest.raises(TypeError):
        ResilientLedger(Broken()).begin_delivery("k")


# -- Firestore off -----------------------------------------------------------------------------


def test_null_ledger_is_permissive_and_logs_job_runs(caplog):
    caplog.set_level(logging.INFO, logger="shared.adapters.firestore")
    null = NullLedger()
    assert isinstance(null, Ledger)

    assert null.begin_delivery("k") is Delivery.NEW
    null.finish_delivery("k", outcome={"ok": True})
    assert null.begin_delivery("k") is Delivery.NEW
    assert null.acquire_lease("sweep_status", "a", ttl=timedelta(minutes=5))
    assert null.acquire_lease("sweep_status", "b", ttl=timedelta(minutes=5))
    run_id = null.start_job("check_status", meeting_id="m-1", trigger="task")
    null.end_job(run_id, outcome="error", counts={"checked": 1}, error="owner bob@example.com gone")
    assert null.recent_jobs() == []

    messages = [r.getMessage() for r in caplog.records if r.name == "shared.adapters.firestore"]
    assert any(run_id in m and "error" in m and "checked" in m for m in messages)
    assert not any("bob@example.com" in m for m in messages)


def test_build_ledger_without_a_database_is_null_and_warns_once(monkeypatch, caplog):
    monkeypatch.setattr(ledger_module, "_unconfigured_warned", False)
    caplog.set_level(logging.WARNING, logger="shared.adapters.firestore")

    first = build_ledger(SimpleNamespace(gcp_project="p"))
    second = build_ledger(SimpleNamespace(firestore_database=None, gcp_project="p"))

    assert isinstance(first, NullLedger) and isinstance(second, NullLedger)
    assert len(ledger_warnings(caplog)) == 1


def test_build_ledger_reads_the_settings(monkeypatch):
    from shared.settings import Settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://u@localhost/meet")
    monkeypatch.setenv("GOOGLE_API_ROOT", "http://127.0.0.1:1/")
    monkeypatch.delenv("FIRESTORE_DATABASE", raising=False)
    assert isinstance(build_ledger(Settings()), NullLedger)

    monkeypatch.setenv("FIRESTORE_DATABASE", "(default)")
    assert isinstance(build_ledger(Settings()), ResilientLedger)


def test_build_ledger_uses_firestore_when_configured(firestore_emulator, clock):
    built = build_ledger(SimpleNamespace(firestore_database="(default)", gcp_project=None), clock=clock)
    assert isinstance(built, ResilientLedger)

    key = unique("check_status/meeting-built")
    assert built.begin_delivery(key) is Delivery.NEW
    assert built.begin_delivery(key) is Delivery.RUNNING
    assert built._inner._db().project == "local-dev"


def test_ops_lists_the_latest_job_runs(firestore_emulator, ledger):
    """`python -m ops jobs` reads the same ledger the functions write (the runs' index serves it in the cloud)."""
    import os
    import subprocess
    import sys

    run_id = ledger.start_job("check_status", trigger="sweep")
    ledger.end_job(run_id, outcome="ok", counts={"due": 3})
    env = dict(os.environ, FIRESTORE_DATABASE="(default)", GOOGLE_CLOUD_PROJECT=firestore_emulator.project,
               FIRESTORE_EMULATOR_HOST=firestore_emulator.host_port)
    out = subprocess.run([sys.executable, "-m", "ops", "jobs", "--kind", "check_status"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if run_id in line)
    assert "check_status" in line and "ok" in line and "due=3" in line
