"""Pure rules: the state machine, when checks are due, how attendance adds up."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import schedule

from shared.domain import lifecycle
from shared.domain.errors import Conflict
from shared.web.models import Status
from shared.services.recordings import Attendee

T0 = datetime(2026, 1, 10, 15, 0, tzinfo=timezone.utc)


def test_final_states_have_no_way_out():
    assert lifecycle.FINAL == {Status.FINISHED, Status.CANCELLED}
    for final in lifecycle.FINAL:
        for target in Status:
            assert not lifecycle.can_move(final, target)


@pytest.mark.parametrize("current, target, allowed", [
    ("PENDING", "CREATED", True), ("PENDING", "SCHEDULED", False), ("FAILED", "PENDING", True),
    ("CREATED", "SCHEDULED", True), ("SCHEDULED", "IN_PROGRESS", True), ("IN_PROGRESS", "SCHEDULED", False),
    ("IN_PROGRESS", "FINISHED", True), ("CREATED", "CANCELLED", True), ("FAILED", "FINISHED", False),
])
def test_transitions(current, target, allowed):
    assert lifecycle.can_move(current, target) is allowed
    if not allowed:
        with pytest.raises(Conflict):
            lifecycle.ensure_move(current, target)


def test_every_state_is_in_the_machine():
    assert set(lifecycle.TRANSITIONS) == set(Status)


@pytest.mark.parametrize("status, now, expected", [
    ("PENDING", T0, T0 + schedule.PENDING_RECHECK),
    ("CREATED", T0 - timedelta(days=3), T0 - timedelta(days=3) + schedule.IDLE_RECHECK),
    ("SCHEDULED", T0 - timedelta(hours=1), T0 - schedule.LEAD_TIME),
    ("SCHEDULED", T0 + timedelta(minutes=10), T0 + timedelta(minutes=10) + schedule.ACTIVE_RECHECK),
    ("IN_PROGRESS", T0, T0 + schedule.ACTIVE_RECHECK),
    ("FINISHED", T0, None), ("CANCELLED", T0, None), ("FAILED", T0, None),
])
def test_next_check(status, now, expected):
    assert schedule.next_check(status, T0, T0 + timedelta(minutes=30), now) == expected


def at(minute):
    return T0 + timedelta(minutes=minute)


@pytest.mark.parametrize("intervals, seconds", [
    ([], 0),
    ([(0, 10)], 600),
    ([(0, 10), (20, 25)], 900),
    ([(0, 10), (5, 15)], 900),          # two devices at once count once
    ([(0, 30), (5, 10), (12, 14)], 1800),
    ([(20, 25), (0, 10)], 900),         # order of sessions does not matter
])
def test_attended_seconds_merge_overlaps(intervals, seconds):
    person = Attendee(display_name=None, email=None, intervals=[(at(a), at(b)) for a, b in intervals])
    assert person.seconds == seconds
    if intervals:
        assert person.joined_at == at(min(a for a, _ in intervals))
        assert person.left_at == at(max(b for _, b in intervals))
