"""In-memory fakes of the Google ports, for service-level unit tests."""
from __future__ import annotations

import copy
import random
import string
import threading
from typing import Any

from shared.adapters.google import MeetingCalendar  # noqa: F401  (wraps FakeCalendar as the port)
from shared.domain.errors import Unavailable


def meet_code() -> str:
    pick = lambda n: "".join(random.choices(string.ascii_lowercase, k=n))  # noqa: E731
    return f"{pick(3)}-{pick(4)}-{pick(3)}"


class FakeCalendar:
    """Calendar semantics that matter to the use cases: caller ids, 409 on duplicates, pending conferences."""

    def __init__(self, conference: str = "success", pending_polls: int | None = None):
        self.events: dict[str, dict[str, Any]] = {}
        self.conference = conference
        self.pending_polls = pending_polls
        self.calls: list[tuple[str, str]] = []
        self.fail_next: list[str] = []  # operations that raise Unavailable once each
        self._gets: dict[str, int] = {}
        self._lock = threading.Lock()

    def _maybe_fail(self, op: str) -> None:
        if op in self.fail_next:
            self.fail_next.remove(op)
            raise Unavailable("Google is unavailable; retry later.")

    def _conference(self, event_id: str, status: str) -> dict[str, Any]:
        data: dict[str, Any] = {"createRequest": {"requestId": event_id, "status": {"statusCode": status}}}
        if status == "success":
            code = meet_code()
            data.update(conferenceId=code, entryPoints=[{"entryPointType": "video",
                                                         "uri": f"https://meet.google.com/{code}"}])
        return data

    def insert_event(self, owner, event):
        with self._lock:
            self.calls.append(("insert", event["id"]))
            self._maybe_fail("insert")
            if event["id"] in self.events:
                return copy.deepcopy(self.events[event["id"]])
            stored = copy.deepcopy(event)
            stored.update(status="confirmed", conferenceData=self._conference(event["id"], self.conference))
            self._link(stored)
            self.events[event["id"]] = stored
            return copy.deepcopy(stored)

    @staticmethod
    def _link(event):
        entry = event["conferenceData"].get("entryPoints")
        if entry:
            event["hangoutLink"] = entry[0]["uri"]

    def get_event(self, owner, event_id):
        with self._lock:
            self.calls.append(("get", event_id))
            self._maybe_fail("get")
            event = self.events.get(event_id)
            if event is None:
                return None
            status = event["conferenceData"]["createRequest"]["status"]["statusCode"]
            self._gets[event_id] = self._gets.get(event_id, 0) + 1
            if status == "pending" and self.pending_polls is not None and self._gets[event_id] >= self.pending_polls:
                event["conferenceData"] = self._conference(event_id, "success")
                self._link(event)
            return copy.deepcopy(event)

    def resolve(self, event_id: str, status: str = "success") -> None:
        with self._lock:
            self.events[event_id]["conferenceData"] = self._conference(event_id, status)
            self._link(self.events[event_id])

    def patch_event(self, owner, event_id, patch):
        with self._lock:
            self.calls.append(("patch", event_id))
            self._maybe_fail("patch")
            self.events[event_id].update(copy.deepcopy(patch))
            return copy.deepcopy(self.events[event_id])

    def delete_event(self, owner, event_id):
        with self._lock:
            self.calls.append(("delete", event_id))
            self._maybe_fail("delete")
            event = self.events.get(event_id)
            if event is None or event["status"] == "cancelled":
                return False
            event["status"] = "cancelled"
            return True

    def count(self, op: str) -> int:
        return sum(1 for name, _ in self.calls if name == op)


class FakeQueue:
    """Cloud Tasks as a list: enqueue records the task; a name already used is refused, as Cloud Tasks does."""

    def __init__(self):
        self.tasks: list = []
        self.down = False

    def enqueue(self, task) -> bool:
        from shared.adapters.cloud_tasks import TaskEnqueueError

        if self.down:
            raise TaskEnqueueError("Cloud Tasks is unavailable")
        if any(t.name == task.name for t in self.tasks):
            return False
        self.tasks.append(task)
        return True
