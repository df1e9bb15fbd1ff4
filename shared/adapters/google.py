"""Google Workspace: the only module that knows Google's APIs, their identity and wire formats (Calendar v3, Meet v2,
Drive v3, People). The use cases speak shared.domain types; `MeetingCalendar` and `MeetRooms` translate."""
from __future__ import annotations

import json
import logging
import random
import re
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import Resource, build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from shared import deadline
from shared.domain.errors import CancelledEventExists, IdentityRefused, NotFound, Unavailable, UpstreamFailed
from shared.domain.meeting import (
    Artifact,
    CalendarEvent,
    Conference,
    ConferenceRecord,
    Joiner,
    Meeting,
    MeetSnapshot,
    MeetSpace,
    RoomPolicy,
)
from shared.domain.rules import overlaps
from shared.settings import Settings

log = logging.getLogger(__name__)

# The narrowest scopes that serve every call below (each method's scopes are in its discovery document):
# calendar.events for events.insert/get/patch/delete; meetings.space.readonly for spaces.get and every
# conferenceRecords list; drive.meet.readonly for files.get on the recordings Meet saved in the organizer's Drive;
# directory.readonly for people.get, which then reveals the email of a user of the clinic's own domain;
# calendar.freebusy ("view your availability in your calendars") for freebusy.query on the user's own calendar,
# which calendar.events does not cover; meetings.space.settings for spaces.patch of a room's settings
# (meetings.space.created reaches only spaces the app itself created, not those Calendar made for an event).
SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/meetings.space.readonly",
    "https://www.googleapis.com/auth/drive.meet.readonly",
    "https://www.googleapis.com/auth/directory.readonly",
    "https://www.googleapis.com/auth/calendar.freebusy",
    "https://www.googleapis.com/auth/meetings.space.settings",
)
_GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
# With api_endpoint the client drops the discovery servicePath, so the standard path goes back on here.
_SERVICE_PATHS = {"calendar": "calendar/v3/", "drive": "drive/v3/"}
_MEET_CODE = re.compile(r"([a-z]{3}-[a-z]{4}-[a-z]{3})")
# 403 reasons that mean "slow down" (Calendar's usageLimits errors): retried like a 429. Retries are this module's
# own (googleapiclient's know neither the last two reasons nor a request's deadline).
_RATE_LIMITED = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"})


class GoogleApis:
    """Google's API clients for every delegated user, in bounded memory, per thread (httplib2 is not thread-safe).

    A discovery-built client holds its API's whole parsed discovery document: about half a MiB for Calendar, as
    much again for Meet, more with the collections built from it. So a thread builds each API's client once, for
    every user, and a request is sent as one user by giving it that user's authorized transport (the client
    library's documented way to share a client: a request's own `http`). Every client of a thread also shares the
    thread's one `httplib2.Http`, which keeps a connection per host: the calls of every API and every user on a
    thread reuse the same few connections (Google keeps them open), not a TLS handshake per (user, API).
    What grows with the number of users is their credentials alone (a token each).
    """

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] = time.sleep):
        self._settings = settings
        self._sleep = sleep
        self._local = threading.local()
        self._credentials: dict[str | None, Any] = {}
        self._signer = None
        self._lock = threading.Lock()

    @property
    def token_uri(self) -> str:
        """Where delegated tokens come from: Google's token endpoint, or `/token` below GOOGLE_API_ROOT."""
        root = self._settings.google_api_root
        return f"{root}token" if root else _GOOGLE_TOKEN_URI

    def _creds(self, subject: str | None):
        """Service-account credentials acting as `subject` (a JWT-bearer grant per token, reused until near expiry)."""
        from google.oauth2 import service_account

        with self._lock:
            if subject not in self._credentials:
                if self._signer is None:
                    self._signer = _signer(self._settings)
                # google-auth fills `aud` with Google's own endpoint; the audience is the token URI actually used.
                self._credentials[subject] = service_account.Credentials(
                    self._signer, self._settings.google_delegation_sa, self.token_uri, scopes=list(SCOPES),
                    subject=subject, additional_claims={"aud": self.token_uri})
            return self._credentials[subject]

    def _transport(self) -> httplib2.Http:
        transport = getattr(self._local, "transport", None)
        if transport is None:
            transport = self._local.transport = httplib2.Http(timeout=self._settings.google_timeout_seconds)
        return transport

    def _client(self, api: str, version: str, path: tuple[str, ...] = ()):
        """The thread's client of `api` (or its collection at `path`, e.g. ("conferenceRecords", "participants")),
        built once: each `events()`-style call builds a Resource and all its methods, their docstrings included."""
        cache = getattr(self._local, "clients", None)
        if cache is None:
            cache = self._local.clients = {}
        key = (api, version, path)
        found = cache.get(key)
        if found is None:
            if path:
                found = self._client(api, version)
                for name in path:
                    found = getattr(found, name)()
            else:
                root = self._settings.google_api_root
                options = {"api_endpoint": root + _SERVICE_PATHS.get(api, "")} if root else None
                # Built over the bare transport: a request sent without a user's transport carries no token.
                found = build(api, version, http=self._transport(), static_discovery=True, cache_discovery=False,
                              client_options=options)
            cache[key] = found
        return found

    def collection(self, api: str, version: str, subject: str | None, *path: str) -> AsUser:
        """A resource collection of `api`, e.g. ("conferenceRecords", "participants"), or with no path the client
        itself, acting as `subject` (domain-wide delegation)."""
        return AsUser(self._client(api, version, path), AuthorizedHttp(self._creds(subject),
                                                                       http=self._transport()))

    def service(self, api: str, version: str, subject: str | None = None) -> AsUser:
        """The discovery-built client of `api`, acting as `subject`."""
        return self.collection(api, version, subject)

    def execute(self, request, *, what: str) -> dict[str, Any]:
        """Run a request with backoff on 429, 5xx, rate-limit 403s and network failures; map what is left to domain
        errors. Under a request's deadline (shared.deadline) every attempt and every pause fits in what is left of
        it, and past it the answer is Unavailable: the caller gets a 503 and the status check finishes the work."""
        retries = self._settings.google_num_retries
        attempt = 0
        while True:
            left = deadline.remaining()
            if left is not None and left <= 0:
                log.warning("google %s: the request's time for Google is spent", what, extra={"attempts": attempt})
                raise Unavailable("Google is answering too slowly; retry later.")
            _bound_wait(request.http, self._settings.google_timeout_seconds, left)
            try:
                return request.execute(num_retries=0) or {}
            except HttpError as exc:
                reasons = _reasons(exc)
                if _retryable(exc.resp.status, reasons) and attempt < retries and self._pause(attempt + 1):
                    attempt += 1
                    continue
                raise _http_failure(exc, what, reasons) from exc
            except RefreshError as exc:
                raise _token_refused(exc, what) from exc
            except (TransportError, httplib2.HttpLib2Error, socket.timeout, OSError) as exc:
                if attempt < retries and self._pause(attempt + 1):
                    attempt += 1
                    continue
                log.warning("google %s unreachable: %s", what, type(exc).__name__)
                raise Unavailable("Google is unreachable; retry later.") from exc

    def _pause(self, attempt: int) -> bool:
        """Wait before retry `attempt` (the client library's own backoff schedule); False when the request's deadline
        leaves no time for it."""
        delay = random.random() * 2 ** attempt
        left = deadline.remaining()
        if left is not None and delay >= left:
            return False
        self._sleep(delay)
        return True


class AsUser:
    """A client, or one of its collections, whose requests go out as one delegated user: each request it makes
    (pagination's `list_next` included) gets that user's authorized transport; a collection it opens is bound
    the same way."""

    __slots__ = ("_resource", "_http")

    def __init__(self, resource, http):
        self._resource, self._http = resource, http

    def __getattr__(self, name: str):
        attribute = getattr(self._resource, name)
        if not callable(attribute):
            return attribute

        def as_user(*args, **kwargs):
            made = attribute(*args, **kwargs)
            if isinstance(made, HttpRequest):
                made.http = self._http
            elif isinstance(made, Resource):
                made = AsUser(made, self._http)
            return made

        return as_user


def _retryable(status: int, reasons: set[str]) -> bool:
    return status == 429 or status >= 500 or (status == 403 and bool(reasons & _RATE_LIMITED))


def _bound_wait(http, timeout: float, left: float | None) -> None:
    """Make the next attempt's socket waits end by the deadline: httplib2 keeps a timeout per connection."""
    seconds = timeout if left is None else max(0.05, min(timeout, left))
    inner = getattr(http, "http", http)  # google_auth_httplib2.AuthorizedHttp around an httplib2.Http
    if not isinstance(inner, httplib2.Http):
        return
    inner.timeout = seconds
    for connection in inner.connections.values():
        connection.timeout = seconds
        if getattr(connection, "sock", None) is not None:
            connection.sock.settimeout(seconds)


def _signer(settings: Settings):
    """The one local difference: a key file signs for a local GOOGLE_API_ROOT; in the cloud, IAM signs (keyless)."""
    if settings.google_signing_key_file:
        from cryptography.hazmat.primitives import serialization
        from google.auth import crypt

        # The local stack's own key (make run made it). Loading it without cryptography's RSA consistency checks
        # (primality tests of its factors, 30 ms of every instance's first Google call) is safe for a key one
        # made oneself: a damaged key only signs assertions the root refuses, as it would refuse any bad grant.
        key = serialization.load_pem_private_key(Path(settings.google_signing_key_file).read_bytes(),
                                                 password=None, unsafe_skip_rsa_key_validation=True)
        return crypt.RSASigner(key)
    import google.auth
    from google.auth import iam
    from google.auth.transport.requests import Request

    source, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return iam.Signer(Request(), source, settings.google_delegation_sa)


def _reasons(exc: HttpError) -> set[str]:
    """The `reason`s of a Google error body (legacy `errors` items and ErrorInfo `details`)."""
    try:
        error = json.loads(exc.content.decode("utf-8")).get("error")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return set()
    if not isinstance(error, dict):
        return set()
    items = [*(error.get("errors") or []), *(error.get("details") or [])]
    return {item["reason"] for item in items if isinstance(item, dict) and isinstance(item.get("reason"), str)}


def _http_failure(exc: HttpError, what: str, reasons: set[str]) -> Exception:
    status = exc.resp.status
    if status == 429 or status >= 500 or (status == 403 and reasons & _RATE_LIMITED):
        log.warning("google %s unavailable after retries", what, extra={"status": status})
        return Unavailable("Google is unavailable; retry later.")
    if status in (404, 410):
        return NotFound(f"Google has no such resource ({what}).")
    if status != 409:  # a duplicate id is the expected answer to a retried insert
        log.error("google %s refused the request", what, extra={"status": status, "reasons": sorted(reasons)})
    return UpstreamFailed(f"Google refused the request ({what}, HTTP {status}).")


def _token_refused(exc: RefreshError, what: str) -> Exception:
    """Map a refused delegated token: the cause in words, never the user (error descriptions may name them)."""
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    error = data.get("error") if isinstance(data.get("error"), str) else None
    description = str(data.get("error_description") or "")
    if exc.retryable:  # the token endpoint answered 5xx or 429 through google-auth's own retries
        log.warning("google token endpoint unavailable for %s", what, extra={"error": error})
        return Unavailable("Google's token endpoint is unavailable; retry later.")
    if error == "invalid_grant" and "JWT" in description:
        cause = "it rejected the delegation assertion (signature, audience or clock)"
    elif error == "invalid_grant" and "account not found" in description:
        cause = "the delegation service account is unknown to it"
    elif error == "invalid_grant":
        cause = "the calendar owner is not an active user of the Workspace (unknown or suspended)"
    elif error in ("unauthorized_client", "access_denied"):
        cause = "domain-wide delegation is not authorized for the scopes the middleware requests"
    else:
        cause = f"it refused the delegated token ({error or 'no error code'})"
    log.error("google %s: delegated token refused (%s)", what, error or "no error code", extra={"error": error})
    return IdentityRefused(f"Google refused to act as the meeting's calendar owner: {cause}.")


def _is_duplicate(exc: HttpError) -> bool:
    return exc.resp.status == 409


class Calendar:
    """Calendar v3 events on the delegated subject's primary calendar."""

    def __init__(self, apis: GoogleApis):
        self._apis = apis

    def _events(self, owner: str | None):
        return self._apis.collection("calendar", "v3", owner, "events")

    def insert_event(self, owner: str | None, event: dict[str, Any]) -> dict[str, Any]:
        """Insert an event with a caller-chosen id; if the id exists already, that event is returned unless it is
        cancelled (CancelledEventExists)."""
        request = self._events(owner).insert(calendarId="primary", body=event, conferenceDataVersion=1,
                                             sendUpdates="all")
        try:
            return self._apis.execute(request, what="calendar.events.insert")
        except UpstreamFailed as exc:
            if not (isinstance(exc.__cause__, HttpError) and _is_duplicate(exc.__cause__)):
                raise
            existing = self.get_event(owner, event["id"])
            if existing is None:
                raise
            if existing.get("status") == "cancelled":
                # A cancelled event keeps its id and cannot be revived by an insert: adopting it would hand out a
                # dead Meet link.
                raise CancelledEventExists("The Calendar event id of this meeting belongs to a cancelled event; "
                                           "a new creation attempt is needed.") from exc
            return existing

    def get_event(self, owner: str | None, event_id: str) -> dict[str, Any] | None:
        """The event (status `cancelled` once deleted), or None when Google does not know it."""
        try:
            return self._apis.execute(self._events(owner).get(calendarId="primary", eventId=event_id),
                                      what="calendar.events.get")
        except NotFound:
            return None

    def patch_event(self, owner: str | None, event_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Patch an event and notify its attendees."""
        request = self._events(owner).patch(calendarId="primary", eventId=event_id, body=patch,
                                            conferenceDataVersion=1, sendUpdates="all")
        return self._apis.execute(request, what="calendar.events.patch")

    def delete_event(self, owner: str | None, event_id: str) -> bool:
        """Cancel an event and notify its attendees; False when it was already gone."""
        try:
            self._apis.execute(self._events(owner).delete(calendarId="primary", eventId=event_id,
                                                          sendUpdates="all"), what="calendar.events.delete")
            return True
        except NotFound:
            return False

    def freebusy(self, owner: str, time_min: str, time_max: str) -> dict[str, Any]:
        """freebusy.query of the subject's own calendar between two RFC 3339 instants."""
        request = self._apis.collection("calendar", "v3", owner, "freebusy").query(
            body={"timeMin": time_min, "timeMax": time_max, "items": [{"id": owner}]})
        return self._apis.execute(request, what="calendar.freebusy.query")


class Meet:
    """Meet v2: spaces, conference records and what hangs off them (every list read to its last page)."""

    def __init__(self, apis: GoogleApis):
        self._apis = apis

    def _all(self, collection, request, key: str, what: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while request is not None:
            page = self._apis.execute(request, what=what)
            items.extend(page.get(key, []))
            request = collection.list_next(request, page)
        return items

    def space(self, owner: str | None, meeting_code: str) -> dict[str, Any] | None:
        """The Meet space of a meeting code (with `activeConference` while one is live), or None."""
        spaces = self._apis.collection("meet", "v2", owner, "spaces")
        try:
            return self._apis.execute(spaces.get(name=f"spaces/{meeting_code}"), what="meet.spaces.get")
        except NotFound:
            return None

    def patch_space(self, owner: str | None, name: str, body: dict[str, Any], update_mask: str) -> dict[str, Any]:
        """spaces.patch of the fields `update_mask` names (the space by its own name: a code only reads)."""
        spaces = self._apis.collection("meet", "v2", owner, "spaces")
        return self._apis.execute(spaces.patch(name=name, body=body, updateMask=update_mask),
                                  what="meet.spaces.patch")

    def conference_records(self, owner: str | None, meeting_code: str) -> list[dict[str, Any]]:
        """Every conference held in the meeting's space (people may leave and come back: several records)."""
        records = self._apis.collection("meet", "v2", owner, "conferenceRecords")
        request = records.list(filter=f'space.meeting_code = "{meeting_code}"', pageSize=100)
        return self._all(records, request, "conferenceRecords", "meet.conferenceRecords.list")

    def participants(self, owner: str | None, record: str) -> list[dict[str, Any]]:
        collection = self._apis.collection("meet", "v2", owner, "conferenceRecords", "participants")
        return self._all(collection, collection.list(parent=record, pageSize=100), "participants",
                         "meet.conferenceRecords.participants.list")

    def sessions(self, owner: str | None, participant: str) -> list[dict[str, Any]]:
        collection = self._apis.collection("meet", "v2", owner, "conferenceRecords", "participants",
                                           "participantSessions")
        return self._all(collection, collection.list(parent=participant, pageSize=100), "participantSessions",
                         "meet.conferenceRecords.participants.participantSessions.list")

    def recordings(self, owner: str | None, record: str) -> list[dict[str, Any]]:
        collection = self._apis.collection("meet", "v2", owner, "conferenceRecords", "recordings")
        return self._all(collection, collection.list(parent=record, pageSize=100), "recordings",
                         "meet.conferenceRecords.recordings.list")

    def transcripts(self, owner: str | None, record: str) -> list[dict[str, Any]]:
        collection = self._apis.collection("meet", "v2", owner, "conferenceRecords", "transcripts")
        return self._all(collection, collection.list(parent=record, pageSize=100), "transcripts",
                         "meet.conferenceRecords.transcripts.list")


class Directory:
    """Who a Meet `users/{id}` is: the People API, which reveals the email of users of the clinic's own domain."""

    def __init__(self, apis: GoogleApis):
        self._apis = apis

    def email_of(self, owner: str | None, user: str) -> str | None:
        """The email behind a Meet user resource name, or None when Google does not reveal it."""
        user_id = user.rsplit("/", 1)[-1]
        people = self._apis.collection("people", "v1", owner, "people")
        try:
            person = self._apis.execute(people.get(resourceName=f"people/{user_id}", personFields="emailAddresses"),
                                        what="people.people.get")
        except IdentityRefused:
            raise
        except (NotFound, UpstreamFailed):
            return None
        emails = person.get("emailAddresses") or []
        primary = next((e for e in emails if (e.get("metadata") or {}).get("primary")), emails[0] if emails else None)
        return primary.get("value") if primary and primary.get("value") else None


class Drive:
    """Drive v3 metadata of recording files."""

    def __init__(self, apis: GoogleApis):
        self._apis = apis

    def file(self, owner: str | None, file_id: str) -> dict[str, Any] | None:
        files = self._apis.collection("drive", "v3", owner, "files")
        request = files.get(fileId=file_id, supportsAllDrives=True,
                            fields="id,name,mimeType,webViewLink,createdTime,videoMediaMetadata")
        try:
            return self._apis.execute(request, what="drive.files.get")
        except NotFound:
            return None


# --- the ports the use cases speak: Meeting in, domain values out ---------------------------------------------

FINAL_STATE = "FILE_GENERATED"


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _event_time(value: datetime, zone_name: str) -> dict[str, str]:
    return {"dateTime": value.astimezone(ZoneInfo(zone_name)).isoformat(), "timeZone": zone_name}


def _attendees(meeting: Meeting) -> list[dict[str, Any]]:
    return [{"email": p.email, **({"organizer": True} if p.role == "organizer" else {}),
             **({"displayName": p.invited_name} if p.invited_name else {})} for p in meeting.attendees]


def event_body(meeting: Meeting) -> dict[str, Any]:
    """The Calendar event of a meeting: a Meet conference request, organizer and invitees as attendees."""
    event_id = meeting.event_id
    return {
        "id": event_id,
        "summary": meeting.title,
        "description": meeting.description or "",
        "start": _event_time(meeting.scheduled_start, meeting.time_zone),
        "end": _event_time(meeting.scheduled_end, meeting.time_zone),
        "attendees": _attendees(meeting),
        "guestsCanInviteOthers": False,
        "conferenceData": {
            "createRequest": {"requestId": event_id, "conferenceSolutionKey": {"type": "hangoutsMeet"}}
        },
        "extendedProperties": {"private": {"meetingId": meeting.id}},
    }


def event_patch(meeting: Meeting, parts: frozenset[str]) -> dict[str, Any]:
    """The Calendar patch that brings the event in line with `meeting` for the changed `parts`."""
    patch: dict[str, Any] = {}
    if "times" in parts:
        patch.update(start=_event_time(meeting.scheduled_start, meeting.time_zone),
                     end=_event_time(meeting.scheduled_end, meeting.time_zone))
    if "title" in parts:
        patch["summary"] = meeting.title
    if "description" in parts:
        patch["description"] = meeting.description or ""
    if "attendees" in parts:
        patch["attendees"] = _attendees(meeting)
    return patch


def conference_of(event: dict[str, Any]) -> Conference:
    """Read status, Meet link and meeting code from a Calendar event resource."""
    data = event.get("conferenceData") or {}
    status = ((data.get("createRequest") or {}).get("status") or {}).get("statusCode")
    link = event.get("hangoutLink")
    if not link:
        link = next((p.get("uri") for p in data.get("entryPoints", []) if p.get("entryPointType") == "video"), None)
    if link and status is None:
        status = "success"
    code = data.get("conferenceId")
    if not code and link:
        found = _MEET_CODE.search(link)
        code = found.group(1) if found else None
    return Conference(status=status, link=link if status == "success" else None,
                      code=code if status == "success" else None)


def _rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# Where each field of a room policy is in a Meet space (SpaceConfig in the meet.v2 discovery document).
_ROOM_PATHS: dict[str, tuple[str, ...]] = {
    "access_type": ("accessType",),
    "auto_recording": ("artifactConfig", "recordingConfig", "autoRecordingGeneration"),
    "auto_transcription": ("artifactConfig", "transcriptionConfig", "autoTranscriptionGeneration"),
}
_AUTO_GENERATION = {"ON": True, "OFF": False}


def meet_space(space: dict[str, Any]) -> MeetSpace:
    """Read a Meet space resource: its name, a live conference, its room settings."""
    config = space.get("config") or {}

    def at(path: tuple[str, ...]) -> Any:
        node: Any = config
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return node

    access = at(_ROOM_PATHS["access_type"])
    return MeetSpace(name=space.get("name", ""), live=bool(space.get("activeConference")),
                     access_type=access if access in ("OPEN", "TRUSTED", "RESTRICTED") else None,
                     auto_recording=_AUTO_GENERATION.get(at(_ROOM_PATHS["auto_recording"])),
                     auto_transcription=_AUTO_GENERATION.get(at(_ROOM_PATHS["auto_transcription"])))


def space_patch(policy: RoomPolicy, fields: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """The spaces.patch body and updateMask that set `fields` of the policy and touch nothing else of the space."""
    config: dict[str, Any] = {}
    for name in fields:
        value = getattr(policy, name)
        *parents, leaf = _ROOM_PATHS[name]
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value if name == "access_type" else ("ON" if value else "OFF")
    return {"config": config}, ",".join("config." + ".".join(_ROOM_PATHS[name]) for name in fields)


def busy_periods(answer: dict[str, Any], calendar_id: str) -> list[tuple[datetime, datetime]]:
    """The busy periods of one calendar in a freebusy.query answer; Google's per-calendar errors raised."""
    calendars = answer.get("calendars") or {}
    entry: dict[str, Any] = calendars.get(calendar_id) or next(iter(calendars.values()), {})
    reasons = sorted({e.get("reason") or "unknown" for e in entry.get("errors") or []})
    if reasons:
        log.error("google calendar.freebusy.query could not read the calendar", extra={"reasons": reasons})
        if set(reasons) <= {"internalError", "backendError"}:
            raise Unavailable("Google could not compute the calendar's free/busy times; retry later.")
        raise UpstreamFailed(f"Google could not read the organizer's free/busy times ({', '.join(reasons)}).")
    periods = []
    for period in entry.get("busy") or []:
        start, end = _parse(period.get("start")), _parse(period.get("end"))
        if start is not None and end is not None:
            periods.append((start, end))
    return periods


def calendar_event(event: dict[str, Any]) -> CalendarEvent:
    return CalendarEvent(id=event.get("id", ""), cancelled=event.get("status") == "cancelled",
                         start=_parse((event.get("start") or {}).get("dateTime")),
                         end=_parse((event.get("end") or {}).get("dateTime")), conference=conference_of(event))


class MeetingCalendar:
    """The Calendar port of the use cases: a meeting's event on its calendar owner's primary calendar."""

    def __init__(self, calendar):
        self._calendar = calendar  # Calendar, or a test double with the same four methods

    def insert_event(self, meeting: Meeting) -> CalendarEvent:
        """Insert the meeting's event under its derived id; a live event already there under that id is returned, a
        cancelled one is CancelledEventExists."""
        return calendar_event(self._calendar.insert_event(meeting.calendar_owner, event_body(meeting)))

    def get_event(self, meeting: Meeting) -> CalendarEvent | None:
        event = self._calendar.get_event(meeting.calendar_owner, meeting.event_id)
        return calendar_event(event) if event is not None else None

    def patch_event(self, meeting: Meeting, parts: frozenset[str]) -> None:
        """Bring the event's `parts` (times, title, description, attendees) in line, notifying the attendees."""
        self._calendar.patch_event(meeting.calendar_owner, meeting.event_id, event_patch(meeting, parts))

    def delete_event(self, meeting: Meeting) -> bool:
        """Cancel the event, notifying the attendees; False when it was already gone."""
        return self._calendar.delete_event(meeting.calendar_owner, meeting.event_id)

    def busy(self, user: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The user's busy periods between two instants, from freebusy.query acting as that user."""
        return busy_periods(self._calendar.freebusy(user, _rfc3339(start), _rfc3339(end)), user)


class MeetRooms:
    """The Meet port of the use cases: what happened in a meeting's room, as domain values."""

    def __init__(self, meet, directory=None, drive=None):
        self._meet, self._directory, self._drive = meet, directory, drive

    def space(self, meeting: Meeting, code: str) -> MeetSpace | None:
        """The meeting's Meet space (found by its meeting code): a live conference, its room settings."""
        space = self._meet.space(meeting.calendar_owner, code)
        return meet_space(space) if space else None

    def live(self, meeting: Meeting, code: str) -> bool:
        """Whether a conference is live in the room now."""
        space = self.space(meeting, code)
        return bool(space and space.live)

    def apply_policy(self, meeting: Meeting, space: MeetSpace, policy: RoomPolicy,
                     fields: tuple[str, ...]) -> MeetSpace:
        """Set `fields` of the policy on the space, as the calendar owner; the space as Meet now has it."""
        body, mask = space_patch(policy, fields)
        return meet_space(self._meet.patch_space(meeting.calendar_owner, space.name, body, mask))

    def records(self, meeting: Meeting, code: str) -> list[ConferenceRecord]:
        return [ConferenceRecord(name=r["name"], start=_parse(r.get("startTime")), end=_parse(r.get("endTime")))
                for r in self._meet.conference_records(meeting.calendar_owner, code)]

    def snapshot(self, meeting: Meeting, *, now: datetime, window: tuple[datetime, datetime]) -> MeetSnapshot:
        """The room's conference records that overlap `window`, with their joiners, sessions and files."""
        owner, code, meet = meeting.calendar_owner, meeting.meeting_code or "", self._meet
        records = [r for r in meet.conference_records(owner, code)
                   if overlaps(ConferenceRecord(r["name"], _parse(r.get("startTime")), _parse(r.get("endTime"))),
                               window)]
        joiners: dict[str, Joiner] = {}
        recordings: list[Artifact] = []
        transcripts: list[Artifact] = []
        emails: dict[str, str | None] = {}
        for record in records:
            record_end = _parse(record.get("endTime")) or now
            for participant in meet.participants(owner, record["name"]):
                found = self._identify(participant, owner=owner, emails=emails)
                joiner = joiners.setdefault(found.key, found)
                for session in meet.sessions(owner, participant["name"]):
                    start = _parse(session.get("startTime"))
                    if start is not None:
                        joiner.intervals.append((start, _parse(session.get("endTime")) or record_end))
            recordings += [self._recording(r, owner=owner) for r in meet.recordings(owner, record["name"])]
            transcripts += [_transcript(t) for t in meet.transcripts(owner, record["name"])]
        return MeetSnapshot(
            records=tuple(ConferenceRecord(name=r["name"], start=_parse(r.get("startTime")),
                                           end=_parse(r.get("endTime"))) for r in records),
            joiners=tuple(joiners.values()), recordings=tuple(recordings), transcripts=tuple(transcripts))

    def _identify(self, participant: dict[str, Any], *, owner, emails: dict) -> Joiner:
        """Signed-in users by email when Google reveals it, everyone else by Meet's own identity."""
        if "signedinUser" in participant:
            user = participant["signedinUser"].get("user", "")
            if user not in emails:
                emails[user] = self._directory.email_of(owner, user) if user else None
            email = emails[user]
            name = participant["signedinUser"].get("displayName")
            return Joiner(key=f"email:{email.lower()}" if email else f"meet:{user}", display_name=name, email=email)
        kind = "anonymousUser" if "anonymousUser" in participant else "phoneUser"
        name = (participant.get(kind) or {}).get("displayName")
        return Joiner(key=f"meet:{participant['name']}", display_name=name, email=None)

    def _recording(self, recording: dict[str, Any], *, owner) -> Artifact:
        state = recording.get("state", "STATE_UNSPECIFIED")
        destination = recording.get("driveDestination") or {}
        if state != FINAL_STATE or not destination.get("file"):
            return Artifact(meet_name=recording["name"], state=state, complete=False)
        file_id, url = destination["file"], destination.get("exportUri")
        metadata = self._drive.file(owner, file_id)
        if not metadata:
            return Artifact(meet_name=recording["name"], state=state, complete=False, file_id=file_id, file_url=url)
        millis = (metadata.get("videoMediaMetadata") or {}).get("durationMillis")
        return Artifact(
            meet_name=recording["name"], state=state, file_id=file_id, file_url=url or metadata.get("webViewLink"),
            available_at=_parse(metadata.get("createdTime")) or _parse(recording.get("endTime")),
            duration_seconds=int(round(int(millis) / 1000)) if millis is not None else None,
            # Drive's metadata lags the file: complete once the duration is known.
            complete=millis is not None)


def _transcript(transcript: dict[str, Any]) -> Artifact:
    state = transcript.get("state", "STATE_UNSPECIFIED")
    destination = transcript.get("docsDestination") or {}
    final = state == FINAL_STATE and bool(destination.get("document"))
    return Artifact(meet_name=transcript["name"], state=state, complete=final,
                    file_id=destination.get("document") if final else None,
                    file_url=destination.get("exportUri") if final else None)
