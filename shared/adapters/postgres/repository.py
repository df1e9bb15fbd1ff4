"""The meetings' SQL: intention-named functions over a pg8000 cursor, speaking shared.domain types."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.domain.lifecycle import DUE_FOR_CHECK
from shared.domain.meeting import COLUMNS, Meeting, Participant, Recording, Status, Transcript
from shared.domain.rules import MAX_DURATION

_MEETING_COLUMNS = (
    "id, client_id, external_reference, request_fingerprint, status, organizer_email, title, description,"
    " time_zone, scheduled_start, scheduled_end, calendar_owner, create_attempt, google_event_id, meet_link,"
    " meeting_code, conference_status, schedule_version, failure_reason, created_at, updated_at, cancelled_at,"
    " finished_at, next_check_at, last_checked_at, next_sync_at, last_synced_at, sync_attempts, room_access_type,"
    " room_auto_recording, room_auto_transcription, room_state"
)
_NAMES = tuple(name.strip() for name in _MEETING_COLUMNS.split(","))

# The participants, recordings and transcripts ride along as JSON arrays: a meeting is one statement.
_DETAILS = (
    "(SELECT coalesce(json_agg(json_build_object('email', p.email, 'display_name', p.display_name,"
    " 'role', p.role, 'attended', p.attended, 'joined_at', p.joined_at, 'left_at', p.left_at,"
    " 'attended_seconds', p.attended_seconds, 'matched_by', p.matched_by, 'invited_name', p.invited_name)"
    " ORDER BY CASE p.role WHEN 'organizer' THEN 0 WHEN 'guest' THEN 1 ELSE 2 END, p.position, p.id), '[]')"
    " FROM participants p WHERE p.meeting_id = m.id) AS participants,"
    " (SELECT coalesce(json_agg(json_build_object('state', r.state, 'drive_file_id', r.drive_file_id,"
    " 'drive_file_url', r.drive_file_url, 'duration_seconds', r.duration_seconds, 'available_at', r.available_at)"
    " ORDER BY r.created_at, r.id), '[]') FROM recordings r WHERE r.meeting_id = m.id) AS recordings,"
    " (SELECT coalesce(json_agg(json_build_object('state', t.state, 'document_id', t.document_id,"
    " 'document_url', t.document_url) ORDER BY t.created_at, t.id), '[]')"
    " FROM transcripts t WHERE t.meeting_id = m.id) AS transcripts"
)
_RETURNED = ", ".join(f"m.{n}" for n in _NAMES) + ", " + _DETAILS
_SELECT = "SELECT " + _RETURNED + " FROM meetings m"
# What the API shows of a meeting; writing only bookkeeping columns leaves updated_at alone.
_BOOKKEEPING = frozenset({"next_check_at", "last_checked_at", "next_sync_at", "last_synced_at", "sync_attempts"})


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _meeting(row: tuple) -> Meeting:
    values = dict(zip(_NAMES, row[: len(_NAMES)], strict=True))
    participants, recordings, transcripts = row[len(_NAMES):]
    values["id"], values["client_id"] = str(values["id"]), str(values["client_id"])
    values["status"] = Status(values["status"])
    return Meeting(
        **values,
        participants=tuple(Participant(**{**p, "joined_at": _time(p["joined_at"]), "left_at": _time(p["left_at"])})
                           for p in participants),
        recordings=tuple(Recording(**{**r, "available_at": _time(r["available_at"])}) for r in recordings),
        transcripts=tuple(Transcript(**t) for t in transcripts),
    )


def _one(cur) -> Meeting | None:
    row = cur.fetchone()
    return _meeting(row) if row is not None else None


def insert_meeting(cur, meeting: Meeting) -> Meeting | None:
    """Insert a PENDING meeting with its organizer and invitees in one statement; the stored meeting (with its
    timestamps), or None when the client's reference exists already."""
    people = list(meeting.attendees)
    cur.execute(
        "WITH m AS (INSERT INTO meetings (id, client_id, external_reference, request_fingerprint, status,"
        " organizer_email, title, description, time_zone, scheduled_start, scheduled_end, calendar_owner,"
        " next_check_at, next_sync_at, room_access_type, room_auto_recording, room_auto_transcription, room_state)"
        " VALUES (:id, :client_id, :external_reference, :request_fingerprint, 'PENDING', :organizer_email,"
        " :title, :description, :time_zone, :scheduled_start, :scheduled_end, :calendar_owner, :next_check_at,"
        " :next_sync_at, :room_access_type, :room_auto_recording, :room_auto_transcription, :room_state)"
        " ON CONFLICT (client_id, external_reference) DO NOTHING RETURNING id, created_at, updated_at),"
        " p AS (INSERT INTO participants (meeting_id, email, role, position, invited_name, display_name)"
        " SELECT m.id, x.email, x.role, x.position - 1, x.name, x.name FROM m,"
        " unnest(CAST(:emails AS text[]), CAST(:roles AS text[]), CAST(:names AS text[]))"
        " WITH ORDINALITY AS x(email, role, name, position))"
        " SELECT created_at, updated_at FROM m",
        {**{name: getattr(meeting, name) for name in (
            "id", "client_id", "external_reference", "request_fingerprint", "organizer_email", "title",
            "description", "time_zone", "scheduled_start", "scheduled_end", "calendar_owner", "next_check_at",
            "next_sync_at", "room_access_type", "room_auto_recording", "room_auto_transcription", "room_state")},
         "emails": [p.email for p in people], "roles": [p.role for p in people],
         "names": [p.invited_name for p in people]},
    )
    row = cur.fetchone()
    if row is None:
        return None
    stored = tuple(Participant(email=p.email, role=p.role, display_name=p.invited_name, invited_name=p.invited_name)
                   for p in people)
    return meeting.but(status=Status.PENDING, created_at=row[0], updated_at=row[1], participants=stored)


def replace_invitees(cur, meeting_id: str, people: list[Participant]) -> None:
    """Make the organizer and guest rows match `people`, keeping the rows (and attendance) of people who stay.

    A given display name of an invitee is kept as `invited_name` and shown until a sync names the joiner.
    """
    cur.execute(
        "DELETE FROM participants WHERE meeting_id = :m AND role <> 'other' AND NOT (lower(email) = ANY(:emails))",
        {"m": meeting_id, "emails": [(p.email or "").lower() for p in people]},
    )
    for position, p in enumerate(people):
        cur.execute(
            "INSERT INTO participants (meeting_id, email, role, position, invited_name, display_name)"
            " VALUES (:m, :email, :role, :pos, :name, :name)"
            " ON CONFLICT (meeting_id, lower(email)) WHERE email IS NOT NULL"
            " DO UPDATE SET role = EXCLUDED.role, position = EXCLUDED.position,"
            " invited_name = EXCLUDED.invited_name,"
            " display_name = COALESCE(EXCLUDED.invited_name, participants.display_name), updated_at = now()",
            {"m": meeting_id, "email": p.email, "role": p.role, "pos": position, "name": p.invited_name},
        )


def find_by_reference(cur, client_id: str, reference: str, *, lock: bool = False) -> Meeting | None:
    sql = f"{_SELECT} WHERE m.client_id = :c AND m.external_reference = :r"
    cur.execute(sql + (" FOR UPDATE OF m" if lock else ""), {"c": client_id, "r": reference})
    return _one(cur)


def get_meeting(cur, meeting_id: str, *, client_id: str | None = None, lock: bool = False) -> Meeting | None:
    """One meeting with its participants and files; restricted to `client_id` unless None (admin)."""
    sql = f"{_SELECT} WHERE m.id = :id"
    params: dict[str, Any] = {"id": meeting_id}
    if client_id is not None:
        sql += " AND m.client_id = :c"
        params["c"] = client_id
    cur.execute(sql + (" FOR UPDATE OF m" if lock else ""), params)
    return _one(cur)


def write_meeting(cur, meeting_id: str, fields: dict[str, Any], *, expect_status: Status) -> Meeting:
    """Write columns of a meeting whose status is still `expect_status`; only the transition point calls this.

    Returns the meeting as it is after the write, with its participants and files (as a read in this transaction
    would find them): one statement, no read-back. Column names come from code (checked against the Meeting's
    fields), never from input.
    """
    unknown = set(fields) - COLUMNS
    if unknown:
        raise ValueError(f"not meeting columns: {sorted(unknown)}")
    values = {name: (value.value if isinstance(value, Status) else value) for name, value in fields.items()}
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    if set(values) - _BOOKKEEPING:
        assignments += ", updated_at = now()"
    cur.execute(f"UPDATE meetings AS m SET {assignments} WHERE m.id = :id__ AND m.status = :status__"
                f" RETURNING {_RETURNED}", {**values, "id__": meeting_id, "status__": expect_status.value})
    after = _one(cur)
    if after is None:
        raise RuntimeError("the meeting changed under its row lock")  # a use case forgot to lock: a bug
    return after


def list_meetings(cur, *, client_id: str | None, status: str | None, organizer_email: str | None,
                  external_reference: str | None, scheduled_from: datetime | None, scheduled_to: datetime | None,
                  after: tuple[datetime, str] | None, limit: int) -> list[Meeting]:
    """Meetings newest first with their details, filtered, starting after the keyset position `after`."""
    filters = (("m.client_id = :c", "c", client_id), ("m.status = :status", "status", status),
               ("lower(m.organizer_email) = lower(:org)", "org", organizer_email),
               ("m.external_reference = :ref", "ref", external_reference),
               ("m.scheduled_start >= :sfrom", "sfrom", scheduled_from),
               ("m.scheduled_start < :sto", "sto", scheduled_to))
    where = [condition for condition, _, value in filters if value is not None]
    params: dict[str, Any] = {name: value for _, name, value in filters if value is not None}
    params["limit"] = limit
    if after is not None:
        where.append("(m.created_at, m.id) < (:after_c, CAST(:after_i AS uuid))")
        params["after_c"], params["after_i"] = after
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    cur.execute(f"{_SELECT} {clause} ORDER BY m.created_at DESC, m.id DESC LIMIT :limit", params)
    return [_meeting(row) for row in cur.fetchall()]


_CHECKABLE = "(" + ", ".join(f"'{s.value}'" for s in sorted(DUE_FOR_CHECK)) + ")"

# --- an organizer's slots, for reject_conflicts --------------------------------------------------------------

# Any constant: the first key of the per-organizer advisory locks (the migrations' lock is a one-key lock).
_SLOT_LOCK_SPACE = 0x6D656574


def lock_organizer(cur, organizer_key: str) -> None:
    """Hold the organizer's slot lock until the transaction ends: conflict checks and the writes that claim a slot
    for that organizer happen one at a time (a hash collision only serialises two organizers' checks)."""
    cur.execute("SELECT pg_advisory_xact_lock(:space, hashtext(:key))",
                {"space": _SLOT_LOCK_SPACE, "key": organizer_key})
    cur.fetchall()


def slots_between(cur, organizer: str, start: datetime, end: datetime, *,
                  exclude_id: str | None = None) -> list[tuple[datetime, datetime]]:
    """The slots of the organizer's meetings in creation or live that overlap [start, end), but `exclude_id`'s."""
    cur.execute(
        f"SELECT scheduled_start, scheduled_end FROM meetings WHERE lower(organizer_email) = lower(:org)"
        f" AND status IN {_CHECKABLE} AND scheduled_start < :end AND scheduled_start > :earliest"
        " AND scheduled_end > :start AND (CAST(:exclude AS uuid) IS NULL OR id <> CAST(:exclude AS uuid))"
        " ORDER BY scheduled_start",
        # A meeting lasts at most 24 h: one that ends after `start` began less than a day before it.
        {"org": organizer, "start": start, "end": end, "earliest": start - MAX_DURATION, "exclude": exclude_id})
    return [(row[0], row[1]) for row in cur.fetchall()]


DUE_SQL = {
    "next_check_at": f"SELECT id, schedule_version, sync_attempts, next_check_at AS due_at FROM meetings"
                     f" WHERE status IN {_CHECKABLE} AND next_check_at <= :now ORDER BY next_check_at LIMIT :limit",
    "next_sync_at": "SELECT id, schedule_version, sync_attempts, next_sync_at AS due_at FROM meetings"
                    " WHERE next_sync_at IS NOT NULL AND next_sync_at <= :now ORDER BY next_sync_at LIMIT :limit",
}


def due_for(cur, column: str, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Meetings whose status check (`next_check_at`) or sync (`next_sync_at`) is due; a partial index serves each."""
    cur.execute(DUE_SQL[column], {"now": now, "limit": limit})
    return [{"id": str(row[0]), "schedule_version": row[1], "sync_attempts": row[2], "due_at": row[3]}
            for row in cur.fetchall()]


def scheduled_between(cur, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The meetings whose slot starts in [start, end), oldest first (an operator's backfill)."""
    cur.execute("SELECT id, schedule_version, sync_attempts FROM meetings"
                " WHERE scheduled_start >= :start AND scheduled_start < :end ORDER BY scheduled_start, id",
                {"start": start, "end": end})
    return [{"id": str(row[0]), "schedule_version": row[1], "sync_attempts": row[2]} for row in cur.fetchall()]


def postpone(cur, ids: list[str], column: str, until: datetime) -> None:
    """Push the due time of handed-out rows forward, so a lost task is retried by a later sweep, not the next."""
    if column not in ("next_check_at", "next_sync_at"):
        raise ValueError(column)
    cur.execute(f"UPDATE meetings SET {column} = :until WHERE id = ANY(:ids)", {"until": until, "ids": ids})


def ping(cur) -> None:
    cur.execute("SELECT 1")
    cur.fetchall()


# --- attendance and files, written by the recording sync ----------------------------------------------------

def write_attendance(cur, meeting_id: str, people: list, others: list) -> int:
    """Store a sync's matching (shared.domain.attendance): the organizer's and invitees' attendance, and the
    joiners matched to nobody as `other` rows; returns how many rows changed (0 when nothing did)."""
    changed = 0
    cur.execute(
        "DELETE FROM participants WHERE meeting_id = :m AND role = 'other' AND NOT (meet_participant = ANY(:keys))",
        {"m": meeting_id, "keys": [j.key for j in others]},
    )
    changed += cur.rowcount
    for a in people:
        cur.execute(
            "UPDATE participants SET attended = :attended, joined_at = :joined, left_at = :left,"
            " attended_seconds = :seconds, matched_by = :rule, meet_participant = :key,"
            " display_name = COALESCE(invited_name, :name, display_name), updated_at = now()"
            " WHERE meeting_id = :m AND lower(email) = lower(:email) AND role <> 'other'"
            " AND (attended, joined_at, left_at, attended_seconds, matched_by, meet_participant, display_name)"
            " IS DISTINCT FROM (:attended, :joined, :left, :seconds, :rule, :key,"
            " COALESCE(invited_name, :name, display_name))",
            {"m": meeting_id, "email": a.email, "attended": a.attended, "joined": a.joined_at, "left": a.left_at,
             "seconds": a.seconds, "name": a.display_name, "rule": a.matched_by, "key": a.meet_key},
        )
        changed += cur.rowcount
    for j in others:
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
            {"m": meeting_id, "key": j.key, "name": j.display_name, "joined": j.joined_at, "left": j.left_at,
             "seconds": j.seconds},
        )
        changed += cur.rowcount
    return changed


def upsert_recording(cur, meeting_id: str, meet_name: str, **fields) -> bool:
    """A Meet recording of the meeting; rewritten only when something changed (True then)."""
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
    return cur.rowcount > 0


def upsert_transcript(cur, meeting_id: str, meet_name: str, **fields) -> bool:
    """A Meet transcript of the meeting; rewritten only when something changed (True then)."""
    cur.execute(
        "INSERT INTO transcripts (meeting_id, meet_name, state, document_id, document_url)"
        " VALUES (:m, :name, :state, :document_id, :document_url)"
        " ON CONFLICT (meeting_id, meet_name) DO UPDATE SET state = EXCLUDED.state,"
        " document_id = EXCLUDED.document_id, document_url = EXCLUDED.document_url, updated_at = now()"
        " WHERE (transcripts.state, transcripts.document_id, transcripts.document_url)"
        " IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.document_id, EXCLUDED.document_url)",
        {"m": meeting_id, "name": meet_name, **fields},
    )
    return cur.rowcount > 0
