"""Integration tests for dev/emulators.py against the real emulators."""

from __future__ import annotations

import datetime as dt
import queue
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.api_core.exceptions import AlreadyExists, FailedPrecondition
from google.cloud import firestore, tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport


from dev import emulators
from dev.ports import free_port
from tests.receiver import Receiver

PROJECT = "demo-emulators"
LOCATION = "europe-west1"
QUEUE = "meet-events"

needs_gcloud = pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud (Cloud SDK) not installed")


def _command_lines(pids: list[int]) -> list[str]:
    """Return the command lines of pids that still exist."""
    lines = []
    for pid in pids:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return lines


def _listeners() -> list[tuple[str, int, str]]:
    """Return (host, port, owning process info) for every listening TCP socket."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    listeners = []
    for fields in (line.split() for line in out.splitlines()):
        host, port = fields[3].rsplit(":", 1)
        # Java and gRPC report IPv4 sockets on dual-stack listeners in v4-mapped form.
        host = host.removeprefix("[::ffff:").removesuffix("]") if host.startswith("[::ffff:") else host
        listeners.append((host, int(port), " ".join(fields[5:])))
    return listeners


def _port(emulator: emulators.Emulator) -> int:
    """Return the emulator's TCP port."""
    return int(emulator.host_port.rsplit(":", 1)[1])


@needs_gcloud
def test_firestore_read_write_transaction_and_clean_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = emulators.start_firestore(free_port(), project=PROJECT, log_dir=tmp_path)
    pgid = emulator.process.pid
    try:
        members = emulators.process_group_members(pgid)
        assert any("java" in line for line in _command_lines(members))
        owned = [(host, port) for host, port, owner in _listeners() if any(f"pid={pid}," in owner for pid in members)]
        assert ("127.0.0.1", _port(emulator)) in owned
        assert {host for host, _ in owned} == {"127.0.0.1"}, owned
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host_port)
        client = firestore.Client(project=PROJECT)
        ref = client.collection("meetings").document("m1")
        ref.set({"title": "standup", "count": 1})
        assert ref.get().to_dict() == {"title": "standup", "count": 1}

        @firestore.transactional
        def increment(transaction: firestore.Transaction) -> None:
            snapshot = ref.get(transaction=transaction)
            transaction.update(ref, {"count": snapshot.get("count") + 1})

        increment(client.transaction())
        assert ref.get().get("count") == 2

        emulators.clear_firestore(emulator.host_port, PROJECT)
        assert not ref.get().exists
        client.close()
    finally:
        emulator.stop()
    assert emulator.process.returncode is not None
    assert emulators.process_group_members(pgid) == []


@needs_gcloud
def test_firestore_data_dir_persists_across_restarts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "data"
    with emulators.start_firestore(free_port(), project=PROJECT, data_dir=data_dir, log_dir=tmp_path) as first:
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", first.host_port)
        firestore.Client(project=PROJECT).collection("c").document("d").set({"kept": True})
    with emulators.start_firestore(free_port(), project=PROJECT, data_dir=data_dir, log_dir=tmp_path) as second:
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", second.host_port)
        assert firestore.Client(project=PROJECT).collection("c").document("d").get().to_dict() == {"kept": True}
    assert len([path for path in data_dir.iterdir() if path.is_dir()]) == 1


def test_start_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(emulators.EmulatorError, match="already in use"):
            emulators.start_cloud_tasks(
                sock.getsockname()[1], project=PROJECT, location=LOCATION, queue=QUEUE, log_dir=tmp_path
            )


@pytest.fixture(scope="module")
def tasks_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.Emulator]:
    emulator = emulators.start_cloud_tasks(
        free_port(),
        project=PROJECT,
        location=LOCATION,
        queue=QUEUE,
        max_retries=2,
        log_dir=tmp_path_factory.mktemp("logs"),
    )
    yield emulator
    pgid = emulator.process.pid
    emulator.stop()
    assert emulators.process_group_members(pgid) == []


@pytest.fixture
def tasks_client(tasks_emulator: emulators.Emulator) -> Iterator[tasks_v2.CloudTasksClient]:
    channel = grpc.insecure_channel(tasks_emulator.host_port)
    yield tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    channel.close()


def _http_task(name: str, url: str, body: bytes, delay: float) -> tasks_v2.Task:
    return tasks_v2.Task(
        name=f"projects/{PROJECT}/locations/{LOCATION}/queues/{QUEUE}/tasks/{name}",
        schedule_time=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delay),
        http_request=tasks_v2.HttpRequest(
            url=url,
            http_method=tasks_v2.HttpMethod.POST,
            body=body,
            headers={"Content-Type": "application/json", "X-Meet-Event": "participant.joined"},
            oidc_token=tasks_v2.OidcToken(service_account_email="tasks@demo.iam.gserviceaccount.com", audience=url),
        ),
    )


def test_tasks_http_task_is_delivered_after_schedule_time_and_duplicates_rejected(
    tasks_emulator: emulators.Emulator, tasks_client: tasks_v2.CloudTasksClient, receiver: Receiver
) -> None:
    queue_path = tasks_client.queue_path(PROJECT, LOCATION, QUEUE)
    task = _http_task("evt-0001", f"{receiver.url}/events", b'{"id": "evt-0001"}', delay=1.5)
    created = tasks_client.create_task(parent=queue_path, task=task)
    assert created.name == task.name

    with pytest.raises(AlreadyExists):
        tasks_client.create_task(parent=queue_path, task=task)

    with pytest.raises(queue.Empty):
        receiver.next(timeout=0.8)
    path, headers, body = receiver.next(timeout=10)
    assert path == "/events"
    assert body == b'{"id": "evt-0001"}'
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Meet-Event"] == "participant.joined"
    assert headers["X-CloudTasks-TaskName"] == "evt-0001"
    assert headers["X-CloudTasks-QueueName"] == queue_path
    assert "Authorization" not in headers

    # A name stays taken after its task ran, as in production.
    with pytest.raises(AlreadyExists):
        tasks_client.create_task(parent=queue_path, task=task)
    with pytest.raises(queue.Empty):
        receiver.next(timeout=1)


def test_tasks_failed_delivery_is_retried_up_to_max_retries(
    tasks_client: tasks_v2.CloudTasksClient,
) -> None:
    failing = Receiver(status=503)
    try:
        queue_path = tasks_client.queue_path(PROJECT, LOCATION, QUEUE)
        tasks_client.create_task(parent=queue_path, task=_http_task("evt-fail", failing.url, b"{}", delay=0))
        retry_counts = [failing.requests.get(timeout=10)[1]["X-CloudTasks-TaskRetryCount"] for _ in range(3)]
        assert retry_counts == ["0", "1", "2"]
        with pytest.raises(queue.Empty):
            failing.requests.get(timeout=1)
    finally:
        failing.close()


def test_tasks_emulator_listens_on_loopback_only(tasks_emulator: emulators.Emulator) -> None:
    hosts = [host for host, port, _ in _listeners() if port == _port(tasks_emulator)]
    assert hosts == ["127.0.0.1"]


def test_tasks_unknown_queue_is_rejected(tasks_client: tasks_v2.CloudTasksClient, receiver: Receiver) -> None:
    task = _http_task("evt-x", receiver.url, b"{}", delay=0)
    task.name = f"projects/{PROJECT}/locations/{LOCATION}/queues/missing/tasks/evt-x"
    with pytest.raises(FailedPrecondition, match="does not exist"):
        tasks_client.create_task(parent=tasks_client.queue_path(PROJECT, LOCATION, "missing"), task=task)
