"""The running stack's output: every child started with gRPC's INFO logging and the Python-version notice off, and
none of that noise in what `make run` printed."""
from __future__ import annotations

import os
from pathlib import Path

import requests

from tests.e2e.test_local_stack import auth, seed


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.split("=", 1) for entry in raw.decode(errors="replace").split("\0") if "=" in entry)


def test_every_child_runs_with_grpc_quiet(stack):
    pids = stack.info["pids"]
    assert {"fake-google", "firestore", "cloud-tasks", "create_meeting", "deliver_webhooks"} <= set(pids)
    for name, pid in pids.items():
        env = environ_of(pid)
        assert env.get("GRPC_VERBOSITY") == os.environ.get("GRPC_VERBOSITY", "ERROR"), name
        assert env.get("GRPC_ENABLE_FORK_SUPPORT") == os.environ.get("GRPC_ENABLE_FORK_SUPPORT", "false"), name
        assert "google.api_core._python_version_support" in env.get("PYTHONWARNINGS", ""), name


def test_the_stack_output_has_no_grpc_or_python_version_noise(stack):
    # Work that loads gRPC in the functions (the follow-up tasks, the ledger), then a look at what was printed.
    made = requests.post(f"{stack.base}/v1/meetings", json=seed(), headers=auth(stack.dev_key), timeout=30)
    assert made.status_code == 201, made.text
    printed = stack.log.read_text(errors="replace")
    assert "Meet middleware is serving at" in printed
    for noise in ("skipping fork() handlers", "FutureWarning", "chttp2_transport", "absl::InitializeLog"):
        assert noise not in printed, noise
