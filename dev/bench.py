"""`make bench`: every performance figure of the product as a ratio against baselines started in the same run.

Baselines: a hello-world functions-framework function (the floor: what any function pays) and minimal
functions-framework functions doing the same work with pg8000 (and google-api-python-client for a create) without
anything else (the limit: what the same SQL costs when nothing else is done). Every server runs as Cloud Functions
runs it: functions-framework, gunicorn with 1 worker and 8 threads, the embedded PostgreSQL, the fake Google in
its own process answering at once (0 ms).

Phases, one after another so none competes with another for the CPU:
1. import profile of each function (`python -X importtime`), 2. cold starts to the first 200, 3. warm reads, list
and creates under concurrent load (product and limit in turns: A B A B), with memory after the load, 4. sweeps
with 1,000 due meetings among 1,000 and among 100,000.

Prints a table of every figure with its target and whether it holds, and writes `<state dir>/bench/results.json`.
Knobs: BENCH_COLD_RUNS (15), BENCH_SECONDS (3 per round), BENCH_ROUNDS (2), BENCH_CONCURRENCY (8),
BENCH_SWEEP_DUE (1000), BENCH_SWEEP_TABLE (100000).
"""
from __future__ import annotations

import http.client
import json
import logging
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from dev.pg import ROOT, embedded, state_dir
from dev.ports import free_port

log = logging.getLogger("bench")

FUNCTIONS = ("get_meeting", "create_meeting", "update_meeting", "cancel_meeting", "check_status", "sync_recordings")
# The client libraries the performance model prices highest; no function may import them at cold start.
HEAVY_MODULES = ("googleapiclient", "google.cloud.firestore", "google.cloud.tasks_v2", "google.cloud.sql.connector",
                 "google.auth", "grpc")

COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "15"))
SETTLE_S = 0.25  # between two cold starts
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
SWEEP_DUE = int(os.environ.get("BENCH_SWEEP_DUE", "1000"))
SWEEP_TABLE = int(os.environ.get("BENCH_SWEEP_TABLE", "100000"))
READ_MEETINGS = 200
THREADS = "8"

FF = str(Path(sys.executable).with_name("functions-framework"))

# Targets: (figure, comparison, bound). Ratios are product ÷ baseline of the same run.
TARGETS = {
    "read_vs_limit": (">=", 0.8),
    "list_vs_limit": (">=", 0.7),
    "create_vs_limit": (">=", 1.05),
    "cold_get_vs_hello": ("<=", 1.8),
    "cold_create_vs_hello": ("<=", 2.5),
    "memory_get_mib": ("<", 256),
    "memory_create_mib": ("<", 256),
    "sweep_check_time_ratio": ("<=", 1.5),
    "sweep_check_statements_ratio": ("<=", 1.05),
    "sweep_sync_time_ratio": ("<=", 1.5),
    "sweep_sync_statements_ratio": ("<=", 1.05),
}

HELLO_SOURCE = '''import functions_framework


@functions_framework.http
def hello(request):
    return "ok"
'''

# The limit: the product's own SQL texts, run with plain pg8000 (one autocommit connection per thread, no auth,
# no models), the row returned as JSON. LIMIT_PREPARED=1 prepares each statement once per connection instead.
LIMIT_SOURCE = '''import json
import os
import threading
import uuid
from datetime import datetime, timedelta, timezone

import functions_framework
import pg8000.dbapi
import pg8000.native

pg8000.dbapi.paramstyle = "named"
SQL = json.loads(os.environ["LIMIT_SQL"])
CONNECT = json.loads(os.environ["LIMIT_CONNECT"])
PREPARED = os.environ.get("LIMIT_PREPARED") == "1"
_local = threading.local()


def _connection():
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = pg8000.dbapi.connect(**CONNECT)
        conn.autocommit = True
        _local.prepared = {}
    return conn


def _rows(sql, **params):
    conn = _connection()
    if PREPARED:
        statement = _local.prepared.get(sql)
        if statement is None:
            statement = _local.prepared[sql] = pg8000.native.PreparedStatement(conn, sql)
        return statement.run(**params)
    cursor = conn.cursor()
    cursor.execute(sql, params)
    return cursor.fetchall()


def _json(value):
    return json.dumps(value, default=str)


_calendar = {}


def _service(api, version):
    # The same google-api-python-client service objects the product builds (its identity path included).
    if "apis" not in _calendar:
        from shared.adapters.google import GoogleApis
        from shared.settings import get_settings

        _calendar["apis"] = GoogleApis(get_settings())
    return _calendar["apis"].service(api, version, "doctor@clinica.com")


@functions_framework.http
def limit(request):
    parts = request.path.strip("/").split("/")
    if request.method == "GET" and len(parts) == 3:
        rows = _rows(SQL["get"], id=parts[2])
        if not rows:
            return "not found", 404
        return _json(rows[0]), 200, {"Content-Type": "application/json"}
    if request.method == "GET":
        rows = _rows(SQL["list"], c=SQL["client_id"], limit=21)
        return _json({"items": rows[:20]}), 200, {"Content-Type": "application/json"}
    body = request.get_json()
    meeting_id = str(uuid.uuid4())
    event = _service("calendar", "v3").events().insert(calendarId="primary", conferenceDataVersion=1,
                                                       sendUpdates="all", body={
        "id": uuid.UUID(meeting_id).hex, "summary": "Video appointment",
        "start": {"dateTime": body["scheduled_start"]}, "end": {"dateTime": body["scheduled_end"]},
        "attendees": [{"email": body["organizer_email"], "organizer": True},
                      *({"email": e} for e in body["invited_emails"])],
        "conferenceData": {"createRequest": {"requestId": meeting_id,
                                             "conferenceSolutionKey": {"type": "hangoutsMeet"}}}}).execute()
    code = (event.get("conferenceData") or {}).get("conferenceId")
    # The patient-safe room the product applies to every new meeting: its space read, its access restricted.
    spaces = _service("meet", "v2").spaces()
    space = spaces.get(name=f"spaces/{code}").execute()
    spaces.patch(name=space["name"], body={"config": {"accessType": "RESTRICTED"}},
                 updateMask="config.accessType").execute()
    conn = _connection()
    conn.autocommit = False
    try:
        cursor = conn.cursor()
        cursor.execute(SQL["insert"], dict(
            id=meeting_id, client=SQL["client_id"], ref=body["external_reference"], org=body["organizer_email"],
            start=body["scheduled_start"], end=body["scheduled_end"], event=event["id"],
            link=event.get("hangoutLink"), code=code))
        for position, email in enumerate([body["organizer_email"], *body["invited_emails"]]):
            cursor.execute(SQL["participant"], dict(m=meeting_id, email=email, role="guest" if position else
                                                    "organizer", pos=position))
        conn.commit()
    finally:
        conn.autocommit = True
    return _json({"id": meeting_id, "meet_link": event.get("hangoutLink")}), 201, {"Content-Type": "application/json"}
'''

LIMIT_INSERT = (
    "INSERT INTO meetings (id, client_id, external_reference, request_fingerprint, status, organizer_email, title,"
    " time_zone, scheduled_start, scheduled_end, google_event_id, meet_link, meeting_code, conference_status)"
    " VALUES (:id, :client, :ref, 'limit', 'CREATED', :org, 'Video appointment', 'UTC', :start, :end, :event,"
    " :link, :code, 'success')")
LIMIT_PARTICIPANT = "INSERT INTO participants (meeting_id, email, role, position) VALUES (:m, :email, :role, :pos)"


class BenchError(RuntimeError):
    """A measurement could not be taken (a process died, a request failed): the run is not valid."""


# ---------------------------------------------------------------------------------------------------- helpers


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * q)) - 1]


def clean_env(**extra: str) -> dict[str, str]:
    """This shell's environment without any product setting, so only what the bench sets reaches a function."""
    from shared.settings import Settings

    settings = {name.upper() for name in Settings.model_fields} | {"GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST",
                                                                   "THREADS", "WORKERS"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    return dict(env, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), **extra)


def memory_of(pgid: int) -> dict:
    """The gunicorn worker's VmRSS and the process group's summed PSS, in MiB."""
    worker_rss = pss = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid:
                continue
            status = (entry / "status").read_text()
            rollup = (entry / "smaps_rollup").read_text()
        except (OSError, ValueError):
            continue
        rss = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
        found = re.search(r"^Pss:\s+(\d+) kB", rollup, re.M)
        pss += int(found.group(1)) if found else 0
        if int(entry.name) != pgid:  # the master is the group leader; the worker is its child
            worker_rss = max(worker_rss, rss)
    return {"worker_rss_mib": round(worker_rss / 1024, 1), "group_pss_mib": round(pss / 1024, 1)}


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds used so far by the live processes of a process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


class Server:
    """One function under functions-framework (1 worker, 8 threads) in its own process group."""

    def __init__(self, target: str, source: Path, env: dict[str, str], log_path: Path):
        self.target, self.source, self.env, self.log_path = target, source, env, log_path
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.started = 0.0

    def start(self, python_flags: tuple[str, ...] = ()) -> "Server":
        launcher = [sys.executable, *python_flags, FF] if python_flags else [FF]
        with open(self.log_path, "ab") as out:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(
                [*launcher, "--target", self.target, "--source", str(self.source), "--host", "127.0.0.1",
                 "--port", str(self.port)], cwd=ROOT, env=dict(self.env, THREADS=THREADS, WORKERS="1"),
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_open(self, timeout: float = 60) -> float:
        """perf_counter() when the port first accepts a connection (polled every 2 ms)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.target} exited with {self.process.returncode}:\n"
                                 f"{self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return time.perf_counter()
            except OSError:
                time.sleep(0.002)
        raise BenchError(f"{self.target} did not open its port within {timeout:.0f} s")

    def memory(self) -> dict:
        return memory_of(self.process.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass


def call(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
         conn: http.client.HTTPConnection | None = None, timeout: float = 60) -> tuple[int, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={**(headers or {}),
                                                        **({"Content-Type": "application/json"} if body else {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


def slot(offset: int) -> tuple[str, str]:
    start = (datetime.now(timezone.utc) + timedelta(days=2, minutes=offset % 5000)).replace(second=0, microsecond=0)
    return start.isoformat(), (start + timedelta(minutes=30)).isoformat()


def create_body(reference: str) -> bytes:
    start, end = slot(abs(hash(reference)))
    return json.dumps({"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
                       "scheduled_start": start, "scheduled_end": end, "external_reference": reference}).encode()


# ---------------------------------------------------------------------------------------------------- the world


@dataclass
class World:
    """What every server of the run shares: the database, the fake Google, a client key and its meetings."""

    db_url: str
    google_url: str
    google: dict[str, str]
    key: str
    client_id: str
    meeting_ids: list[str]
    work: Path

    def env(self, **extra: str) -> dict[str, str]:
        # The product's pool holds one connection per gunicorn thread, as deployed (DB_POOL_SIZE = concurrency).
        return clean_env(DATABASE_URL=self.db_url, GOOGLE_API_ROOT=self.google_url, DB_POOL_SIZE=THREADS,
                         **{k.upper(): v for k, v in self.google.items()}, **extra)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def server(self, name: str, **extra: str) -> Server:
        if name == "hello":
            return Server("hello", self.work / "hello" / "main.py", self.env(), self.work / "logs" / "hello.log")
        if name.startswith("limit"):
            from shared.adapters.postgres import repository as repo
            from shared.adapters.postgres.db import connect_kwargs

            sql = {"get": repo._SELECT + " WHERE m.id = :id",
                   "list": repo._SELECT + " WHERE m.client_id = :c ORDER BY m.created_at DESC, m.id DESC LIMIT :limit",
                   "insert": LIMIT_INSERT, "participant": LIMIT_PARTICIPANT, "client_id": self.client_id}
            env = self.env(LIMIT_SQL=json.dumps(sql), LIMIT_CONNECT=json.dumps(connect_kwargs(self.db_url)),
                           LIMIT_PREPARED="1" if name == "limit-prepared" else "0", **extra)
            return Server("limit", self.work / "limit" / "main.py", env, self.work / "logs" / f"{name}.log")
        return Server(name, ROOT / "functions" / name / "main.py", self.env(**extra),
                      self.work / "logs" / f"{name}.log")


def google_settings(identity: dict[str, str], google_url: str, **extra: Any):
    """The product's settings for the fake: make run's delegation identity and Workspace, Tasks and Firestore off."""
    from shared.settings import Settings

    return Settings(database_url=extra.pop("database_url"), google_api_root=google_url, tasks_queue=None,
                    firestore_database=None, **identity, **extra)


def build_world(server, base_url: str, google_url: str, identity: dict[str, str], work: Path) -> World:
    from shared import bootstrap
    from shared.services import auth
    from shared.services.meetings import create_meeting
    from shared.web.models import MeetingCreate

    url = fresh_database(server, base_url, "bench")
    d = bootstrap.Deps(google_settings(identity, google_url, database_url=url))
    key = auth.mint_key(d.db, name="bench-client", role="service")
    principal = auth.authenticate(d.db, f"Bearer {key}")
    ids = []
    for i in range(READ_MEETINGS):  # made by the product itself, so they are what a read really finds
        data = MeetingCreate.model_validate_json(create_body(f"bench-read-{i}"))
        made, _ = create_meeting(data, principal=principal, db=d.db, calendar=d.calendar, tasks=d.tasks,
                                 settings=d.settings, clock=d.clock)
        ids.append(made.id)
    d.db.close()
    return World(url, google_url, identity, key, principal.client_id, ids, work)


def fresh_database(server, base_url: str, name: str) -> str:
    """An empty, migrated database of that name on the embedded server (dropped first if a past run left it)."""
    from shared.adapters.postgres import migrate
    from shared.adapters.postgres.db import Database, local_connector

    if "(1 row)" in server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';"):
        server.psql(f'DROP DATABASE "{name}" WITH (FORCE);')
    server.psql(f'CREATE DATABASE "{name}";')
    url = re.sub(r"/[^/?]+\?", f"/{name}?", base_url)
    db = Database(local_connector(url), size=1)
    migrate.migrate(db)
    db.close()
    return url


# ---------------------------------------------------------------------------------------------------- 1. imports


def parse_importtime(stderr: str) -> list[tuple[int, int, int, str]]:
    """(depth, self us, cumulative us, module) for each line of `python -X importtime`."""
    rows = []
    for line in stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if found:
            rows.append((len(found.group(3)) // 2, int(found.group(1)), int(found.group(2)), found.group(4)))
    return rows


def compile_as_deployed(work: Path) -> int:
    """Compile the functions' code to bytecode as the deployment's build does, before anything is timed.

    Cloud Functions' Python build runs `python3 -m compileall -f -q .` over each function's source
    (GoogleCloudPlatform/buildpacks, cmd/python/functions_framework/lib/lib.go), so a deployed instance reads its
    modules' bytecode and never compiles them at start; pip compiles the installed packages likewise. Without this a
    checkout that writes no bytecode (PYTHONDONTWRITEBYTECODE, a read-only tree) would time the compiler instead: the
    product's modules take 50 to 60 ms to compile, 20 to 30 ms of them in a function's cold start.
    Returns how many source files were compiled."""
    import compileall

    trees = (ROOT / "shared", ROOT / "functions", work / "hello", work / "limit")
    for tree in trees:
        if not compileall.compile_dir(tree, quiet=1, force=True):
            raise BenchError(f"compiling {tree} failed")
    return sum(1 for tree in trees for _ in tree.rglob("*.py"))


def import_profile(name: str, world: World) -> dict:
    """`import main` of a function as functions-framework does it (its directory first on sys.path), fresh
    interpreters; the median run's profile: total, modules, the heaviest direct imports, heavy clients loaded."""
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'functions' / name)!r}); import main"
    runs = []
    for attempt in range(4):  # the first run warms the page cache: not counted
        result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, env=world.env(),
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise BenchError(f"importing {name} failed:\n{result.stderr[-2000:]}")
        if attempt:
            runs.append(parse_importtime(result.stderr))
    totals = [next(r[2] for r in rows if r[0] == 0 and r[3] == "main") for rows in runs]
    rows = runs[sorted(range(len(runs)), key=lambda i: totals[i])[len(runs) // 2]]
    modules = {r[3] for r in rows}
    main_at = next(i for i, r in enumerate(rows) if r[0] == 0 and r[3] == "main")
    first = main_at
    while first > 0 and rows[first - 1][0] > 0:
        first -= 1
    direct = sorted((r for r in rows[first:main_at] if r[0] == 1), key=lambda r: -r[2])
    return {"import_main_ms": round(statistics.median(totals) / 1000, 1), "modules": len(modules),
            "heaviest_direct_imports_ms": {r[3]: round(r[2] / 1000, 1) for r in direct[:6]},
            "heavy_clients_at_import": [m for m in HEAVY_MODULES
                                        if any(x == m or x.startswith(m + ".") for x in modules)]}


def api_core_scan(world: World) -> dict:
    """Two costs of a create's first request that are not the product's own, measured alone.

    google.api_core's Python-version check, run again as its import ran it (with no cached scan): on Python 3.11
    from 2026-10-24 (a year before its end of life) it warns, and to name the package in the warning it reads the
    metadata of every installed distribution (importlib.metadata.packages_distributions); on 3.12, the functions'
    runtime (decision 0011), it has nothing to warn about until 2027-10. And the local signing key, as the product
    loads it (without the RSA consistency checks: its own key); in the cloud IAM signs (a network call) instead.
    """
    code = ("import time, warnings, importlib.metadata as m; from google.api_core import _python_version_support as v;"
            " v._cached_packages_distributions.cache_clear(); warnings.simplefilter('ignore'); t = time.perf_counter();"
            " s = v.check_python_version(package='google.api_core'); e = time.perf_counter() - t;"
            " print(len({x for d in m.packages_distributions().values() for x in d}), s.name, e)")
    samples = []
    for _ in range(3):
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=world.env(), capture_output=True,
                                text=True, timeout=60, check=True)
        count, status, seconds = result.stdout.split()
        samples.append(float(seconds))
    code = ("import time; from shared.settings import Settings; from shared.adapters import google; s = Settings();"
            " t = time.perf_counter(); google._signer(s); print(time.perf_counter() - t)")
    loads = [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=world.env(), capture_output=True,
                                  text=True, timeout=60, check=True).stdout) for _ in range(3)]
    return {"ms": round(statistics.median(samples) * 1000, 1), "distributions": int(count), "status": status,
            "signing_key_load_ms": round(statistics.median(loads) * 1000, 1)}


# ---------------------------------------------------------------------------------------------------- 2. cold starts


def cold_start(world: World, name: str, nth: int) -> dict:
    """Process start -> the first 200 (201) of the function's first request, as a new instance serves it."""
    server = world.server(name).start()
    try:
        port_open = server.wait_open()
        if name == "hello":
            status, _ = call(server.port, "GET", "/")
        elif name == "get_meeting":
            status, _ = call(server.port, "GET", f"/v1/meetings/{world.meeting_ids[nth % len(world.meeting_ids)]}",
                             headers=world.auth)
        else:
            status, _ = call(server.port, "POST", "/v1/meetings", create_body(f"bench-cold-{uuid.uuid4().hex}"),
                             headers=world.auth)
        answered = time.perf_counter()
        cpu = group_cpu_s(server.process.pid)
        if status not in (200, 201):
            raise BenchError(f"{name}'s first request answered {status}")
    finally:
        server.stop()
    return {"port_open_s": port_open - server.started, "first_200_s": answered - server.started, "cpu_s": cpu}


def cold_starts(world: World) -> dict:
    runs: dict[str, list[dict]] = {name: [] for name in ("hello", "get_meeting", "create_meeting")}
    for nth in range(COLD_RUNS):  # round-robin: drift on the machine spreads over every function alike
        for name in runs:
            # The server before has exited; its database backend and the kernel's freeing of its memory may not
            # have: let them settle so that one start's teardown is not timed as part of the next.
            time.sleep(SETTLE_S)
            runs[name].append(cold_start(world, name, nth))
    out = {}
    for name, samples in runs.items():
        out[name] = {key: round(statistics.median(s[key] for s in samples), 3) for key in samples[0]}
        out[name]["samples_first_200_s"] = [round(s["first_200_s"], 3) for s in samples]
        # Each round started hello-world and the functions back to back: the ratio within a round is what drift
        # on a shared machine disturbs least.
        out[name]["paired_ratio"] = round(statistics.median(
            s["first_200_s"] / h["first_200_s"] for s, h in zip(samples, runs["hello"], strict=True)), 2)
        out[name]["paired_cpu_ratio"] = round(statistics.median(
            s["cpu_s"] / h["cpu_s"] for s, h in zip(samples, runs["hello"], strict=True) if h["cpu_s"]), 2)
    return out


# ---------------------------------------------------------------------------------------------------- 3. warm load


def load(port: int, requests_of: Callable[[int, int], tuple[str, str, bytes | None]], headers: dict,
         seconds: float, expect: tuple[int, ...]) -> dict:
    """CONCURRENCY keep-alive clients, each sending one request after another for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(CONCURRENCY)]
    errors: list[str] = []
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        n = 0
        try:
            while time.perf_counter() < deadline:
                method, path, body = requests_of(index, n)
                n += 1
                started = time.perf_counter()
                status, payload = call(port, method, path, body, headers, conn=conn)
                latencies[index].append(time.perf_counter() - started)
                if status not in expect:
                    errors.append(f"{status}: {payload[:200]!r}")
                    return
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CONCURRENCY)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    flat = [x for per in latencies for x in per]
    if errors:
        raise BenchError(f"warm requests failed on port {port}: {errors[:3]}")
    return {"requests": len(flat), "rps": len(flat) / wall, "p50_ms": percentile(flat, 0.5) * 1000,
            "p99_ms": percentile(flat, 0.99) * 1000}


def _merge(rounds: list[dict]) -> dict:
    return {"rps": round(statistics.median(r["rps"] for r in rounds), 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in rounds), 2),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in rounds), 2),
            "requests": sum(r["requests"] for r in rounds), "rounds_rps": [round(r["rps"], 1) for r in rounds]}


def warm(world: World) -> dict:
    """Product and baselines under the same load, in turns (A B A B), after a warm-up of every thread."""
    ids = world.meeting_ids
    run = uuid.uuid4().hex[:8]

    def get(index, n):
        return "GET", f"/v1/meetings/{ids[(index * 7919 + n) % len(ids)]}", None

    def page(index, n):
        return "GET", "/v1/meetings?page_size=20", None

    def create(index, n):
        return "POST", "/v1/meetings", create_body(f"bench-{run}-{index}-{n}-{time.perf_counter_ns()}")

    def hello(index, n):
        return "GET", "/", None

    plans = {  # operation: (server names, request maker, expected statuses)
        "read": (("get_meeting", "limit", "limit-prepared", "hello"), get, (200,)),
        "list": (("get_meeting", "limit", "limit-prepared"), page, (200,)),
        "create": (("create_meeting", "limit"), create, (200, 201)),
    }
    servers = {name: world.server(name).start() for name in ("hello", "get_meeting", "create_meeting", "limit",
                                                             "limit-prepared")}
    out: dict[str, Any] = {}
    try:
        for s in servers.values():
            s.wait_open()
        for operation, (names, maker, expect) in plans.items():
            results: dict[str, list[dict]] = {name: [] for name in names}
            for name in names:  # warm-up: every gunicorn thread opens its connection and prepares its statements
                load(servers[name].port, hello if name == "hello" else maker, world.auth, 1.0, expect)
            for _ in range(ROUNDS):
                for name in names:
                    results[name].append(load(servers[name].port, hello if name == "hello" else maker,
                                              world.auth, SECONDS, expect))
            out[operation] = {name: _merge(r) for name, r in results.items()}
            log.info("warm %s: %s", operation, {n: r["rps"] for n, r in out[operation].items()})
        out["memory"] = {name: servers[name].memory() for name in ("get_meeting", "create_meeting", "limit", "hello")}
    finally:
        for s in servers.values():
            s.stop()
    return out


# ---------------------------------------------------------------------------------------------------- 4. sweeps


def seed_sweep(db, client_id: str, now: datetime, total: int, due: list[dict]) -> None:
    """`total` meetings as a deployment holds them (history, and live ones due later), `due` among them due now for
    both a status check and a recording sync; two participants each."""
    background = total - len(due)
    with db.transaction() as cur:
        if background > 0:
            cur.execute(
                "INSERT INTO meetings (id, client_id, external_reference, request_fingerprint, status,"
                " organizer_email, title, time_zone, scheduled_start, scheduled_end, google_event_id, meet_link,"
                " meeting_code, conference_status, next_check_at, next_sync_at, created_at, finished_at,"
                " cancelled_at)"
                " SELECT gen_random_uuid(), :client, 'history-' || i, md5(i::text), st,"
                "  'doctor' || (i % 40) || '@clinica.com', 'Video appointment', 'America/Bogota', s,"
                "  s + interval '30 minutes', 'ev' || md5(i::text), 'https://meet.google.com/aaa-bbbb-ccc',"
                "  'aaa-bbbb-ccc', 'success',"
                "  CASE WHEN live THEN CAST(:now AS timestamptz) + interval '1 day' + (i % 360) * interval '1 minute'"
                "  END, CASE WHEN live THEN s + interval '40 minutes' END, s - interval '2 days',"
                "  CASE WHEN st = 'FINISHED' THEN s + interval '30 minutes' END,"
                "  CASE WHEN st = 'CANCELLED' THEN s - interval '1 day' END"
                " FROM generate_series(1, CAST(:n AS integer)) AS i,"
                " LATERAL (SELECT CASE WHEN i % 10 < 6 THEN 'FINISHED' WHEN i % 10 = 6 THEN 'CANCELLED'"
                "                      WHEN i % 10 = 7 THEN 'CREATED' ELSE 'SCHEDULED' END AS st) AS a,"
                " LATERAL (SELECT st IN ('CREATED', 'SCHEDULED') AS live) AS b,"
                " LATERAL (SELECT CASE WHEN live THEN CAST(:now AS timestamptz) + (2 + i % 1000) * interval '1 hour'"
                "                 ELSE CAST(:now AS timestamptz) - (2 + i % 4000) * interval '1 hour' END AS s) AS c",
                {"client": client_id, "now": now, "n": background})
        for i, m in enumerate(due):
            cur.execute(
                "INSERT INTO meetings (id, client_id, external_reference, request_fingerprint, status,"
                " organizer_email, calendar_owner, title, description, time_zone, scheduled_start, scheduled_end,"
                " google_event_id, meet_link, meeting_code, conference_status, next_check_at, next_sync_at)"
                " VALUES (:id, :client, :ref, md5(CAST(:ref AS text)), 'CREATED', 'doctor@clinica.com',"
                " 'doctor@clinica.com', :title, '', 'America/Bogota', :start, :end, :event, :link, :code, 'success',"
                " :due, :due)",
                {"id": m["id"], "client": client_id, "ref": f"due-{i}", "title": "Video appointment",
                 "start": m["start"], "end": m["end"], "event": m["event"], "link": m["link"], "code": m["code"],
                 "due": now - timedelta(minutes=1, seconds=i)})
        cur.execute("INSERT INTO participants (meeting_id, email, role, position)"
                    " SELECT id, organizer_email, 'organizer', 0 FROM meetings"
                    " UNION ALL SELECT id, 'paciente-' || left(id::text, 8) || '@correo.com', 'guest', 1 FROM meetings")
    with db.transaction() as cur:
        cur.execute("ANALYZE meetings")
        cur.execute("ANALYZE participants")


def due_events(google_url: str, identity: dict[str, str], now: datetime) -> list[dict]:
    """SWEEP_DUE meetings that ended two hours ago, their Calendar events made once through the product's adapter
    (the same meetings are due at both table sizes)."""
    from shared.adapters.google import Calendar, GoogleApis, MeetingCalendar
    from shared.domain.meeting import Meeting, Participant, Status

    calendar = MeetingCalendar(Calendar(GoogleApis(google_settings(identity, google_url,
                                                                   database_url="postgresql://unused/x"))))
    out = []
    for i in range(SWEEP_DUE):
        start = now - timedelta(hours=2, minutes=30) + timedelta(seconds=i)
        meeting = Meeting(id=str(uuid.uuid4()), client_id="-", status=Status.PENDING,
                          organizer_email="doctor@clinica.com", calendar_owner="doctor@clinica.com",
                          title="Video appointment", description="", time_zone="America/Bogota",
                          scheduled_start=start, scheduled_end=start + timedelta(minutes=30),
                          participants=(Participant("doctor@clinica.com", "organizer"),
                                        Participant(f"paciente{i}@correo.com", "guest")))
        event = calendar.insert_event(meeting)
        out.append({"id": meeting.id, "start": start, "end": meeting.scheduled_end, "event": event.id,
                    "link": event.conference.link, "code": event.conference.code})
    return out


class _Undo(Exception):
    """Raised to roll a transaction back on purpose."""


class SweepTable:
    """One database of `total` meetings with the due ones among them, and an instance's adapters over it (every
    statement counted); Cloud Tasks off, so a sweep does each due meeting's check or sync inline, in process."""

    def __init__(self, server, base_url: str, google_url: str, identity: dict[str, str], total: int,
                 due: list[dict], now: datetime):
        from dev.roundtrips import RoundTrips
        from shared import bootstrap
        from shared.adapters.postgres.db import Database, local_connector
        from shared.services import auth

        self.server, self.name, self.due, self.now = server, f"bench_sweep_{total}", due, now
        self.url = fresh_database(server, base_url, self.name)
        setup = Database(local_connector(self.url), size=1)
        auth.mint_key(setup, name="bench-client", role="service")
        with setup.transaction() as cur:
            cur.execute("SELECT id FROM api_clients WHERE name = 'bench-client'")
            client_id = str(cur.fetchone()[0])
        seed_sweep(setup, client_id, now, total, due)
        setup.close()
        self.deps = bootstrap.Deps(google_settings(identity, google_url, database_url=self.url,
                                                   sweep_batch_size=SWEEP_DUE))
        self.trips = RoundTrips()
        self.deps.__dict__["db"] = Database(self.trips.wrap(local_connector(self.url)), size=2)
        self.runs: dict[str, list[dict]] = {"check": [], "sync": []}
        # One meeting first, outside the measurement: clients built, connections open, statements prepared.
        self.check(due[0]["id"])
        self.sync(due[0]["id"], 0)
        self.meetings, self.plans = self._explain()

    def check(self, meeting_id, version=None):
        from shared.services import status_check

        d = self.deps
        return status_check.check_meeting(meeting_id, schedule_version=version, db=d.db, calendar=d.calendar,
                                          meet=d.meet, tasks=d.tasks, settings=d.settings, clock=d.clock)

    def sync(self, meeting_id, attempt):
        from shared.services import recordings

        d = self.deps
        return recordings.sync_meeting(meeting_id, attempt=attempt, db=d.db, meet=d.meet, tasks=d.tasks,
                                       settings=d.settings, clock=d.clock)

    def _explain(self) -> tuple[int, dict]:
        """What one meeting read and the due query cost PostgreSQL here: shared buffers touched, time."""
        from shared.adapters.postgres import repository as repo

        plans = {}
        with self.deps.db.read() as cur:
            cur.execute("SELECT count(*) FROM meetings")
            meetings = cur.fetchone()[0]
            for label, sql, params in (
                    ("meeting read", repo._SELECT + " WHERE m.id = :id", {"id": self.due[1]["id"]}),
                    ("due query", repo.DUE_SQL["next_check_at"], {"now": datetime.now(timezone.utc),
                                                                  "limit": SWEEP_DUE})):
                cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
                plan = cur.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                top = plan[0]["Plan"]
                plans[label] = {"buffers": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0),
                                "ms": round(plan[0]["Execution Time"], 3)}
        # The same read as it was before migration 0007: the index dropped in a transaction that is rolled back.
        try:
            with self.deps.db.transaction() as cur:
                cur.execute("DROP INDEX participants_meeting_idx")
                cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + repo._SELECT + " WHERE m.id = :id",
                            {"id": self.due[1]["id"]})
                plan = cur.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                top = plan[0]["Plan"]
                plans["meeting read before 0007"] = {
                    "buffers": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0),
                    "ms": round(plan[0]["Execution Time"], 3)}
                raise _Undo
        except _Undo:
            pass
        return meetings, plans

    def _make_due_again(self) -> None:
        """Put the due meetings back as they were before a sweep (and vacuum), so rounds measure the same work."""
        with self.deps.db.transaction() as cur:
            cur.execute("UPDATE meetings SET status = 'CREATED', finished_at = NULL, next_check_at = :due,"
                        " next_sync_at = :due, last_checked_at = NULL, last_synced_at = NULL, sync_attempts = 0"
                        " WHERE id = ANY(:ids)", {"due": self.now - timedelta(minutes=1),
                                                   "ids": [m["id"] for m in self.due[1:]]})
        with self.deps.db.autocommit() as cur:
            cur.execute("VACUUM ANALYZE meetings")
            cur.execute("VACUUM ANALYZE participants")

    def sweep_round(self) -> None:
        from shared.services import recordings, status_check

        d = self.deps
        if self.runs["check"]:
            self._make_due_again()
        for kind, sweep in (("check", lambda: status_check.sweep(db=d.db, tasks=d.tasks, settings=d.settings,
                                                                 clock=d.clock, check=self.check)),
                            ("sync", lambda: recordings.sweep(db=d.db, tasks=d.tasks, settings=d.settings,
                                                              clock=d.clock, sync=self.sync))):
            self.trips.reset()
            started = time.perf_counter()
            summary = sweep()
            elapsed = time.perf_counter() - started
            counts = self.trips.snapshot()
            done = summary.counts.get("done", 0)
            if done != len(self.due) - 1 or summary.counts.get("errors"):
                raise BenchError(f"the {kind} sweep at {self.meetings} meetings did not do the {len(self.due) - 1}"
                                 f" due ones: {summary.counts}")
            self.runs[kind].append({"due": done, "seconds": elapsed, "statements": counts["statements"],
                                    "round_trips": counts["round_trips"]})
            log.info("sweep %s at %d meetings: %.2f s, %d statements", kind, self.meetings, elapsed,
                     counts["statements"])

    def summary(self) -> dict:
        out: dict[str, Any] = {"meetings": self.meetings, "plans": self.plans}
        for kind, runs in self.runs.items():
            seconds = statistics.median(r["seconds"] for r in runs)
            out[kind] = {"due": runs[0]["due"], "seconds": round(seconds, 3),
                         "ms_per_meeting": round(seconds / runs[0]["due"] * 1000, 2),
                         "statements": runs[0]["statements"], "round_trips": runs[0]["round_trips"],
                         "rounds_seconds": [round(r["seconds"], 3) for r in runs]}
        return out

    def close(self) -> None:
        self.deps.db.close()
        self.server.psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE);')


def sweeps(server, base_url: str, google_url: str, identity: dict[str, str]) -> dict:
    """The same due meetings at two table sizes, swept in turns (small, large, large, small): medians."""
    now = datetime.now(timezone.utc)
    due = due_events(google_url, identity, now)
    small = SweepTable(server, base_url, google_url, identity, len(due), due, now)
    try:
        large = SweepTable(server, base_url, google_url, identity, SWEEP_TABLE, due, now)
        try:
            for table in (small, large, large, small):
                table.sweep_round()
            return {"small": small.summary(), "large": large.summary()}
        finally:
            large.close()
    finally:
        small.close()


# ---------------------------------------------------------------------------------------------------- report


def figures(results: dict) -> list[dict]:
    """Every figure of the issue with its target and whether it holds."""
    w, c, s = results["warm"], results["cold_start"], results["sweeps"]

    def ratio(a: float, b: float) -> float:
        return round(a / b, 2) if b else float("nan")

    rows = [
        ("read_vs_limit", "warm GET /v1/meetings/{id}, req/s ÷ limit (pg8000, same SELECT, no auth)",
         ratio(w["read"]["get_meeting"]["rps"], w["read"]["limit"]["rps"])),
        ("list_vs_limit", "warm list (newest 20), req/s ÷ limit (same list query)",
         ratio(w["list"]["get_meeting"]["rps"], w["list"]["limit"]["rps"])),
        ("create_vs_limit", "warm create, req/s ÷ limit (Calendar insert + INSERT, no auth, no exactly-once)",
         ratio(w["create"]["create_meeting"]["rps"], w["create"]["limit"]["rps"])),
        ("cold_get_vs_hello", f"cold start to first 200, get_meeting ÷ hello-world (median of {COLD_RUNS} rounds)",
         c["get_meeting"]["paired_ratio"]),
        ("cold_create_vs_hello", "cold start to first 201, create_meeting ÷ hello-world",
         c["create_meeting"]["paired_ratio"]),
        ("cold_get_cpu_vs_hello", "  the same in CPU seconds used until then (less sensitive to other load), get",
         c["get_meeting"]["paired_cpu_ratio"]),
        ("cold_create_cpu_vs_hello", "  ... create",
         c["create_meeting"]["paired_cpu_ratio"]),
        ("api_core_scan_ms", f"  of which google.api_core's Python-version check at its import (ms; "
                             f"{results['api_core_scan'].get('status', '?')}; a warning scans the "
                             f"{results['api_core_scan']['distributions']} installed distributions)",
         results["api_core_scan"]["ms"]),
        ("signing_key_load_ms", "  and loading the local signing key (ms; in the cloud IAM signs)",
         results["api_core_scan"]["signing_key_load_ms"]),
        ("memory_get_mib", "resident memory after load, get_meeting worker (MiB)",
         w["memory"]["get_meeting"]["worker_rss_mib"]),
        ("memory_create_mib", "resident memory after load, create_meeting worker (MiB)",
         w["memory"]["create_meeting"]["worker_rss_mib"]),
        ("sweep_check_time_ratio", f"status sweep, {SWEEP_DUE} due: time at {s['large']['meetings']:,} ÷ at "
                                   f"{s['small']['meetings']:,}",
         ratio(s["large"]["check"]["seconds"], s["small"]["check"]["seconds"])),
        ("sweep_check_statements_ratio", "status sweep: statements at the large size ÷ at the small",
         ratio(s["large"]["check"]["statements"], s["small"]["check"]["statements"])),
        ("sweep_sync_time_ratio", f"recording sweep, {SWEEP_DUE} due: time, large ÷ small",
         ratio(s["large"]["sync"]["seconds"], s["small"]["sync"]["seconds"])),
        ("sweep_sync_statements_ratio", "recording sweep: statements, large ÷ small",
         ratio(s["large"]["sync"]["statements"], s["small"]["sync"]["statements"])),
    ]
    out = []
    for key, label, value in rows:
        if key not in TARGETS:  # shown to read another figure by, with no target of its own
            out.append({"figure": key, "label": label, "value": value, "target": "-", "holds": None})
            continue
        op, bound = TARGETS[key]
        holds = {"<=": value <= bound, ">=": value >= bound, "<": value < bound}[op]
        out.append({"figure": key, "label": label, "value": value, "target": f"{op} {bound}", "holds": bool(holds)})
    return out


def print_report(results: dict) -> None:
    out = []
    m = results["machine"]
    out.append(f"\nMachine: {m['cpus']} CPUs, Python {m['python']}; load average {m['load_average_at_start']:.2f} at "
               f"start, {m['load_average_at_end']:.2f} at end; bench {results['elapsed_s']:.0f} s")

    out.append("\nFigures (ratios against baselines started in this run)")
    out.append(f"  {'figure':<92}{'value':>8}  {'target':<9}holds")
    for f in results["figures"]:
        holds = "" if f["holds"] is None else "yes" if f["holds"] else "NO"
        out.append(f"  {f['label']:<92}{f['value']:>8}  {f['target']:<9}{holds}")

    out.append(f"\nWarm load: {CONCURRENCY} keep-alive clients, {ROUNDS} rounds of {SECONDS:.0f} s per server, "
               "in turns; medians over rounds")
    out.append(f"  {'operation':<9}{'server':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}  rounds req/s")
    for operation in ("read", "list", "create"):
        for name, r in results["warm"][operation].items():
            out.append(f"  {operation:<9}{name:<18}{r['rps']:>9.1f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                       f"{r['requests']:>10}  {r['rounds_rps']}")
    out.append("  memory after load (MiB): " + "; ".join(
        f"{name} worker RSS {r['worker_rss_mib']:.0f}, group PSS {r['group_pss_mib']:.0f}"
        for name, r in results["warm"]["memory"].items()))

    out.append(f"\nCold start, median of {COLD_RUNS} (s): process start -> port open -> first 200 "
               f"(bytecode of {results['bytecode']['compiled_files']} source files compiled first, as the build does)")
    for name, r in results["cold_start"].items():
        out.append(f"  {name:<16}port open {r['port_open_s']:.3f}   first 200 {r['first_200_s']:.3f}   "
                   f"CPU until then {r['cpu_s']:.3f}   runs {r['samples_first_200_s']}")

    out.append("\nImport profile of `import main` (python -X importtime, median of 3; ms)")
    for name, r in results["imports"].items():
        heaviest = ", ".join(f"{mod} {ms:.0f}" for mod, ms in r["heaviest_direct_imports_ms"].items())
        out.append(f"  {name:<16}{r['import_main_ms']:>6.0f} ms, {r['modules']} modules; heavy clients: "
                   f"{', '.join(r['heavy_clients_at_import']) or 'none'}")
        out.append(f"  {'':<16}{heaviest}")

    out.append(f"\nSweeps, {SWEEP_DUE} due, Cloud Tasks off (each due meeting checked or synced inline), in process")
    out.append(f"  {'table':>9}{'sweep':>7}{'seconds':>9}{'ms/mtg':>8}{'statements':>12}{'round trips':>13}"
               "   rounds (s)")
    for size in ("small", "large"):
        s = results["sweeps"][size]
        for kind in ("check", "sync"):
            r = s[kind]
            out.append(f"  {s['meetings']:>9,}{kind:>7}{r['seconds']:>9.2f}{r['ms_per_meeting']:>8.2f}"
                       f"{r['statements']:>12}{r['round_trips']:>13}   {r['rounds_seconds']}")
    out.append("  PostgreSQL per statement (EXPLAIN ANALYZE: shared buffers touched, ms)")
    for size in ("small", "large"):
        s = results["sweeps"][size]
        out.append(f"  {s['meetings']:>9,}  " + "; ".join(f"{label}: {p['buffers']} buffers, {p['ms']} ms"
                                                          for label, p in s["plans"].items()))
    out.append(f"\nWritten: {results['path']}")
    print("\n".join(out), flush=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[bench +%(relativeCreated)6.0f ms] %(message)s",
                        stream=sys.stderr)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # pgserver's platformdirs, harmless here
    for quiet in ("shared", "dev.fake_google", "googleapiclient"):
        logging.getLogger(quiet).setLevel(logging.WARNING)
    began = time.perf_counter()
    work = state_dir() / "bench"
    shutil.rmtree(work / "logs", ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    for name, source in (("hello", HELLO_SOURCE), ("limit", LIMIT_SOURCE)):
        (work / name).mkdir(parents=True, exist_ok=True)
        (work / name / "main.py").write_text(source)
    load_at_start = os.getloadavg()[0]
    if load_at_start > 0.5 * (os.cpu_count() or 1):
        log.warning("load average %.2f: other work on this machine inflates every number (the ratios less)",
                    load_at_start)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parameters": {"cold_runs": COLD_RUNS, "seconds": SECONDS, "rounds": ROUNDS, "concurrency": CONCURRENCY,
                       "gunicorn_threads": int(THREADS), "sweep_due": SWEEP_DUE, "sweep_table": SWEEP_TABLE},
    }

    log.info("embedded PostgreSQL and the fake Google (its own process, 0 ms)")
    from dev.stack import delegation_identity

    server, base_url = embedded(work / "pgdata", database="postgres")
    key_file, account, public = delegation_identity(work)
    # make run's identity and Workspace: assertions signed by a local key the fake trusts, the clinic's domain.
    identity = {"google_signing_key_file": key_file, "google_delegation_sa": account,
                "workspace_domain": "clinica.com", "default_calendar_owner": "agenda@clinica.com"}
    google_port = free_port()
    google = subprocess.Popen([sys.executable, "-m", "dev.fake_google", "--port", str(google_port),
                               "--log-level", "WARNING", "--service-account", f"{account}={public}"], cwd=ROOT,
                              env=clean_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=open(work / "logs" / "fake-google.log", "wb"))
    google_url = f"http://127.0.0.1:{google_port}/"
    try:
        deadline = time.perf_counter() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", google_port), timeout=1).close()
                break
            except OSError:
                if time.perf_counter() > deadline or google.poll() is not None:
                    raise BenchError("the fake Google did not start") from None
                time.sleep(0.05)
        world = build_world(server, base_url, google_url, identity, work)
        results["bytecode"] = {"compiled_files": compile_as_deployed(work),
                               "as": "python3 -m compileall -f -q (the Cloud Functions build)"}
        log.info("import profile of each function (%d source files compiled first, as the build does)",
                 results["bytecode"]["compiled_files"])
        results["imports"] = {name: import_profile(name, world) for name in FUNCTIONS}
        results["api_core_scan"] = api_core_scan(world)
        log.info("cold starts: %d runs each of hello-world, get_meeting, create_meeting", COLD_RUNS)
        results["cold_start"] = cold_starts(world)
        log.info("warm load: %d clients, %d x %.0f s per server", CONCURRENCY, ROUNDS, SECONDS)
        results["warm"] = warm(world)
        log.info("sweeps: %d due among %d and among %d", SWEEP_DUE, SWEEP_DUE, SWEEP_TABLE)
        results["sweeps"] = sweeps(server, base_url, google_url, identity)
    finally:
        if google.poll() is None:
            os.killpg(google.pid, signal.SIGTERM)
            google.wait(timeout=15)
        server.cleanup()

    results["elapsed_s"] = round(time.perf_counter() - began, 1)
    results["machine"]["load_average_at_start"] = round(load_at_start, 2)
    results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    results["figures"] = figures(results)
    path = work / "results.json"
    results["path"] = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_report(results)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log.error("%s", exc)
        sys.exit(1)
