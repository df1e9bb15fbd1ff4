"""Pure decisions, no I/O: what a PATCH changes, what Google's answers mean for the status, when to sync again."""
from __future__ import annotations

import ast
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared.domain import rules, schedule
from shared.domain.errors import InvalidInput
from shared.domain.meeting import CalendarEvent, Conference, ConferenceRecord, Meeting, Participant, Status

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)
GRACE = timedelta(minutes=60)
SYNC_DELAY = timedelta(minutes=10)


def meeting(**changes) -> Meeting:
    base = Meeting(id="0b6c3a4e-8a4b-4f53-9a40-1d6f0f3c2a11", client_id="c", status=Status.CREATED,
                   organizer_email="doctor@clinica.com", title="Consulta", description=None,
                   time_zone="America/Bogota", scheduled_start=T0, scheduled_end=T0 + timedelta(minutes=30),
                   meeting_code="abc-defg-hij", conference_status="success",
                   participants=(Participant("doctor@clinica.com", "organizer"),
                                 Participant("Paciente@correo.com", "guest")))
    return base.but(**changes)


def event(start=T0, end=T0 + timedelta(minutes=30), cancelled=False, conference=None) -> CalendarEvent:
    return CalendarEvent(id="ev", cancelled=cancelled, start=start, end=end,
                         conference=conference or Conference("success", "https://meet.google.com/abc-defg-hij",
                                                             "abc-defg-hij"))


def plan(m: Meeting, **given):
    return rules.plan_update(m, given, default_title="Video appointment", now=T0 - timedelta(days=1),
                             sync_delay=SYNC_DELAY)


def reconcile(m: Meeting, ev: CalendarEvent | None, *, now: datetime, live=False, records=()):
    return rules.reconcile(m, ev, live=live, records=list(records), now=now, grace=GRACE, sync_delay=SYNC_DELAY)


# --- PATCH ---------------------------------------------------------------------------------------------------

def test_moving_the_start_alone_keeps_the_duration_and_bumps_the_schedule_version():
    p = plan(meeting(), scheduled_start=T0 + timedelta(hours=2))
    assert p.changes["scheduled_end"] == T0 + timedelta(hours=2, minutes=30)
    assert p.changes["schedule_version"] == 2 and p.changes["sync_attempts"] == 0
    assert p.changes["next_sync_at"] == T0 + timedelta(hours=2, minutes=40)
    assert p.event_parts == {"times"} and p.rescheduled


def test_a_naive_new_start_is_read_in_the_meetings_zone():
    p = plan(meeting(), scheduled_start=datetime(2026, 3, 10, 12, 0))  # noon in Bogota is 17:00 UTC
    assert p.changes["scheduled_start"] == datetime(2026, 3, 10, 17, 0, tzinfo=timezone.utc)


def test_the_same_values_change_nothing():
    p = plan(meeting(), scheduled_start=T0, title="Consulta", description=None, invited_emails=["paciente@CORREO.com"])
    assert (p.changes, p.event_parts, p.invitees) == ({}, frozenset(), None)


def test_a_blank_title_falls_back_to_the_default():
    p = plan(meeting(), title="   ")
    assert p.changes == {"title": "Video appointment"} and p.event_parts == {"title"}


def test_new_invitees_are_merged_and_patch_the_attendees():
    p = plan(meeting(), invited_emails=["Ana@x.com", "ana@X.com", "doctor@clinica.com"])
    assert [i.email for i in p.invitees] == ["Ana@x.com"] and p.event_parts == {"attendees"} and p.changes == {}


@pytest.mark.parametrize("given, field", [
    ({"scheduled_end": T0}, "scheduled_end"),
    ({"scheduled_end": T0 + timedelta(hours=25)}, "scheduled_end"),
    ({"invited_emails": ["doctor@clinica.com"]}, "invited_emails"),
])
def test_a_patch_breaking_a_rule_names_the_field(given, field):
    with pytest.raises(InvalidInput) as caught:
        plan(meeting(), **given)
    assert caught.value.errors[0]["field"] == field


# --- status reconciliation -----------------------------------------------------------------------------------

def test_a_deleted_or_cancelled_event_cancels_the_meeting():
    for ev in (None, event(cancelled=True)):
        decision = reconcile(meeting(), ev, now=T0 - timedelta(hours=1))
        assert decision.target == Status.CANCELLED
        assert decision.changes["cancelled_at"] == T0 - timedelta(hours=1)
        assert decision.changes["next_check_at"] is None and decision.changes["next_sync_at"] is None


def test_a_confirmed_conference_schedules_a_created_meeting():
    decision = reconcile(meeting(), event(), now=T0 - timedelta(days=1))
    assert decision.target == Status.SCHEDULED and not decision.rescheduled


def test_a_live_conference_is_in_progress_and_an_ended_one_finishes():
    assert reconcile(meeting(status=Status.SCHEDULED), event(), now=T0 + timedelta(minutes=5), live=True).target \
        == Status.IN_PROGRESS
    ended = T0 + timedelta(minutes=28)
    decision = reconcile(meeting(status=Status.IN_PROGRESS), event(), now=T0 + timedelta(minutes=40),
                         records=[ConferenceRecord("conferenceRecords/a", T0, ended)])
    assert decision.target == Status.FINISHED and decision.changes["finished_at"] == ended
    assert decision.changes["next_check_at"] is None


def test_a_conference_that_ended_before_the_slot_does_not_finish_it():
    before = [ConferenceRecord("conferenceRecords/test", T0 - timedelta(days=1), T0 - timedelta(days=1, minutes=-5))]
    decision = reconcile(meeting(status=Status.SCHEDULED), event(), now=T0 - timedelta(minutes=30), records=before)
    assert decision.target == Status.SCHEDULED and "finished_at" not in decision.changes


def test_without_a_conference_the_slot_plus_grace_finishes_it():
    now = T0 + timedelta(minutes=30) + GRACE + timedelta(seconds=1)
    decision = reconcile(meeting(status=Status.SCHEDULED), event(), now=now)
    assert decision.target == Status.FINISHED and decision.changes["finished_at"] == now
    assert reconcile(meeting(status=Status.SCHEDULED), event(), now=now - timedelta(seconds=2)).target \
        == Status.SCHEDULED


def test_an_event_moved_in_calendar_reschedules_the_meeting():
    later = T0 + timedelta(days=1)
    decision = reconcile(meeting(), event(start=later, end=later + timedelta(minutes=45)), now=T0 - timedelta(days=2))
    assert decision.rescheduled
    assert (decision.changes["scheduled_start"], decision.changes["scheduled_end"]) == (later,
                                                                                      later + timedelta(minutes=45))
    assert decision.changes["schedule_version"] == 2
    assert decision.changes["next_check_at"] == schedule.next_check(Status.SCHEDULED, later,
                                                                    later + timedelta(minutes=45),
                                                                    T0 - timedelta(days=2))


def test_a_pending_conference_resolved_in_calendar_fills_in_the_link():
    pending = meeting(meeting_code=None, meet_link=None, conference_status="pending")
    decision = reconcile(pending, event(), now=T0 - timedelta(days=1))
    assert decision.changes["meet_link"] == "https://meet.google.com/abc-defg-hij"
    assert decision.changes["conference_status"] == "success" and decision.target == Status.SCHEDULED
    still = reconcile(pending, event(conference=Conference("pending")), now=T0 - timedelta(days=1))
    assert "meet_link" not in still.changes and still.target == Status.CREATED


def test_an_in_progress_meeting_never_goes_back_to_scheduled():
    decision = reconcile(meeting(status=Status.IN_PROGRESS), event(), now=T0 + timedelta(minutes=10))
    assert decision.target == Status.IN_PROGRESS


# --- recording sync backoff ----------------------------------------------------------------------------------

def sync_after(attempt: int, *, now=T0 + timedelta(hours=1), complete=False):
    return rules.next_sync(attempt=attempt, now=now, end=T0 + timedelta(minutes=30), complete=complete,
                           give_up_after=timedelta(hours=48), base_minutes=5, max_minutes=120)


def test_sync_backoff_doubles_up_to_the_cap():
    now = T0 + timedelta(hours=1)
    delays = [(sync_after(a)[0] - now).total_seconds() / 60 for a in range(7)]
    assert delays == [5, 10, 20, 40, 80, 120, 120]
    assert sync_after(3)[1] == 4


def test_sync_stops_when_complete_or_after_giving_up():
    assert sync_after(2, complete=True) == (None, 2)
    assert sync_after(9, now=T0 + timedelta(minutes=30, hours=48)) == (None, 9)


# --- one transition point ------------------------------------------------------------------------------------

def test_only_the_transition_point_writes_a_meetings_columns():
    """`repository.write_meeting` (the one UPDATE that can set `status`) is called from transitions.py alone,
    and no other SQL in the product sets a meeting's status."""
    callers, status_writes = [], []
    for path in sorted((ROOT / "shared").rglob("*.py")):
        source = path.read_text()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "write_meeting":
                callers.append(path.relative_to(ROOT).as_posix())
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "status =" in node.value \
                    and "UPDATE meetings" in node.value:
                status_writes.append(path.relative_to(ROOT).as_posix())
    assert sorted(set(callers)) == ["shared/services/transitions.py"]
    assert status_writes == []
