"""ops.scheduler through the real CloudSchedulerClient, against an in-process gRPC Cloud Scheduler."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from datetime import datetime, timezone

import grpc
import pytest
from google.cloud import scheduler_v1
from google.cloud.scheduler_v1.services.cloud_scheduler.transports import CloudSchedulerGrpcTransport
from google.rpc import code_pb2

from ops import scheduler

PROJECT, LOCATION = "meet-test", "us-central1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
SWEEP = f"{PARENT}/jobs/check-status-sweep"
SYNC = f"{PARENT}/jobs/sync-recordings-sweep"
DENIED_PROJECT = "locked-down"


class FakeCloudScheduler:
    """Cloud Scheduler's job methods over in-memory jobs; the project `locked-down` is denied."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs = {
            SWEEP: scheduler_v1.Job(
                name=SWEEP, schedule="*/5 * * * *", time_zone="Etc/UTC", state=scheduler_v1.Job.State.ENABLED,
                http_target=scheduler_v1.HttpTarget(uri="https://check-status.example.run.app/sweep"),
            ),
            SYNC: scheduler_v1.Job(
                name=SYNC, schedule="0 * * * *", time_zone="America/Bogota", state=scheduler_v1.Job.State.ENABLED,
                http_target=scheduler_v1.HttpTarget(uri="https://sync-recordings.example.run.app/sweep"),
                last_attempt_time=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
            ),
        }

    @staticmethod
    def _check_access(resource: str, context: grpc.ServicerContext) -> None:
        if resource.startswith(f"projects/{DENIED_PROJECT}/"):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "The caller lacks cloudscheduler.jobs permissions")

    def _job(self, name: str, context: grpc.ServicerContext) -> scheduler_v1.Job:
        self._check_access(name, context)
        if name not in self.jobs:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Job not found: {name}")
        return self.jobs[name]

    def list_jobs(self, request: scheduler_v1.ListJobsRequest, context: grpc.ServicerContext):
        self._check_access(request.parent, context)
        with self.lock:
            jobs = [job for name, job in self.jobs.items() if name.startswith(f"{request.parent}/jobs/")]
        return scheduler_v1.ListJobsResponse(jobs=jobs)

    def pause_job(self, request: scheduler_v1.PauseJobRequest, context: grpc.ServicerContext):
        with self.lock:
            job = self._job(request.name, context)
            job.state = scheduler_v1.Job.State.PAUSED
            return job

    def resume_job(self, request: scheduler_v1.ResumeJobRequest, context: grpc.ServicerContext):
        with self.lock:
            job = self._job(request.name, context)
            job.state = scheduler_v1.Job.State.ENABLED
            return job

    def run_job(self, request: scheduler_v1.RunJobRequest, context: grpc.ServicerContext):
        with self.lock:
            job = self._job(request.name, context)
            job.last_attempt_time = datetime.now(timezone.utc)
            job.status = {"code": code_pb2.OK}
            return job


def _handler(method, request_type, response_type) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        method, request_deserializer=request_type.deserialize, response_serializer=response_type.serialize
    )


@pytest.fixture
def fake() -> FakeCloudScheduler:
    return FakeCloudScheduler()


@pytest.fixture
def client(fake: FakeCloudScheduler) -> Iterator[scheduler_v1.CloudSchedulerClient]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("google.cloud.scheduler.v1.CloudScheduler", {
        "ListJobs": _handler(fake.list_jobs, scheduler_v1.ListJobsRequest, scheduler_v1.ListJobsResponse),
        "PauseJob": _handler(fake.pause_job, scheduler_v1.PauseJobRequest, scheduler_v1.Job),
        "ResumeJob": _handler(fake.resume_job, scheduler_v1.ResumeJobRequest, scheduler_v1.Job),
        "RunJob": _handler(fake.run_job, scheduler_v1.RunJobRequest, scheduler_v1.Job),
    })])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield scheduler_v1.CloudSchedulerClient(transport=CloudSchedulerGrpcTransport(channel=channel))
    channel.close()
    server.stop(grace=None)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("SCHEDULER_LOCATION", LOCATION)


def test_list_prints_every_job(client, capsys) -> None:
    assert scheduler.main(["list"], client=client) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SCHEDULE", "STATE", "LAST", "ATTEMPT", "TARGET"]
    assert lines[1].split() == ["check-status-sweep", "*/5", "*", "*", "*", "*", "(Etc/UTC)", "ENABLED", "never",
                                "https://check-status.example.run.app/sweep"]
    assert lines[2].split() == ["sync-recordings-sweep", "0", "*", "*", "*", "*", "(America/Bogota)", "ENABLED",
                                "2030-01-02T03:04:05Z", "https://sync-recordings.example.run.app/sweep"]
    assert len(lines) == 3


def test_list_of_an_empty_location(client, capsys) -> None:
    assert scheduler.main(["list", "--location", "europe-west1"], client=client) == 0
    assert capsys.readouterr().out == f"no jobs in projects/{PROJECT}/locations/europe-west1\n"


def test_pause_then_resume_changes_state(client, fake, capsys) -> None:
    assert scheduler.main(["pause", "check-status-sweep"], client=client) == 0
    assert fake.jobs[SWEEP].state == scheduler_v1.Job.State.PAUSED
    assert capsys.readouterr().out == "check-status-sweep: PAUSED\n"

    scheduler.main(["list"], client=client)
    assert "PAUSED" in capsys.readouterr().out.splitlines()[1].split()

    assert scheduler.main(["resume", SWEEP], client=client) == 0
    assert fake.jobs[SWEEP].state == scheduler_v1.Job.State.ENABLED
    assert capsys.readouterr().out == "check-status-sweep: ENABLED\n"


def test_run_records_an_attempt(client, fake, capsys) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    assert scheduler.main(["run", "check-status-sweep", "--project", PROJECT, "--location", LOCATION],
                          client=client) == 0
    attempted = fake.jobs[SWEEP].last_attempt_time
    assert attempted is not None and attempted >= before
    stamp = attempted.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert capsys.readouterr().out == f"check-status-sweep: run requested (state ENABLED, last attempt {stamp})\n"
    scheduler.main(["list"], client=client)
    assert stamp in capsys.readouterr().out.splitlines()[1].split()


def test_unknown_job_is_a_clear_error(client, fake, capsys) -> None:
    assert scheduler.main(["pause", "nightly-cleanup"], client=client) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: job nightly-cleanup not found in {PARENT}\n"
    assert {job.state for job in fake.jobs.values()} == {scheduler_v1.Job.State.ENABLED}


def test_permission_denied_is_a_clear_error(client, capsys) -> None:
    assert scheduler.main(["run", "check-status-sweep", "--project", DENIED_PROJECT], client=client) == 1
    assert capsys.readouterr().err == (
        f"error: permission denied in projects/{DENIED_PROJECT}/locations/{LOCATION}: "
        "The caller lacks cloudscheduler.jobs permissions\n"
    )
    assert scheduler.main(["list", "--project", DENIED_PROJECT], client=client) == 1
    assert capsys.readouterr().err.startswith("error: permission denied")


def test_missing_project_or_location_is_a_usage_error(client, capsys, monkeypatch) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    assert scheduler.main(["list"], client=client) == 2
    assert capsys.readouterr().err == "error: no project: pass --project or set GOOGLE_CLOUD_PROJECT\n"
    monkeypatch.delenv("SCHEDULER_LOCATION")
    assert scheduler.main(["list", "--project", PROJECT], client=client) == 2
    assert capsys.readouterr().err == "error: no location: pass --location or set SCHEDULER_LOCATION\n"


def test_invalid_short_name_is_a_usage_error(client, capsys) -> None:
    assert scheduler.main(["resume", "check status"], client=client) == 2
    assert "invalid job name" in capsys.readouterr().err
