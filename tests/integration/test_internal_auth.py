"""Internal functions accept Google OIDC tokens of the invoker service account only (signature checked for real)."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from shared import bootstrap
from tests.integration.helpers import app_client

INVOKER = "tasks-invoker@meet-prod.iam.gserviceaccount.com"
AUDIENCE = "https://us-central1-meet-prod.cloudfunctions.net/check_status"


def _key_and_cert(kid: str):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, kid)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return crypt.RSASigner.from_string(pem, key_id=kid), cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def google_certs():
    """Google's certificate endpoint, played by a loopback server publishing one signing certificate."""
    signer, cert = _key_and_cert("kid-1")
    stranger, _ = _key_and_cert("kid-1")  # same kid, a key Google never published
    body = json.dumps({"kid-1": cert}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/oauth2/v1/certs", signer, stranger
    server.shutdown()


@pytest.fixture
def check(function_env, monkeypatch, google_certs):
    url, signer, stranger = google_certs
    monkeypatch.setenv("TASKS_INVOKER_SA", INVOKER)
    monkeypatch.setenv("OIDC_CERTS_URL", url)
    monkeypatch.setenv("CHECK_STATUS_URL", AUDIENCE)
    bootstrap.reset()
    client = app_client("check_status")

    def call(token=None, **claims_override):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.post("/", json={}, headers=headers)

    call.signer, call.stranger = signer, stranger
    return call


def token(signer, **override):
    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": AUDIENCE, "email": INVOKER, "email_verified": True,
              "sub": "1234567890", "iat": now, "exp": now + 600, **override}
    return jwt.encode(signer, claims).decode()


def test_the_invokers_token_is_accepted(check):
    response = check(token(check.signer))
    assert response.status_code == 200 and response.get_json()["mode"] == "sweep"


@pytest.mark.parametrize("override, status", [
    ({"email": "someone-else@meet-prod.iam.gserviceaccount.com"}, 403),
    ({"email_verified": False}, 403),
    ({"aud": "https://elsewhere.example/fn"}, 401),
    ({"iss": "https://evil.example"}, 401),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, 401),
])
def test_other_tokens_are_refused(check, override, status):
    response = check(token(check.signer, **override))
    assert response.status_code == status and response.mimetype == "application/problem+json"


def test_a_token_signed_by_an_unpublished_key_is_refused(check):
    assert check(token(check.stranger)).status_code == 401


def test_no_credentials_and_garbage_are_401(check):
    assert check().status_code == 401
    assert check("not.a.jwt").status_code == 401
