"""Page tokens: where a list (newest first) continues, opaque to callers and signed, so a forged one is refused.

A token is the position (`created_at`, `id`) of the last item given, as base64url JSON, then `.` and an HMAC-SHA256
of it under PAGE_TOKEN_KEY. The key holds one or more keys, comma-separated: the first signs, every one verifies,
so a key can be rotated without breaking the tokens handed out.

One unsigned token is accepted too: EXAMPLE, the one the API document shows (a fixed position, the example
meeting's), so that "Try it out" and generated clients run the documented request as printed, and the document is
the same for every deployment. Accepting it opens nothing: it is public, and any client may list from that position.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from datetime import datetime

from shared.domain.errors import InvalidInput
from shared.settings import Settings

log = logging.getLogger(__name__)

_INSTANCE_KEY: list[bytes] = []
# The documented example: the page after the example meeting (shared/web/examples.py shows it).
EXAMPLE_POSITION = {"c": "2025-11-20T09:12:31+00:00", "i": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}
EXAMPLE = base64.urlsafe_b64encode(json.dumps(EXAMPLE_POSITION).encode()).decode().rstrip("=")


def encode(created_at: datetime, item_id: str, settings: Settings) -> str:
    """The token of the page after the item (created_at, item_id)."""
    raw = json.dumps({"c": created_at.isoformat(), "i": item_id}).encode()
    return sign(base64.urlsafe_b64encode(raw).decode().rstrip("="), settings)


def sign(payload: str, settings: Settings) -> str:
    """A token's payload with its signature: what `decode` accepts."""
    return f"{payload}.{_mac(payload, keys(settings)[0])}"


def decode(token: str, settings: Settings, *, field: str = "page_token") -> tuple[datetime, str]:
    """The position a token this API issued stands for; InvalidInput naming `field` for any other text."""
    refused = InvalidInput.field(field, "is not a token this API issued")
    if token == EXAMPLE:
        return datetime.fromisoformat(EXAMPLE_POSITION["c"]), EXAMPLE_POSITION["i"]
    payload, _, mac = token.partition(".")
    # Compared as bytes: a token is any text the client sends (compare_digest refuses non-ASCII str).
    given = mac.encode("utf-8", "surrogatepass")
    if not any(hmac.compare_digest(given, _mac(payload, key).encode()) for key in keys(settings)):
        raise refused
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        created = datetime.fromisoformat(data["c"])
        if created.tzinfo is None:
            raise ValueError("naive")
        return created, str(uuid.UUID(data["i"]))
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, AttributeError):
        raise refused from None


def keys(settings: Settings) -> list[bytes]:
    """PAGE_TOKEN_KEY's keys, the signing one first; without it a key of this instance alone, said once in the log."""
    configured = settings.page_token_keys()
    if configured:
        return configured
    if not _INSTANCE_KEY:
        log.warning("PAGE_TOKEN_KEY unset: page tokens are signed with a key of this instance only")
        _INSTANCE_KEY.append(secrets.token_bytes(32))
    return _INSTANCE_KEY


def _mac(payload: str, key: bytes) -> str:
    digest = hmac.new(key, b"page-token:" + payload.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()
