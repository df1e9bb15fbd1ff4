"""The outbox: the events of one change of a meeting, recorded in the change's own transaction.

Called by the transition point only. Each event gets the meeting's next sequence number, a body rendered once
(the Meeting resource as it is after the change) and a delivery for every endpoint of the meeting's client that
wants it; the commit makes all of it durable together with the change, and only then are the deliveries handed to
Cloud Tasks (shared.bootstrap wires that), so no crash between the two loses an event.
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone

from shared.adapters.postgres import webhooks as outbox
from shared.domain.events import Event, EventType, between
from shared.domain.meeting import Meeting
from shared.web.models import MeetingOut, RecordingOut, TranscriptOut
from shared.web.webhook_models import EVENT_MODELS, MeetingEventData, RecordingEventData, TranscriptEventData

log = logging.getLogger(__name__)


def record(cur, before: Meeting, after: Meeting) -> list[Event]:
    """Record the events of the change from `before` to `after` (the meeting's row lock is held)."""
    found = between(before, after)
    if not found:
        return []
    now = datetime.now(timezone.utc)
    meeting = MeetingOut.of(after)
    for event in found:
        _, sequence = outbox.record_event(cur, meeting_id=after.id, client_id=after.client_id, type=event.type.value,
                                          now=now, body_for=lambda seq, e=event: render(e, meeting, seq, now))
        log.info("%s recorded as event %d of the meeting", event.type.value, sequence,
                 extra={"meeting_id": after.id})
    return found


def render(event: Event, meeting: MeetingOut, sequence: int, timestamp: datetime) -> str:
    """The body of an event, exactly as every attempt sends and signs it."""
    data: MeetingEventData | RecordingEventData | TranscriptEventData
    if event.type == EventType.RECORDING_READY:
        assert event.recording is not None
        data = RecordingEventData(meeting=meeting, sequence=sequence,
                                  recording=RecordingOut(**dataclasses.asdict(event.recording)))
    elif event.type == EventType.TRANSCRIPT_READY:
        assert event.transcript is not None
        data = TranscriptEventData(meeting=meeting, sequence=sequence,
                                   transcript=TranscriptOut(**dataclasses.asdict(event.transcript)))
    else:
        data = MeetingEventData(meeting=meeting, sequence=sequence)
    return EVENT_MODELS[event.type](type=event.type.value, timestamp=timestamp, data=data).model_dump_json()
