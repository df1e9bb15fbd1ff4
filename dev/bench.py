"""`make bench`: cold starts, import costs, warm latency, memory and sweep cost of the functions, measured locally.

Phases run one after another so that none competes with another for the CPU: import cost (fresh interpreters),
cold starts (each function alone under functions-framework on the embedded PostgreSQL and an in-process fake
Google), the sweep at 5,000 meetings, then the whole local stack under load. Results are printed as tables and
written to `<state dir>/bench/results.json`. Knobs: BENCH_COLD_RUNS (5), BENCH_REQUESTS (200),
BENCH_CONCURRENCY (4).
"""
from __future__ import annotations

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import requests

from dev.pg import ROOT, embedded, state_dir

log = logging.getLogger("bench")

FUNCTIONS = ("get_meeting", "create_meeting", "update_meeting", "cancel_meeting", "check_status", "sync_recordings")
# The client libraries the performance model prices highest; a function should import none of them at cold start.
HEAVY_MODULES = ("googleapiclient", "google.cloud.firestore", "google.cloud.tasks_v2", "google.cloud.sql.connector",
                 "google.cloud.scheduler_v1")
# Cheaper, but worth knowing whether they are paid at import or on the first request that needs them.
NOTED_MODULES = ("google.auth", "pg8000", "httplib2", "grpc")

COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "5"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
IMPORT_RUNS = 3
LATENCY_MS = 100
SWEEP_MEETINGS, SWEEP_DUE = 5000, 50

FF = str(Path(sys.executable).with_name("functions-framework"))
HELLO_SOURCE = '''import functions_framework


@functions_framework.http
def hello(request):
    return "ok"
'''


class BenchError(RuntimeError):
    """A measurement could not be taken (a process died, a request failed): the run is not valid."""


# ---------------------------------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q of the samples at or below it."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * q)) - 1]


def clean_env(**extra: str) -> dict[str, str]:
    """This shell's environment without any product setting, so only what the bench sets reaches a function."""
    from shared.settings import Settings

    settings = {name.upper() for name in Settings.model_fields} | {"GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    return dict(env, PYTHONUNBUFFERED="1", **extra)


def processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, command line) of every process we can see."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited while we looked
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), cmdline)
    return table


def group_memory(pgid: int, table: dict | None = None) -> dict:
    """Memory of a process group (functions-framework's gunicorn master + worker), in MiB.

    rss: VmRSS summed, which counts twice the pages master and worker still share after the fork; pss: the
    proportional set size summed, which splits shared pages between them (what the group really holds).
    """
    table = table if table is not None else processes()
    rss = pss = count = 0
    for pid, (_, group, _) in table.items():
        if group != pgid:
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        proportional = re.search(r"^Pss:\s+(\d+) kB", rollup, re.M)
        if found:
            rss += int(found.group(1))
            pss += int(proportional.group(1)) if proportional else 0
            count += 1
    return {"rss_mib": round(rss / 1024, 1), "pss_mib": round(pss / 1024, 1), "processes": count}


def stop_group(process: subprocess.Popen) -> None:
    """Stop a process we started in its own session, and everything it forked."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> float:
    """perf_counter() when the port first accepts a connection (polled every 5 ms: a refused connect is cheap)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise BenchError(f"process exited with code {process.returncode} before opening port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return time.perf_counter()
        except OSError:
            time.sleep(0.005)
    raise BenchError(f"port {port} did not open within {timeout:.0f} s")


def slot(days: float = 1.0, minutes: int = 0) -> tuple[str, str]:
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(days=days, minutes=minutes)
    return start.isoformat(), (start + timedelta(minutes=30)).isoformat()


def meeting_body(reference: str, offset: int) -> dict:
    start, end = slot(minutes=offset % 1440)
    return {"organizer_email": "doctor@clinica.com", "invited_emails": ["paciente@correo.com"],
            "scheduled_start": start, "scheduled_end": end, "external_reference": reference}


def expect(response: requests.Response, *statuses: int) -> requests.Response:
    if response.status_code not in statuses:
        raise BenchError(f"{response.request.method} {response.request.path_url} answered {response.status_code}: "
                         f"{response.text[:300]}")
    return response


# ---------------------------------------------------------------------------------------------------- 1. imports


def parse_importtime(stderr: str) -> list[tuple[int, int, int, str]]:
    """(depth, self us, cumulative us, module) for each line of `python -X importtime`."""
    rows = []
    for line in stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if found:
            rows.append((len(found.group(3)) // 2, int(found.group(1)), int(found.group(2)), found.group(4)))
    return rows


def import_cost(name: str) -> dict:
    """Import a function's source as functions-framework does (its directory on sys.path) in a fresh interpreter."""
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'functions' / name)!r}); import main"
    env = clean_env(DATABASE_URL="postgresql://bench@localhost/bench", GOOGLE_API_ROOT="http://127.0.0.1:9/")
    samples = []
    for attempt in range(IMPORT_RUNS + 1):  # the first run may compile bytecode: not counted
        result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise BenchError(f"importing {name} failed:\n{result.stderr[-2000:]}")
        if attempt:
            samples.append(parse_importtime(result.stderr))
    # Timed inside the interpreter too, without -X importtime, whose bookkeeping inflates what it measures.
    timed = f"import time; t = time.perf_counter(); {code}; print('IMPORT_S', time.perf_counter() - t)"
    plain = []
    for _ in range(IMPORT_RUNS):
        result = subprocess.run([sys.executable, "-c", timed], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=60, check=True)
        plain.append(float(re.search(r"^IMPORT_S (\S+)$", result.stdout, re.M).group(1)))
    totals = [next(r for r in rows if r[0] == 0 and r[3] == "main") for rows in samples]
    rows = samples[-1]
    modules = {r[3] for r in rows}
    loaded = lambda prefix: any(m == prefix or m.startswith(prefix + ".") for m in modules)  # noqa: E731
    main_index = next(i for i, r in enumerate(rows) if r[0] == 0 and r[3] == "main")
    start_index = main_index
    while start_index > 0 and rows[start_index - 1][0] > 0:
        start_index -= 1
    children = sorted((r for r in rows[start_index:main_index] if r[0] == 1), key=lambda r: -r[2])
    return {
        "self_ms": round(statistics.median(t[1] for t in totals) / 1000, 1),
        "cumulative_ms": round(statistics.median(t[2] for t in totals) / 1000, 1),
        "wall_ms": round(statistics.median(plain) * 1000, 1),
        "modules_imported": len(modules),
        "heavy_at_import": [m for m in HEAVY_MODULES if loaded(m)],
        "noted_at_import": [m for m in NOTED_MODULES if loaded(m)],
        "largest_direct_imports_ms": {r[3]: round(r[2] / 1000, 1) for r in children[:5]},
    }


# What the performance model says each library costs to import (seconds), to set beside this machine's figure.
MODEL_IMPORT_S = {"functions_framework": None, "pydantic": "0.05-0.09", "pg8000": "0.08",
                  "googleapiclient.discovery": "0.19", "google.auth": "0.13", "google.cloud.firestore": "0.29",
                  "google.cloud.tasks_v2": "0.36", "google.cloud.sql.connector": "0.50"}


def library_imports() -> dict:
    """Each library of the model imported alone in a fresh interpreter, timed inside it (median)."""
    out = {}
    for module, model in MODEL_IMPORT_S.items():
        code = (f"import time, warnings; warnings.simplefilter('ignore'); t = time.perf_counter(); import {module};"
                " print('IMPORT_S', time.perf_counter() - t)")
        samples = []
        for _ in range(IMPORT_RUNS):
            result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(), capture_output=True,
                                    text=True, timeout=60)
            found = re.search(r"^IMPORT_S (\S+)$", result.stdout, re.M)
            if result.returncode != 0 or not found:
                raise BenchError(f"importing {module} failed:\n{result.stderr[-2000:]}")
            samples.append(float(found.group(1)))
        out[module] = {"measured_s": round(statistics.median(samples), 3), "model_s": model}
    return out


# ---------------------------------------------------------------------------------------------------- 2. cold start


@dataclass
class Standalone:
    """What a standalone function needs: the database, the fake Google, keys, and meetings to act on."""

    db_url: str
    google_url: str
    service_key: str
    admin_key: str
    logs: Path
    meetings: list[str] = field(default_factory=list)
    counter: int = 0

    def env(self) -> dict[str, str]:
        return clean_env(DATABASE_URL=self.db_url, GOOGLE_API_ROOT=self.google_url)

    def auth(self, admin: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key if admin else self.service_key}"}

    def start(self, target: str, source: Path, db_url: str | None = None, log_path: Path | None = None,
              python_flags: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int, float]:
        port = free_port()
        env = self.env() if db_url is None else dict(self.env(), DATABASE_URL=db_url)
        launcher = [sys.executable, *python_flags, FF] if python_flags else [FF]
        out = open(log_path or self.logs / f"{target}.log", "ab")
        started = time.perf_counter()
        process = subprocess.Popen([*launcher, "--target", target, "--source", str(source), "--host", "127.0.0.1",
                                    "--port", str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        out.close()
        return process, port, started

    def request(self, name: str, base: str, nth: int) -> requests.Response:
        """The representative request of each function; create makes the meetings update and cancel act on."""
        if name == "hello":
            return expect(requests.get(base + "/", timeout=30), 200)
        if name == "get_meeting":
            return expect(requests.get(base + "/v1/health", timeout=30), 200)
        if name == "create_meeting":
            self.counter += 1
            response = expect(requests.post(base + "/v1/meetings", json=meeting_body(
                f"bench-cold-{uuid.uuid4().hex}", self.counter * 37), headers=self.auth(), timeout=60), 201)
            self.meetings.append(response.json()["id"])
            return response
        if name == "update_meeting":
            start, _ = slot(days=2, minutes=nth * 30)
            return expect(requests.patch(base + f"/v1/meetings/{self.meetings[-2 + nth]}",
                                         json={"scheduled_start": start}, headers=self.auth(), timeout=60), 200)
        if name == "cancel_meeting":
            return expect(requests.delete(base + f"/v1/meetings/{self.meetings[-2 + nth]}", headers=self.auth(),
                                          timeout=60), 200)
        if name in ("check_status", "sync_recordings"):
            return expect(requests.post(base + "/", json={}, headers=self.auth(admin=True), timeout=120), 200)
        raise ValueError(name)


def cold_start(ctx: Standalone, name: str, source: Path) -> dict:
    """Process start -> port open -> first answer of the representative request, then one more request warm."""
    target = "hello" if name == "hello" else name
    process, port, started = ctx.start(target, source)
    try:
        port_open = wait_for_port(port, process)
        sent = time.perf_counter()
        ctx.request(name, f"http://127.0.0.1:{port}", 0)
        answered = time.perf_counter()
        ctx.request(name, f"http://127.0.0.1:{port}", 1)
        second = time.perf_counter() - answered
        memory = group_memory(process.pid)
    finally:
        stop_group(process)
    return {"port_open_s": port_open - started, "first_answer_s": answered - started,
            "first_request_s": answered - sent, "second_request_s": second, "rss_mib": memory["rss_mib"],
            "pss_mib": memory["pss_mib"], "processes": memory["processes"]}


def first_request_imports(ctx: Standalone, name: str) -> dict:
    """What a function imports only once a request needs it: run under -X importtime, read what came after port open.

    The app is loaded before gunicorn binds the port, so every import logged after that belongs to the worker
    serving its first requests.
    """
    trace = ctx.logs / f"{name}.importtime.log"
    trace.unlink(missing_ok=True)
    process, port, _ = ctx.start(name, ROOT / "functions" / name / "main.py", log_path=trace,
                                 python_flags=("-X", "importtime"))
    try:
        wait_for_port(port, process)
        at_port_open = trace.stat().st_size
        ctx.request(name, f"http://127.0.0.1:{port}", 0)
        if name == "create_meeting":  # update and cancel act on the next-to-last meeting made
            ctx.request(name, f"http://127.0.0.1:{port}", 1)
    finally:
        stop_group(process)
    with open(trace, "rb") as log_file:
        log_file.seek(at_port_open)
        rows = parse_importtime(log_file.read().decode(errors="replace"))
    modules = {r[3] for r in rows}
    loaded = lambda prefix: any(m == prefix or m.startswith(prefix + ".") for m in modules)  # noqa: E731
    return {"modules": len(modules), "importtime_ms": round(sum(r[2] for r in rows if r[0] == 0) / 1000, 1),
            "heavy": [m for m in HEAVY_MODULES + NOTED_MODULES if loaded(m)]}


def cold_starts(ctx: Standalone, hello: Path) -> dict:
    runs: dict[str, list[dict]] = {name: [] for name in ("hello", *FUNCTIONS)}
    for _ in range(COLD_RUNS):  # round-robin, so drift on the machine spreads over every function alike
        for name in runs:
            source = hello if name == "hello" else ROOT / "functions" / name / "main.py"
            runs[name].append(cold_start(ctx, name, source))
    summary = {}
    for name, samples in runs.items():
        summary[name] = {key: {"median": round(statistics.median(s[key] for s in samples), 3),
                               "max": round(max(s[key] for s in samples), 3)}
                         for key in ("port_open_s", "first_answer_s", "first_request_s", "second_request_s",
                                     "rss_mib", "pss_mib")}
        summary[name]["processes"] = samples[-1]["processes"]
        summary[name]["samples"] = [{k: round(v, 4) for k, v in s.items()} for s in samples]
    for name in FUNCTIONS:  # after the timed runs: -X importtime slows what it watches
        summary[name]["first_request_imports"] = first_request_imports(ctx, name)
    return summary


# ---------------------------------------------------------------------------------------------------- 3. sweep


def fresh_database(server, base_url: str, name: str) -> str:
    """An empty, migrated database of that name on the embedded server (dropped first if a past run left it)."""
    if "(1 row)" in server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';"):
        server.psql(f'DROP DATABASE "{name}" WITH (FORCE);')
    server.psql(f'CREATE DATABASE "{name}";')
    from shared.adapters.postgres import migrate
    from shared.adapters.postgres.db import Database, local_connector

    url = re.sub(r"/[^/?]+\?", f"/{name}?", base_url)
    db = Database(local_connector(url), size=1)
    migrate.migrate(db)
    db.close()
    return url


def seed_sweep(db, fake, client_id: str, now: datetime) -> list[str]:
    """5,000 meetings as a months-old deployment holds them; SWEEP_DUE + 1 are due and exist in Google."""
    from shared.adapters.google import event_body
    from shared.domain.meeting import Meeting, Participant, Status, event_id_for

    background = SWEEP_MEETINGS - SWEEP_DUE - 1
    with db.transaction() as cur:
        # Mostly history (finished, cancelled: nothing due), the rest live and checked again later.
        cur.execute(
            "INSERT INTO meetings (id, client_id, external_reference, request_fingerprint, status, organizer_email,"
            " title, time_zone, scheduled_start, scheduled_end, google_event_id, meet_link, meeting_code,"
            " conference_status, next_check_at, next_sync_at, created_at, finished_at, cancelled_at)"
            " SELECT gen_random_uuid(), :client, 'history-' || i, md5(i::text), st,"
            "  'doctor' || (i % 40) || '@clinica.com', 'Video appointment', 'America/Bogota', s,"
            "  s + interval '30 minutes', 'ev' || md5(i::text),"
            "  'https://meet.google.com/aaa-bbbb-ccc', 'aaa-bbbb-ccc', 'success',"
            "  CASE WHEN live THEN CAST(:now AS timestamptz) + interval '1 hour' + (i % 360) * interval '1 minute' END,"
            "  CASE WHEN live THEN s + interval '40 minutes' END, s - interval '2 days',"
            "  CASE WHEN st = 'FINISHED' THEN s + interval '30 minutes' END,"
            "  CASE WHEN st = 'CANCELLED' THEN s - interval '1 day' END"
            " FROM generate_series(1, CAST(:n AS integer)) AS i,"
            " LATERAL (SELECT CASE WHEN i % 10 < 6 THEN 'FINISHED' WHEN i % 10 = 6 THEN 'CANCELLED'"
            "                      WHEN i % 10 = 7 THEN 'CREATED' ELSE 'SCHEDULED' END AS st) AS a,"
            " LATERAL (SELECT st IN ('CREATED', 'SCHEDULED') AS live) AS b,"
            " LATERAL (SELECT CASE WHEN live THEN CAST(:now AS timestamptz) + (2 + i % 1000) * interval '1 hour'"
            "                      ELSE CAST(:now AS timestamptz) - (2 + i % 4000) * interval '1 hour' END AS s) AS c",
            {"client": client_id, "now": now, "n": background})
        due_ids = []
        for i in range(SWEEP_DUE + 1):
            meeting = {"id": str(uuid.uuid4()), "create_attempt": 1, "title": "Video appointment", "description": "",
                       "time_zone": "America/Bogota",
                       "scheduled_start": now + timedelta(days=1, minutes=30 * i),
                       "scheduled_end": now + timedelta(days=1, minutes=30 * i + 30)}
            typed = Meeting(client_id=client_id, status=Status.PENDING, organizer_email="doctor@clinica.com",
                            participants=(Participant("doctor@clinica.com", "organizer"),
                                          Participant(f"paciente{i}@correo.com", "guest")), **meeting)
            event = fake.state.insert_event("primary", event_body(typed), 1)
            cur.execute(
                "INSERT INTO meetings (id, client_id, external_reference, request_fingerprint, status,"
                " organizer_email, title, description, time_zone, scheduled_start, scheduled_end, google_event_id,"
                " meet_link, meeting_code, conference_status, next_check_at, next_sync_at)"
                " VALUES (:id, :client, :ref, md5(CAST(:ref AS text)), 'CREATED', 'doctor@clinica.com', :title, '',"
                " :tz, :start, :end, :event, :link, :code, 'success', :due,"
                " CAST(:end AS timestamptz) + interval '10 minutes')",
                {"id": meeting["id"], "client": client_id, "ref": f"due-{i}", "title": meeting["title"],
                 "tz": meeting["time_zone"], "start": meeting["scheduled_start"], "end": meeting["scheduled_end"],
                 "event": event_id_for(meeting["id"], 1), "link": event["hangoutLink"],
                 "code": event["conferenceData"]["conferenceId"], "due": now - timedelta(minutes=1, seconds=i)})
            due_ids.append(meeting["id"])
        cur.execute("INSERT INTO participants (meeting_id, email, role, position)"
                    " SELECT id, organizer_email, 'organizer', 0 FROM meetings"
                    " UNION ALL SELECT id, 'paciente-' || left(id::text, 8) || '@correo.com', 'guest', 1 FROM meetings")
    with db.transaction() as cur:
        cur.execute("ANALYZE meetings")
        cur.execute("ANALYZE participants")
    return due_ids


def due_check_sql() -> str:
    """The query a check_status sweep runs to find due meetings, as the repository spells it."""
    from shared.adapters.postgres import repository as repo

    sql = getattr(repo, "DUE_SQL", {}).get("next_check_at")
    if not sql:
        raise BenchError("shared.adapters.postgres.repository no longer exposes DUE_SQL['next_check_at']; update dev/bench.py")
    return sql


def sweep_cost(ctx: Standalone, server, base_url: str, fake) -> dict:
    """One check_status sweep with Cloud Tasks off (it checks each due meeting inline) at 5,000 meetings."""
    from shared.services import auth
    from shared.adapters.postgres.db import Database, local_connector

    url = fresh_database(server, base_url, "bench_sweep")
    db = Database(local_connector(url), size=1)
    try:
        admin = auth.mint_key(db, name="bench-admin", role="admin")
        auth.mint_key(db, name="bench-client", role="service")
        with db.transaction() as cur:
            cur.execute("SELECT id FROM api_clients WHERE name = 'bench-client'")
            client_id = str(cur.fetchone()[0])
        due_ids = seed_sweep(db, fake, client_id, datetime.now(timezone.utc))
        process, port, _ = ctx.start("check_status", ROOT / "functions/check_status/main.py", db_url=url)
        try:
            wait_for_port(port, process)
            base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {admin}"}
            # Check one due meeting by id first: the instance is warm (clients built) and exactly SWEEP_DUE stay due.
            expect(requests.post(base + "/", json={"meeting_id": due_ids[0]}, headers=headers, timeout=60), 200)
            with db.transaction() as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + due_check_sql(),
                            {"now": datetime.now(timezone.utc), "limit": 200})
                plan = [row[0] for row in cur.fetchall()]
                cur.execute("SELECT count(*) FROM meetings")
                total = cur.fetchone()[0]
            started = time.perf_counter()
            summary = expect(requests.post(base + "/", json={}, headers=headers, timeout=300), 200).json()
            elapsed = time.perf_counter() - started
            started = time.perf_counter()
            empty = expect(requests.post(base + "/", json={}, headers=headers, timeout=300), 200).json()
            empty_elapsed = time.perf_counter() - started
        finally:
            stop_group(process)
        with db.transaction() as cur:
            cur.execute("SELECT status, count(*) FROM meetings WHERE id = ANY(:ids) GROUP BY status",
                        {"ids": due_ids[1:]})
            after = dict(cur.fetchall())
    finally:
        db.close()
    counts = summary.get("counts", {})
    checked = counts.get("done", counts.get("checked"))
    if checked != SWEEP_DUE or counts.get("errors"):
        raise BenchError(f"the sweep did not check the {SWEEP_DUE} due meetings: {summary}")
    return {"meetings": total, "due": counts.get("due"), "checked": checked,
            "errors": counts.get("errors"), "sweep_s": round(elapsed, 3),
            "per_meeting_ms": round(elapsed / SWEEP_DUE * 1000, 1), "empty_sweep_s": round(empty_elapsed, 3),
            "empty_sweep_due": empty.get("counts", {}).get("due"), "statuses_after": after,
            "uses_check_due_idx": any("meetings_check_due_idx" in line for line in plan), "plan": plan}


# ---------------------------------------------------------------------------------------------------- 4. warm stack


class LocalStack:
    """`python -m dev.stack` on a private state dir and port, sweeps off, as the end-to-end tests start it."""

    def __init__(self, state: Path, log_path: Path):
        self.state, self.log_path = state, log_path
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> float:
        shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True)
        env = clean_env(LOCAL_STATE_DIR=str(self.state), GATEWAY_PORT=str(self.port), SWEEP_INTERVAL_SECONDS="0")
        started = time.perf_counter()
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "dev.stack"], cwd=ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                raise BenchError(f"the stack exited early:\n{self.log_path.read_text()[-3000:]}")
            if (self.state / "stack.json").exists():
                try:
                    if requests.get(self.base + "/v1/health", timeout=2).status_code == 200:
                        return time.perf_counter() - started
                except requests.ConnectionError:
                    pass
            time.sleep(0.2)
        raise BenchError(f"the stack did not become ready:\n{self.log_path.read_text()[-3000:]}")

    @property
    def info(self) -> dict:
        return json.loads((self.state / "stack.json").read_text())

    def function_memory(self) -> dict:
        """Summed RSS of each function's process group (gunicorn master + worker), found under the stack."""
        table = processes()
        out = {}
        for pid, (parent, _, cmdline) in table.items():
            found = re.search(r"--target (\w+)", cmdline)
            if parent == self.process.pid and found:
                out[found.group(1)] = group_memory(pid, table)
        return dict(sorted(out.items(), key=lambda kv: FUNCTIONS.index(kv[0]) if kv[0] in FUNCTIONS else 99))

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
        shutil.rmtree(self.state, ignore_errors=True)


def load(items: list, send: Callable[[requests.Session, Any], requests.Response], ok: tuple[int, ...],
         concurrency: int) -> tuple[dict, list]:
    """Send one request per item from `concurrency` threads (a session each); latency and throughput."""
    local = threading.local()
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def one(item):
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        started = time.perf_counter()
        try:
            response = send(session, item)
        except requests.RequestException as exc:
            with lock:
                failures.append(type(exc).__name__)
            return None
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            if response.status_code not in ok:
                failures.append(f"{response.status_code}: {response.text[:200]}")
        return response

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        responses = list(pool.map(one, items))
    wall = time.perf_counter() - started
    stats = {"requests": len(items), "concurrency": concurrency, "errors": len(failures),
             "p50_ms": round(percentile(latencies, 0.50) * 1000, 1) if latencies else None,
             "p95_ms": round(percentile(latencies, 0.95) * 1000, 1) if latencies else None,
             "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
             "throughput_rps": round(len(items) / wall, 1)}
    if failures:
        stats["first_errors"] = failures[:3]
    return stats, responses


def warm_latency(stack: LocalStack) -> dict:
    from dev.fake_google import FakeGoogleControl

    key = (stack.state / "dev-api-key").read_text().strip()
    headers = {"Authorization": f"Bearer {key}"}
    base, run = stack.base, uuid.uuid4().hex[:8]

    def create(session, ref):
        return session.post(base + "/v1/meetings", json=meeting_body(ref, hash(ref) % 1440), headers=headers,
                            timeout=60)

    def get(session, meeting_id):
        return session.get(base + f"/v1/meetings/{meeting_id}", headers=headers, timeout=60)

    def page(session, _):
        return session.get(base + "/v1/meetings", params={"page_size": 20}, headers=headers, timeout=60)

    def reschedule(session, meeting_id):
        start, _ = slot(days=3, minutes=hash(meeting_id) % 1440)
        return session.patch(base + f"/v1/meetings/{meeting_id}", json={"scheduled_start": start}, headers=headers,
                             timeout=60)

    def cancel(session, meeting_id):
        return session.delete(base + f"/v1/meetings/{meeting_id}", headers=headers, timeout=60)

    # The internal functions as a Cloud Task calls them (one meeting each), so they too are measured warm.
    from dev.id_tokens import IdTokenSource
    from dev.stack import LOCAL_INVOKER_SA

    tokens = IdTokenSource(LOCAL_INVOKER_SA, stack.state / "invoker-key.pem", stack.info["google_api_root"] + "token")
    invoker = {"Authorization": f"Bearer {tokens.token(base + '/internal/check-status')}"}
    sync_invoker = {"Authorization": f"Bearer {tokens.token(base + '/internal/sync-recordings')}"}

    def check(session, meeting_id):
        return session.post(base + "/internal/check-status", json={"meeting_id": meeting_id}, headers=invoker,
                            timeout=60)

    def sync(session, meeting_id):
        return session.post(base + "/internal/sync-recordings", json={"meeting_id": meeting_id},
                            headers=sync_invoker, timeout=60)

    # Warm every function and every gunicorn thread the load will reach (each builds its Google clients once).
    warm_refs = [f"bench-warm-{run}-{i}" for i in range(3 * CONCURRENCY)]
    _, made = load(warm_refs, create, (201,), CONCURRENCY)
    warm_ids = [r.json()["id"] for r in made if r is not None and r.status_code == 201]
    for send in (get, page, check, sync, reschedule, cancel):
        load(warm_ids, send, (200,), CONCURRENCY)

    results = {}
    refs = [f"bench-{run}-{i}" for i in range(REQUESTS)]
    results["POST /v1/meetings"], made = load(refs, create, (201,), CONCURRENCY)
    ids = [r.json()["id"] for r in made if r is not None and r.status_code == 201]
    results["GET /v1/meetings/{id}"], _ = load(ids, get, (200,), CONCURRENCY)
    results["GET /v1/meetings?page_size=20"], _ = load(list(range(REQUESTS)), page, (200,), CONCURRENCY)
    internal = ids[:max(REQUESTS // 4, CONCURRENCY)]
    results["POST /internal/check-status {meeting_id}"], _ = load(internal, check, (200,), CONCURRENCY)
    results["POST /internal/sync-recordings {meeting_id}"], _ = load(internal, sync, (200,), CONCURRENCY)
    results["PATCH /v1/meetings/{id}"], _ = load(ids, reschedule, (200,), CONCURRENCY)
    results["DELETE /v1/meetings/{id}"], _ = load(ids, cancel, (200,), CONCURRENCY)

    # Google's latency, injected on the one call a create waits for. One client alone shows it added one for one;
    # at CONCURRENCY on a small machine, time spent waiting on Google is time the CPU is not queued for.
    serial = max(REQUESTS // 5, 4)
    results["POST /v1/meetings, 1 client"], _ = load([f"bench-serial-{run}-{i}" for i in range(serial)], create,
                                                     (201,), 1)
    google = FakeGoogleControl(stack.info["google_api_root"])
    try:
        google.set_latency(LATENCY_MS, operation="calendar.events.insert")
        results[f"POST /v1/meetings, 1 client, +{LATENCY_MS} ms insert"], _ = load(
            [f"bench-serial-slow-{run}-{i}" for i in range(serial)], create, (201,), 1)
        slow_refs = [f"bench-slow-{run}-{i}" for i in range(max(REQUESTS // 2, CONCURRENCY))]
        results[f"POST /v1/meetings, +{LATENCY_MS} ms insert"], _ = load(slow_refs, create, (201,), CONCURRENCY)
    finally:
        google.clear_latency()
        google.close()
    return results


# ---------------------------------------------------------------------------------------------------- report


def print_report(results: dict) -> None:
    out = []
    machine = results["machine"]
    out.append(f"\nMachine: {machine['cpus']} CPUs, Python {machine['python']}, load average "
               f"{machine['load_average_at_start']:.2f} at start; total bench time {results['elapsed_s']:.0f} s\n")

    out.append(f"Import cost of `import main` from the function's directory, fresh interpreter, median of {IMPORT_RUNS}"
               " (wall: timed in the interpreter; cumulative, self: python -X importtime)")
    out.append(f"  {'function':<16}{'wall':>8}{'cumulative':>12}{'self':>6}  {'heavy clients at import':<25}"
               f"{'also at import':<16}largest direct imports (importtime ms)")
    for name, r in results["imports"].items():
        largest = ", ".join(f"{m} {ms:.0f}" for m, ms in list(r["largest_direct_imports_ms"].items())[:3])
        out.append(f"  {name:<16}{r['wall_ms']:>5.0f} ms{r['cumulative_ms']:>9.0f} ms{r['self_ms']:>3.0f} ms  "
                   f"{', '.join(r['heavy_at_import']) or 'none':<25}{', '.join(r['noted_at_import']) or 'none':<16}"
                   f"{largest}")

    libraries = results["library_imports"]
    out.append(f"\nLibraries imported alone (fresh interpreter, timed in it, median of {IMPORT_RUNS}; seconds)")
    out.append(f"  {'module':<28}{'here':>6}{'model':>11}")
    for module, r in libraries.items():
        out.append(f"  {module:<28}{r['measured_s']:>6.2f}{r['model_s'] or '-':>11}")

    out.append(f"\nCold start, standalone under functions-framework (N={COLD_RUNS}; seconds, median / max)")
    out.append(f"  {'function':<16}{'port open':>13}{'first answer':>15}{'1st request':>14}{'2nd request':>14}"
               f"{'RSS MiB':>9}  request; imported by the 1st request")
    requests_used = {"hello": "GET / (hello-world baseline)", "get_meeting": "GET /v1/health",
                     "create_meeting": "POST /v1/meetings", "update_meeting": "PATCH /v1/meetings/{id}",
                     "cancel_meeting": "DELETE /v1/meetings/{id}", "check_status": "POST / {} (sweep)",
                     "sync_recordings": "POST / {} (sweep)"}
    for name, r in results["cold_start"].items():
        def col(key):
            return f"{r[key]['median']:.2f} / {r[key]['max']:.2f}"
        out.append(f"  {name:<16}{col('port_open_s'):>13}{col('first_answer_s'):>15}{col('first_request_s'):>14}"
                   f"{col('second_request_s'):>14}{r['rss_mib']['median']:>9.0f}  {requests_used[name]}"
                   + (f"; {', '.join(r['first_request_imports']['heavy']) or 'nothing heavy'}"
                      if "first_request_imports" in r else ""))

    warm = results["warm"]
    out.append(f"\nWarm latency through the local stack's gateway (each client a thread sending one request after "
               f"another; stack ready in {warm['stack_start_s']:.0f} s)")
    out.append(f"  {'operation':<46}{'clients':>8}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'req/s':>8}"
               f"{'errors':>8}")
    for op, r in warm["latency"].items():
        out.append(f"  {op:<46}{r['concurrency']:>8}{r['requests']:>5}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}"
                   f"{r['max_ms']:>9.1f}{r['throughput_rps']:>8.1f}{r['errors']:>8}")
    for clients, moved in warm["create_p50_delta_ms"].items():
        if moved is not None:
            out.append(f"  -> {LATENCY_MS} ms injected on calendar.events.insert moved create p50 by {moved:+.1f} ms"
                       f" ({clients})")

    out.append("\nMemory after the warm run, summed over each function's process group (gunicorn master + worker)")
    out.append(f"  {'function':<16}{'VmRSS MiB':>10}{'PSS MiB':>9}  processes")
    for name, r in warm["memory"].items():
        out.append(f"  {name:<16}{r['rss_mib']:>10.1f}{r['pss_mib']:>9.1f}  {r['processes']}")

    s = results["sweep"]
    out.append(f"\nSweep: check_status POST {{}} with Cloud Tasks off, {s['meetings']} meetings, {s['due']} due")
    out.append(f"  sweep {s['sweep_s']:.2f} s ({s['per_meeting_ms']:.0f} ms per meeting checked; checked "
               f"{s['checked']}, errors {s['errors']}); the next sweep, nothing due: "
               f"{s['empty_sweep_s'] * 1000:.0f} ms")
    out.append(f"  due query uses meetings_check_due_idx: {'yes' if s['uses_check_due_idx'] else 'NO'}")
    for line in s["plan"]:
        out.append(f"    {line}")
    out.append(f"\nWritten: {results['path']}")
    print("\n".join(out), flush=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[bench +%(relativeCreated)6.0f ms] %(message)s",
                        stream=sys.stderr)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # pgserver's platformdirs, harmless here
    logging.getLogger("shared.adapters.postgres.migrate").setLevel(logging.WARNING)
    began = time.perf_counter()
    work = state_dir() / "bench"
    logs = work / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    hello = work / "hello" / "main.py"
    hello.parent.mkdir(parents=True, exist_ok=True)
    hello.write_text(HELLO_SOURCE)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parameters": {"cold_runs": COLD_RUNS, "requests": REQUESTS, "concurrency": CONCURRENCY,
                       "import_runs": IMPORT_RUNS, "injected_latency_ms": LATENCY_MS,
                       "sweep_meetings": SWEEP_MEETINGS, "sweep_due": SWEEP_DUE},
    }

    load_at_start = os.getloadavg()[0]
    if load_at_start > 0.5 * (os.cpu_count() or 1):
        log.warning("load average %.2f: other work on this machine will inflate every number", load_at_start)
    log.info("import cost of each function (fresh interpreters)")
    results["imports"] = {name: import_cost(name) for name in FUNCTIONS}
    results["library_imports"] = library_imports()

    from dev.fake_google import FakeGoogle
    from shared.services import auth
    from shared.adapters.postgres.db import Database, local_connector

    log.info("embedded PostgreSQL and the fake Google for the standalone runs")
    server, base_url = embedded(work / "pgdata", database="postgres")
    fake = FakeGoogle().start()
    try:
        url = fresh_database(server, base_url, "bench_cold")
        db = Database(local_connector(url), size=1)
        ctx = Standalone(url, fake.url, auth.mint_key(db, name="bench-client", role="service"),
                         auth.mint_key(db, name="bench-admin", role="admin"), logs)
        db.close()
        log.info("cold starts: %d runs of each function", COLD_RUNS)
        results["cold_start"] = cold_starts(ctx, hello)
        log.info("sweep at %d meetings", SWEEP_MEETINGS)
        results["sweep"] = sweep_cost(ctx, server, base_url, fake)
    finally:
        fake.stop()
        server.cleanup()

    log.info("local stack under load: %d requests per operation, %d concurrent", REQUESTS, CONCURRENCY)
    stack = LocalStack(work / "stack", logs / "stack.log")
    try:
        ready = stack.start()
        latency = warm_latency(stack)
        memory = stack.function_memory()
    finally:
        stack.stop()

    def delta(base: str, slow: str) -> float | None:
        before, after = latency[base]["p50_ms"], latency[slow]["p50_ms"]
        return round(after - before, 1) if before is not None and after is not None else None

    results["warm"] = {"stack_start_s": round(ready, 1), "latency": latency, "memory": memory,
                       "create_p50_delta_ms": {
                           "1 client": delta("POST /v1/meetings, 1 client",
                                             f"POST /v1/meetings, 1 client, +{LATENCY_MS} ms insert"),
                           f"{CONCURRENCY} clients": delta("POST /v1/meetings",
                                                           f"POST /v1/meetings, +{LATENCY_MS} ms insert")}}

    results["elapsed_s"] = round(time.perf_counter() - began, 1)
    results["machine"]["load_average_at_start"] = round(load_at_start, 2)
    results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    path = work / "results.json"
    results["path"] = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_report(results)
    errors = sum(r["errors"] for r in latency.values())
    if errors:
        log.error("%d warm requests failed; see first_errors in %s", errors, path)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log.error("%s", exc)
        sys.exit(1)
