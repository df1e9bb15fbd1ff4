"""What a transaction leaves for after its commit: noted on its cursor, handed to the database's listener.

The outbox uses it: a change records its events in the transaction and notes the new deliveries, so the
composition root can enqueue them the moment the commit has made them durable, and never when it rolled back.
Nothing here imports pg8000.
"""
from __future__ import annotations

from typing import Any

_ATTRIBUTE = "_meet_after_commit"


def note(cur, key: str, *values: Any) -> None:
    """Remember `values` under `key` until the transaction of `cur` ends."""
    notes = cur.__dict__.setdefault(_ATTRIBUTE, {})
    notes.setdefault(key, []).extend(values)


def take(cur) -> dict[str, list[Any]]:
    """Everything noted on `cur`, forgotten by the cursor."""
    return cur.__dict__.pop(_ATTRIBUTE, None) or {}
