"""ID tokens of a service account, fetched the way Google's own services get theirs for the calls they sign.

The local stack's stand-ins for Cloud Tasks, Cloud Scheduler and API Gateway each hold a key of their service
account (made under `.local/`, trusted by the fake Google like an uploaded key) and exchange a signed assertion with
`target_audience` at the token endpoint for an RS256 ID token (google-auth's IDTokenCredentials). What they present
is then verified by the functions with the code the cloud runs. Also imported by the Cloud Tasks emulator's launcher,
whose virtualenv has google-auth but not the product's packages: this module needs nothing else.
"""
from __future__ import annotations

import threading
from pathlib import Path


class IdTokenSource:
    """ID tokens of one service account, one per audience, reused until shortly before they expire."""

    def __init__(self, email: str, key_file: str | Path, token_uri: str):
        self.email, self.token_uri = email, token_uri
        self._key_file = Path(key_file)
        self._credentials: dict[str, object] = {}
        self._lock = threading.Lock()

    def token(self, audience: str) -> str:
        """A valid ID token for `audience` (google.auth's TransportError/RefreshError when none can be had)."""
        from google.auth.transport.requests import Request
        from google.oauth2 import service_account

        with self._lock:
            credentials = self._credentials.get(audience)
            if credentials is None:
                info = {"type": "service_account", "client_email": self.email, "token_uri": self.token_uri,
                        "private_key": self._key_file.read_text()}
                # google-auth addresses the assertion to Google's endpoint; the audience is the one actually used.
                credentials = service_account.IDTokenCredentials.from_service_account_info(
                    info, target_audience=audience, additional_claims={"aud": self.token_uri})
                self._credentials[audience] = credentials
            if not credentials.valid:  # type: ignore[attr-defined]
                credentials.refresh(Request())  # type: ignore[attr-defined]
            return credentials.token  # type: ignore[attr-defined]
