"""Pydantic models of the webhooks at the API boundary: endpoints, deliveries, and the events they carry."""
from __future__ import annotations

import typing
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.domain.events import EventType
from shared.web.models import MeetingOut, RecordingOut, Text, TranscriptOut, UtcDatetime

DeliveryStatus = Literal["pending", "delivered", "failed"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookEndpointCreate(_Input):
    """Where a client wants its meetings' events, and which of them."""

    url: Annotated[Text, StringConstraints(min_length=1, max_length=2048)]
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=len(EventType))] | None = None
    description: Annotated[Text, StringConstraints(max_length=500)] | None = None


class WebhookEndpointOut(BaseModel):
    """A webhook endpoint; its secret is shown only when it is made (create, rotation)."""

    id: str
    url: str
    event_types: list[EventType]
    description: str | None
    created_at: UtcDatetime
    disabled_at: UtcDatetime | None


class WebhookEndpointCreated(WebhookEndpointOut):
    """The new endpoint with its signing secret, shown this once (null in an Idempotency-Key replay)."""

    secret: str | None


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpointOut]


class WebhookSecret(BaseModel):
    """The endpoint's new signing secret; the previous one keeps signing for 24 h (null in a replay)."""

    secret: str | None


class WebhookDeliveryOut(BaseModel):
    """One event sent (or to be sent) to one endpoint; `event_id` is the `webhook-id` the receiver sees."""

    id: str
    event_id: str
    event_type: EventType
    meeting_id: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_attempt_at: UtcDatetime | None
    next_attempt_at: UtcDatetime | None
    created_at: UtcDatetime


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryOut]
    next_page_token: str | None


class WebhookDeliveryQuery(_Input):
    """Paging of an endpoint's deliveries."""

    model_config = ConfigDict(extra="ignore")

    page_size: Annotated[int, Field(ge=1, le=100)] = 20
    page_token: Annotated[Text, StringConstraints(max_length=512)] | None = None


class DeliveryRequest(BaseModel):
    """What Cloud Scheduler (`{}`, a sweep) or a Cloud Task (one attempt of one delivery) posts to deliver_webhooks."""

    model_config = ConfigDict(extra="ignore")

    delivery_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    attempt: Annotated[int, Field(ge=1, le=1000)] = 1


class DeliverySummary(BaseModel):
    """What deliver_webhooks did: one attempt of one delivery, or a sweep."""

    job: Literal["deliver_webhooks"] = "deliver_webhooks"
    mode: Literal["delivery", "sweep"]
    outcome: Literal["ok", "skipped", "error", "duplicate"]
    delivery_id: str | None = None
    meeting_id: str | None = None
    status: DeliveryStatus | None = None
    attempts: int | None = None
    last_status_code: int | None = None
    counts: dict[str, int] = {}
    detail: str | None = None


# --- the events, as receivers get them (the OpenAPI document's `webhooks`) ----------------------------------------

class MeetingEventData(BaseModel):
    """The meeting as it was right after the change, and its place among the meeting's events."""

    meeting: MeetingOut
    sequence: Annotated[int, Field(ge=1, description="grows with each event of the meeting: drop lower ones")]


class RecordingEventData(MeetingEventData):
    recording: RecordingOut


class TranscriptEventData(MeetingEventData):
    transcript: TranscriptOut


MeetingEventType = Literal["meeting.created", "meeting.updated", "meeting.cancelled", "meeting.started",
                           "meeting.finished", "attendance.updated"]


class MeetingEvent(BaseModel):
    """A change of a meeting: created, updated, cancelled, started, finished, or its attendance updated."""

    type: MeetingEventType
    timestamp: UtcDatetime
    data: MeetingEventData


class RecordingReadyEvent(BaseModel):
    """A recording's file reached FILE_GENERATED."""

    type: Literal["recording.ready"]
    timestamp: UtcDatetime
    data: RecordingEventData


class TranscriptReadyEvent(BaseModel):
    """A transcript's document reached FILE_GENERATED."""

    type: Literal["transcript.ready"]
    timestamp: UtcDatetime
    data: TranscriptEventData


EVENT_MODELS: dict[EventType, type[BaseModel]] = {
    **{t: MeetingEvent for t in EventType if t.value in typing.get_args(MeetingEventType)},
    EventType.RECORDING_READY: RecordingReadyEvent,
    EventType.TRANSCRIPT_READY: TranscriptReadyEvent,
}
