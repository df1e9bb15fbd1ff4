"""The edge's watchdog: body-read deadlines run by one thread per process, never a thread per request."""
from __future__ import annotations

import io
import os
import threading

import pytest
from werkzeug.exceptions import RequestTimeout

from shared.web import app, watchdog

SOON = 0.05
PATIENCE = 5.0  # how long a test waits for what must happen; what must not happen gets SOON * 6


def test_deadlines_run_in_their_order_whatever_the_order_they_were_armed_in():
    dog = watchdog.Watchdog()
    ran: list[str] = []
    done = threading.Event()
    dog.arm(SOON * 3, lambda: (ran.append("third"), done.set()))
    dog.arm(SOON, lambda: ran.append("first"))
    dog.arm(SOON * 2, lambda: ran.append("second"))
    assert done.wait(PATIENCE)
    assert ran == ["first", "second", "third"]


def test_a_sooner_deadline_armed_while_the_thread_waits_for_a_later_one_runs_first():
    dog = watchdog.Watchdog()
    fired = threading.Event()
    later = dog.arm(3600, lambda: None)  # the thread now sleeps until this one
    dog.arm(SOON, fired.set)
    assert fired.wait(PATIENCE), "the thread kept waiting for the later deadline"
    later.disarm()


def test_a_disarmed_deadline_never_runs_and_later_ones_still_do():
    dog = watchdog.Watchdog()
    ran: list[str] = []
    done = threading.Event()
    dog.arm(SOON, lambda: ran.append("disarmed")).disarm()
    dog.arm(SOON * 2, lambda: (ran.append("armed"), done.set()))
    assert done.wait(PATIENCE)
    assert ran == ["armed"]


def test_a_failing_callback_does_not_stop_the_deadlines_after_it(caplog):
    dog = watchdog.Watchdog()
    done = threading.Event()
    dog.arm(SOON, lambda: 1 / 0)
    dog.arm(SOON * 2, done.set)
    assert done.wait(PATIENCE)
    assert "a deadline's callback failed" in caplog.text


def test_one_thread_serves_every_deadline_of_the_process(monkeypatch):
    """Reading bodies starts no thread once the watchdog runs (a threading.Timer per body started one each)."""
    watchdog.arm(0, lambda: None)  # the process's watchdog exists from here on
    started: list[str] = []
    original = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self.name), original(self))[1])
    for _ in range(50):
        body = app.read_body({}, io.BytesIO(b'{"a": 1}'), 8, limit=1024, seconds=10)
        assert body == b'{"a": 1}'
    assert started == []


def test_a_body_that_does_not_arrive_in_time_is_a_408(monkeypatch):
    class Trickle(io.RawIOBase):
        """A stream that blocks until the deadline shuts it, as a slow client's socket does once its read side is
        shut (this environ has no socket, so the test's deadline also ends the read)."""

        def __init__(self):
            self.shut = threading.Event()

        def readinto(self, buffer):
            self.shut.wait(PATIENCE)
            return 0

    stream = Trickle()
    original = watchdog.arm
    monkeypatch.setattr(watchdog, "arm", lambda seconds, callback: original(
        seconds, lambda: (callback(), stream.shut.set())))
    with pytest.raises(RequestTimeout):
        app.read_body({}, stream, 100, limit=1024, seconds=SOON)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_runs_its_own_deadlines():
    """gunicorn forks its worker after the function is imported: the child must not wait on the parent's thread."""
    watchdog.arm(0, lambda: None)  # the parent's watchdog runs
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its deadline ran
        fired = threading.Event()
        watchdog.arm(SOON, fired.set)
        os._exit(0 if fired.wait(PATIENCE) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
