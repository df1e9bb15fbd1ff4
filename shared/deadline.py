"""The time one request may spend waiting on Google, retries included: adapters stop retrying once it has passed."""
from __future__ import annotations

import time
from contextvars import ContextVar

_ends_at: ContextVar[float | None] = ContextVar("deadline", default=None)


def start(seconds: float | None) -> None:
    """Give the current request (this thread's context) a deadline `seconds` from now; None lifts it."""
    _ends_at.set(None if seconds is None else time.monotonic() + seconds)


def remaining() -> float | None:
    """Seconds left before the current deadline (0 once passed), or None outside any."""
    ends = _ends_at.get()
    return None if ends is None else max(0.0, ends - time.monotonic())
