"""Helpers shared by the integration tests: function clients and a Calendar client acting as a person in Google."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import functions_framework
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

ROOT = Path(__file__).resolve().parents[2]


def app_client(name: str):
    """The function as Cloud Functions runs it: functions-framework's app around functions/<name>/main.py."""
    return functions_framework.create_app(name, str(ROOT / "functions" / name / "main.py")).test_client()


def calendar_as_user(google, user: str = "doctor@clinica.com"):
    """Calendar v3 on the fake, as the organizer clicking in Google Calendar would change things (signed in)."""
    token = google.user_token(user, ["https://www.googleapis.com/auth/calendar"])
    return build("calendar", "v3", credentials=Credentials(token), static_discovery=True,
                 client_options={"api_endpoint": google.url + "calendar/v3/"}).events()


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def future_slot(days: int = 1, minutes: int = 30) -> tuple[str, str]:
    start = (datetime.now(timezone.utc) + timedelta(days=days)).replace(second=0, microsecond=0)
    return iso(start), iso(start + timedelta(minutes=minutes))


class Api:
    """The public functions with one client's key."""

    def __init__(self, key: str):
        self.auth = {"Authorization": f"Bearer {key}"}
        self.create = app_client("create_meeting")
        self.read = app_client("get_meeting")
        self.update = app_client("update_meeting")
        self.cancel = app_client("cancel_meeting")

    def post(self, body, **headers):
        return self.create.post("/v1/meetings", data=json.dumps(body), content_type="application/json",
                                headers={**self.auth, **headers})

    def patch(self, meeting_id, body, **headers):
        return self.update.patch(f"/v1/meetings/{meeting_id}", data=json.dumps(body), content_type="application/json",
                                 headers={**self.auth, **headers})

    def delete(self, meeting_id, **headers):
        return self.cancel.delete(f"/v1/meetings/{meeting_id}", headers={**self.auth, **headers})

    def get(self, path, **headers):
        return self.read.get(path, headers={**self.auth, **headers})
