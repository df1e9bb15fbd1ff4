"""`make run`: the whole local stack in the foreground, stopped as one by Ctrl-C or SIGTERM."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from werkzeug.serving import make_server

from dev import prerequisites
from dev.gateway import Gateway, GatewayRequestHandler, routed_functions
from dev.id_tokens import IdTokenSource
from dev.pg import ROOT, embedded, state_dir
from dev.ports import free_port, wait_for_port, wait_port_free

log = logging.getLogger("stack")


# Third-party noise of no use to a developer, off unless the environment sets these itself: gRPC's C core logs
# INFO lines (a GOAWAY when an emulator closes an idle connection; "skipping fork() handlers" when a process that
# used gRPC starts another), and google.api_core warns of the Python version on every import. gRPC's errors still
# show. Fork support is off: nothing here forks a process that goes on using gRPC (children exec at once, and
# functions-framework forks its worker before the function touches gRPC).
QUIET = {"GRPC_VERBOSITY": "ERROR", "GRPC_ENABLE_FORK_SUPPORT": "false"}
API_CORE_NOTICE = "ignore::FutureWarning:google.api_core._python_version_support"


def quiet_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What the stack adds to its own environment, and so to every child's (functions, the fake Google, the
    emulators), to silence that noise; a value the environment already has stays, and its own PYTHONWARNINGS win."""
    added = {name: value for name, value in QUIET.items() if name not in environ}
    python_warnings = environ.get("PYTHONWARNINGS", "")
    if API_CORE_NOTICE not in python_warnings.split(","):
        added["PYTHONWARNINGS"] = ",".join(filter(None, (API_CORE_NOTICE, python_warnings)))
    return added


PROJECT, LOCATION, QUEUE = "local-dev", "us-central1", "meet-tasks"
WEBHOOK_QUEUE = "meet-webhooks"
from shared.settings import LOCAL_DELEGATION_SA, LOCAL_SIGNING_KEY  # noqa: E402  (one source for both)


def delegation_identity(state: Path) -> tuple[str, str, Path]:
    """The key the functions sign delegation assertions with (made once under the state dir unless
    GOOGLE_SIGNING_KEY_FILE names one), its service account, and its public half for the Google root to trust."""
    from dev.fake_google.identity import ensure_private_key, public_key_pem

    key_file = Path(os.environ.get("GOOGLE_SIGNING_KEY_FILE") or ensure_private_key(state / LOCAL_SIGNING_KEY))
    account = os.environ.get("GOOGLE_DELEGATION_SA") or LOCAL_DELEGATION_SA
    public = state / "google-signing-key.pub.pem"
    public.write_text(public_key_pem(key_file.read_text()))
    return str(key_file), account, public


# The accounts Cloud Tasks and Cloud Scheduler (the invoker) and API Gateway present ID tokens of. Their keys are made
# under the state dir and trusted by the Google root like uploaded service-account keys; in the cloud Google mints
# those tokens itself (docs/decisions/0009).
LOCAL_INVOKER_SA = "meet-invoker@local-dev.iam.gserviceaccount.com"
LOCAL_GATEWAY_SA = "meet-gateway@local-dev.iam.gserviceaccount.com"
ID_TOKEN_KEY = "google-id-token-key.pem"  # the fake Google's own signing key of the ID tokens it issues


def service_account_key(state: Path, name: str) -> tuple[Path, Path]:
    """A service account's key under the state dir (made once) and its public half, for the Google root to trust."""
    from dev.fake_google.identity import ensure_private_key, public_key_pem

    key = ensure_private_key(state / f"{name}-key.pem")
    public = state / f"{name}-key.pub.pem"
    public.write_text(public_key_pem(key.read_text()))
    return key, public


def secret_file(path: Path) -> str:
    """A random secret kept in `path` (owner-only), made on first use: local stand-in for a Secret Manager secret."""
    import secrets

    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def trust_key(google_root: str, account: str, public: Path) -> None:
    """Tell a Google root given by GOOGLE_API_ROOT which key signs for the account, if it is this product's fake."""
    from dev.fake_google import FakeGoogleControl, FakeGoogleControlError

    control = FakeGoogleControl(google_root, timeout=5)
    try:
        control.register_service_account(account, public.read_text())
    except (FakeGoogleControlError, OSError) as exc:
        log.warning("could not register the signing key with %s (%s): it must already trust %s",
                    google_root, type(exc).__name__, public)
    finally:
        control.close()


class Component:
    """One part of the stack that Cloud Run (or Google) would keep running: restarted when it dies."""

    name: str

    def alive(self) -> bool:
        raise NotImplementedError

    def exit_code(self) -> int | None:
        return None

    def restart(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class Process(Component):
    """A process in a process group of its own (a function under functions-framework, the fake Google)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int | None = None):
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(self.argv, env=self.env, cwd=ROOT, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def exit_code(self) -> int | None:
        return self.process.poll()

    def restart(self) -> None:
        # What is left of its group (gunicorn workers outliving their master) goes first, freeing the port.
        _kill_group(self.process.pid)
        if self.port is not None:
            wait_port_free(self.port, 15)
        self.process = self._spawn()
        if self.port is not None:
            wait_for_port(self.port, self.process, 60, self.name)

    def signal_stop(self) -> None:
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        self.signal_stop()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", self.name)
        _kill_group(self.process.pid)


class EmulatorSlot(Component):
    """An emulator, started again on the same port by the same call when it dies."""

    def __init__(self, name: str, start):
        self.name, self._start = name, start
        self.emulator = start()

    def alive(self) -> bool:
        return self.emulator.process.poll() is None

    def exit_code(self) -> int | None:
        return self.emulator.process.poll()

    def restart(self) -> None:
        self.emulator.stop(timeout=5)
        self.emulator = self._start()

    def stop(self) -> None:
        self.emulator.stop()


class EmbeddedPostgres(Component):
    """The embedded PostgreSQL: started again on the same data directory (and socket) when its postmaster dies."""

    name = "postgresql"

    def __init__(self, server):
        self.server = server

    def alive(self) -> bool:
        from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.server.pgdata)
        return info is not None and info.is_running()

    def restart(self) -> None:
        with self.server._lock:  # pgserver's own start path, as get_server takes it
            self.server.ensure_postgres_running()

    def stop(self) -> None:
        self.server.cleanup()


C = TypeVar("C", bound=Component)


class Stack:
    """Starts each component in its own process group, restarts what dies, and stops them all, newest first."""

    # A component that keeps dying is retried after 1, 2, 4... seconds, at most this long apart.
    MAX_BACKOFF = 30.0

    def __init__(self):
        self.components: list[Component] = []
        self.gateway_server = None
        self._failures: dict[str, tuple[int, float]] = {}  # name -> (consecutive failures, next attempt)

    def add(self, component: C) -> C:
        self.components.append(component)
        return component

    def spawn(self, name: str, argv: list[str], env: dict[str, str], port: int | None = None) -> Process:
        return self.add(Process(name, argv, env, port))

    def heal(self) -> bool:
        """Restart whatever has died since the last look (as Cloud Run replaces a crashed instance); True when
        something was restarted."""
        healed = False
        for component in self.components:
            if component.alive():
                continue
            failures, next_attempt = self._failures.get(component.name, (0, 0.0))
            if time.monotonic() < next_attempt:
                continue
            log.error("%s is down (exit code %s); restarting it", component.name, component.exit_code())
            try:
                component.restart()
            except Exception as exc:  # it is tried again after a backoff; the rest of the stack keeps serving
                failures += 1
                wait = min(self.MAX_BACKOFF, 2.0 ** (failures - 1))
                log.error("%s did not restart (%s); next try in %.0f s", component.name, exc, wait)
                self._failures[component.name] = (failures, time.monotonic() + wait)
                continue
            self._failures.pop(component.name, None)
            log.info("%s restarted", component.name)
            healed = True
        return healed

    def stop(self) -> None:
        if self.gateway_server is not None:
            self.gateway_server.shutdown()
        # Every process is told at once, then each is waited for (and its group killed if it lingers).
        for component in reversed(self.components):
            if isinstance(component, Process):
                component.signal_stop()
        for component in reversed(self.components):
            try:
                component.stop()
            except Exception as exc:
                log.warning("could not stop %s: %s", component.name, exc)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _kill_group(pgid: int) -> None:
    from dev.emulators import process_group_members

    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while process_group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)


def ensure_key(db_url: str, path: Path, *, name: str = "local-dev", role: str = "service") -> str:
    """A ready-to-use key, kept under the state dir and reused while it stays valid."""
    from shared.adapters.postgres.db import Database, local_connector
    from shared.domain.errors import Unauthenticated
    from shared.services import auth

    db = Database(local_connector(db_url), size=1)
    try:
        if path.exists():
            try:
                auth.authenticate(db, f"Bearer {path.read_text().strip()}")
                return path.read_text().strip()
            except Unauthenticated:
                pass
        key = auth.mint_key(db, name=name, role=role)
        path.write_text(key)
        path.chmod(0o600)
        return key
    finally:
        db.close()


def webhook_env(state: Path, base: str) -> dict[str, str]:
    """Webhooks as in the cloud, with a local encryption key kept under the state dir and local receivers allowed."""
    from shared.adapters.secret_box import new_key

    path = state / "webhook-secrets-key"
    if not path.exists():
        path.write_text(new_key())
        path.chmod(0o600)
    return {"WEBHOOK_SECRETS_KEY": os.environ.get("WEBHOOK_SECRETS_KEY") or path.read_text().strip(),
            "WEBHOOK_TASKS_QUEUE": f"projects/{PROJECT}/locations/{LOCATION}/queues/{WEBHOOK_QUEUE}",
            "DELIVER_WEBHOOKS_URL": f"{base}/internal/deliver-webhooks",
            "WEBHOOK_ALLOW_LOOPBACK_HTTP": os.environ.get("WEBHOOK_ALLOW_LOOPBACK_HTTP", "true")}


def scheduler_loop(urls: list[str], invoker, interval: float, stopping: threading.Event) -> None:
    """Cloud Scheduler's part: POST `{}` to each sweep every `interval` seconds with the invoker's ID token, whose
    audience is the sweep's URL (as infra/terraform/scheduler.tf has it)."""
    import urllib.request

    while not stopping.wait(interval):
        for url in urls:
            path = url.rsplit("/", 1)[-1]
            try:
                request = urllib.request.Request(url, data=b"{}", method="POST", headers={
                    "Content-Type": "application/json", "Authorization": f"Bearer {invoker.token(url)}"})
                with urllib.request.urlopen(request, timeout=300) as response:
                    log.info("sweep %s: %s", path, response.read().decode()[:300])
            except Exception as exc:  # a failed sweep is reported and tried again at the next tick
                log.warning("sweep %s failed: %s", path, type(exc).__name__)


def main() -> int:
    try:
        prerequisites.check(os.environ)  # before anything starts: one line, within a second
    except prerequisites.Missing as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    os.environ.update(quiet_environment(os.environ))  # before gRPC is loaded: it reads them once
    warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core._python_version_support")
    logging.basicConfig(level=logging.INFO, format="[stack] %(message)s", stream=sys.stderr)
    state = state_dir()
    state.mkdir(parents=True, exist_ok=True)
    gateway_port = int(os.environ.get("GATEWAY_PORT") or "8080")
    stack = Stack()
    stopping = threading.Event()

    def on_signal(signum, _frame):
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        db_url = os.environ.get("DATABASE_URL")
        if not db_url:
            server, db_url = embedded(state / "pgdata")
            stack.add(EmbeddedPostgres(server))
            log.info("embedded PostgreSQL ready (data in %s)", state / "pgdata")
        from shared.adapters.postgres import migrate
        from shared.adapters.postgres.db import Database, local_connector

        db = Database(local_connector(db_url), size=1)
        applied = migrate.migrate(db)
        db.close()
        log.info("migrations: %s", ", ".join(applied) if applied else "up to date")

        key_file, delegation_sa, public_key = delegation_identity(state)
        invoker_key, invoker_public = service_account_key(state, "invoker")
        gateway_key, gateway_public = service_account_key(state, "gateway")
        accounts = {delegation_sa: public_key, LOCAL_INVOKER_SA: invoker_public, LOCAL_GATEWAY_SA: gateway_public}
        google_root = os.environ.get("GOOGLE_API_ROOT")
        if not google_root:
            port = int(os.environ.get("FAKE_GOOGLE_PORT") or free_port())
            trusted = [arg for account, public in accounts.items() for arg in ("--service-account",
                                                                                f"{account}={public}")]
            fake = stack.spawn("fake-google", [sys.executable, "-m", "dev.fake_google", "--host", "127.0.0.1",
                                               "--port", str(port), "--id-token-key", str(state / ID_TOKEN_KEY),
                                               "--state-file", str(state / "fake-google.json"), *trusted],
                               dict(os.environ), port=port)
            wait_for_port(port, fake.process, 30, "fake Google")
            google_root = f"http://127.0.0.1:{port}/"
        else:
            google_root = google_root.rstrip("/") + "/"
            for account, public in accounts.items():
                trust_key(google_root, account, public)
        token_uri = f"{google_root}token"
        invoker = IdTokenSource(LOCAL_INVOKER_SA, invoker_key, token_uri)

        from dev import emulators

        firestore_port, tasks_port = free_port(), free_port()
        firestore = stack.add(EmulatorSlot("firestore", lambda: emulators.start_firestore(
            firestore_port, project=PROJECT, data_dir=state / "firestore", log_dir=state / "logs"))).emulator
        # Restarted, it has forgotten its queued tasks (its state is in memory): the sweeps enqueue what is due.
        cloud_tasks = stack.add(EmulatorSlot("cloud-tasks", lambda: emulators.start_cloud_tasks(
            tasks_port, project=PROJECT, location=LOCATION, queue=QUEUE, log_dir=state / "logs",
            extra_queues=(WEBHOOK_QUEUE,),
            oidc={"token_uri": token_uri, "keys": {LOCAL_INVOKER_SA: str(invoker_key)}}))).emulator
        base = f"http://127.0.0.1:{gateway_port}"
        # The clinic's Workspace in miniature, unless the environment names another.
        workspace = {"WORKSPACE_DOMAIN": os.environ.get("WORKSPACE_DOMAIN") or "clinica.com",
                     "DEFAULT_CALENDAR_OWNER": os.environ.get("DEFAULT_CALENDAR_OWNER") or "agenda@clinica.com"}
        env = dict(os.environ, **workspace, DATABASE_URL=db_url, GOOGLE_API_ROOT=google_root, PYTHONUNBUFFERED="1",
                   GOOGLE_SIGNING_KEY_FILE=key_file, GOOGLE_DELEGATION_SA=delegation_sa,
                   GOOGLE_CLOUD_PROJECT=PROJECT, FIRESTORE_EMULATOR_HOST=firestore.host_port,
                   FIRESTORE_DATABASE="(default)", TASKS_EMULATOR_HOST=cloud_tasks.host_port,
                   TASKS_QUEUE=f"projects/{PROJECT}/locations/{LOCATION}/queues/{QUEUE}",
                   CHECK_STATUS_URL=f"{base}/internal/check-status",
                   SYNC_RECORDINGS_URL=f"{base}/internal/sync-recordings",
                   # Internal functions take the invoker's ID tokens, verified against the Google root's
                   # certificates exactly as against Google's in the cloud.
                   TASKS_INVOKER_SA=LOCAL_INVOKER_SA, OIDC_CERTS_URL=f"{google_root}oauth2/v1/certs",
                   PAGE_TOKEN_KEY=os.environ.get("PAGE_TOKEN_KEY") or secret_file(state / "page-token-key"),
                   **webhook_env(state, base))
        ports = {name: free_port() for name in routed_functions()}
        functions = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        # Public functions read X-Forwarded-Authorization only beside the gateway's ID token, whose audience is the
        # function's address (as API Gateway's is).
        env.update(GATEWAY_SA=LOCAL_GATEWAY_SA, OIDC_AUDIENCES=json.dumps(list(functions.values())))
        ff = str(Path(sys.executable).with_name("functions-framework"))
        started = [stack.spawn(name, [ff, "--target", name, "--source", str(ROOT / "functions" / name / "main.py"),
                                      "--host", "127.0.0.1", "--port", str(port)], env, port=port)
                   for name, port in ports.items()]
        for function in started:
            wait_for_port(ports[function.name], function.process, 60, f"function {function.name}")

        # The gateway signs its calls to the public functions as API Gateway does, and adds nothing to internal
        # ones: task deliveries and sweeps carry the invoker's ID token themselves.
        gateway = Gateway(functions, identity=IdTokenSource(LOCAL_GATEWAY_SA, gateway_key, token_uri),
                          body_seconds=float(os.environ.get("BODY_READ_TIMEOUT_SECONDS") or 10))
        stack.gateway_server = make_server("127.0.0.1", gateway_port, gateway, threaded=True,
                                           request_handler=GatewayRequestHandler)
        threading.Thread(target=stack.gateway_server.serve_forever, daemon=True).start()
        key = ensure_key(db_url, state / "dev-api-key")
        interval = float(os.environ.get("SWEEP_INTERVAL_SECONDS", "60"))
        if interval > 0:
            sweeps = [env["CHECK_STATUS_URL"], env["SYNC_RECORDINGS_URL"], env["DELIVER_WEBHOOKS_URL"]]
            threading.Thread(target=scheduler_loop, args=(sweeps, invoker, interval, stopping), daemon=True).start()
        def write_info() -> None:
            (state / "stack.json").write_text(json.dumps(
                {"gateway": base, "google_api_root": google_root, "functions": functions, "pid": os.getpid(),
                 "pids": {**{c.name: c.process.pid for c in stack.components if isinstance(c, Process)},
                          **{c.name: c.emulator.process.pid for c in stack.components if isinstance(c, EmulatorSlot)}},
                 "firestore": firestore.host_port, "cloud_tasks": cloud_tasks.host_port,
                 "tasks_queue": env["TASKS_QUEUE"], "webhook_tasks_queue": env["WEBHOOK_TASKS_QUEUE"],
                 "tasks_invoker_sa": LOCAL_INVOKER_SA, "project": PROJECT},
                indent=2))

        write_info()
        print(f"\nMeet middleware is serving at {base}\n"
              f"  API docs:       {base}/v1/docs\n"
              f"  OpenAPI:        {base}/v1/openapi.json\n"
              f"  Health:         {base}/v1/health\n"
              f"  Google root:    {google_root}\n"
              f"  Google as:      {delegation_sa} (domain-wide delegation, key {key_file})\n"
              f"  Firestore:      {firestore.host_port} (emulator)\n"
              f"  Cloud Tasks:    {cloud_tasks.host_port} (emulator, queue {QUEUE})\n"
              f"  Sweeps:         every {interval:g} s\n"
              f"  Invoker:        {LOCAL_INVOKER_SA} (ID tokens of tasks and sweeps)\n"
              + "  Functions:\n" + "".join(f"    {n:<18}{u}\n" for n, u in functions.items())
              + f"  API key:        {key}\n"
              f"Press Ctrl-C to stop.\n", flush=True)
        while not stopping.wait(1.0):
            if stack.heal():
                write_info()
        log.info("stopping")
        return 0
    except Exception as exc:  # start-up failures are reported plainly, then everything started is stopped
        log.error("could not start the stack: %s", exc)
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
