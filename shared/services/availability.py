"""Clinician availability: busy times from Google Calendar, and the conflict check of `reject_conflicts`."""
from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from shared.adapters.postgres import repository as repo
from shared.domain import availability, rules
from shared.domain.emails import mailbox
from shared.domain.errors import Busy, InvalidInput
from shared.domain.meeting import Meeting
from shared.settings import Settings
from shared.web.models import Availability, AvailabilityQuery, BusyInterval

log = logging.getLogger(__name__)


def busy_times(query: AvailabilityQuery, *, calendar, settings: Settings, clock) -> Availability:
    """A Workspace user's busy intervals from freebusy.query (acting as them), merged, sorted, within the range."""
    zone = ZoneInfo(settings.default_time_zone)
    start, end = availability.check_range(rules.resolve_time(query.from_, zone), rules.resolve_time(query.to, zone),
                                          now=clock())
    if not rules.in_workspace(query.email, settings.workspace_domain):
        raise InvalidInput.field("email", "must be a user of the clinic's Google Workspace domain")
    busy = availability.merge(calendar.busy(query.email, start, end), within=(start, end))
    return Availability(email=query.email, from_=start, to=end,
                        busy=[BusyInterval(start=s, end=e) for s, e in busy])


def claim_slot(cur, *, organizer: str, calendar_owner: str | None, start: datetime, end: datetime, calendar,
               exclude: Meeting | None = None) -> None:
    """Refuse (Busy) a slot in which the organizer is busy, holding the organizer's lock until the transaction ends.

    Busy means: another meeting of this middleware for the organizer, in creation or live, overlaps the slot; or
    Google Calendar's free/busy of the organizer's own calendar does (read only when the organizer is a Workspace
    user and so owns the calendar the events are on). `exclude` is the meeting being moved: its row and its own
    event's current slot do not count. The caller writes its row in the same transaction, so two requests for
    overlapping slots of one organizer are decided one after the other and at most one of them gets the slot.
    Google unavailable raises Unavailable and nothing is claimed.
    """
    repo.lock_organizer(cur, mailbox(organizer))
    busy = repo.slots_between(cur, organizer, start, end, exclude_id=exclude.id if exclude else None)
    if calendar_owner is not None and mailbox(calendar_owner) == mailbox(organizer):
        booked = calendar.busy(organizer, start, end)
        if exclude is not None:
            # Free/busy names no events: the meeting's own event is taken out as its slot.
            booked = availability.without(booked, (exclude.scheduled_start, exclude.scheduled_end))
        busy += booked
    conflicts = availability.merge(busy, within=(start, end))
    if conflicts:
        log.info("slot refused: the organizer is busy", extra={"conflicts": len(conflicts),
                                                               "meeting_id": exclude.id if exclude else None})
        raise Busy(conflicts)
