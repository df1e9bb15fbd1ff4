"""The running local stack (`python -m dev.stack`, what `make run` starts), driven over HTTP."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from dev.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


class LocalStack:
    """Starts and stops the stack on a state dir of its own, as a developer's `make run` would."""

    def __init__(self, state: Path, overrides: dict[str, str] | None = None):
        self.state = state
        self.overrides = overrides or {}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = state.parent / f"{state.name}.log"

    @property
    def env(self) -> dict[str, str]:
        # A developer's machine: the stack makes its own delegation key (tests/conftest.py sets a session one).
        unset = ("DATABASE_URL", "GOOGLE_API_ROOT", "GOOGLE_SIGNING_KEY_FILE", "GOOGLE_DELEGATION_SA")
        env = {k: v for k, v in os.environ.items() if k not in unset}
        return dict(env, LOCAL_STATE_DIR=str(self.state), GATEWAY_PORT=str(self.port), GOOGLE_NUM_RETRIES="1",
                    SWEEP_INTERVAL_SECONDS="0", CONFERENCE_WAIT_SECONDS="2", CONFERENCE_POLL_INTERVAL_SECONDS="0.05",
                    BODY_READ_TIMEOUT_SECONDS="3",
                    **self.overrides)

    def start(self, timeout: float = 90) -> None:
        (self.state / "stack.json").unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "dev.stack"], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the stack exited early:\n{self.log.read_text()[-3000:]}")
            if (self.state / "stack.json").exists():
                try:
                    if requests.get(self.base + "/v1/health", timeout=2).status_code == 200:
                        return
                except requests.ConnectionError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"the stack did not become ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> int:
        os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=60)

    @property
    def info(self) -> dict:
        return json.loads((self.state / "stack.json").read_text())

    @property
    def dev_key(self) -> str:
        return (self.state / "dev-api-key").read_text().strip()

    def ops(self, *args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in self.env.items() if k != "GATEWAY_PORT"}
        return subprocess.run([sys.executable, "-m", "ops", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)


@contextlib.contextmanager
def running_stack(prefix: str = "e2e", overrides: dict[str, str] | None = None):
    """A stack of its own on a fresh state dir under .local/, stopped and removed afterwards (also when it failed
    to start: the error carries its log's tail)."""
    state = ROOT / ".local" / f"{prefix}-{uuid.uuid4().hex[:8]}"
    state.mkdir(parents=True)
    local = LocalStack(state, overrides)
    try:
        local.start()
        yield local
    finally:
        if local.process is not None and local.process.poll() is None:
            local.stop()
        shutil.rmtree(state, ignore_errors=True)
        local.log.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def stack():
    with running_stack() as local:
        yield local


@pytest.fixture(scope="session")
def key(stack) -> str:
    """A key minted the way an operator does it while the stack runs (`make api-key`)."""
    result = stack.ops("api-key", "--name", f"e2e-{uuid.uuid4().hex[:6]}", "--role", "service")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def google(stack):
    from dev.fake_google import FakeGoogleControl

    control = FakeGoogleControl(stack.info["google_api_root"])
    control.reset()
    yield control
    control.close()
