"""All SQL of the product: intention-named functions over a pg8000 cursor."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

_MEETING_COLUMNS = (
    "id, client_id, external_reference, request_fingerprint, status, organizer_email, title, description,"
    " time_zone, scheduled_start, scheduled_end, calendar_owner, create_attempt, google_event_id, meet_link,"
    " meeting_code, conference_status, schedule_version, failure_reason, created_at, updated_at, cancelled_at,"
    " finished_at, next_check_at, last_checked_at, next_sync_at, last_synced_at, sync_attempts"
)


def _dicts(cur) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    rows = []
    for row in cur.fetchall():
        item = dict(zip(names, row))
        for key in ("id", "client_id", "meeting_id"):
            if item.get(key) is not None:
                item[key] = str(item[key])
        rows.append(item)
    return rows


def insert_meeting(cur, meeting: dict[str, Any], participants: list[dict[str, Any]]) -> bool:
    """Insert a PENDING meeting and its participants; False when the client's reference already exists."""
    cur.execute(
        "INSERT INTO meetings (id, client_id, external_reference, request_fingerprint, status, organizer_email,"
        " title, description, time_zone, scheduled_start, scheduled_end, calendar_owner, next_check_at,"
        " next_sync_at)"
        " VALUES (:id, :client_id, :external_reference, :request_fingerprint, 'PENDING', :organizer_email,"
        " :title, :description, :time_zone, :scheduled_start, :scheduled_end, :calendar_owner, :next_check_at,"
        " :next_sync_at)"
        " ON CONFLICT (client_id, external_reference) DO NOTHING RETURNING id",
        meeting,
    )
    if cur.fetchone() is None:
        return False
    replace_invitees(cur, meeting["id"], participants)
    return True


def replace_invitees(cur, meeting_id: str, participants: list[dict[str, Any]]) -> None:
    """Make the organizer and guest rows match `participants` (email, role), keeping rows that stay."""
    emails = [p["email"].lower() for p in participants]
    cur.execute(
        "DELETE FROM participants WHERE meeting_id = :m AND role <> 'other' AND NOT (lower(email) = ANY(:emails))",
        {"m": meeting_id, "emails": emails},
    )
    for position, p in enumerate(participants):
        cur.execute(
            "INSERT INTO participants (meeting_id, email, role, position) VALUES (:m, :email, :role, :pos)"
            " ON CONFLICT (meeting_id, lower(email)) WHERE email IS NOT NULL"
            " DO UPDATE SET role = EXCLUDED.role, position = EXCLUDED.position, updated_at = now()",
            {"m": meeting_id, "email": p["email"], "role": p["role"], "pos": position},
        )


def find_by_reference(cur, client_id: str, reference: str, *, lock: bool = False) -> dict[str, Any] | None:
    cur.execute(
        f"SELECT {_MEETING_COLUMNS} FROM meetings WHERE client_id = :c AND external_reference = :r"
        + (" FOR UPDATE" if lock else ""),
        {"c": client_id, "r": reference},
    )
    rows = _dicts(cur)
    return rows[0] if rows else None


def get_meeting(cur, meeting_id: str, *, client_id: str | None = None, lock: bool = False) -> dict[str, Any] | None:
    """One meeting row; restricted to `client_id` unless None (admin); `lock` takes the row lock."""
    sql = f"SELECT {_MEETING_COLUMNS} FROM meetings WHERE id = :id"
    params: dict[str, Any] = {"id": meeting_id}
    if client_id is not None:
        sql += " AND client_id = :c"
        params["c"] = client_id
    cur.execute(sql + (" FOR UPDATE" if lock else ""), params)
    rows = _dicts(cur)
    return rows[0] if rows else None


def update_meeting(cur, meeting_id: str, **fields: Any) -> None:
    """Set the given columns (names come from code, never from input) and bump updated_at."""
    assignments = "".join(f"{name} = :{name}, " for name in fields)
    cur.execute(f"UPDATE meetings SET {assignments}updated_at = now() WHERE id = :id", {**fields, "id": meeting_id})


def restart_failed(cur, meeting_id: str) -> None:
    """A FAILED creation tried again: a new attempt, hence a new Calendar event id."""
    cur.execute(
        "UPDATE meetings SET status = 'PENDING', create_attempt = create_attempt + 1, google_event_id = NULL,"
        " meet_link = NULL, meeting_code = NULL, conference_status = NULL, failure_reason = NULL,"
        " updated_at = now() WHERE id = :id AND status = 'FAILED'",
        {"id": meeting_id},
    )


def list_meetings(cur, *, client_id: str | None, status: str | None, organizer_email: str | None,
                  external_reference: str | None, scheduled_from: datetime | None, scheduled_to: datetime | None,
                  after: tuple[datetime, str] | None, limit: int) -> list[dict[str, Any]]:
    """Meetings newest first, filtered, starting after the keyset position `after`."""
    where, params = [], {"limit": limit}
    if client_id is not None:
        where.append("client_id = :c")
        params["c"] = client_id
    if status is not None:
        where.append("status = :status")
        params["status"] = status
    if organizer_email is not None:
        where.append("lower(organizer_email) = lower(:org)")
        params["org"] = organizer_email
    if external_reference is not None:
        where.append("external_reference = :ref")
        params["ref"] = external_reference
    if scheduled_from is not None:
        where.append("scheduled_start >= :sfrom")
        params["sfrom"] = scheduled_from
    if scheduled_to is not None:
        where.append("scheduled_start < :sto")
        params["sto"] = scheduled_to
    if after is not None:
        where.append("(created_at, id) < (:after_c, CAST(:after_i AS uuid))")
        params["after_c"], params["after_i"] = after
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    cur.execute(f"SELECT {_MEETING_COLUMNS} FROM meetings {clause} ORDER BY created_at DESC, id DESC LIMIT :limit",
                params)
    return _dicts(cur)


def details_for(cur, meeting_ids: list[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Participants, recordings and transcripts of several meetings, in three queries."""
    out: dict[str, dict[str, list]] = defaultdict(lambda: {"participants": [], "recordings": [], "transcripts": []})
    if not meeting_ids:
        return out
    cur.execute(
        "SELECT meeting_id, email, display_name, role, attended, joined_at, left_at, attended_seconds"
        " FROM participants WHERE meeting_id = ANY(:ids)"
        " ORDER BY meeting_id, CASE role WHEN 'organizer' THEN 0 WHEN 'guest' THEN 1 ELSE 2 END, position, id",
        {"ids": meeting_ids},
    )
    for row in _dicts(cur):
        out[row.pop("meeting_id")]["participants"].append(row)
    cur.execute(
        "SELECT meeting_id, drive_file_id, drive_file_url, duration_seconds, available_at, state"
        " FROM recordings WHERE meeting_id = ANY(:ids) ORDER BY meeting_id, created_at, id",
        {"ids": meeting_ids},
    )
    for row in _dicts(cur):
        out[row.pop("meeting_id")]["recordings"].append(row)
    cur.execute(
        "SELECT meeting_id, document_id, document_url, state"
        " FROM transcripts WHERE meeting_id = ANY(:ids) ORDER BY meeting_id, created_at, id",
        {"ids": meeting_ids},
    )
    for row in _dicts(cur):
        out[row.pop("meeting_id")]["transcripts"].append(row)
    return out


_LIVE = "('PENDING', 'CREATED', 'SCHEDULED', 'IN_PROGRESS')"


DUE_SQL = {
    "next_check_at": f"SELECT id, schedule_version, sync_attempts, next_check_at AS due_at FROM meetings"
                     f" WHERE status IN {_LIVE} AND next_check_at <= :now ORDER BY next_check_at LIMIT :limit",
    "next_sync_at": "SELECT id, schedule_version, sync_attempts, next_sync_at AS due_at FROM meetings"
                    " WHERE next_sync_at IS NOT NULL AND next_sync_at <= :now ORDER BY next_sync_at LIMIT :limit",
}


def due_for(cur, column: str, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Meetings whose status check (`next_check_at`) or sync (`next_sync_at`) is due; a partial index serves each."""
    cur.execute(DUE_SQL[column], {"now": now, "limit": limit})
    return _dicts(cur)


def postpone(cur, ids: list[str], column: str, until: datetime) -> None:
    """Push the due time of handed-out rows forward, so a lost task is retried by a later sweep, not the next."""
    if column not in ("next_check_at", "next_sync_at"):
        raise ValueError(column)
    cur.execute(f"UPDATE meetings SET {column} = :until WHERE id = ANY(:ids)", {"until": until, "ids": ids})


def ping(cur) -> None:
    cur.execute("SELECT 1")
    cur.fetchall()


def set_attendance(cur, meeting_id: str, email: str, *, attended: bool, joined_at, left_at, seconds: int,
                   display_name: str | None) -> bool:
    """Attendance of an invitee or the organizer, written only when it changed; False when no such participant."""
    cur.execute(
        "UPDATE participants SET attended = :attended, joined_at = :joined, left_at = :left,"
        " attended_seconds = :seconds, display_name = COALESCE(display_name, :name), updated_at = now()"
        " WHERE meeting_id = :m AND lower(email) = lower(:email) AND role <> 'other'"
        " AND (attended, joined_at, left_at, attended_seconds, display_name)"
        " IS DISTINCT FROM (:attended, :joined, :left, :seconds, COALESCE(display_name, :name))",
        {"m": meeting_id, "email": email, "attended": attended, "joined": joined_at, "left": left_at,
         "seconds": seconds, "name": display_name},
    )
    if cur.rowcount:
        return True
    cur.execute("SELECT 1 FROM participants WHERE meeting_id = :m AND lower(email) = lower(:email) AND role <> 'other'",
                {"m": meeting_id, "email": email})
    return cur.fetchone() is not None


def upsert_other(cur, meeting_id: str, meet_key: str, *, display_name: str | None, joined_at, left_at,
                 seconds: int) -> None:
    """A joiner who is neither organizer nor invitee (or whom Google does not name), keyed by Meet's identity."""
    cur.execute(
        "INSERT INTO participants (meeting_id, email, role, position, display_name, meet_participant, attended,"
        " joined_at, left_at, attended_seconds)"
        " VALUES (:m, NULL, 'other', 1000, :name, :key, true, :joined, :left, :seconds)"
        " ON CONFLICT (meeting_id, meet_participant) WHERE meet_participant IS NOT NULL DO UPDATE SET"
        " display_name = EXCLUDED.display_name, joined_at = EXCLUDED.joined_at, left_at = EXCLUDED.left_at,"
        " attended_seconds = EXCLUDED.attended_seconds, updated_at = now()"
        " WHERE (participants.display_name, participants.joined_at, participants.left_at,"
        " participants.attended_seconds) IS DISTINCT FROM"
        " (EXCLUDED.display_name, EXCLUDED.joined_at, EXCLUDED.left_at, EXCLUDED.attended_seconds)",
        {"m": meeting_id, "key": meet_key, "name": display_name, "joined": joined_at, "left": left_at,
         "seconds": seconds},
    )


def upsert_recording(cur, meeting_id: str, meet_name: str, **fields) -> None:
    """A Meet recording of the meeting; rewritten only when something changed."""
    cur.execute(
        "INSERT INTO recordings (meeting_id, meet_name, state, drive_file_id, drive_file_url, duration_seconds,"
        " available_at) VALUES (:m, :name, :state, :drive_file_id, :drive_file_url, :duration_seconds,"
        " :available_at)"
        " ON CONFLICT (meeting_id, meet_name) DO UPDATE SET state = EXCLUDED.state,"
        " drive_file_id = EXCLUDED.drive_file_id, drive_file_url = EXCLUDED.drive_file_url,"
        " duration_seconds = EXCLUDED.duration_seconds, available_at = EXCLUDED.available_at, updated_at = now()"
        " WHERE (recordings.state, recordings.drive_file_id, recordings.drive_file_url, recordings.duration_seconds,"
        " recordings.available_at) IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.drive_file_id,"
        " EXCLUDED.drive_file_url, EXCLUDED.duration_seconds, EXCLUDED.available_at)",
        {"m": meeting_id, "name": meet_name, **fields},
    )


def upsert_transcript(cur, meeting_id: str, meet_name: str, **fields) -> None:
    """A Meet transcript of the meeting; rewritten only when something changed."""
    cur.execute(
        "INSERT INTO transcripts (meeting_id, meet_name, state, document_id, document_url)"
        " VALUES (:m, :name, :state, :document_id, :document_url)"
        " ON CONFLICT (meeting_id, meet_name) DO UPDATE SET state = EXCLUDED.state,"
        " document_id = EXCLUDED.document_id, document_url = EXCLUDED.document_url, updated_at = now()"
        " WHERE (transcripts.state, transcripts.document_id, transcripts.document_url)"
        " IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.document_id, EXCLUDED.document_url)",
        {"m": meeting_id, "name": meet_name, **fields},
    )
