"""API keys: minted once, stored as SHA-256 hashes, resolved to the client that owns them."""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.adapters.postgres import keys
from shared.domain.errors import Unauthenticated, Unavailable
from shared.domain.principal import INVOKER, ROLES, Principal

if TYPE_CHECKING:  # pg8000 loads with the first query, not with the module
    from shared.adapters.postgres.db import Database

KEY_PREFIX = "mk_"
# How long an instance trusts a key it has resolved: a revoked key stops working within this many seconds.
KEY_CACHE_SECONDS = 60.0
KEY_CACHE_SIZE = 1024


class KeyCache:
    """The principals of recently used keys, per instance, bounded in size and in age.

    Only keys that resolved are kept (by hash, never in clear), so an unknown key costs a query every time and a
    key revoked in the database is refused everywhere once its entry is `max_age` seconds old.
    """

    def __init__(self, *, max_size: int = KEY_CACHE_SIZE, max_age: float = KEY_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self._entries: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._max_size, self._max_age, self._clock = max_size, max_age, clock
        self._lock = threading.Lock()

    def get(self, key_hash: bytes) -> Principal | None:
        with self._lock:
            found = self._entries.get(key_hash)
            if found is None:
                return None
            if self._clock() - found[0] >= self._max_age:
                del self._entries[key_hash]
                return None
            self._entries.move_to_end(key_hash)
            return found[1]

    def put(self, key_hash: bytes, principal: Principal) -> None:
        with self._lock:
            self._entries[key_hash] = (self._clock(), principal)
            self._entries.move_to_end(key_hash)
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def hash_key(key: str) -> bytes:
    """Keys carry 256 random bits, so a plain SHA-256 is enough to make the stored value useless to a thief."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def mint_key(db: Database, *, name: str, role: str) -> str:
    """Create the client if new and a fresh key for it; the clear key is returned once, never stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.transaction() as cur:
        keys.add_key(cur, name=name, role=role, key_hash=hash_key(key), hint=key[:10])
    return key


def authenticate(db: Database, authorization: str | None, *, cache: KeyCache | None = None) -> Principal:
    """The principal for an `Authorization: Bearer` header, or Unauthenticated; `cache` spares the query."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Send an API key as `Authorization: Bearer <key>`.")
    if not token.startswith(KEY_PREFIX) or len(token) > 200:
        raise Unauthenticated("The API key is not valid.")
    key_hash = hash_key(token)
    principal = cache.get(key_hash) if cache is not None else None
    if principal is not None:
        return principal
    with db.read() as cur:
        principal = keys.principal_for(cur, key_hash)
    if principal is None:
        raise Unauthenticated("The API key is not valid.")
    if cache is not None:
        cache.put(key_hash, principal)
    return principal


# --- the calls of other Google identities: API Gateway's, and the invoker's (Cloud Tasks, Cloud Scheduler) --------

_ISSUERS = ("accounts.google.com", "https://accounts.google.com")


def authenticate_caller(db: Database, authorization: str | None, forwarded: str | None, *, settings,
                        cache: KeyCache | None = None) -> Principal:
    """Public routes: the caller's API key, in `Authorization`, or in `X-Forwarded-Authorization` on a call that API
    Gateway made (its own ID token, of GATEWAY_SA, in `Authorization`). On any other call the forwarded header is
    ignored: whoever sends it cannot make a key of someone else's count beside credentials of their own."""
    if forwarded is not None and settings.gateway_sa and _from_gateway(authorization, settings):
        return authenticate(db, forwarded, cache=cache)
    if forwarded is None and settings.gateway_sa and not _api_key(authorization):
        # Behind the gateway a caller without a key arrives with the gateway's token alone: no key was sent.
        return authenticate(db, None, cache=cache)
    return authenticate(db, authorization, cache=cache)


def _api_key(authorization: str | None) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and token.strip().startswith(KEY_PREFIX)


def _from_gateway(authorization: str | None, settings) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or token.startswith(KEY_PREFIX):
        return False
    try:
        claims = verify_oidc_token(token, settings)
    except Unauthenticated:
        return False
    return claims.get("email") == settings.gateway_sa and claims.get("email_verified") is True


def authenticate_internal(db: Database, authorization: str | None, *, settings,
                          cache: KeyCache | None = None) -> Principal:
    """Internal functions: an admin API key, or a Google OIDC token of the configured invoker service account."""
    from shared.domain.errors import Forbidden

    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Send an OIDC token or an admin API key as `Authorization: Bearer ...`.")
    if token.startswith(KEY_PREFIX):
        principal = authenticate(db, authorization, cache=cache)
        if not principal.is_admin:
            raise Forbidden("This endpoint is for the platform's own jobs.")
        return principal
    if not settings.tasks_invoker_sa:
        raise Unauthenticated("OIDC tokens are not accepted here (no invoker service account is configured).")
    claims = verify_oidc_token(token, settings)
    if claims.get("email") != settings.tasks_invoker_sa or not claims.get("email_verified"):
        raise Forbidden("This identity may not invoke internal functions.")
    return INVOKER


def verify_oidc_token(token: str, settings) -> dict:
    """Signature, expiry, issuer and audience of a Google-signed ID token; Unauthenticated otherwise."""
    from google.auth import exceptions
    from google.oauth2 import id_token

    audiences = [a for a in (settings.check_status_url, settings.sync_recordings_url,
                             getattr(settings, "deliver_webhooks_url", None), *settings.oidc_audiences) if a]
    try:
        claims = id_token.verify_token(token, _certs_request(), audience=audiences or None,
                                       certs_url=settings.oidc_certs_url)
    except exceptions.TransportError as exc:
        # Google's certificates out of reach says nothing about the token: the caller retries (tasks do).
        raise Unavailable("Google's token-signing certificates cannot be fetched; retry later.") from exc
    except (ValueError, exceptions.GoogleAuthError) as exc:
        raise Unauthenticated("The token is not valid.") from exc
    if claims.get("iss") not in _ISSUERS:
        raise Unauthenticated("The token was not issued by Google.")
    return claims


_certs_cache: dict[str, tuple[float, object]] = {}


def _certs_request():
    """A transport that keeps Google's signing certificates for an hour instead of fetching them per request."""
    import time

    import google.auth.transport.requests as transport

    base = transport.Request()

    def request(url, method="GET", **kwargs):
        cached = _certs_cache.get(url)
        if method == "GET" and cached and time.monotonic() - cached[0] < 3600:
            return cached[1]
        response = base(url, method=method, **kwargs)
        if method == "GET" and response.status == 200:
            _certs_cache[url] = (time.monotonic(), response)
        return response

    return request


def list_keys(db: Database) -> list[dict]:
    """Every key with its client, newest first; only the display hint of a key is known."""
    with db.transaction() as cur:
        return keys.list_keys(cur)


def revoke_key(db: Database, key_id: str) -> bool:
    """Revoke one key by its id (other keys of the client keep working); False when no active key has that id."""
    try:
        uuid.UUID(key_id)
    except ValueError:
        return False
    with db.transaction() as cur:
        return keys.revoke(cur, key_id)
