"""What a function's import leaves for later: counted in module and model terms, never in seconds.

test_cold_start.py keeps the Google clients off every import path; this keeps what a read does not need off the
read function's path and out of every function's import.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "main.py").exists())

PROBE = """
import json, runpy, sys
runpy.run_path(sys.argv[1], run_name="main")
loaded = sorted(sys.modules)
from shared.web import models, webhook_models
built = sorted(f"{module.__name__}.{name}" for module in (models, webhook_models)
               for name, value in vars(module).items()
               if isinstance(value, type) and issubclass(value, models.PydanticModel) and value is not models.BaseModel
               and value.__module__ == module.__name__ and value.__pydantic_complete__)
print(json.dumps({"modules": loaded, "built": built}))
"""


def _probe(name: str) -> dict:
    env = dict(os.environ, DATABASE_URL="postgresql://nobody@192.0.2.1:5432/none", GOOGLE_API_ROOT="http://192.0.2.1:9/")
    out = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "functions" / name / "main.py")], env=env,
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", FUNCTIONS)
def test_importing_a_function_builds_no_model_and_loads_no_driver(name):
    found = _probe(name)
    # Models are built on first use: the import pays for none of them.
    assert found["built"] == []
    # The database driver and the email validator come with the first request that needs them.
    assert [m for m in ("pg8000", "email_validator") if m in found["modules"]] == []
    # Settings are read from the environment without pydantic-settings (decision 0012).
    assert [m for m in found["modules"] if m.startswith("pydantic_settings")] == []


def test_the_read_function_leaves_the_openapi_document_to_its_route():
    assert "shared.web.openapi" not in _probe("get_meeting")["modules"]


def test_the_read_function_leaves_the_webhooks_outbox_to_the_first_write():
    modules = _probe("get_meeting")["modules"]
    assert [m for m in ("shared.services.events", "shared.adapters.postgres.webhooks", "shared.web.webhook_models")
            if m in modules] == []


GC_PROBE = """
import gc, json, os, sys
import functions_framework
app = functions_framework.create_app("get_meeting", sys.argv[1])
from pydantic.plugin import _loader
loaded = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count(),
          "plugins_looked_for": _loader._plugins is not None}
app.test_client().get("/v1/health")  # no database here: a 503, which is an answer all the same
print(json.dumps({"loaded": loaded, "answered": {"enabled": gc.isenabled()}}))
"""


def test_collections_pause_while_a_function_loads_and_resume_after_its_first_request():
    env = dict(os.environ, DATABASE_URL="postgresql://nobody@192.0.2.1:5432/none", GOOGLE_API_ROOT="http://192.0.2.1:9/",
               DB_POOL_SIZE="1")
    out = subprocess.run([sys.executable, "-c", GC_PROBE, str(ROOT / "functions" / "get_meeting" / "main.py")],
                         env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["loaded"]["enabled"] is False and found["loaded"]["frozen"] > 0
    assert found["answered"]["enabled"] is True
    # pydantic's scan of every distribution for plugins is skipped (the settings' validator was built at load).
    assert found["loaded"]["plugins_looked_for"] is False


def test_importing_the_package_outside_a_function_leaves_collections_alone():
    out = subprocess.run([sys.executable, "-c", "import gc, shared.web.app; print(gc.isenabled())"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "True"
