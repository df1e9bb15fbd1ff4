"""An HTTP target on loopback that records what it is sent: the stand-in for a task's function."""
from __future__ import annotations

import queue
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    """Records every POST as (path, headers, body) and answers `status`, or first the answers of `script` in turn.

    A scripted answer is a status or (status, headers), e.g. (302, {"Location": other.url}).
    """

    def __init__(self, status: int = 204, script: list | None = None) -> None:
        self.requests: queue.Queue[tuple[str, Message, bytes]] = queue.Queue()
        received = self.requests
        answers = queue.Queue()
        for answer in script or []:
            answers.put(answer if isinstance(answer, tuple) else (answer, {}))

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.put((self.path, self.headers, body))
                try:
                    code, headers = answers.get_nowait()
                except queue.Empty:
                    code, headers = status, {}
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def next(self, timeout: float = 10) -> tuple[str, Message, bytes]:
        return self.requests.get(timeout=timeout)

    def assert_quiet(self, seconds: float) -> None:
        with pytest.raises(queue.Empty):
            self.requests.get(timeout=seconds)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
