"""The API clients' and keys' SQL; keys are stored only as hashes."""
from __future__ import annotations

import uuid
from typing import Any

from shared.domain.principal import Principal


def add_key(cur, *, name: str, role: str, key_hash: bytes, hint: str) -> None:
    """Create the client if new (its role updated if not) and a key for it."""
    cur.execute(
        "INSERT INTO api_clients (id, name, role) VALUES (:id, :name, :role)"
        " ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role RETURNING id",
        {"id": str(uuid.uuid4()), "name": name, "role": role},
    )
    client_id = cur.fetchone()[0]
    cur.execute(
        "INSERT INTO api_keys (id, client_id, key_hash, display_hint) VALUES (:id, :client, :hash, :hint)",
        {"id": str(uuid.uuid4()), "client": client_id, "hash": key_hash, "hint": hint},
    )


def principal_for(cur, key_hash: bytes) -> Principal | None:
    """The client owning an unrevoked key with this hash."""
    cur.execute(
        "SELECT c.id, c.name, c.role FROM api_keys k JOIN api_clients c ON c.id = k.client_id"
        " WHERE k.key_hash = :hash AND k.revoked_at IS NULL",
        {"hash": key_hash},
    )
    row = cur.fetchone()
    return Principal(client_id=str(row[0]), name=row[1], role=row[2]) if row else None


def list_keys(cur) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT k.id, c.name, c.role, k.display_hint, k.created_at, k.revoked_at FROM api_keys k"
        " JOIN api_clients c ON c.id = k.client_id ORDER BY k.created_at DESC"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def revoke(cur, key_id: str) -> bool:
    cur.execute("UPDATE api_keys SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL RETURNING id",
                {"id": key_id})
    return cur.fetchone() is not None
