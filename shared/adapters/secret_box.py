"""Encryption of the webhook signing secrets at rest: AES-256-GCM with a key kept outside the database.

WEBHOOK_SECRETS_KEY holds one or more base64 keys of 32 bytes, comma-separated: the first encrypts, every one
decrypts, so the key is rotated by putting a new key first, re-encrypting is never needed for reading, and the
old key is dropped once nothing uses it. In the cloud the value comes from Secret Manager; `make run` keeps a
local one under `.local/`. A ciphertext is `v1` | key id (4 bytes) | nonce (12) | AES-GCM output, and its
associated data is the endpoint id, so a ciphertext copied onto another endpoint does not decrypt.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os

_VERSION = b"v1"
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12


class SecretBoxError(Exception):
    """The key is missing or malformed, or a ciphertext does not decrypt with any configured key."""


def new_key() -> str:
    """A fresh key as WEBHOOK_SECRETS_KEY takes it."""
    return base64.b64encode(os.urandom(32)).decode()


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"meet-webhook-key:" + key).digest()[:_KEY_ID_BYTES]


class SecretBox:
    """Encrypts with the first key of the ring, decrypts with whichever key a ciphertext names."""

    def __init__(self, keys: str):
        ring = []
        for text in keys.split(","):
            try:
                key = base64.b64decode(text.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise SecretBoxError("WEBHOOK_SECRETS_KEY must be base64 keys, comma-separated") from None
            if len(key) != 32:
                raise SecretBoxError("each WEBHOOK_SECRETS_KEY key must be 32 bytes (AES-256)")
            ring.append(key)
        if not ring:
            raise SecretBoxError("WEBHOOK_SECRETS_KEY holds no key")
        self._ring = {_key_id(key): key for key in reversed(ring)}
        self._current = ring[0]

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self._current).encrypt(nonce, plaintext.encode(), context.encode())
        return _VERSION + _key_id(self._current) + nonce + sealed

    def decrypt(self, ciphertext: bytes, *, context: str) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        head = len(_VERSION)
        if ciphertext[:head] != _VERSION:
            raise SecretBoxError("unknown ciphertext version")
        key = self._ring.get(ciphertext[head:head + _KEY_ID_BYTES])
        if key is None:
            raise SecretBoxError("the ciphertext was made with a key that WEBHOOK_SECRETS_KEY no longer holds")
        start = head + _KEY_ID_BYTES
        try:
            plain = AESGCM(key).decrypt(ciphertext[start:start + _NONCE_BYTES], ciphertext[start + _NONCE_BYTES:],
                                        context.encode())
        except InvalidTag:
            raise SecretBoxError("the ciphertext does not decrypt (wrong key or not this endpoint's)") from None
        return plain.decode()
