"""Deadlines for the edge: callbacks run when their time comes, by one thread per process.

A request body is read under a deadline (shared.web.app.read_body): past it the connection's read side is shut,
which ends the read however slowly the bytes trickle in. A `threading.Timer` per request did that with a thread
of its own, started and stopped for every body: about 130 µs of CPU each time, a few percent of a warm create. One
daemon thread waits on a heap of deadlines instead; arming and disarming one is a push and a flag under a lock.

The thread starts with the first deadline of the process. A forked worker (gunicorn forks after the function is
imported) starts its own: nothing of the parent's thread, lock or heap is used in the child.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Deadline:
    """A callback armed to run at a time; `disarm()` before then and it never runs."""

    __slots__ = ("at", "order", "callback")

    def __init__(self, at: float, order: int, callback: Callable[[], None]):
        self.at, self.order, self.callback = at, order, callback

    def __lt__(self, other: Deadline) -> bool:
        return (self.at, self.order) < (other.at, other.order)

    def disarm(self) -> None:
        # Left in the heap and skipped when its time comes: memory held is at most what the deadlines of one
        # timeout's worth of requests take.
        self.callback = _disarmed


def _disarmed() -> None:
    return None


class Watchdog:
    """One thread running each armed callback at its deadline, in deadline order."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._ready = threading.Condition(threading.Lock())
        self._heap: list[Deadline] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, callback: Callable[[], None]) -> Deadline:
        with self._ready:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="edge-watchdog", daemon=True)
                self._thread.start()
            deadline = Deadline(self._clock() + seconds, next(self._order), callback)
            heapq.heappush(self._heap, deadline)
            if self._heap[0] is deadline:  # sooner than what the thread waits for
                self._ready.notify()
            return deadline

    def _run(self) -> None:
        with self._ready:
            while True:
                if not self._heap:
                    self._ready.wait()
                    continue
                wait = self._heap[0].at - self._clock()
                if wait > 0:
                    self._ready.wait(wait)
                    continue
                callback = heapq.heappop(self._heap).callback
                if callback is _disarmed:
                    continue
                self._ready.release()
                try:
                    callback()
                except Exception:  # a callback's failure must not stop every later deadline
                    log.exception("a deadline's callback failed")
                finally:
                    self._ready.acquire()


_watchdog: Watchdog | None = None
_lock = threading.Lock()


def arm(seconds: float, callback: Callable[[], None]) -> Deadline:
    """Run `callback` in `seconds` (on the process's watchdog thread) unless the returned deadline is disarmed."""
    global _watchdog
    if _watchdog is None:
        with _lock:
            if _watchdog is None:
                _watchdog = Watchdog()
    return _watchdog.arm(seconds, callback)


def _forget_after_fork() -> None:
    global _watchdog, _lock
    _watchdog, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
