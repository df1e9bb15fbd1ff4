"""shared.adapters.cloud_tasks against the Cloud Tasks emulator, delivering to a local HTTP receiver."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from dev.emulators import REPO_ROOT
from dev.ports import free_port
from shared.adapters.cloud_tasks import CloudTasksQueue, NullQueue, Task, TaskEnqueueError, TaskTooFarAhead, build_queue

from tests.conftest import LOCAL_INVOKER_SA as INVOKER  # the account the session's emulator acts as


@dataclass
class TasksSettings:
    tasks_queue: str | None = None
    tasks_emulator_host: str | None = None
    check_status_url: str | None = None
    sync_recordings_url: str | None = None
    tasks_invoker_sa: str | None = None


@pytest.fixture
def settings(tasks_emulator, receiver) -> TasksSettings:
    return TasksSettings(
        tasks_queue=tasks_emulator.queue_path,
        tasks_emulator_host=tasks_emulator.host_port,
        check_status_url=f"{receiver.url}/check_status",
        sync_recordings_url=f"{receiver.url}/sync_recordings",
        tasks_invoker_sa=INVOKER,
    )


@pytest.fixture
def task_queue(settings) -> Iterator[CloudTasksQueue]:
    tasks = CloudTasksQueue(settings)
    yield tasks
    tasks.close()


def _task(target: str = "check_status", *, version: int = 1, purpose: str = "end", delay: float = 0.0,
          meeting_id: str | None = None, attempt: int = 0) -> Task:
    return Task(target=target, meeting_id=meeting_id or str(uuid.uuid4()), schedule_version=version,
                run_at=datetime.now(timezone.utc) + timedelta(seconds=delay), purpose=purpose, attempt=attempt)


def test_task_name_and_body_are_deterministic() -> None:
    run_at = datetime(2030, 1, 1, tzinfo=timezone.utc)
    meeting_id = "0b7c2a9e-3f1d-4c8e-9a51-2d6f0e4b7c13"
    task = Task("sync_recordings", meeting_id, 3, run_at, "sync")
    assert task.name == f"sync_recordings-{meeting_id}-v3-sync"
    assert Task("sync_recordings", meeting_id, 3, run_at, "sync", attempt=2).name == f"{task.name}-a2"
    assert task.body() == {"meeting_id": meeting_id, "schedule_version": 3, "purpose": "sync", "attempt": 0}
    with pytest.raises(ValueError, match="target"):
        Task("cleanup", meeting_id, 1, run_at, "end")
    with pytest.raises(ValueError, match="timezone"):
        Task("check_status", meeting_id, 1, datetime(2030, 1, 1), "end")
    with pytest.raises(ValueError, match="invalid task name"):
        Task("check_status", meeting_id, 1, run_at, "end at noon")


def test_importing_tasks_does_not_load_the_client_library() -> None:
    code = "import sys, shared.adapters.cloud_tasks; sys.exit('google.cloud.tasks_v2' in sys.modules or 'grpc' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0


def test_task_is_delivered_once_at_its_time_with_its_name(tasks_emulator, task_queue, receiver) -> None:
    task = _task(delay=1.5)
    assert task_queue.enqueue(task) is True
    assert task_queue.enqueue(task) is False

    receiver.assert_quiet(0.8)
    path, headers, body = receiver.next()
    assert path == "/check_status"
    assert json.loads(body) == task.body()
    assert headers["Content-Type"] == "application/json"
    assert headers["X-CloudTasks-TaskName"] == task.name
    assert headers["X-CloudTasks-QueueName"] == tasks_emulator.queue_path

    assert task_queue.enqueue(task) is False
    receiver.assert_quiet(1.0)


def test_new_schedule_version_is_a_new_task(task_queue, receiver) -> None:
    first = _task(version=1)
    second = _task(version=2, meeting_id=first.meeting_id)
    assert first.name != second.name
    assert task_queue.enqueue(first) is True
    assert task_queue.enqueue(second) is True
    delivered = {receiver.next()[1]["X-CloudTasks-TaskName"] for _ in range(2)}
    assert delivered == {first.name, second.name}


def test_target_url_follows_task_target(task_queue, receiver) -> None:
    task = _task("sync_recordings", purpose="sync", attempt=1, delay=-60)
    assert task_queue.enqueue(task) is True
    path, headers, body = receiver.next()
    assert path == "/sync_recordings"
    assert headers["X-CloudTasks-TaskName"] == task.name
    assert json.loads(body)["attempt"] == 1


def test_missing_target_url_is_an_enqueue_error(settings) -> None:
    settings.sync_recordings_url = None
    with pytest.raises(TaskEnqueueError, match="SYNC_RECORDINGS_URL"):
        CloudTasksQueue(settings).enqueue(_task("sync_recordings", purpose="sync"))


def test_unreachable_queue_raises_quickly_without_emails_in_logs(settings, caplog) -> None:
    settings.tasks_emulator_host = f"127.0.0.1:{free_port()}"
    tasks = CloudTasksQueue(settings)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="shared.adapters.cloud_tasks"), pytest.raises(TaskEnqueueError):
        tasks.enqueue(_task())
    assert time.monotonic() - started < 6.5
    tasks.close()
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "@" not in caplog.text


def test_too_far_ahead_is_left_to_the_sweep_without_a_call(settings) -> None:
    settings.tasks_emulator_host = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(TaskTooFarAhead):
        CloudTasksQueue(settings).enqueue(_task(delay=31 * 24 * 3600))
    assert time.monotonic() - started < 0.5


def test_null_queue_enqueues_nothing_and_warns_once(caplog) -> None:
    tasks = build_queue(TasksSettings())
    assert isinstance(tasks, NullQueue)
    with caplog.at_level(logging.WARNING, logger="shared.adapters.cloud_tasks"):
        assert tasks.enqueue(_task()) is False
        assert tasks.enqueue(_task()) is False
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith("Cloud Tasks off")


def test_build_queue_uses_cloud_tasks_when_a_queue_is_set(settings) -> None:
    assert isinstance(build_queue(settings), CloudTasksQueue)
    with pytest.raises(ValueError, match="TASKS_QUEUE"):
        build_queue(TasksSettings(tasks_queue="meet-tasks"))
