"""HTTP client for the fake server's /_fake/ control API, for tests running out of process."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from .state import UNSET


class FakeGoogleControlError(RuntimeError):
    """The control API rejected a call."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        super().__init__(f"fake Google control call failed ({status}): {body}")


def _drop_unset(**values: Any) -> dict:
    return {k: v for k, v in values.items() if v is not UNSET}


def _drop_none(**values: Any) -> dict:
    return {k: v for k, v in values.items() if v is not None}


class FakeGoogleControl:
    """Drives a running fake Google server through its control API."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/") + "/"
        self.timeout = timeout
        self._http = requests.Session()

    def _call(self, method: str, path: str, json: Any = None, params: dict | None = None) -> Any:
        resp = self._http.request(method, self.url + "_fake/" + path.lstrip("/"), json=json, params=params,
                                  timeout=self.timeout)
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        if resp.status_code >= 400:
            raise FakeGoogleControlError(resp.status_code, body)
        return body

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._http.close()

    # ------------------------------------------------------------------ general

    def health(self) -> bool:
        """Whether the server answers."""
        return bool(self._call("GET", "health").get("ok"))

    def reset(self) -> None:
        """Empty the world, clear faults, latency and logs, restore defaults."""
        self._call("POST", "reset")

    def configure(self, conference_mode: str | None = None, pending_polls: int | None = UNSET,
                  max_page_size: int | None = None, workspace_domain: str | None = None,
                  open_directory: bool | None = None, delegation_scopes: list[str] | None = None,
                  token_lifetime_seconds: int | None = None, default_owner: str | None = None) -> dict:
        """Partially update the configuration; pending_polls=None means pending until resolved."""
        return self._call("POST", "config", _drop_unset(
            **_drop_none(conference_mode=conference_mode, max_page_size=max_page_size,
                         workspace_domain=workspace_domain, open_directory=open_directory,
                         delegation_scopes=delegation_scopes, token_lifetime_seconds=token_lifetime_seconds,
                         default_owner=default_owner),
            pending_polls=pending_polls))

    def config(self) -> dict:
        """Current configuration."""
        return self._call("GET", "config")

    def requests(self, operation: str | None = None, method: str | None = None,
                 path_contains: str | None = None) -> list[dict]:
        """Logged API requests, oldest first."""
        params = _drop_none(operation=operation, method=method, path_contains=path_contains)
        return self._call("GET", "requests", params=params)["items"]

    def clear_requests(self) -> None:
        """Forget the request log and counters."""
        self._call("DELETE", "requests")

    def stats(self) -> dict:
        """{"calls": {op: n}, "ok": {op: n}}."""
        return self._call("GET", "stats")

    def call_count(self, operation: str) -> int:
        """Requests that reached an operation (any status)."""
        return self.stats()["calls"].get(operation, 0)

    def ok_count(self, operation: str) -> int:
        """Successful (2xx) requests to an operation."""
        return self.stats()["ok"].get(operation, 0)

    def add_fault(self, status: int = 503, operation: str | None = None, path_regex: str | None = None,
                  method: str | None = None, count: int | None = 1, retry_after: float | None = None,
                  after: int = 0, reason: str | None = None, message: str | None = None) -> list[dict]:
        """Fail the next `count` matching requests (after skipping `after`); count=None fails until cleared."""
        body = _drop_none(status=status, operation=operation, path_regex=path_regex, method=method,
                          retry_after=retry_after, after=after, reason=reason, message=message)
        body["count"] = count
        return self._call("POST", "faults", body)["items"]

    def faults(self) -> list[dict]:
        """Pending faults."""
        return self._call("GET", "faults")["items"]

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._call("DELETE", "faults")

    def set_latency(self, ms: int, operation: str | None = None, path_regex: str | None = None,
                    method: str | None = None) -> list[dict]:
        """Delay matching requests by ms; ms=0 clears all latency."""
        body = _drop_none(ms=ms, operation=operation, path_regex=path_regex, method=method)
        return self._call("POST", "latency", body)["items"]

    def clear_latency(self) -> None:
        """Remove every latency rule."""
        self._call("DELETE", "latency")

    # ------------------------------------------------------------------ Calendar

    def events(self, calendar_id: str | None = None) -> list[dict]:
        """Every stored event, cancelled ones included, each with its calendarId."""
        return self._call("GET", "calendar/events", params=_drop_none(calendar_id=calendar_id))["items"]

    def get_event(self, calendar_id: str, event_id: str) -> dict:
        """Read an event without counting as a poll or an API call."""
        return self._call("GET", f"calendar/{quote(calendar_id, safe='')}/events/{quote(event_id, safe='')}")

    def resolve_conference(self, calendar_id: str, event_id: str, status: str = "success") -> dict:
        """Settle a pending conference request to success or failure."""
        path = f"calendar/{quote(calendar_id, safe='')}/events/{quote(event_id, safe='')}/conference"
        return self._call("POST", path, {"status": status})

    # ------------------------------------------------------------------ Meet

    def create_space(self, meeting_code: str | None = None, owner: str | None = None) -> dict:
        """Create (or fetch) the space for a meeting code; a new one belongs to `owner` (default: the default owner)."""
        return self._call("POST", "meet/spaces", _drop_none(meeting_code=meeting_code, owner=owner))

    def space(self, name: str) -> dict:
        """A space by meeting code or id, as its owner reads it (with `owner`), without counting as an API call."""
        return self._call("GET", f"meet/spaces/{quote(name.rsplit('/', 1)[-1], safe='')}")

    def change_space_config(self, name: str, config: dict) -> dict:
        """Change a space's settings as its owner does in the Meet UI: `config` (a SpaceConfig, partial) is merged."""
        return self._call("PATCH", f"meet/spaces/{quote(name.rsplit('/', 1)[-1], safe='')}/config", config)

    def create_conference(self, meeting_code: str | None = None, start_time: str | None = None,
                          end_time: str | None = None, participants: list[dict] | None = None,
                          recordings: list[dict] | None = None, transcripts: list[dict] | None = None,
                          space: str | None = None, owner: str | None = None) -> dict:
        """Create a conference record; returns its full view (ids of participants, sessions, artifacts).

        A meeting code without a space yet gets one owned by `owner` (default: the configured default owner)."""
        body = _drop_none(meeting_code=meeting_code, start_time=start_time, space=space,
                          participants=participants, recordings=recordings, transcripts=transcripts, owner=owner)
        body["end_time"] = end_time
        return self._call("POST", "meet/conferences", body)

    def conference(self, conference_id: str) -> dict:
        """Full view of a conference record."""
        return self._call("GET", f"meet/conferences/{_record_id(conference_id)}")

    def update_conference(self, conference_id: str, end_time: str | None = UNSET) -> dict:
        """Set or clear (None) the conference end time; "now" is accepted."""
        return self._call("PATCH", f"meet/conferences/{_record_id(conference_id)}", _drop_unset(end_time=end_time))

    def end_conference(self, conference_id: str, end_time: str = "now") -> dict:
        """End a conference (closing open participant sessions)."""
        return self.update_conference(conference_id, end_time)

    def add_participant(self, conference_id: str, participant: dict) -> dict:
        """Add a participant to a conference record."""
        return self._call("POST", f"meet/conferences/{_record_id(conference_id)}/participants", participant)

    def add_recording(self, conference_id: str, recording: dict) -> dict:
        """Add a recording to a conference record."""
        return self._call("POST", f"meet/conferences/{_record_id(conference_id)}/recordings", recording)

    def add_transcript(self, conference_id: str, transcript: dict) -> dict:
        """Add a transcript to a conference record."""
        return self._call("POST", f"meet/conferences/{_record_id(conference_id)}/transcripts", transcript)

    def update_recording(self, conference_id: str, recording_id: str, state: str | None = None,
                         end_time: str | None = UNSET, start_time: str | None = None,
                         drive_file_id: str | None = None, duration_seconds: int | None = None,
                         metadata_lag_gets: int | None = None) -> dict:
        """Change a recording; FILE_GENERATED creates its Drive file."""
        body = _drop_unset(**_drop_none(state=state, start_time=start_time, drive_file_id=drive_file_id,
                                        duration_seconds=duration_seconds, metadata_lag_gets=metadata_lag_gets),
                           end_time=end_time)
        path = f"meet/conferences/{_record_id(conference_id)}/recordings/{recording_id.rsplit('/', 1)[-1]}"
        return self._call("PATCH", path, body)

    def update_transcript(self, conference_id: str, transcript_id: str, state: str | None = None,
                          end_time: str | None = UNSET, start_time: str | None = None,
                          document_id: str | None = None) -> dict:
        """Change a transcript; FILE_GENERATED creates its document."""
        body = _drop_unset(**_drop_none(state=state, start_time=start_time, document_id=document_id),
                           end_time=end_time)
        path = f"meet/conferences/{_record_id(conference_id)}/transcripts/{transcript_id.rsplit('/', 1)[-1]}"
        return self._call("PATCH", path, body)

    # ------------------------------------------------------------------ Drive, People, Directory

    def add_drive_file(self, file_id: str | None = None, name: str | None = None, mime_type: str = "video/mp4",
                       duration_seconds: int | None = 1800, metadata_lag_gets: int = 0, owner: str | None = None,
                       created_by_meet: bool = False) -> dict:
        """Register a Drive file in `owner`'s Drive (default: the default owner)."""
        body = _drop_none(file_id=file_id, name=name, mime_type=mime_type, duration_seconds=duration_seconds,
                          metadata_lag_gets=metadata_lag_gets, owner=owner, created_by_meet=created_by_meet)
        return self._call("POST", "drive/files", body)

    def add_user(self, user_id: str, email: str | None = None, workspace: bool = False,
                 display_name: str | None = None) -> dict:
        """Register a Google account (email None = hidden from People)."""
        return self._call("POST", "users", {"user_id": user_id, "email": email, "workspace": workspace,
                                            "display_name": display_name})

    def users(self) -> list[dict]:
        """Registered users."""
        return self._call("GET", "users")["items"]

    # ------------------------------------------------------------------ identity

    def register_service_account(self, email: str, public_key: str) -> list[dict]:
        """Trust assertions signed by this PEM key (public or private) for this service account."""
        return self._call("POST", "service-accounts", {"email": email, "public_key": public_key})["items"]

    def service_accounts(self) -> list[dict]:
        """Service accounts with registered keys."""
        return self._call("GET", "service-accounts")["items"]

    def remove_service_account(self, email: str) -> None:
        """Forget a service account's keys."""
        self._call("DELETE", f"service-accounts/{quote(email, safe='')}")

    def add_workspace_user(self, email: str, suspended: bool = False) -> dict:
        """Add or update a user of the Workspace domain."""
        return self._call("POST", "workspace/users", {"email": email, "suspended": suspended})

    def suspend_user(self, email: str) -> dict:
        """Suspend a Workspace user: refused as a delegation subject, its tokens revoked."""
        return self.add_workspace_user(email, suspended=True)

    def remove_workspace_user(self, email: str) -> None:
        """Delete a Workspace user: an unknown subject from now on."""
        self._call("DELETE", f"workspace/users/{quote(email, safe='')}")

    def workspace_users(self) -> list[dict]:
        """Users the directory knows of explicitly."""
        return self._call("GET", "workspace/users")["items"]

    def user_token(self, email: str, scopes: list[str], lifetime_seconds: int | None = None) -> str:
        """An access token of that user themselves (as if signed in), to act as them in a test."""
        return self._call("POST", "tokens", _drop_none(email=email, scopes=list(scopes),
                                                       lifetime_seconds=lifetime_seconds))["access_token"]


def _record_id(conference_id: str) -> str:
    return conference_id.rsplit("/", 1)[-1]
