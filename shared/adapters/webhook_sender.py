"""The one module that speaks to clients' webhook receivers: one POST, to an address checked as it is connected.

The host is resolved here and every address it resolves to must be public (shared.domain.webhooks); the
connection then goes to one of those checked addresses, so a DNS answer that changes between the check and the
connect cannot point a delivery at a private host. Redirects are never followed (a 3xx is an answer like any
other non-2xx), and the whole attempt, connect to status line, is bounded by the timeout.
"""
from __future__ import annotations

import http.client
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.domain.webhooks import UnsafeTarget, check_addresses, parse_target

log = logging.getLogger(__name__)

USER_AGENT = "meet-middleware-webhooks/1.0"

Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class SendResult:
    """The receiver's status code, or why no answer came (a short reason, never personal data)."""

    status_code: int | None
    error: str | None = None


def resolve(host: str, port: int) -> list[str]:
    """Every address of `host`, in the resolver's order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class WebhookSender:
    """POSTs a signed body to a receiver URL under the URL rules, with a hard deadline."""

    def __init__(self, *, allow_loopback: bool, timeout: float = 15.0, resolver: Resolver = resolve,
                 ssl_context: ssl.SSLContext | None = None):
        self.allow_loopback = allow_loopback
        self.timeout = timeout
        self._resolve = resolver
        self._ssl = ssl_context

    def check(self, url: str) -> None:
        """UnsafeTarget unless `url` may receive events now, its host's addresses included."""
        target = parse_target(url, allow_loopback=self.allow_loopback)
        try:
            addresses = self._resolve(target.host, target.port)
        except (OSError, UnicodeError):
            raise UnsafeTarget("has a host that does not resolve") from None
        check_addresses(target, addresses)

    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        """One attempt; never raises for anything the receiver or the network does."""
        try:
            target = parse_target(url, allow_loopback=self.allow_loopback)
            addresses = self._resolve(target.host, target.port)
            check_addresses(target, addresses)
        except UnsafeTarget as exc:
            return SendResult(None, f"refused: the URL {exc}")
        except (OSError, UnicodeError):
            return SendResult(None, "the host does not resolve")
        deadline = time.monotonic() + self.timeout
        sock = None
        try:
            sock = self._connect(addresses, target.port, deadline)
            # A hard deadline: a receiver that trickles its answer is cut off like one that never answers.
            watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _shutdown, args=(sock,))
            watchdog.daemon = True
            watchdog.start()
            try:
                if target.scheme == "https":
                    context = self._ssl or ssl.create_default_context()
                    sock = context.wrap_socket(sock, server_hostname=target.host)
                conn = http.client.HTTPConnection(target.host_header, target.port)
                conn.sock = sock
                conn.request("POST", target.path, body=body, headers={
                    **headers, "Host": target.host_header, "User-Agent": USER_AGENT,
                    "Content-Length": str(len(body))})
                response = conn.getresponse()
                status = response.status
                response.close()
                return SendResult(status)
            finally:
                watchdog.cancel()
        except ssl.SSLError:
            return SendResult(None, "the TLS handshake failed")
        except (socket.timeout, TimeoutError):
            return SendResult(None, f"no answer within {self.timeout:g} s")
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline:
                return SendResult(None, f"no answer within {self.timeout:g} s")
            return SendResult(None, f"the connection failed ({type(exc).__name__})")
        finally:
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass

    @staticmethod
    def _connect(addresses: list[str], port: int, deadline: float) -> socket.socket:
        last: OSError | None = None
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                sock = socket.create_connection((address, port), timeout=remaining)
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                return sock
            except OSError as exc:
                last = exc
        raise last or TimeoutError("no address could be reached in time")


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
