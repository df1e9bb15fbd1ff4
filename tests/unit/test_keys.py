"""API keys: hashed at rest, several per client, revocation, and the ops commands that manage them."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from shared.services import auth
from shared.domain.errors import Unauthenticated

ROOT = Path(__file__).resolve().parents[2]


def test_keys_are_stored_only_as_hashes(db):
    key = auth.mint_key(db, name=f"c-{uuid.uuid4().hex[:6]}", role="service")
    with db.transaction() as cur:
        cur.execute("SELECT key_hash, display_hint FROM api_keys WHERE key_hash = :h",
                    {"h": hashlib.sha256(key.encode()).digest()})
        stored, hint = cur.fetchone()
        cur.execute("SELECT row_to_json(k)::text FROM api_keys k")
        assert not any(key in row[0] or key[3:] in row[0] for row in cur.fetchall())
    assert bytes(stored) != key.encode() and key.startswith(hint) and len(hint) < len(key) // 4


def test_a_client_rotates_keys_and_revokes_the_old_one(db):
    name = f"c-{uuid.uuid4().hex[:6]}"
    old, new = auth.mint_key(db, name=name, role="service"), auth.mint_key(db, name=name, role="service")
    assert auth.authenticate(db, f"Bearer {old}").client_id == auth.authenticate(db, f"Bearer {new}").client_id
    old_id = next(k["id"] for k in auth.list_keys(db) if old.startswith(k["display_hint"]) and k["name"] == name)
    assert auth.revoke_key(db, str(old_id))
    with pytest.raises(Unauthenticated):
        auth.authenticate(db, f"Bearer {old}")
    assert auth.authenticate(db, f"Bearer {new}").name == name
    assert not auth.revoke_key(db, str(old_id)) and not auth.revoke_key(db, "not-an-id")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic mk_x", "Bearer mk_" + "x" * 300,
                                    "Bearer not-a-key", "Bearer mk_unknown"])
def test_bad_headers_are_unauthenticated(db, header):
    with pytest.raises(Unauthenticated):
        auth.authenticate(db, header)


def test_ops_commands_mint_list_and_revoke(pg_url):
    def ops(*args):
        env = {"DATABASE_URL": pg_url, "PATH": "/usr/bin:/bin"}
        return subprocess.run([sys.executable, "-m", "ops", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)

    name = f"ops-{uuid.uuid4().hex[:6]}"
    minted = ops("api-key", "--name", name, "--role", "admin")
    assert minted.returncode == 0, minted.stderr
    key = minted.stdout.strip().splitlines()[-1]
    assert key.startswith("mk_") and key not in minted.stderr
    listing = ops("keys", "list")
    [line] = [row for row in listing.stdout.splitlines() if name in row]
    assert "admin" in line and key not in listing.stdout
    key_id = line.split()[0]
    assert ops("keys", "revoke", key_id).returncode == 0
    assert "revoked" not in ops("keys", "revoke", key_id).stdout
    assert ops("api-key", "--name", name, "--role", "root").returncode != 0
