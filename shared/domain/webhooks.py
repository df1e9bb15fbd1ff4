"""Webhook rules without I/O: which URLs may receive events, Standard Webhooks signatures, the retry decision.

Signatures follow the Standard Webhooks specification (v1): `webhook-signature` holds space-separated
`v1,<base64 HMAC-SHA256>` entries, one per valid secret, over `{webhook-id}.{webhook-timestamp}.{body}`, keyed with
the base64-decoded part of the secret after `whsec_`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets as random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64 bytes
MAX_URL_LENGTH = 2048
TARGET = "deliver_webhooks"


class UnsafeTarget(ValueError):
    """A URL that must not receive events (its message says why, without naming anything private)."""


# --- secrets and signatures ------------------------------------------------------------------------------------

def new_secret() -> str:
    """A fresh signing secret, `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: the base64-decoded part after `whsec_`."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """One `v1,<base64>` entry: HMAC-SHA256 of `{id}.{timestamp}.{body}`."""
    mac = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(secrets: list[str], msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, signed with every valid secret (newest first)."""
    if not secrets:
        raise ValueError("an endpoint always has a current secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets),
        "Content-Type": "application/json",
    }


# --- the retry decision ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt means for its delivery: its new status, and when the next attempt is due."""

    status: str  # pending | delivered | failed
    next_attempt_at: datetime | None = None
    disable_endpoint: bool = False


def after_attempt(attempts: int, status_code: int | None, *, now: datetime, schedule: list[float]) -> AttemptOutcome:
    """A 2xx is delivered, a 410 disables the endpoint, anything else is retried per `schedule`, then failed.

    `attempts` counts the attempts made, this one included; `schedule[k]` is the wait after attempt k + 1.
    """
    if status_code is not None and 200 <= status_code < 300:
        return AttemptOutcome("delivered")
    if status_code == 410:
        return AttemptOutcome("failed", disable_endpoint=True)
    if attempts <= len(schedule):
        return AttemptOutcome("pending", next_attempt_at=now + timedelta(seconds=schedule[attempts - 1]))
    return AttemptOutcome("failed")


@dataclass(frozen=True)
class DeliveryTask:
    """One attempt of one delivery as a Cloud Task; the name makes a second enqueue of the same attempt a no-op."""

    delivery_id: str
    attempt: int
    run_at: datetime
    meeting_id: str | None = None  # for the logs only
    tag: str = ""  # who asked when not the normal path: a sweep (s<due>) or a manual retry (m<time>)
    target: str = TARGET
    purpose: str = "webhook delivery"

    def __post_init__(self) -> None:
        if self.run_at.tzinfo is None or self.run_at.utcoffset() is None:
            raise ValueError("run_at must be timezone-aware")
        if self.attempt < 1 or not re.fullmatch(r"[A-Za-z0-9_-]{1,500}", self.name):
            raise ValueError(f"invalid delivery task {self.name!r}")

    @property
    def name(self) -> str:
        name = f"{self.target}-{self.delivery_id}-a{self.attempt}"
        return f"{name}-{self.tag}" if self.tag else name

    def body(self) -> dict[str, Any]:
        return {"delivery_id": self.delivery_id, "attempt": self.attempt}


# --- which URLs may receive events -----------------------------------------------------------------------------

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Names that never denote a public host: reserved for local or private use, or the cloud's metadata server.
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".intranet", ".corp", ".lan")
_PRIVATE_NAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "instance-data"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})


@dataclass(frozen=True)
class Target:
    """A receiver URL that passed the rules of its text; its addresses are checked when resolved."""

    url: str
    scheme: str
    host: str  # lower-case name or IP literal, without brackets
    port: int
    path: str  # path and query, as sent in the request line
    loopback: bool  # a local receiver, allowed only with WEBHOOK_ALLOW_LOOPBACK_HTTP

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_target(url: str, *, allow_loopback: bool) -> Target:
    """The rules a receiver URL's text must pass; UnsafeTarget says which one it breaks."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url) or not url.isascii():
        raise UnsafeTarget("must be an ASCII URL without spaces or control characters (punycode for IDNs)")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        host, port = (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        raise UnsafeTarget("has an invalid port") from None
    if scheme not in ("https", "http") or not host:
        raise UnsafeTarget("must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("must not carry credentials")
    if parts.fragment or url.endswith("#"):
        raise UnsafeTarget("must not have a fragment")
    loopback = host in LOOPBACK_NAMES or _is_loopback_ip(host)
    if loopback and allow_loopback:
        pass  # a local receiver (make run): http and https alike
    elif scheme != "https":
        raise UnsafeTarget("must use https")
    else:
        _check_host_name(host)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url=url, scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), path=path,
                  loopback=loopback and allow_loopback)


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_host_name(host: str) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        reason = blocked(address)
        if reason:
            raise UnsafeTarget(f"names a {reason} address")
        return
    if host in _PRIVATE_NAMES or host.endswith(_PRIVATE_SUFFIXES) or "." not in host:
        raise UnsafeTarget("must name a public host")


def blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address may not receive events (loopback, private, link-local, metadata...), or None when public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return blocked(embedded)
    if address in _METADATA:
        return "metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_multicast or address.is_unspecified or address.is_reserved or not address.is_global:
        return "non-public"
    return None


def check_addresses(target: Target, addresses: list[str]) -> None:
    """Every address the host resolves to must be public (a local receiver: loopback); UnsafeTarget otherwise."""
    if not addresses:
        raise UnsafeTarget("does not resolve to any address")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        reason = blocked(address)
        if target.loopback and reason == "loopback":
            continue
        if reason:
            raise UnsafeTarget(f"resolves to a {reason} address")
