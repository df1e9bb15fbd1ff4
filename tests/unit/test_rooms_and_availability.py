"""Pure decisions of rooms and availability: the policy a request asks for, what differs from a Meet space,
busy intervals merged and subtracted, the ranges a caller may ask for; and the wire format of both in the adapter."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.google import busy_periods, meet_space, space_patch
from shared.domain import availability, rooms
from shared.domain.errors import InvalidInput, Unavailable, UpstreamFailed
from shared.domain.meeting import Meeting, MeetSpace, RoomPolicy, Status

T0 = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)
DEFAULT = RoomPolicy("RESTRICTED")


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def meeting(**changes) -> Meeting:
    base = Meeting(id="0b6c3a4e-8a4b-4f53-9a40-1d6f0f3c2a11", client_id="c", status=Status.CREATED,
                   organizer_email="doctor@clinica.com", title="Consulta", description=None, time_zone="UTC",
                   scheduled_start=T0, scheduled_end=h(0.5), **rooms.columns(DEFAULT, rooms.APPLIED))
    return base.but(**changes)


# --- rooms ---------------------------------------------------------------------------------------------------

def test_a_request_without_a_room_gets_the_default_and_given_fields_replace_it():
    assert rooms.resolve(None, DEFAULT) == DEFAULT
    assert rooms.resolve({"auto_recording": True}, DEFAULT) == RoomPolicy("RESTRICTED", auto_recording=True)
    with pytest.raises(InvalidInput) as refused:
        rooms.resolve({"access_type": None}, DEFAULT)
    assert refused.value.errors[0]["field"] == "room.access_type"


def test_a_patch_of_the_room_keeps_what_it_does_not_name_and_retries_what_is_not_applied():
    assert rooms.plan_room(meeting(), {"auto_transcription": True}, default=DEFAULT) == rooms.columns(
        RoomPolicy("RESTRICTED", auto_transcription=True), rooms.PENDING)
    assert rooms.plan_room(meeting(), {"access_type": "RESTRICTED"}, default=DEFAULT) == {}
    assert rooms.plan_room(meeting(room_state=rooms.FAILED), {}, default=DEFAULT)["room_state"] == rooms.PENDING
    # A meeting made before room policies gets the defaults with the fields given.
    legacy = meeting(room_access_type=None, room_auto_recording=None, room_auto_transcription=None, room_state=None)
    assert legacy.room is None
    assert rooms.plan_room(legacy, {"access_type": "OPEN"}, default=DEFAULT)["room_access_type"] == "OPEN"


def test_drift_names_the_fields_a_space_does_not_have_and_unknown_values_count():
    space = MeetSpace("spaces/x", live=False, access_type="TRUSTED", auto_recording=False, auto_transcription=None)
    assert rooms.drift(DEFAULT, space) == ("access_type", "auto_transcription")
    assert rooms.drift(RoomPolicy("TRUSTED"), MeetSpace("spaces/x", False, "TRUSTED", False, False)) == ()


def test_the_space_patch_names_only_the_differing_fields_in_its_mask():
    """SpaceConfig paths of the meet.v2 discovery document; AutoGenerationType ON/OFF."""
    body, mask = space_patch(RoomPolicy("OPEN", auto_recording=True), ("auto_recording",))
    assert body == {"config": {"artifactConfig": {"recordingConfig": {"autoRecordingGeneration": "ON"}}}}
    assert mask == "config.artifactConfig.recordingConfig.autoRecordingGeneration"
    body, mask = space_patch(RoomPolicy("OPEN"), ("access_type", "auto_transcription"))
    assert body == {"config": {"accessType": "OPEN",
                               "artifactConfig": {"transcriptionConfig": {"autoTranscriptionGeneration": "OFF"}}}}
    assert mask == "config.accessType,config.artifactConfig.transcriptionConfig.autoTranscriptionGeneration"


def test_a_space_is_read_with_its_settings_and_whether_it_is_live():
    unspecified = "AUTO_GENERATION_TYPE_UNSPECIFIED"
    space = meet_space({"name": "spaces/abc", "activeConference": {"conferenceRecord": "conferenceRecords/r"},
                        "config": {"accessType": "RESTRICTED", "artifactConfig": {
                            "recordingConfig": {"autoRecordingGeneration": "ON"},
                            "transcriptionConfig": {"autoTranscriptionGeneration": unspecified}}}})
    assert space == MeetSpace("spaces/abc", True, "RESTRICTED", True, None)
    assert meet_space({"name": "spaces/abc"}) == MeetSpace("spaces/abc", False, None, None, None)


# --- availability --------------------------------------------------------------------------------------------

def test_busy_intervals_are_sorted_merged_when_they_overlap_or_touch_and_clipped():
    got = availability.merge([(h(5), h(6)), (h(1), h(2)), (h(1.5), h(3)), (h(3), h(4)), (h(7), h(7))],
                             within=(h(1.5), h(5.5)))
    assert got == [(h(1.5), h(4)), (h(5), h(5.5))]
    assert availability.merge([]) == []


def test_a_hole_is_taken_out_of_busy_intervals():
    busy = [(h(0), h(1)), (h(1.5), h(3)), (h(4), h(5))]
    assert availability.without(busy, (h(1), h(2))) == [(h(0), h(1)), (h(2), h(3)), (h(4), h(5))]
    assert availability.without([(h(0), h(3))], (h(1), h(2))) == [(h(0), h(1)), (h(2), h(3))]


@pytest.mark.parametrize("start, end, field", [
    (h(1), h(1), "to"), (h(2), h(1), "to"), (h(0), h(0) + timedelta(days=90, seconds=1), "to"),
    (datetime(1999, 12, 31, tzinfo=timezone.utc), h(0), "from"), (h(0), T0 + timedelta(days=6 * 365), "to"),
])
def test_a_range_is_forwards_at_most_ninety_days_and_within_the_bounds(start, end, field):
    with pytest.raises(InvalidInput) as refused:
        availability.check_range(start, end, now=T0)
    assert refused.value.errors[0]["field"] == field
    assert availability.check_range(h(0), h(0) + timedelta(days=90), now=T0) == (h(0), h(0) + timedelta(days=90))


def test_freebusy_answers_are_read_per_calendar_and_its_errors_raised():
    """FreeBusyCalendar: `busy` TimePeriods, or `errors` (notFound, internalError...) for that calendar alone."""
    answer = {"calendars": {"dra@clinica.com": {"busy": [{"start": "2026-03-10T15:00:00Z",
                                                          "end": "2026-03-10T16:00:00Z"}]}}}
    assert busy_periods(answer, "dra@clinica.com") == [(h(0), h(1))]
    with pytest.raises(UpstreamFailed):
        busy_periods({"calendars": {"x": {"errors": [{"domain": "global", "reason": "notFound"}]}}}, "x")
    with pytest.raises(Unavailable):
        busy_periods({"calendars": {"x": {"errors": [{"domain": "global", "reason": "internalError"}]}}}, "x")
