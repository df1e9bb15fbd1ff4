"""The operator CLI: known misconfigurations are one clear line, never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ops(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DATABASE_URL", "CLOUD_SQL_INSTANCE", "DB_IAM_USER", "FIRESTORE_DATABASE")}
    return subprocess.run([sys.executable, "-m", "ops", *args], env={**clean, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cloud_sql_without_an_iam_user_is_one_clear_line():
    out = ops("keys", "list", CLOUD_SQL_INSTANCE="proj:region:inst")
    assert out.returncode != 0
    assert out.stderr.strip() == "ops: CLOUD_SQL_INSTANCE needs DB_IAM_USER (IAM database authentication)"


def test_the_job_ledger_needs_firestore_configured():
    out = ops("jobs")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "FIRESTORE_DATABASE" in out.stderr.strip().splitlines()[-1]


def test_a_webhook_retry_without_a_queue_says_what_to_set(tmp_path):
    out = ops("webhooks", "retry", "0b5c7f1e-8a8e-4c55-9d4e-1f0f0f0f0f0f", LOCAL_STATE_DIR=str(tmp_path),
              TASKS_QUEUE="", WEBHOOK_TASKS_QUEUE="")
    assert out.returncode != 0
    assert out.stderr.strip() == ("ops: set WEBHOOK_TASKS_QUEUE, DELIVER_WEBHOOKS_URL and TASKS_INVOKER_SA (terraform "
                                  "outputs), or start the local stack with `make run`")


def test_every_webhooks_command_has_help():
    for command in ((), ("endpoints",), ("deliveries",), ("retry",)):
        out = ops("webhooks", *command, "--help")
        assert out.returncode == 0 and out.stdout.startswith("usage: python -m ops webhooks"), out.stderr
