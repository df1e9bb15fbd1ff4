"""The transition point on a real PostgreSQL: the lifecycle is enforced, a refused move writes nothing."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.postgres import repository as repo
from shared.domain.errors import Conflict
from shared.domain.meeting import Meeting, Participant, Status
from shared.services.transitions import change

T0 = datetime(2026, 5, 4, 14, 0, tzinfo=timezone.utc)


@pytest.fixture
def stored(db, principal) -> Meeting:
    meeting = Meeting(id=str(uuid.uuid4()), client_id=principal.client_id, status=Status.PENDING,
                      organizer_email="doctor@clinica.com", title="Consulta", description=None,
                      time_zone="UTC", scheduled_start=T0, scheduled_end=T0 + timedelta(minutes=30),
                      request_fingerprint="f", external_reference=f"ref-{uuid.uuid4().hex[:6]}",
                      participants=(Participant("doctor@clinica.com", "organizer"),
                                    Participant("paciente@correo.com", "guest")))
    with db.transaction() as cur:
        assert repo.insert_meeting(cur, meeting)
        return repo.get_meeting(cur, meeting.id)


def test_an_allowed_move_is_written_and_returned(db, stored):
    with db.transaction() as cur:
        locked = repo.get_meeting(cur, stored.id, lock=True)
        moved = change(cur, locked, to=Status.CREATED, google_event_id="ev1", meet_link="https://meet.google.com/x")
    assert moved.status == Status.CREATED and moved.google_event_id == "ev1"
    with db.transaction() as cur:
        again = repo.get_meeting(cur, stored.id)
    assert (again.status, again.google_event_id, again.meet_link) == (Status.CREATED, "ev1",
                                                                       "https://meet.google.com/x")
    assert again.updated_at > stored.updated_at
    assert [p.email for p in again.participants] == ["doctor@clinica.com", "paciente@correo.com"]


def test_a_refused_move_raises_conflict_and_writes_nothing(db, stored):
    with pytest.raises(Conflict):
        with db.transaction() as cur:
            locked = repo.get_meeting(cur, stored.id, lock=True)
            change(cur, locked, to=Status.FINISHED, finished_at=T0)
    with db.transaction() as cur:
        assert repo.get_meeting(cur, stored.id).status == Status.PENDING


def test_bookkeeping_alone_leaves_updated_at_alone(db, stored):
    with db.transaction() as cur:
        locked = repo.get_meeting(cur, stored.id, lock=True)
        change(cur, locked, next_check_at=T0, last_checked_at=T0)
    with db.transaction() as cur:
        again = repo.get_meeting(cur, stored.id)
    assert again.next_check_at == T0 and again.updated_at == stored.updated_at


def test_status_is_given_only_as_a_move():
    with pytest.raises(TypeError):
        change(None, None, status=Status.CREATED)  # type: ignore[arg-type]


def test_a_stale_meeting_is_refused(db, stored):
    """A use case that decided on a meeting read without its lock must not overwrite a newer status."""
    with db.transaction() as cur:
        change(cur, repo.get_meeting(cur, stored.id, lock=True), to=Status.CANCELLED, cancelled_at=T0)
    with pytest.raises(RuntimeError):
        with db.transaction() as cur:
            change(cur, stored, to=Status.CREATED)
