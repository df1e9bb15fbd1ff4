"""Clinician availability, pure: busy intervals merged, clipped and subtracted, and the ranges a caller may ask."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from shared.domain.errors import InvalidInput
from shared.domain.rules import check_bounds

Interval = tuple[datetime, datetime]

MAX_RANGE = timedelta(days=90)


def check_range(start: datetime, end: datetime, *, now: datetime) -> Interval:
    """`from` before `to`, at most 90 days apart, each within the bounds of a scheduled time; UTC instants."""
    start, end = check_bounds(start, "from", now=now), check_bounds(end, "to", now=now)
    if end <= start:
        raise InvalidInput.field("to", "must be after from")
    if end - start > MAX_RANGE:
        raise InvalidInput.field("to", "must be at most 90 days after from")
    return start, end


def merge(intervals: Iterable[Interval], *, within: Interval | None = None) -> list[Interval]:
    """Intervals sorted by start, those that overlap or touch made one, clipped to `within`, empty ones dropped."""
    if within is not None:
        intervals = [(max(s, within[0]), min(e, within[1])) for s, e in intervals]
    merged: list[Interval] = []
    for start, end in sorted((s, e) for s, e in intervals if s < e):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def without(intervals: Iterable[Interval], hole: Interval) -> list[Interval]:
    """The intervals with the part inside `hole` taken out."""
    out: list[Interval] = []
    for start, end in intervals:
        if end <= hole[0] or start >= hole[1]:
            out.append((start, end))
            continue
        if start < hole[0]:
            out.append((start, hole[0]))
        if end > hole[1]:
            out.append((hole[1], end))
    return out
