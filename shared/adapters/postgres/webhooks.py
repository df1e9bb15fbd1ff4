"""The webhooks' SQL: endpoints and their encrypted secrets, the events outbox and its deliveries."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.postgres import notes

# What a committed transaction hands to the composition root: (delivery id, meeting id) of each new delivery.
NEW_DELIVERIES = "webhook_deliveries"

_ENDPOINT = "e.id, e.url, e.event_types, e.description, e.created_at, e.disabled_at"
_DELIVERY = ("d.id, ev.id, ev.type, ev.meeting_id, d.status, d.attempts, d.last_status_code, d.last_attempt_at,"
             " d.next_attempt_at, d.created_at, d.endpoint_id")


def _endpoint(row) -> dict[str, Any]:
    return {"id": str(row[0]), "url": row[1], "event_types": list(row[2]), "description": row[3],
            "created_at": row[4], "disabled_at": row[5]}


def _delivery(row) -> dict[str, Any]:
    return {"id": str(row[0]), "event_id": str(row[1]), "event_type": row[2], "meeting_id": str(row[3]),
            "status": row[4], "attempts": row[5], "last_status_code": row[6], "last_attempt_at": row[7],
            "next_attempt_at": row[8], "created_at": row[9], "endpoint_id": str(row[10])}


# --- endpoints and secrets -------------------------------------------------------------------------------------

def insert_endpoint(cur, *, endpoint_id: str, client_id: str, url: str, event_types: list[str],
                    description: str | None, ciphertext: bytes) -> dict[str, Any]:
    cur.execute(
        "INSERT INTO webhook_endpoints (id, client_id, url, event_types, description)"
        " VALUES (:id, :client, :url, :types, :description)"
        " RETURNING id, url, event_types, description, created_at, disabled_at",
        {"id": endpoint_id, "client": client_id, "url": url, "types": event_types, "description": description})
    endpoint = _endpoint(cur.fetchone())
    cur.execute("INSERT INTO webhook_secrets (endpoint_id, ciphertext) VALUES (:e, :c)",
                {"e": endpoint_id, "c": ciphertext})
    return endpoint


def count_endpoints(cur, client_id: str) -> int:
    cur.execute("SELECT count(*) FROM webhook_endpoints WHERE client_id = :c", {"c": client_id})
    return cur.fetchone()[0]


def list_endpoints(cur, client_id: str) -> list[dict[str, Any]]:
    cur.execute(f"SELECT {_ENDPOINT} FROM webhook_endpoints e WHERE e.client_id = :c"
                " ORDER BY e.created_at DESC, e.id DESC", {"c": client_id})
    return [_endpoint(row) for row in cur.fetchall()]


def get_endpoint(cur, endpoint_id: str, client_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    """One endpoint of the client (another client's is None, like an unknown one)."""
    cur.execute(f"SELECT {_ENDPOINT} FROM webhook_endpoints e WHERE e.id = :id AND e.client_id = :c"
                + (" FOR UPDATE" if lock else ""), {"id": endpoint_id, "c": client_id})
    row = cur.fetchone()
    return _endpoint(row) if row else None


def all_endpoints(cur, *, endpoint_id: str | None = None) -> list[dict[str, Any]]:
    """Every client's endpoints (or the one of `endpoint_id`) with the client's name, newest first: for operators."""
    sql = f"SELECT {_ENDPOINT}, c.name FROM webhook_endpoints e JOIN api_clients c ON c.id = e.client_id"
    params: dict[str, Any] = {}
    if endpoint_id is not None:
        sql += " WHERE e.id = :id"
        params["id"] = endpoint_id
    cur.execute(sql + " ORDER BY e.created_at DESC, e.id DESC", params)
    return [dict(_endpoint(row), client=row[6]) for row in cur.fetchall()]


def delete_endpoint(cur, endpoint_id: str, client_id: str) -> bool:
    """Delete an endpoint with its secrets and deliveries (the events stay: they belong to the meetings)."""
    cur.execute("DELETE FROM webhook_endpoints WHERE id = :id AND client_id = :c RETURNING id",
                {"id": endpoint_id, "c": client_id})
    return cur.fetchone() is not None


def rotate_secret(cur, endpoint_id: str, ciphertext: bytes, *, now: datetime, grace: timedelta, keep: int) -> None:
    """A new current secret; the one it replaces signs for `grace` more, with at most `keep` such old secrets."""
    cur.execute("UPDATE webhook_secrets SET expires_at = :until WHERE endpoint_id = :e AND expires_at IS NULL",
                {"e": endpoint_id, "until": now + grace})
    cur.execute("INSERT INTO webhook_secrets (endpoint_id, ciphertext) VALUES (:e, :c)",
                {"e": endpoint_id, "c": ciphertext})
    cur.execute(
        "DELETE FROM webhook_secrets WHERE endpoint_id = :e AND (expires_at <= :now OR id IN ("
        " SELECT id FROM webhook_secrets WHERE endpoint_id = :e AND expires_at IS NOT NULL"
        " ORDER BY created_at DESC, id DESC OFFSET :keep))",
        {"e": endpoint_id, "now": now, "keep": keep})


def signing_secrets(cur, endpoint_id: str, *, now: datetime) -> list[bytes]:
    """The ciphertexts of every secret that signs now: the current one first, then rotated-out ones, newest first."""
    cur.execute(
        "SELECT ciphertext FROM webhook_secrets WHERE endpoint_id = :e AND (expires_at IS NULL OR expires_at > :now)"
        " ORDER BY expires_at IS NULL DESC, created_at DESC, id DESC", {"e": endpoint_id, "now": now})
    return [bytes(row[0]) for row in cur.fetchall()]


def disable_endpoint(cur, endpoint_id: str, *, now: datetime) -> None:
    """The receiver answered 410 Gone: nothing more is sent to it, so its pending deliveries fail now."""
    cur.execute("UPDATE webhook_endpoints SET disabled_at = :now WHERE id = :e AND disabled_at IS NULL",
                {"e": endpoint_id, "now": now})
    cur.execute("UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,"
                " last_error = 'the endpoint is disabled' WHERE endpoint_id = :e AND status = 'pending'",
                {"e": endpoint_id})


# --- the outbox ------------------------------------------------------------------------------------------------

def record_event(cur, *, meeting_id: str, client_id: str, type: str, body_for, now: datetime) -> tuple[str, int]:
    """Number and store one event of a meeting (its row lock is held), and a delivery per subscribed endpoint.

    `body_for(sequence)` renders the body. The new deliveries are noted for after the commit.
    """
    cur.execute("SELECT coalesce(max(sequence), 0) + 1 FROM webhook_events WHERE meeting_id = :m", {"m": meeting_id})
    sequence = cur.fetchone()[0]
    event_id = str(uuid.uuid4())
    # The event and its deliveries in one statement (the deliveries' foreign key is checked at its end).
    cur.execute(
        "WITH ev AS (INSERT INTO webhook_events (id, meeting_id, client_id, sequence, type, body, created_at)"
        " VALUES (:id, :m, :c, :seq, :type, :body, :now) RETURNING id)"
        " INSERT INTO webhook_deliveries (id, event_id, endpoint_id, next_attempt_at)"
        " SELECT gen_random_uuid(), ev.id, e.id, :now FROM ev, webhook_endpoints e"
        " WHERE e.client_id = :c AND e.disabled_at IS NULL AND :type = ANY(e.event_types) RETURNING id",
        {"id": event_id, "m": meeting_id, "c": client_id, "seq": sequence, "type": type,
         "body": body_for(sequence), "now": now})
    notes.note(cur, NEW_DELIVERIES, *((str(row[0]), meeting_id) for row in cur.fetchall()))
    return event_id, sequence


# --- deliveries --------------------------------------------------------------------------------------------------

def delivery_to_send(cur, delivery_id: str) -> dict[str, Any] | None:
    """A delivery with its endpoint and event, its row locked for the claim of one attempt."""
    cur.execute(
        "SELECT d.id, d.status, d.attempts, e.id, e.url, e.disabled_at, ev.id, ev.meeting_id, ev.type, ev.body"
        " FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
        " JOIN webhook_events ev ON ev.id = d.event_id WHERE d.id = :id FOR UPDATE OF d", {"id": delivery_id})
    row = cur.fetchone()
    if row is None:
        return None
    keys = ("id", "status", "attempts", "endpoint_id", "url", "disabled_at", "event_id", "meeting_id", "type", "body")
    found = dict(zip(keys, row, strict=True))
    for key in ("id", "endpoint_id", "event_id", "meeting_id"):
        found[key] = str(found[key])
    return found


def claim_attempt(cur, delivery_id: str, *, now: datetime, lease: timedelta) -> int:
    """Count one more attempt, due again after `lease` should this one never report back; returns its number."""
    cur.execute("UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = :now,"
                " next_attempt_at = :until WHERE id = :id RETURNING attempts",
                {"id": delivery_id, "now": now, "until": now + lease})
    return cur.fetchone()[0]


def record_attempt(cur, delivery_id: str, *, attempt: int, status: str, status_code: int | None, error: str | None,
                   next_attempt_at: datetime | None) -> bool:
    """The outcome of attempt number `attempt`; False when a later attempt has taken the delivery since."""
    cur.execute(
        "UPDATE webhook_deliveries SET status = :status, last_status_code = :code, last_error = :error,"
        " next_attempt_at = :next WHERE id = :id AND attempts = :attempt AND status = 'pending' RETURNING id",
        {"id": delivery_id, "attempt": attempt, "status": status, "code": status_code, "error": error,
         "next": next_attempt_at})
    return cur.fetchone() is not None


def fail_delivery(cur, delivery_id: str, error: str) -> None:
    cur.execute("UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = :error"
                " WHERE id = :id", {"id": delivery_id, "error": error})


def get_delivery(cur, delivery_id: str, *, endpoint_id: str | None = None, lock: bool = False) -> dict | None:
    sql = (f"SELECT {_DELIVERY} FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id"
           " WHERE d.id = :id")
    params: dict[str, Any] = {"id": delivery_id}
    if endpoint_id is not None:
        sql += " AND d.endpoint_id = :e"
        params["e"] = endpoint_id
    cur.execute(sql + (" FOR UPDATE OF d" if lock else ""), params)
    row = cur.fetchone()
    return _delivery(row) if row else None


def list_deliveries(cur, endpoint_id: str, *, after: tuple[datetime, str] | None, limit: int) -> list[dict]:
    """An endpoint's deliveries newest first, from after the keyset position `after`."""
    sql = f"SELECT {_DELIVERY} FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id" \
          " WHERE d.endpoint_id = :e"
    params: dict[str, Any] = {"e": endpoint_id, "limit": limit}
    if after is not None:
        sql += " AND (d.created_at, d.id) < (:after_c, CAST(:after_i AS uuid))"
        params["after_c"], params["after_i"] = after
    cur.execute(sql + " ORDER BY d.created_at DESC, d.id DESC LIMIT :limit", params)
    return [_delivery(row) for row in cur.fetchall()]


def recent_deliveries_query(*, endpoint_id: str | None, status: str | None,
                            limit: int) -> tuple[str, dict[str, Any]]:
    """The statement of `recent_deliveries` and its parameters: newest first, served by
    webhook_deliveries_newest_idx (or, for one endpoint, webhook_deliveries_endpoint_idx), so it reads `limit` rows
    whatever the table's size."""
    sql = f"SELECT {_DELIVERY} FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id WHERE true"
    params: dict[str, Any] = {"limit": limit}
    if endpoint_id is not None:
        sql += " AND d.endpoint_id = :e"
        params["e"] = endpoint_id
    if status is not None:
        sql += " AND d.status = :status"
        params["status"] = status
    return sql + " ORDER BY d.created_at DESC, d.id DESC LIMIT :limit", params


def recent_deliveries(cur, *, endpoint_id: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest deliveries of every endpoint, or of one, optionally in one status: for operators."""
    cur.execute(*recent_deliveries_query(endpoint_id=endpoint_id, status=status, limit=limit))
    return [_delivery(row) for row in cur.fetchall()]


def reopen(cur, delivery_id: str, *, now: datetime) -> None:
    """A manual retry: pending again and due now, attempts kept (the next one is numbered after them)."""
    cur.execute("UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = :now WHERE id = :id",
                {"id": delivery_id, "now": now})


def due_deliveries(cur, *, before: datetime, limit: int) -> list[dict[str, Any]]:
    """Pending deliveries whose attempt was due before `before`: no task came for them (a partial index serves it)."""
    cur.execute(
        "SELECT d.id, d.attempts, d.next_attempt_at, ev.meeting_id FROM webhook_deliveries d"
        " JOIN webhook_events ev ON ev.id = d.event_id"
        " WHERE d.status = 'pending' AND d.next_attempt_at <= :before ORDER BY d.next_attempt_at LIMIT :limit",
        {"before": before, "limit": limit})
    return [{"id": str(r[0]), "attempts": r[1], "due_at": r[2], "meeting_id": str(r[3])} for r in cur.fetchall()]


def postpone(cur, ids: list[str], until: datetime) -> None:
    """Handed-out deliveries are due again only at `until`, so a lost task is retried by a later sweep."""
    cur.execute("UPDATE webhook_deliveries SET next_attempt_at = :until WHERE id = ANY(CAST(:ids AS uuid[]))",
                {"until": until, "ids": ids})
