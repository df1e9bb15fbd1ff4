"""The outside tools the API document tests drive, as `make test-tools` installs them; and a small Chromium driver."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = ROOT / ".local" / "node-tools" / "node_modules" / ".bin"
CLIENT_VENV = ROOT / ".local" / "venvs" / "openapi-python-client"


def require(path: str | Path | None, what: str) -> Path:
    """The tool's path; without it the test fails in CI and is skipped, with the reason, elsewhere."""
    if path is not None and Path(path).exists():
        return Path(path)
    message = f"{what} is not installed: run `make test-tools` (dev/install_test_tools.sh)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def chromium() -> Path:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return require(found, "Chromium")


def node_tool(name: str) -> Path:
    return require(NODE_BIN / name, name)


def client_generator() -> Path:
    return require(CLIENT_VENV / "bin" / "openapi-python-client", "openapi-python-client")


def mint_key(stack, role: str = "service") -> str:
    """A key of a client of its own, so a test's example requests meet no other test's meetings or replays."""
    result = stack.ops("api-key", "--name", f"e2e-{uuid.uuid4().hex[:6]}", "--role", role)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


# Flags that keep a headless Chromium from calling home: every request it makes is one the page asked for.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio"]


class Browser:
    """Headless Chromium on the DevTools protocol: open a page, run script in it, see every request it makes."""

    def __init__(self, width: int = 1280, height: int = 1800):
        import websocket

        self.profile = tempfile.mkdtemp(prefix="chromium-")
        self.process = subprocess.Popen(
            [str(chromium()), *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        url = self._devtools_url(timeout=30)
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.events: list[dict] = []
        self._id = 0
        self._lock = threading.Lock()

    def _devtools_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                break
            seen.append(line)
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                threading.Thread(target=self.process.stderr.read, daemon=True).start()  # keep the pipe drained
                return found.group(1)
        self.close()
        raise RuntimeError("Chromium did not start:\n" + "".join(seen[-20:]))

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        with self._lock:
            self._id += 1
            message = {"id": self._id, "method": method, "params": params or {}}
            if session:
                message["sessionId"] = session
            self.ws.send(json.dumps(message))
            while True:
                answer = json.loads(self.ws.recv())
                if answer.get("id") == message["id"]:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer.get("result", {})
                self.events.append(answer)

    def open(self, url: str) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        return page

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def evaluate(self, expression: str):
        result = self.browser.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                        "returnByValue": True}, session=self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for: {expression}")

    def type(self, text: str) -> None:
        self.browser.send("Input.insertText", {"text": text}, session=self.session)

    def requested_urls(self) -> list[str]:
        self.evaluate("1")  # flush pending events into the log
        return [e["params"]["request"]["url"] for e in self.browser.events
                if e.get("sessionId") == self.session and e.get("method") == "Network.requestWillBeSent"]

    def console_errors(self) -> list[str]:
        return [json.dumps(e["params"])[:300] for e in self.browser.events if e.get("sessionId") == self.session
                and (e.get("method") == "Runtime.exceptionThrown"
                     or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error")
                     or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error"))]
