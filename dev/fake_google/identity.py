"""Delegated identity as Google's token endpoint sees it: RS256 assertions in, bearer access tokens out."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import load_pem_x509_certificate

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Google refuses assertions meant to live longer than an hour.
MAX_ASSERTION_LIFETIME = 3600
CLOCK_SKEW = 300
_TOKEN_PREFIX = "ya29.fake."


# The discovery documents bundled with google-api-python-client list the scopes each method accepts.
_DISCOVERY = (("calendar", "v3"), ("meet", "v2"), ("drive", "v3"), ("people", "v1"), ("admin", "directory_v1"))


@functools.cache
def method_scopes() -> dict[str, frozenset[str]]:
    """Method id (e.g. calendar.events.insert) -> the OAuth scopes that discovery document accepts for it."""
    from googleapiclient.discovery_cache import get_static_doc

    found: dict[str, frozenset[str]] = {}

    def walk(resource: dict) -> None:
        for method in resource.get("methods", {}).values():
            found[method["id"]] = frozenset(method.get("scopes", []))
        for child in resource.get("resources", {}).values():
            walk(child)

    for name, version in _DISCOVERY:
        walk(json.loads(get_static_doc(name, version)))
    return found


class TokenRefused(Exception):
    """An OAuth 2.0 error answer of the token endpoint (RFC 6749 section 5.2)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def to_json(self) -> dict:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class Caller:
    """Who an access token speaks for: the delegated user (or the service account itself) and its scopes."""

    email: str
    scopes: frozenset[str]
    service_account: str | None
    delegated: bool


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def generate_private_key_pem() -> str:
    """A fresh 2048-bit RSA private key as PKCS#8 PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def ensure_private_key(path: Path) -> Path:
    """The RSA key at `path`, generated once (owner-only) when missing."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(generate_private_key_pem())
    return path


def public_key_pem(pem: str) -> str:
    """The public half of a PEM private key, public key or certificate, as SubjectPublicKeyInfo PEM."""
    return load_public_key(pem).public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from a PEM private key, public key or certificate."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        if b"CERTIFICATE" in data:
            key = load_pem_x509_certificate(data).public_key()
        elif b"PRIVATE KEY" in data:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM RSA key or certificate: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("only RSA keys sign RS256 assertions")
    return key


def _invalid_jwt(detail: str) -> TokenRefused:
    return TokenRefused(400, "invalid_grant", f"Invalid JWT: {detail}")


def verify_assertion(assertion: str, keys_for: Callable[[str], list], audience: str, now: float | None = None) -> dict:
    """The claims of an RS256 JWT-bearer assertion, checked as Google's token endpoint checks them."""
    now = time.time() if now is None else now
    try:
        header_b64, claims_b64, signature_b64 = assertion.split(".")
        header = json.loads(_b64decode(header_b64))
        claims = json.loads(_b64decode(claims_b64))
        signature = _b64decode(signature_b64)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise TokenRefused(400, "invalid_grant", "Invalid JWT: malformed assertion.") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenRefused(400, "invalid_grant", "Invalid JWT: malformed assertion.")
    issuer = claims.get("iss")
    keys = keys_for(issuer) if isinstance(issuer, str) else []
    if not keys:
        raise TokenRefused(400, "invalid_grant", "Invalid grant: account not found")
    if header.get("alg") != "RS256":
        raise TokenRefused(400, "invalid_grant", "Invalid JWT Signature.")
    signed = f"{header_b64}.{claims_b64}".encode()
    for key in keys:
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            break
        except InvalidSignature:
            continue
    else:
        raise TokenRefused(400, "invalid_grant", "Invalid JWT Signature.")
    if claims.get("aud") != audience:
        raise _invalid_jwt(f"Failed audience check. The right audience is {audience}")
    iat, exp = claims.get("iat"), claims.get("exp")
    if (not isinstance(iat, (int, float)) or not isinstance(exp, (int, float)) or exp <= iat
            or exp - iat > MAX_ASSERTION_LIFETIME or iat > now + CLOCK_SKEW or exp < now - CLOCK_SKEW):
        raise _invalid_jwt("Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
                           "Check your iat and exp values in the JWT claim.")
    return claims


class AccessTokens:
    """Self-contained bearer tokens (HMAC-signed), so tokens outlive a reset of the world as Google's do."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or os.urandom(32)

    @property
    def secret(self) -> bytes:
        """The key tokens are signed with (kept with a persisted world, so its tokens outlive a restart)."""
        return self._secret

    def _mac(self, body: str) -> str:
        return _b64encode(hmac.new(self._secret, body.encode(), hashlib.sha256).digest())

    def mint(self, caller: Caller, lifetime: int, now: float | None = None) -> str:
        now = time.time() if now is None else now
        body = _b64encode(json.dumps({
            "email": caller.email, "scopes": sorted(caller.scopes), "sa": caller.service_account,
            "delegated": caller.delegated, "exp": int(now) + int(lifetime),
        }, separators=(",", ":")).encode())
        return f"{_TOKEN_PREFIX}{body}.{self._mac(body)}"

    def read(self, token: str, now: float | None = None) -> Caller | None:
        """The caller of a token this server minted and that has not expired, else None."""
        now = time.time() if now is None else now
        if not token.startswith(_TOKEN_PREFIX):
            return None
        body, _, mac = token[len(_TOKEN_PREFIX):].rpartition(".")
        if not body or not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = json.loads(_b64decode(body))
        except ValueError:
            return None
        if data.get("exp", 0) <= now:
            return None
        return Caller(email=data["email"], scopes=frozenset(data["scopes"]), service_account=data.get("sa"),
                      delegated=bool(data.get("delegated")))


# Google signs ID tokens with keys it publishes at https://www.googleapis.com/oauth2/v1/certs (x509 PEM by key id);
# google.oauth2.id_token.verify_token reads that format.
ID_TOKEN_ISSUER = "https://accounts.google.com"
CERTS_PATH = "/oauth2/v1/certs"
ID_TOKEN_LIFETIME = 3600


class IdTokenIssuer:
    """Google's ID-token signer in miniature: one RSA key (kept in a file when given one) and its certificate."""

    def __init__(self, key_file: Path | None = None) -> None:
        pem = ensure_private_key(key_file).read_text() if key_file else generate_private_key_pem()
        self._key = serialization.load_pem_private_key(pem.encode(), password=None)
        public = self._key.public_key()
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        # The key id follows the key, so a restarted server with the same key file keeps the certificates (and the
        # tokens) its verifiers cached valid.
        self.kid = hashlib.sha256(der).hexdigest()[:40]
        self._cert = _self_signed(self._key, self.kid)

    def certs(self) -> dict[str, str]:
        """What the certificates URL serves: key id -> PEM certificate."""
        return {self.kid: self._cert}

    def mint(self, email: str, audience: str, now: float | None = None, lifetime: int = ID_TOKEN_LIFETIME) -> str:
        """An ID token of a service account, with the claims Google puts in one."""
        now = int(time.time() if now is None else now)
        numeric = str(int(hashlib.sha256(email.lower().encode()).hexdigest()[:20], 16))  # a stable unique id
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        claims = {"aud": audience, "azp": numeric, "email": email.lower(), "email_verified": True,
                  "exp": now + lifetime, "iat": now, "iss": ID_TOKEN_ISSUER, "sub": numeric}
        signed = ".".join(_b64encode(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
        signature = self._key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signed}.{_b64encode(signature)}"


def _self_signed(key, common_name: str) -> str:
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()
