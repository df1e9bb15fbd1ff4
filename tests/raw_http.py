"""HTTP as a hostile client writes it: raw bytes on a socket, the answer parsed by hand, how long it took."""
from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    @property
    def problem(self) -> dict:
        """The problem+json body (asserting that it is one)."""
        assert self.headers.get("content-type", "").startswith("application/problem+json"), (self.status, self.body)
        return json.loads(self.body)


def send(port: int, data: bytes, *, timeout: float = 30, then_close_writing: bool = False) -> Answer:
    """Send `data` to 127.0.0.1:port and read one answer (until its Content-Length, or the connection closes)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole request was written: the answer is still there to read
        if then_close_writing:
            sock.shutdown(socket.SHUT_WR)
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed without an answer after {time.monotonic() - started:.1f} s"
                                     f": {raw!r}")
            raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return Answer(int(lines[0].split()[1]), headers, body, time.monotonic() - started)


def request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
            declared: int | None = None) -> bytes:
    """A request's bytes; `declared` is the Content-Length to claim (default: the body's own)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or declared is not None:
        lines.append(f"Content-Length: {len(body) if declared is None else declared}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
