"""Cold start: importing a function touches no network and loads no Google client library."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("googleapiclient", "google.cloud.firestore", "google.cloud.tasks_v2", "google.cloud.sql.connector",
         "google.cloud.scheduler_v1", "google.oauth2.id_token", "pgserver")
FUNCTIONS = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "main.py").exists())

PROBE = """
import json, runpy, sys
runpy.run_path(sys.argv[1], run_name="main")
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("name", FUNCTIONS)
def test_importing_a_function_loads_no_google_client(name):
    # An unroutable database and Google root: importing must not try to reach either.
    env = dict(os.environ, DATABASE_URL="postgresql://nobody@192.0.2.1:5432/none",
               GOOGLE_API_ROOT="http://192.0.2.1:9/")
    out = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "functions" / name / "main.py")], env=env,
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert [m for m in HEAVY if m in loaded] == []


def test_a_misconfigured_function_fails_at_import():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CLOUD_SQL_INSTANCE")}
    out = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "functions/get_meeting/main.py")], env=env,
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode != 0 and "DATABASE_URL" in out.stderr
