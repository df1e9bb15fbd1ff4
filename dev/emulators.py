"""Start and stop the local Firestore and Cloud Tasks emulators."""

# How the emulators differ from production (checked against the versions pinned
# in dev/tools/tasks-emulator.txt and the Cloud SDK's Firestore emulator):
#
# Firestore (`gcloud emulators firestore start`):
#   - Ready in 2-4 s. gcloud runs a shell script that runs Java, and killing
#     gcloud alone leaves Java running, so the whole process group is stopped.
#   - With --host-port=127.0.0.1:PORT every socket it opens (API, WebSocket and
#     helper ports) listens on 127.0.0.1 only.
#   - `--export-on-exit` does not export when the group gets SIGTERM, so
#     persistence uses the emulator's HTTP export endpoint before stopping and
#     `--import-data` on the next start.
#
# Cloud Tasks (gcloud-tasks-emulator 0.6.2, in its own venv because it needs
# protobuf<5):
#   - Binding: the stock server listens on [::]:PORT with no option to change it
#     (its -H is the *target* host). The launcher below binds 127.0.0.1 only.
#   - Duplicate task names: the stock server accepts them and dispatches every
#     copy. Production answers ALREADY_EXISTS for a name that is queued or was
#     executed or deleted recently, so the launcher rejects any name already
#     used during the emulator's lifetime with ALREADY_EXISTS.
#   - schedule_time: honoured; a future task is re-checked every ~0.1 s and
#     sent once its time has passed.
#   - oidc_token: ignored by the stock server (no Authorization is sent). The
#     launcher below, given OIDC credentials (start_cloud_tasks(oidc=...)),
#     does what Cloud Tasks does: each HTTP task with an oidc_token is sent
#     with `Authorization: Bearer <ID token>` of that service account for its
#     audience (the task's URL when none is set), fetched from the Google
#     token endpoint as google-auth's IDTokenCredentials does; a task naming
#     an account it has no credentials for is refused at creation with
#     PERMISSION_DENIED, as Cloud Tasks refuses an enqueuer without actAs on
#     it. Without OIDC credentials, tasks go without Authorization.
#   - The task's own
#     headers are forwarded, plus X-CloudTasks-QueueName (full queue path),
#     X-CloudTasks-TaskName (short name), X-CloudTasks-TaskRetryCount,
#     X-CloudTasks-TaskExecutionCount and X-CloudTasks-TaskETA. Without an
#     explicit Content-Type, urllib sends application/x-www-form-urlencoded.
#   - Non-2xx answers (and connection errors, counted as 500): the task goes to
#     the back of the queue and is retried about every 0.1 s with no backoff,
#     forever unless --max-retries is given (max_retries=N means N+1 attempts).
#     Stock dispatch has no timeout, so a hanging target blocks its queue; the
#     launcher bounds each attempt by the task's dispatch_deadline (Cloud
#     Tasks' default for HTTP targets, 10 minutes, when unset).
#   - Queues are not auto-created: CreateTask on an unknown queue fails with
#     FAILED_PRECONDITION. CreateQueue is idempotent (production answers
#     ALREADY_EXISTS); GetQueue on an unknown queue fails with UNKNOWN.
#   - State is in memory only and is lost when the emulator stops.

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.api_core.exceptions import AlreadyExists
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from dev import prerequisites
from dev.ports import LOOPBACK, accepts_connections, port_taken

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOG_DIR = REPO_ROOT / ".local" / "logs"
TASKS_VENV = REPO_ROOT / ".local" / "venvs" / "tasks-emulator"
TASKS_INSTALL_SCRIPT = REPO_ROOT / "dev" / "install_tool.sh"

# Runs inside the tasks emulator's venv; patches the stock server before
# handing over to its own command line.
_TASKS_LAUNCHER = r'''
import json
import os
import sys
import threading
import urllib.request
from concurrent import futures

import grpc
from google.api_core.exceptions import AlreadyExists, PermissionDenied
from gcloud_tasks_emulator import __main__ as cli
from gcloud_tasks_emulator import server


def _serve_on_loopback(self):
    # The stock APIThread.run binds [::] and offers no option to change it.
    self._httpd = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_CloudTasksServicer_to_server(server.Greeter(self._state), self._httpd)
    address = "127.0.0.1:%d" % self._port
    try:
        bound = self._httpd.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        server.logger.error("[API] Cannot bind %s", address)
        os._exit(3)
    server.logger.info("[API] Starting API server at %s", address)
    self._httpd.start()


_stock_create_task = server.QueueState.create_task
_names_lock = threading.Lock()
_used_names = set()


def _create_task_once(self, queue, task):
    # Production rejects a reused task name with ALREADY_EXISTS.
    if not task.name:
        return _stock_create_task(self, queue, task)
    with _names_lock:
        if task.name in _used_names:
            raise AlreadyExists("Requested entity already exists")
        created = _stock_create_task(self, queue, task)
        _used_names.add(created.name)
        return created


# Cloud Tasks' part of OIDC: an ID token of the task's service account for its audience.
# TASKS_EMULATOR_OIDC = {"token_uri": ..., "keys": {service account email: PEM key file}, "root": repository}.
_OIDC = json.loads(os.environ.get("TASKS_EMULATOR_OIDC") or "null")
_sources = {}
if _OIDC:
    sys.path.insert(0, _OIDC["root"])
    from dev.id_tokens import IdTokenSource

    _sources = {email: IdTokenSource(email, key, _OIDC["token_uri"]) for email, key in _OIDC["keys"].items()}


def _checked_create_task(self, queue, task):
    account = task.http_request.oidc_token.service_account_email
    if _OIDC and account and account not in _sources:
        raise PermissionDenied("The principal lacks iam.serviceAccounts.actAs on the task's service account.")
    return _create_task_once(self, queue, task)


_stock_request = server._make_task_request


def _request_with_oidc(queue_name, task, host, port):
    if not task.http_request.url:
        return _stock_request(queue_name, task, host, port)
    headers = dict(task.http_request.headers)
    headers.update({
        "X-CloudTasks-QueueName": queue_name,
        "X-CloudTasks-TaskName": task.name.rsplit("/", 1)[-1],
        "X-CloudTasks-TaskRetryCount": str(task.dispatch_count - 1),
        "X-CloudTasks-TaskExecutionCount": str(task.dispatch_count - 1),
        "X-CloudTasks-TaskETA": str(task.schedule_time.timestamp()) if task.schedule_time else "",
    })
    oidc = task.http_request.oidc_token
    if _OIDC and oidc.service_account_email:
        source = _sources[oidc.service_account_email]
        headers["Authorization"] = "Bearer " + source.token(oidc.audience or task.http_request.url)
    deadline = task.dispatch_deadline.total_seconds() if task.dispatch_deadline else 600.0
    req = urllib.request.Request(task.http_request.url, method=task.http_request.http_method.name,
                                 data=task.http_request.body, headers=headers)
    server.logger.info("[TASKS] Requesting %s %s", req.method, req.full_url)
    return urllib.request.urlopen(req, timeout=deadline)


server.APIThread.run = _serve_on_loopback
server.QueueState.create_task = _checked_create_task
server._make_task_request = _request_with_oidc
cli.main()
'''


# Emulators started by this process and not yet stopped, by process group id.
_running: dict[int, Emulator] = {}


class EmulatorError(RuntimeError):
    """An emulator could not be installed, started or stopped."""


@dataclass
class Emulator:
    """A running emulator, owning its own process group."""

    name: str
    process: subprocess.Popen
    host_port: str
    log_path: Path | None = None
    _before_stop: Callable[[], None] | None = field(default=None, repr=False)

    def stop(self, timeout: float = 10) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after timeout seconds."""
        _running.pop(self.process.pid, None)
        hook, self._before_stop = self._before_stop, None
        if hook is not None and self.process.poll() is None:
            try:
                hook()
            except Exception:
                logger.exception("%s: step before stopping failed", self.name)
        pgid = self.process.pid
        _signal_group(pgid, signal.SIGTERM)
        if not _wait_group_gone(self.process, timeout):
            logger.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
            _signal_group(pgid, signal.SIGKILL)
            if not _wait_group_gone(self.process, 5):
                raise EmulatorError(f"{self.name}: process group {pgid} survived SIGKILL")
        logger.info("%s on %s stopped", self.name, self.host_port)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def process_group_members(pgid: int) -> list[int]:
    """Return the live (non-zombie) pids whose process group is pgid."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for stat_path in proc.glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, pgrp, ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat_path.parent.name))
    return members


def start_firestore(
    port: int,
    *,
    project: str,
    data_dir: Path | None = None,
    log_dir: Path | None = None,
    timeout: float = 60,
) -> Emulator:
    """Start the Firestore emulator on 127.0.0.1:port and wait until it answers."""
    try:
        gcloud = prerequisites.gcloud(os.environ)
        java = prerequisites.java(os.environ, gcloud)  # JAVA_HOME's java when none is on PATH
    except prerequisites.Missing as exc:
        raise EmulatorError(str(exc)) from None
    _ensure_port_free(port)
    host_port = f"{LOOPBACK}:{port}"
    cmd = [str(gcloud), "emulators", "firestore", "start", f"--host-port={host_port}"]
    if data_dir is not None:
        data_dir = Path(data_dir).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        latest = _latest_export(data_dir)
        if latest is not None:
            logger.info("firestore: importing %s", latest)
            cmd.append(f"--import-data={latest}")
    env = dict(os.environ, **java)
    # Keeps gcloud from prompting or reaching out for component updates.
    env["CLOUDSDK_CORE_DISABLE_PROMPTS"] = "1"
    env["CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK"] = "1"
    emulator = _spawn("firestore", cmd, host_port, env, log_dir)
    if data_dir is not None:
        emulator._before_stop = lambda: _export_firestore(host_port, project, data_dir)
    started = time.monotonic()
    _wait_until(emulator, lambda: _firestore_ready(host_port), timeout)
    logger.info("firestore ready on %s in %.1f s", host_port, time.monotonic() - started)
    return emulator


def clear_firestore(host_port: str, project: str) -> None:
    """Delete every document in the emulator's default database of project."""
    url = f"http://{host_port}/emulator/v1/projects/{project}/databases/(default)/documents"
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10):
        pass


def start_cloud_tasks(
    port: int,
    *,
    project: str,
    location: str,
    queue: str,
    max_retries: int = 5,
    log_dir: Path | None = None,
    timeout: float = 60,
    extra_queues: tuple[str, ...] = (),
    oidc: dict | None = None,
) -> Emulator:
    """Start the Cloud Tasks emulator on 127.0.0.1:port and make sure the queue (and `extra_queues`) exist.

    `oidc` = {"token_uri": ..., "keys": {service account email: PEM key file}} lets it attach ID tokens of those
    accounts to the tasks that ask for one (`oidc_token`), as Cloud Tasks does.
    """
    python = _ensure_tasks_venv(log_dir)
    _ensure_port_free(port)
    host_port = f"{LOOPBACK}:{port}"
    cmd = [
        str(python), "-u", "-W", "ignore::FutureWarning", "-c", _TASKS_LAUNCHER,
        "start", f"--port={port}", f"--max-retries={max_retries}",
    ]
    env = dict(os.environ)
    # The emulator venv must not see the product's packages (protobuf 6).
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(name, None)
    env.pop("TASKS_EMULATOR_OIDC", None)
    if oidc:
        env["TASKS_EMULATOR_OIDC"] = json.dumps({**oidc, "root": str(REPO_ROOT)})
    emulator = _spawn("cloud-tasks", cmd, host_port, env, log_dir)
    started = time.monotonic()
    _wait_until(emulator, lambda: accepts_connections(port), timeout)
    for name in (queue, *extra_queues):
        try:
            _create_queue(host_port, project, location, name)
        except Exception as exc:
            emulator.stop()
            raise EmulatorError(f"cloud-tasks: could not create queue {name}: {exc}") from exc
    logger.info("cloud-tasks ready on %s in %.1f s", host_port, time.monotonic() - started)
    return emulator


def _spawn(name: str, cmd: list[str], host_port: str, env: dict[str, str], log_dir: Path | None) -> Emulator:
    log_dir = Path(log_dir) if log_dir is not None else DEFAULT_LOG_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{host_port.rsplit(':', 1)[1]}.log"
    logger.info("starting %s on %s (log: %s)", name, host_port, log_path)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    emulator = Emulator(name=name, process=process, host_port=host_port, log_path=log_path)
    _running[process.pid] = emulator
    return emulator


@atexit.register
def _stop_leftovers() -> None:
    # Emulators run in their own sessions, so nothing else ends them if the caller forgets to.
    for emulator in list(_running.values()):
        try:
            emulator.stop(timeout=5)
        except Exception:
            logger.exception("could not stop %s", emulator.name)


def _wait_until(emulator: Emulator, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        code = emulator.process.poll()
        if code is not None:
            emulator.stop()
            raise EmulatorError(
                f"{emulator.name} exited with code {code} before it was ready; log tail:\n{_log_tail(emulator)}"
            )
        if time.monotonic() > deadline:
            emulator.stop()
            raise EmulatorError(
                f"{emulator.name} not ready on {emulator.host_port} after {timeout:.0f} s; "
                f"log tail:\n{_log_tail(emulator)}"
            )
        time.sleep(0.2)


def _log_tail(emulator: Emulator, lines: int = 30) -> str:
    if emulator.log_path is None or not emulator.log_path.exists():
        return "(no log)"
    text = emulator.log_path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def _ensure_port_free(port: int) -> None:
    # A leftover emulator on the same port would otherwise pass the readiness check. Connections of a stopped one
    # left in TIME_WAIT do not count, so it can be restarted on its port.
    if port_taken(port):
        raise EmulatorError(f"port {LOOPBACK}:{port} is already in use")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _wait_group_gone(process: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    while process_group_members(process.pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _firestore_ready(host_port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host_port}/", timeout=1) as response:
            return response.read().decode(errors="replace").strip() == "Ok"
    except (OSError, urllib.error.URLError):
        return False


def _latest_export(data_dir: Path) -> Path | None:
    exports = list(data_dir.glob("*/*.overall_export_metadata"))
    return max(exports, key=lambda path: path.stat().st_mtime) if exports else None


def _export_firestore(host_port: str, project: str, data_dir: Path) -> None:
    before = {path for path in data_dir.iterdir() if path.is_dir()}
    body = json.dumps(
        {"database": f"projects/{project}/databases/(default)", "export_directory": str(data_dir)}
    ).encode()
    request = urllib.request.Request(
        f"http://{host_port}/emulator/v1/projects/{project}:export",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30):
        pass
    created = {path for path in data_dir.iterdir() if path.is_dir()} - before
    # Each export makes a new timestamped folder; keep only the newest.
    if created:
        for old in before:
            shutil.rmtree(old, ignore_errors=True)
    logger.info("firestore: exported %s to %s", project, data_dir)


def _ensure_tasks_venv(log_dir: Path | None) -> Path:
    python = TASKS_VENV / "bin" / "python"
    if (TASKS_VENV / ".installed").is_file() and python.exists():
        return python
    log_dir = Path(log_dir) if log_dir is not None else DEFAULT_LOG_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "install-tasks-emulator.log"
    logger.info("installing the tasks emulator into %s (log: %s)", TASKS_VENV, log_path)
    env = dict(os.environ, TOOL_VENV=str(TASKS_VENV))
    with log_path.open("wb") as log_file:
        result = subprocess.run(
            ["bash", str(TASKS_INSTALL_SCRIPT), "tasks-emulator"], stdout=log_file, stderr=subprocess.STDOUT, env=env
        )
    if result.returncode != 0 or not python.exists():
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise EmulatorError(
            f"installing the tasks emulator failed (exit {result.returncode}); log tail:\n{tail}"
        )
    return python


def _create_queue(host_port: str, project: str, location: str, queue: str) -> None:
    channel = grpc.insecure_channel(host_port)
    try:
        client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
        parent = f"projects/{project}/locations/{location}"
        try:
            client.create_queue(
                parent=parent, queue=tasks_v2.Queue(name=f"{parent}/queues/{queue}"), timeout=10
            )
        except AlreadyExists:
            pass
    finally:
        channel.close()
