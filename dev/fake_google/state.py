"""In-memory world behind the fake Google Workspace server."""

from __future__ import annotations

import base64
import copy
import functools
import json
import logging
import random
import re
import string
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from .identity import (
    JWT_BEARER,
    AccessTokens,
    Caller,
    IdTokenIssuer,
    TokenRefused,
    load_public_key,
    method_scopes,
    verify_assertion,
)

logger = logging.getLogger(__name__)

CONFERENCE_MODES = ("success", "pending", "failure")
WORKSPACE_DOMAIN = "clinica.com"
DEFAULT_OWNER = "agenda@clinica.com"
# The seed's organizer and the default calendar owner exist in the Workspace in miniature.
DEFAULT_WORKSPACE_USERS = (DEFAULT_OWNER, "doctor@clinica.com")
TOKEN_LIFETIME_SECONDS = 3599
# Drive scopes that see every file of the user (drive.meet.readonly sees only files Meet made).
_DRIVE_ANY_FILE = frozenset("https://www.googleapis.com/auth/" + s for s in (
    "drive", "drive.readonly", "drive.metadata", "drive.metadata.readonly"))
_DRIVE_MEET = "https://www.googleapis.com/auth/drive.meet.readonly"
_API_AUTH_HELP = ("Expected OAuth 2 access token, login cookie or other valid authentication credential. "
                  "See https://developers.google.com/identity/sign-in/web/devconsole-project.")
_REALM = 'Bearer realm="https://accounts.google.com/"'

ARTIFACT_STATES = ("STARTED", "ENDED", "FILE_GENERATED")
PARTICIPANT_KINDS = ("signedin", "anonymous", "phone")

# Sentinel telling "argument not given" apart from an explicit None (which often means "clear").
UNSET: Any = type("_Unset", (), {"__repr__": lambda self: "UNSET", "__bool__": lambda self: False})()

_EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
_ID_CHARS = string.ascii_letters + string.digits
_DRIVE_ID_CHARS = string.ascii_letters + string.digits + "-_"
_MEET_ICON = ("https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/"
              "logo_meet_2020q4_color_2x_web_512dp.png")
_FRACTION_RE = re.compile(r"(\.\d{1,6})\d*")

# Fields clients cannot set on an event; the server owns them.
_EVENT_SERVER_FIELDS = frozenset(
    {"kind", "id", "etag", "created", "updated", "htmlLink", "iCalUID", "organizer", "creator",
     "sequence", "hangoutLink", "conferenceData"}
)

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    405: "INVALID_ARGUMENT", 409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_DEFAULT_REASONS = {
    400: "badRequest", 401: "authError", 403: "forbidden", 404: "notFound", 405: "httpMethodNotAllowed",
    409: "conflict", 410: "deleted", 412: "conditionNotMet", 429: "rateLimitExceeded",
}
_DEFAULT_MESSAGES = {
    400: "Bad Request", 401: "Request had invalid authentication credentials.", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 410: "Resource has been deleted",
    429: "Rate Limit Exceeded", 500: "Backend Error", 502: "Bad Gateway", 503: "The service is currently unavailable.",
    504: "Deadline exceeded",
}


_USAGE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"})


class GoogleError(Exception):
    """An error answered to the client in Google's JSON error shape."""

    def __init__(self, code: int, message: str | None = None, reason: str | None = None,
                 status: str | None = UNSET, retry_after: float | None = None, *, item_message: str | None = None,
                 location: str | None = None, details: list | None = None, headers: dict | None = None,
                 given_reason: str | None = None) -> None:
        self.code = int(code)
        self.message = message or _DEFAULT_MESSAGES.get(self.code, "Error")
        self.reason = reason or _DEFAULT_REASONS.get(self.code) or ("backendError" if self.code >= 500 else "error")
        # Calendar's legacy errors (e.g. 410) carry no canonical status name.
        self.status = _STATUS_NAMES.get(self.code) if status is UNSET else status
        self.retry_after = retry_after
        self.item_message = item_message
        self.location = location
        self.details = details
        self.headers = dict(headers or {})
        self.given_reason = given_reason if given_reason is not None else reason
        super().__init__(f"{self.code} {self.reason}: {self.message}")

    def to_json(self) -> dict:
        """Render the Google error body."""
        # Calendar puts quota and rate refusals in the usageLimits domain (Calendar API "Handle API errors").
        item: dict[str, Any] = {"message": self.item_message or self.message,
                                "domain": "usageLimits" if self.reason in _USAGE_LIMIT_REASONS else "global",
                                "reason": self.reason}
        if self.location:
            item.update(location=self.location, locationType="header")
        error: dict[str, Any] = {"code": self.code, "message": self.message, "errors": [item]}
        if self.status:
            error["status"] = self.status
        if self.details:
            error["details"] = self.details
        return {"error": error}


def parse_time(value: Any, now: datetime | None = None) -> datetime | None:
    """Parse an RFC3339 timestamp (or "now") into an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if text.lower() == "now":
            return now or datetime.now(timezone.utc)
        # fromisoformat stops at microseconds; Google may send nanoseconds.
        text = _FRACTION_RE.sub(lambda m: m.group(1), text, count=1)
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise GoogleError(400, f"Invalid timestamp: {value!r}", "invalid") from exc
    else:
        raise GoogleError(400, f"Invalid timestamp: {value!r}", "invalid")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def format_time(dt: datetime | None, millis: bool = False) -> str | None:
    """Format a datetime as RFC3339 in UTC with a Z suffix."""
    if dt is None:
        return None
    dt = dt.astimezone(timezone.utc)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if millis:
        return f"{base}.{dt.microsecond // 1000:03d}Z"
    return f"{base}.{dt.microsecond:06d}Z" if dt.microsecond else f"{base}Z"


def _encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"fake-page:{offset}".encode()).decode().rstrip("=")


def _decode_page_token(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, offset = raw.partition(":")
        if prefix != "fake-page":
            raise ValueError(raw)
        value = int(offset)
        if value < 0:
            raise ValueError(raw)
        return value
    except (ValueError, UnicodeDecodeError) as exc:
        raise GoogleError(400, "Invalid page token.", "invalid") from exc


def _to_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise GoogleError(400, f"Invalid value for {name}: {value!r}", "invalid") from exc


def _short_id(value: str, collection: str) -> str:
    """Accept either a bare id or a full resource name like ``conferenceRecords/abc``."""
    prefix = collection + "/"
    return value[len(prefix):] if value.startswith(prefix) else value


@dataclass
class _Event:
    calendar_id: str
    resource: dict
    pending_polls_left: int | None = None


def default_space_config() -> dict:
    """What Meet reports of a new space under a Workspace's usual defaults (Meet never returns an UNSPECIFIED value:
    SpaceConfig in the bundled meet.v2 discovery document): the organization and invited guests enter without
    knocking, nothing is recorded, transcribed or summarised on its own."""
    return {"accessType": "TRUSTED", "entryPointAccess": "ALL", "moderation": "OFF",
            "attendanceReportGenerationType": "DO_NOT_GENERATE",
            "artifactConfig": {"recordingConfig": {"autoRecordingGeneration": "OFF"},
                               "transcriptionConfig": {"autoTranscriptionGeneration": "OFF"},
                               "smartNotesConfig": {"autoSmartNotesGeneration": "OFF"}}}


@functools.cache
def space_config_fields() -> dict[str, tuple[str, ...] | None]:
    """Every field path below a space's `config`, as the meet.v2 discovery document's SpaceConfig declares them:
    path -> its enum values, or None for a message. These, and `config` itself, are the paths an updateMask of
    spaces.patch may name (the space's other fields are output only or immutable)."""
    from googleapiclient.discovery_cache import get_static_doc

    schemas = json.loads(get_static_doc("meet", "v2"))["schemas"]
    fields: dict[str, tuple[str, ...] | None] = {"config": None}

    def walk(prefix: str, schema_id: str) -> None:
        for name, prop in schemas[schema_id]["properties"].items():
            path = f"{prefix}.{name}"
            if "$ref" in prop:
                fields[path] = None
                walk(path, prop["$ref"])
            elif not prop.get("readOnly"):
                fields[path] = tuple(prop.get("enum", ()))

    walk("config", "SpaceConfig")
    return fields


_SPACE_OUTPUT_ONLY = frozenset({"meetingUri", "meetingCode", "activeConference"})


def _get_path(tree: dict, parts: list[str]) -> Any:
    node: Any = tree
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return UNSET
        node = node[part]
    return node


def _set_path(tree: dict, parts: list[str], value: Any) -> None:
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is UNSET:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = copy.deepcopy(value)


def _leaf_paths(tree: dict, prefix: str) -> list[str]:
    paths = []
    for key, value in tree.items():
        path = f"{prefix}.{key}"
        paths += _leaf_paths(value, path) if isinstance(value, dict) else [path]
    return paths


def _with_defaults(config: dict, defaults: dict) -> dict:
    """`config` with every field it lacks (or leaves UNSPECIFIED) taken from `defaults`, as Meet fills them in."""
    out = copy.deepcopy(defaults)
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _with_defaults(value, out[key])
        elif not (isinstance(value, str) and value.endswith("_UNSPECIFIED")):
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class _Space:
    id: str
    code: str
    created: datetime
    owner: str  # the Workspace user whose calendar event (or API call) made the space
    config: dict = field(default_factory=default_space_config)


@dataclass
class _Session:
    id: str
    start: datetime
    end: datetime | None


@dataclass
class _Participant:
    id: str
    kind: str
    display_name: str
    user_id: str | None
    sessions: list[_Session] = field(default_factory=list)


@dataclass
class _Artifact:
    id: str
    kind: str  # "recording" or "transcript"
    state: str
    start: datetime
    end: datetime | None
    file_id: str | None = None
    duration_seconds: int | None = None
    metadata_lag_gets: int = 0


@dataclass
class _Conference:
    id: str
    space_id: str
    start: datetime
    end: datetime | None
    participants: list[_Participant] = field(default_factory=list)
    recordings: list[_Artifact] = field(default_factory=list)
    transcripts: list[_Artifact] = field(default_factory=list)


@dataclass
class _DriveFile:
    resource: dict
    owner: str
    meet_created: bool = False  # Meet recordings and transcripts; what drive.meet.readonly can see
    metadata: dict | None = None
    lag_left: int = 0


@dataclass
class _User:
    id: str
    email: str | None
    workspace: bool
    display_name: str


@dataclass
class _WorkspaceUser:
    email: str
    suspended: bool = False
    deleted: bool = False  # remembered so an open directory still says "unknown" for it

    def view(self) -> dict:
        return {"email": self.email, "suspended": self.suspended, "deleted": self.deleted}


@dataclass
class _Rule:
    operation: str | None
    path_regex: re.Pattern | None
    method: str | None

    def matches(self, operation: str | None, method: str, path: str) -> bool:
        """Whether a request falls under this rule."""
        if self.operation is not None and self.operation != operation:
            return False
        if self.method is not None and self.method != method.upper():
            return False
        return not (self.path_regex is not None and not self.path_regex.search(path))

    def describe(self) -> dict:
        """Selector fields as JSON."""
        return {"operation": self.operation, "method": self.method,
                "path_regex": self.path_regex.pattern if self.path_regex else None}


@dataclass
class _Fault(_Rule):
    status: int = 503
    remaining: int | None = 1  # None = until cleared
    skip: int = 0
    retry_after: float | None = None
    reason: str | None = None
    message: str | None = None

    def describe(self) -> dict:
        """Rule as JSON."""
        return {**super().describe(), "status": self.status, "count": self.remaining, "after": self.skip,
                "retry_after": self.retry_after, "reason": self.reason, "message": self.message}


@dataclass
class _Latency(_Rule):
    ms: int = 0

    def describe(self) -> dict:
        """Rule as JSON."""
        return {**super().describe(), "ms": self.ms}


def _product_scopes() -> list[str]:
    """What the product asks for, so delegation is authorized for exactly that unless a test says otherwise."""
    from shared.adapters.google import SCOPES

    return list(SCOPES)


def _compile(path_regex: str | None) -> re.Pattern | None:
    if path_regex is None:
        return None
    try:
        return re.compile(path_regex)
    except re.error as exc:
        raise GoogleError(400, f"Invalid path_regex: {exc}", "invalid") from exc


class FakeWorld:
    """Thread-safe in-memory Calendar, Meet, Drive, People and Directory data plus test controls."""

    DEFAULT_MAX_PAGE_SIZE = 100
    REQUEST_LOG_LIMIT = 10_000

    def __init__(self, seed: int | None = None, clock: Callable[[], datetime] | None = None,
                 service_accounts: dict[str, str | list[str]] | None = None,
                 id_tokens: IdTokenIssuer | None = None) -> None:
        self._lock = threading.RLock()
        self._id_tokens = id_tokens
        self._rng = random.Random(seed)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        # Service-account keys and issued tokens belong to the Cloud project, not to the Workspace: a reset keeps them.
        self._service_accounts: dict[str, list[Any]] = {}
        self._tokens = AccessTokens()
        for email, pems in (service_accounts or {}).items():
            for pem in [pems] if isinstance(pems, str) else pems:
                self.register_service_account(email, pem)
        self.reset()

    # ------------------------------------------------------------------ control

    def reset(self) -> None:
        """Empty the world and restore default configuration."""
        with self._lock:
            self._events: dict[tuple[str, str], _Event] = {}
            self._spaces: dict[str, _Space] = {}
            self._space_by_code: dict[str, str] = {}
            self._conferences: dict[str, _Conference] = {}
            self._files: dict[str, _DriveFile] = {}
            self._users: dict[str, _User] = {}
            self._faults: list[_Fault] = []
            self._latencies: list[_Latency] = []
            self._requests: deque[dict] = deque(maxlen=self.REQUEST_LOG_LIMIT)
            self._request_seq = 0
            self._calls: Counter[str] = Counter()
            self._ok: Counter[str] = Counter()
            self._etag_seq = 0
            self.conference_mode = "success"
            self.pending_polls: int | None = 2
            self.max_page_size = self.DEFAULT_MAX_PAGE_SIZE
            self.workspace_domain = WORKSPACE_DOMAIN
            self.open_directory = True
            self.delegation_scopes = _product_scopes()
            self.token_lifetime_seconds = TOKEN_LIFETIME_SECONDS
            self.default_owner = DEFAULT_OWNER
            self._workspace_users: dict[str, _WorkspaceUser] = {e: _WorkspaceUser(e) for e in DEFAULT_WORKSPACE_USERS}

    def configure(self, conference_mode: str | None = None, pending_polls: int | None = UNSET,
                  max_page_size: int | None = None, workspace_domain: str | None = None,
                  open_directory: bool | None = None, delegation_scopes: list[str] | None = None,
                  token_lifetime_seconds: int | None = None, default_owner: str | None = None) -> dict:
        """Change server behaviour; omitted arguments stay as they are."""
        with self._lock:
            if workspace_domain is not None:
                self.workspace_domain = str(workspace_domain).lower()
            if open_directory is not None:
                self.open_directory = bool(open_directory)
            if delegation_scopes is not None:
                if not isinstance(delegation_scopes, list) or not all(isinstance(x, str) for x in delegation_scopes):
                    raise GoogleError(400, "delegation_scopes must be a list of scope URLs", "invalid")
                self.delegation_scopes = list(delegation_scopes)
            if token_lifetime_seconds is not None:
                lifetime = _to_int(token_lifetime_seconds, "token_lifetime_seconds")
                if lifetime is None or lifetime < 1:
                    raise GoogleError(400, "token_lifetime_seconds must be >= 1", "invalid")
                self.token_lifetime_seconds = lifetime
            if default_owner is not None:
                self.default_owner = str(default_owner).lower()
            if conference_mode is not None:
                if conference_mode not in CONFERENCE_MODES:
                    raise GoogleError(400, f"conference_mode must be one of {CONFERENCE_MODES}", "invalid")
                self.conference_mode = conference_mode
            if pending_polls is not UNSET:
                polls = _to_int(pending_polls, "pending_polls")
                if polls is not None and polls < 0:
                    raise GoogleError(400, "pending_polls must be >= 0", "invalid")
                self.pending_polls = polls
            if max_page_size is not None:
                size = _to_int(max_page_size, "max_page_size")
                if size is None or size < 1:
                    raise GoogleError(400, "max_page_size must be >= 1", "invalid")
                self.max_page_size = size
            return self.config()

    def config(self) -> dict:
        """Current configuration."""
        with self._lock:
            return {"conference_mode": self.conference_mode, "pending_polls": self.pending_polls,
                    "max_page_size": self.max_page_size, "workspace_domain": self.workspace_domain,
                    "open_directory": self.open_directory, "delegation_scopes": list(self.delegation_scopes),
                    "token_lifetime_seconds": self.token_lifetime_seconds, "default_owner": self.default_owner}

    def add_fault(self, status: int = 503, operation: str | None = None, path_regex: str | None = None,
                  method: str | None = None, count: int | None = 1, retry_after: float | None = None,
                  after: int = 0, reason: str | None = None, message: str | None = None) -> dict:
        """Make the next `count` matching API requests (after skipping `after`) fail with `status`."""
        status = _to_int(status, "status")
        if status is None or not 400 <= status <= 599:
            raise GoogleError(400, "status must be a 4xx or 5xx code", "invalid")
        count = _to_int(count, "count")
        if count is not None and count < 1:
            raise GoogleError(400, "count must be >= 1 (or null for unlimited)", "invalid")
        fault = _Fault(operation=operation, path_regex=_compile(path_regex), method=method.upper() if method else None,
                       status=status, remaining=count, skip=_to_int(after, "after") or 0,
                       retry_after=retry_after, reason=reason, message=message)
        with self._lock:
            self._faults.append(fault)
            return fault.describe()

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[dict]:
        """Pending faults."""
        with self._lock:
            return [f.describe() for f in self._faults]

    def set_latency(self, ms: int, operation: str | None = None, path_regex: str | None = None,
                    method: str | None = None) -> list[dict]:
        """Delay matching API requests by `ms`; ms=0 clears every latency rule."""
        ms = _to_int(ms, "ms") or 0
        with self._lock:
            if ms <= 0:
                self._latencies.clear()
            else:
                rule = _Latency(operation=operation, path_regex=_compile(path_regex),
                                method=method.upper() if method else None, ms=ms)
                # A new rule for the same selector replaces the old one.
                selector = _Rule.describe(rule)
                self._latencies = [r for r in self._latencies if _Rule.describe(r) != selector]
                self._latencies.append(rule)
            return [r.describe() for r in self._latencies]

    def clear_latency(self) -> None:
        """Remove every latency rule."""
        self.set_latency(0)

    def latency_for(self, operation: str | None, method: str, path: str) -> float:
        """Seconds to wait before answering this request."""
        with self._lock:
            return max((r.ms for r in self._latencies if r.matches(operation, method, path)), default=0) / 1000.0

    def take_fault(self, operation: str | None, method: str, path: str) -> GoogleError | None:
        """Consume and return the injected error for this request, if any."""
        with self._lock:
            hit: _Fault | None = None
            for fault in self._faults:
                if not fault.matches(operation, method, path):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                hit = fault
                break
            if hit is None:
                return None
            if hit.remaining is not None:
                hit.remaining -= 1
                if hit.remaining <= 0:
                    self._faults.remove(hit)
            return GoogleError(hit.status, hit.message, hit.reason, retry_after=hit.retry_after,
                               given_reason=hit.reason or "")

    def record_request(self, method: str, path: str, query: dict, body: Any, status: int,
                       operation: str | None, fault: bool = False, subject: str | None = None) -> None:
        """Append to the request log and count the call."""
        op = operation or "unmatched"
        with self._lock:
            self._request_seq += 1
            self._requests.append({
                "seq": self._request_seq, "time": format_time(self._now(), millis=True), "method": method,
                "path": path, "query": dict(query), "body": copy.deepcopy(body), "status": status,
                "operation": op, "fault": fault, "subject": subject,
            })
            self._calls[op] += 1
            if 200 <= status < 300:
                self._ok[op] += 1

    def requests(self, operation: str | None = None, method: str | None = None,
                 path_contains: str | None = None) -> list[dict]:
        """Logged API requests, oldest first, optionally filtered."""
        with self._lock:
            items = list(self._requests)
        return [copy.deepcopy(r) for r in items
                if (operation is None or r["operation"] == operation)
                and (method is None or r["method"] == method.upper())
                and (path_contains is None or path_contains in r["path"])]

    def clear_requests(self) -> None:
        """Forget the request log and counters."""
        with self._lock:
            self._requests.clear()
            self._calls.clear()
            self._ok.clear()

    def stats(self) -> dict:
        """Per-operation counters of all calls and of 2xx calls."""
        with self._lock:
            return {"calls": dict(self._calls), "ok": dict(self._ok)}

    def call_count(self, operation: str) -> int:
        """How many requests hit an operation (any status)."""
        with self._lock:
            return self._calls[operation]

    def ok_count(self, operation: str) -> int:
        """How many requests to an operation succeeded."""
        with self._lock:
            return self._ok[operation]

    # ------------------------------------------------------------------ identity: service accounts, users, tokens

    def register_service_account(self, email: str, public_key: str) -> dict:
        """Trust assertions signed by this key for this service account (as an uploaded service-account key)."""
        if not email or "@" not in str(email):
            raise GoogleError(400, "email must be a service account email", "invalid")
        try:
            key = load_public_key(public_key)
        except ValueError as exc:
            raise GoogleError(400, str(exc), "invalid") from exc
        with self._lock:
            keys = self._service_accounts.setdefault(str(email).lower(), [])
            if all(k.public_numbers() != key.public_numbers() for k in keys):  # registering twice is harmless
                keys.append(key)
            return {"email": str(email).lower(), "keys": len(keys)}

    def service_accounts(self) -> list[dict]:
        """Service accounts with registered keys."""
        with self._lock:
            return [{"email": e, "keys": len(k)} for e, k in self._service_accounts.items()]

    def remove_service_account(self, email: str) -> None:
        """Forget every key of a service account."""
        with self._lock:
            self._service_accounts.pop(str(email).lower(), None)

    def _keys_for(self, issuer: str) -> list:
        with self._lock:
            return list(self._service_accounts.get(issuer.lower(), []))

    def add_workspace_user(self, email: str, suspended: bool = False) -> dict:
        """Add (or update) a user of the Workspace domain; suspended users are refused as delegation subjects."""
        email = str(email or "").lower()
        if email.rpartition("@")[2] != self.workspace_domain:
            raise GoogleError(400, f"{email!r} is not in the Workspace domain {self.workspace_domain}", "invalid")
        with self._lock:
            self._workspace_users[email] = _WorkspaceUser(email, suspended=bool(suspended))
            return self._workspace_users[email].view()

    def remove_workspace_user(self, email: str) -> None:
        """Delete a Workspace user: from now on an unknown subject, even in an open directory."""
        email = str(email or "").lower()
        with self._lock:
            self._workspace_users[email] = _WorkspaceUser(email, deleted=True)

    def workspace_users(self) -> list[dict]:
        """Users the directory knows of explicitly (an open directory also has every other address of the domain)."""
        with self._lock:
            return [u.view() for u in self._workspace_users.values()]

    def user_state(self, email: str) -> str:
        """active, suspended or unknown, for an address as a delegation subject."""
        email = email.lower()
        local, _, domain = email.rpartition("@")
        with self._lock:
            if not local or domain != self.workspace_domain:
                return "unknown"
            user = self._workspace_users.get(email)
            if user is None:
                return "active" if self.open_directory else "unknown"
            return "unknown" if user.deleted else "suspended" if user.suspended else "active"

    def issue_token(self, form: dict, token_url: str) -> dict:
        """POST /token: the JWT-bearer grant (RFC 7523) as Google's token endpoint answers it."""
        grant_type = form.get("grant_type")
        if grant_type != JWT_BEARER:
            raise TokenRefused(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type or ''}")
        assertion = form.get("assertion")
        if not assertion:
            raise TokenRefused(400, "invalid_request", "Missing required parameter: assertion")
        claims = verify_assertion(assertion, self._keys_for, token_url)
        target_audience = claims.get("target_audience")
        if target_audience is not None:
            # A service account asking for an ID token of its own (google-auth's IDTokenCredentials), as Cloud
            # Tasks and Cloud Scheduler present to the services they call.
            if not isinstance(target_audience, str) or not target_audience or claims.get("sub"):
                raise TokenRefused(400, "invalid_request", "Invalid target_audience or a subject with it.")
            return {"id_token": self.id_tokens.mint(str(claims["iss"]), target_audience)}
        scopes = frozenset(str(claims.get("scope") or "").split())
        if not scopes:
            raise TokenRefused(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        issuer = str(claims["iss"]).lower()
        subject = claims.get("sub")
        with self._lock:
            if subject:
                if not scopes <= set(self.delegation_scopes):
                    raise TokenRefused(401, "unauthorized_client",
                                       "Client is unauthorized to retrieve access tokens using this method, or "
                                       "client not authorized for any of the scopes requested.")
                if not isinstance(subject, str) or self.user_state(subject) != "active":
                    raise TokenRefused(400, "invalid_grant", "Invalid email or User ID")
                caller = Caller(email=subject.lower(), scopes=scopes, service_account=issuer, delegated=True)
            else:
                caller = Caller(email=issuer, scopes=scopes, service_account=issuer, delegated=False)
            lifetime = self.token_lifetime_seconds
        return {"access_token": self._tokens.mint(caller, lifetime), "expires_in": lifetime, "token_type": "Bearer"}

    @property
    def id_tokens(self) -> IdTokenIssuer:
        """The key ID tokens are signed with (made on first use when none was given)."""
        with self._lock:
            if self._id_tokens is None:
                self._id_tokens = IdTokenIssuer()
            return self._id_tokens

    def user_token(self, email: str, scopes: list[str], lifetime: int | None = None) -> dict:
        """A token of the user themselves (as if they signed in with OAuth), for tests acting as that person."""
        if not email or not scopes:
            raise GoogleError(400, "email and scopes are required", "required")
        caller = Caller(email=str(email).lower(), scopes=frozenset(scopes), service_account=None, delegated=False)
        lifetime = lifetime or self.token_lifetime_seconds
        return {"access_token": self._tokens.mint(caller, lifetime), "expires_in": lifetime, "token_type": "Bearer"}

    def authenticate(self, authorization: str | None, operation: str) -> Caller:
        """The caller of an API request; Google's 401 without a valid token, 403 without a scope the method takes."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GoogleError(401, f"Request is missing required authentication credential. {_API_AUTH_HELP}",
                              "required", item_message="Login Required.", location="Authorization",
                              headers={"WWW-Authenticate": _REALM})
        caller = self._tokens.read(token.strip())
        # A user suspended or deleted after the token was issued loses it, as Google revokes such tokens.
        if caller is None or (caller.email.rpartition("@")[2] == self.workspace_domain
                              and self.user_state(caller.email) != "active"):
            raise GoogleError(401, f"Request had invalid authentication credentials. {_API_AUTH_HELP}",
                              "authError", item_message="Invalid Credentials", location="Authorization",
                              headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'})
        accepted = method_scopes().get(operation)
        if accepted is not None and not caller.scopes & accepted:
            service, _, _ = operation.partition(".")
            raise GoogleError(403, "Request had insufficient authentication scopes.", "insufficientPermissions",
                              item_message="Insufficient Permission",
                              details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                        "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "domain": "googleapis.com",
                                        "metadata": {"method": operation, "service": f"{service}.googleapis.com"}}],
                              headers={"WWW-Authenticate": f'{_REALM}, error="insufficient_scope", '
                                                           f'scope="{" ".join(sorted(accepted))}"'})
        return caller

    # ------------------------------------------------------------------ persistence (see persistence.py)

    _CONFIG_FIELDS = ("conference_mode", "pending_polls", "max_page_size", "workspace_domain", "open_directory",
                      "delegation_scopes", "token_lifetime_seconds", "default_owner")

    def snapshot(self) -> dict:
        """What a restarted server needs to be this world again (test controls and the request log excluded)."""
        from cryptography.hazmat.primitives import serialization

        from .persistence import b64, dump

        with self._lock:
            return {
                "events": [[cal, eid, dump(ev)] for (cal, eid), ev in self._events.items()],
                "spaces": dump(self._spaces), "space_by_code": dict(self._space_by_code),
                "conferences": dump(self._conferences), "files": dump(self._files), "users": dump(self._users),
                "workspace_users": dump(self._workspace_users), "etag_seq": self._etag_seq,
                "config": {name: copy.deepcopy(getattr(self, name)) for name in self._CONFIG_FIELDS},
                "token_secret": b64(self._tokens.secret),
                "service_accounts": {email: [k.public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
                                             for k in keys] for email, keys in self._service_accounts.items()},
            }

    def restore(self, data: dict) -> None:
        """Become the world a snapshot describes (service accounts are added to those already trusted)."""
        from .persistence import load, unb64

        with self._lock:
            self._events = {(cal, eid): load(_Event, ev) for cal, eid, ev in data["events"]}
            self._spaces = load(dict[str, _Space], data["spaces"])
            self._space_by_code = dict(data["space_by_code"])
            self._conferences = load(dict[str, _Conference], data["conferences"])
            self._files = load(dict[str, _DriveFile], data["files"])
            self._users = load(dict[str, _User], data["users"])
            self._workspace_users = load(dict[str, _WorkspaceUser], data["workspace_users"])
            self._etag_seq = int(data["etag_seq"])
            for name, value in data["config"].items():
                if name in self._CONFIG_FIELDS:
                    setattr(self, name, value)
            self._tokens = AccessTokens(unb64(data["token_secret"]))
            for email, pems in data.get("service_accounts", {}).items():
                for pem in pems:
                    self.register_service_account(email, pem)

    # ------------------------------------------------------------------ helpers

    def _now(self) -> datetime:
        return self._clock().astimezone(timezone.utc)

    def _random(self, chars: str, length: int) -> str:
        return "".join(self._rng.choice(chars) for _ in range(length))

    def _new_etag(self) -> str:
        self._etag_seq += 1
        return f'"{3_000_000_000_000_000 + self._etag_seq}"'

    def _paginate(self, items: list, page_size: Any, page_token: Any, default_size: int) -> tuple[list, str | None]:
        size = _to_int(page_size, "pageSize") or default_size
        if size < 1:
            size = default_size
        size = min(size, self.max_page_size)
        offset = _decode_page_token(page_token) if page_token else 0
        page = items[offset:offset + size]
        token = _encode_page_token(offset + size) if offset + size < len(items) else None
        return page, token

    # ------------------------------------------------------------------ Calendar

    def _new_event_id(self, calendar_id: str) -> str:
        while True:
            event_id = self._random(_BASE32HEX, 26)
            if (calendar_id, event_id) not in self._events:
                return event_id

    @staticmethod
    def _calendar_of(calendar_id: str, caller: Caller | None) -> str:
        """The calendar a request may touch: `primary` (or its own address) is the caller's; other calendars are
        not shared with it. Control calls (no caller) name any calendar, `primary` meaning whichever holds the event."""
        if caller is None:
            return calendar_id.lower() if "@" in calendar_id else calendar_id
        if calendar_id.lower() in ("primary", caller.email):
            return caller.email
        raise GoogleError(404, "Not Found", "notFound")

    def _event(self, calendar_id: str, event_id: str) -> _Event:
        ev = self._events.get((calendar_id, event_id))
        if ev is None and calendar_id == "primary":
            ev = next((e for (_, eid), e in self._events.items() if eid == event_id), None)
        if ev is None:
            raise GoogleError(404, "Not Found", "notFound")
        return ev

    def _organizer(self, calendar_id: str) -> dict:
        email = calendar_id if "@" in calendar_id else "organizer@example.com"
        return {"email": email, "self": True}

    @staticmethod
    def _normalize_attendees(attendees: Any, organizer_email: str) -> list[dict]:
        if attendees is None:
            return []
        if not isinstance(attendees, list):
            raise GoogleError(400, "Invalid attendees value.", "invalid")
        out = []
        for attendee in attendees:
            if not isinstance(attendee, dict) or not attendee.get("email"):
                raise GoogleError(400, "Missing attendee email.", "required")
            item = copy.deepcopy(attendee)
            item.setdefault("responseStatus", "needsAction")
            if item["email"].lower() == organizer_email.lower():
                item["organizer"] = True
                item.setdefault("self", True)
            out.append(item)
        return out

    def _touch(self, ev: _Event, bump_sequence: bool = False) -> None:
        ev.resource["updated"] = format_time(self._now(), millis=True)
        ev.resource["etag"] = self._new_etag()
        if bump_sequence:
            ev.resource["sequence"] = ev.resource.get("sequence", 0) + 1

    def _new_meeting_code(self) -> str:
        letters = string.ascii_lowercase
        while True:
            code = f"{self._random(letters, 3)}-{self._random(letters, 4)}-{self._random(letters, 3)}"
            if code not in self._space_by_code:
                return code

    def _attach_meet(self, ev: _Event) -> None:
        space = self._create_space(owner=ev.calendar_id)
        uri = f"https://meet.google.com/{space.code}"
        conference = ev.resource.setdefault("conferenceData", {})
        conference.setdefault("createRequest", {})["status"] = {"statusCode": "success"}
        conference["entryPoints"] = [{"entryPointType": "video", "uri": uri, "label": f"meet.google.com/{space.code}"}]
        conference["conferenceSolution"] = {
            "key": {"type": "hangoutsMeet"}, "name": "Google Meet",
            "iconUri": _MEET_ICON,
        }
        conference["conferenceId"] = space.code
        ev.resource["hangoutLink"] = uri
        ev.pending_polls_left = None

    def _fail_conference(self, ev: _Event) -> None:
        conference = ev.resource.setdefault("conferenceData", {})
        for key in ("entryPoints", "conferenceSolution", "conferenceId"):
            conference.pop(key, None)
        conference.setdefault("createRequest", {})["status"] = {"statusCode": "failure"}
        ev.resource.pop("hangoutLink", None)
        ev.pending_polls_left = None

    def _apply_create_request(self, ev: _Event, conference_data: Any) -> None:
        if not isinstance(conference_data, dict) or not isinstance(conference_data.get("createRequest"), dict):
            return
        request = conference_data["createRequest"]
        request_id = request.get("requestId")
        if not request_id or not isinstance(request_id, str):
            raise GoogleError(400, "Invalid conference request: missing requestId.", "invalid")
        solution = (request.get("conferenceSolutionKey") or {}).get("type")
        if solution != "hangoutsMeet":
            raise GoogleError(400, "Invalid conference type value.", "invalid")
        existing = (ev.resource.get("conferenceData") or {}).get("createRequest") or {}
        if existing.get("requestId") == request_id:
            return  # Same requestId is idempotent, like Google.
        ev.resource.pop("hangoutLink", None)
        ev.resource["conferenceData"] = {"createRequest": {
            "requestId": request_id,
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
            "status": {"statusCode": self.conference_mode},
        }}
        if self.conference_mode == "success":
            self._attach_meet(ev)
        elif self.conference_mode == "failure":
            self._fail_conference(ev)
        else:
            ev.pending_polls_left = self.pending_polls or None

    @staticmethod
    def _conference_status(ev: _Event) -> str | None:
        conference = ev.resource.get("conferenceData") or {}
        return ((conference.get("createRequest") or {}).get("status") or {}).get("statusCode")

    def insert_event(self, calendar_id: str, body: dict | None, conference_data_version: int | None = 0,
                     send_updates: str | None = None, caller: Caller | None = None) -> dict:
        """calendar.events.insert."""
        body = body or {}
        if not isinstance(body, dict):
            raise GoogleError(400, "Invalid event body.", "invalid")
        with self._lock:
            calendar_id = self._calendar_of(calendar_id, caller)
            event_id = body.get("id")
            if event_id is not None:
                if not isinstance(event_id, str) or not _EVENT_ID_RE.match(event_id):
                    raise GoogleError(400, "Invalid resource id value.", "invalid")
                if (calendar_id, event_id) in self._events:
                    raise GoogleError(409, "The requested identifier already exists.", "duplicate")
            else:
                event_id = self._new_event_id(calendar_id)
            now = format_time(self._now(), millis=True)
            organizer = self._organizer(calendar_id)
            resource = {k: copy.deepcopy(v) for k, v in body.items() if k not in _EVENT_SERVER_FIELDS}
            eid = base64.b64encode(f"{event_id} {organizer['email']}".encode()).decode().rstrip("=")
            resource.update({
                "kind": "calendar#event", "id": event_id, "status": body.get("status") or "confirmed",
                "htmlLink": f"https://www.google.com/calendar/event?eid={eid}", "created": now, "updated": now,
                "iCalUID": f"{event_id}@google.com", "sequence": 0,
                "organizer": dict(organizer), "creator": dict(organizer),
            })
            resource["attendees"] = self._normalize_attendees(body.get("attendees"), organizer["email"])
            if not resource["attendees"]:
                del resource["attendees"]
            ev = _Event(calendar_id=calendar_id, resource=resource)
            if _to_int(conference_data_version, "conferenceDataVersion") == 1:
                self._apply_create_request(ev, body.get("conferenceData"))
            resource["etag"] = self._new_etag()
            self._events[(calendar_id, event_id)] = ev
            # The calendar is a person's address: kept out of the log, as the product keeps emails out of its own.
            logger.debug("inserted event %s (conference %s)", event_id, self._conference_status(ev))
            return copy.deepcopy(resource)

    def get_event(self, calendar_id: str, event_id: str, poll: bool = True, caller: Caller | None = None) -> dict:
        """calendar.events.get; with poll=True it advances a pending conference."""
        with self._lock:
            ev = self._event(self._calendar_of(calendar_id, caller), event_id)
            if poll and ev.pending_polls_left is not None and self._conference_status(ev) == "pending":
                ev.pending_polls_left -= 1
                if ev.pending_polls_left <= 0:
                    self._attach_meet(ev)
                    self._touch(ev)
            return copy.deepcopy(ev.resource)

    def update_event(self, calendar_id: str, event_id: str, body: dict | None, conference_data_version: int | None = 0,
                     replace: bool = False, send_updates: str | None = None, caller: Caller | None = None) -> dict:
        """calendar.events.patch (merge top-level fields) or, with replace=True, calendar.events.update."""
        body = body or {}
        if not isinstance(body, dict):
            raise GoogleError(400, "Invalid event body.", "invalid")
        with self._lock:
            ev = self._event(self._calendar_of(calendar_id, caller), event_id)
            old = ev.resource
            fields = {k: copy.deepcopy(v) for k, v in body.items() if k not in _EVENT_SERVER_FIELDS}
            if replace:
                kept = ("kind", "id", "created", "htmlLink", "iCalUID", "organizer", "creator", "sequence",
                        "status", "conferenceData", "hangoutLink", "etag", "updated")
                new = {k: old[k] for k in kept if k in old}
            else:
                new = dict(old)
            new.update(fields)
            if not new.get("status"):
                new["status"] = old.get("status", "confirmed")
            if "attendees" in body:
                attendees = self._normalize_attendees(body.get("attendees"), old["organizer"]["email"])
                if attendees:
                    new["attendees"] = attendees
                else:
                    new.pop("attendees", None)
            ev.resource = new
            if _to_int(conference_data_version, "conferenceDataVersion") == 1:
                if "conferenceData" in body:
                    if body["conferenceData"] is None:
                        new.pop("conferenceData", None)
                        new.pop("hangoutLink", None)
                        ev.pending_polls_left = None
                    else:
                        self._apply_create_request(ev, body["conferenceData"])
                elif replace:
                    new.pop("conferenceData", None)
                    new.pop("hangoutLink", None)
                    ev.pending_polls_left = None
            self._touch(ev, bump_sequence=True)
            return copy.deepcopy(ev.resource)

    def patch_event(self, calendar_id: str, event_id: str, body: dict | None,
                    conference_data_version: int | None = 0, send_updates: str | None = None,
                    caller: Caller | None = None) -> dict:
        """calendar.events.patch."""
        return self.update_event(calendar_id, event_id, body, conference_data_version, replace=False, caller=caller)

    def delete_event(self, calendar_id: str, event_id: str, send_updates: str | None = None,
                     caller: Caller | None = None) -> None:
        """calendar.events.delete: cancel the event; a second delete answers 410."""
        with self._lock:
            ev = self._event(self._calendar_of(calendar_id, caller), event_id)
            if ev.resource.get("status") == "cancelled":
                raise GoogleError(410, "Resource has been deleted", "deleted", status=None)
            ev.resource["status"] = "cancelled"
            self._touch(ev, bump_sequence=True)

    def list_events(self, calendar_id: str, page_token: str | None = None, max_results: Any = None,
                    show_deleted: bool = False, ical_uid: str | None = None, caller: Caller | None = None) -> dict:
        """calendar.events.list in insertion order."""
        with self._lock:
            calendar_id = self._calendar_of(calendar_id, caller)
            items = [ev.resource for (cal, _), ev in self._events.items() if cal == calendar_id
                     and (show_deleted or ev.resource.get("status") != "cancelled")
                     and (ical_uid is None or ev.resource.get("iCalUID") == ical_uid)]
            page, token = self._paginate(items, max_results, page_token, 250)
            result = {"kind": "calendar#events", "etag": self._new_etag(), "summary": calendar_id,
                      "updated": format_time(self._now(), millis=True), "timeZone": "UTC",
                      "accessRole": "owner", "defaultReminders": [], "items": copy.deepcopy(page)}
            if token:
                result["nextPageToken"] = token
            return result

    @staticmethod
    def _event_bound(value: Any) -> datetime | None:
        if not isinstance(value, dict):
            return None
        if value.get("dateTime"):
            return parse_time(value["dateTime"])
        if value.get("date"):  # an all-day event: whole days, read in UTC here
            return parse_time(f"{value['date']}T00:00:00Z")
        return None

    def _busy(self, calendar_id: str, start: datetime, end: datetime) -> list[dict]:
        """What makes a calendar busy between `start` and `end`: its events that are not cancelled, not marked
        free (`transparency: transparent`) and not declined by the calendar's owner, clipped to the range."""
        busy = []
        for (cal, _), ev in self._events.items():
            resource = ev.resource
            if cal != calendar_id or resource.get("status") == "cancelled":
                continue
            if resource.get("transparency") == "transparent":
                continue
            if any(a.get("self") and a.get("responseStatus") == "declined" for a in resource.get("attendees", [])):
                continue
            began, ended = self._event_bound(resource.get("start")), self._event_bound(resource.get("end"))
            if began is None or ended is None or began >= end or ended <= start:
                continue
            busy.append((max(began, start), min(ended, end)))
        return [{"start": format_time(b), "end": format_time(e)} for b, e in sorted(busy)]

    def freebusy(self, body: dict, caller: Caller | None = None) -> dict:
        """calendar.freebusy.query: busy periods per calendar asked for, one per event, clipped to the range.

        As Calendar answers it (freebusy.query, FreeBusyRequest and FreeBusyResponse in the calendar.v3 reference):
        timeMin and timeMax are required; a calendar is named by its id (`primary` or the caller's address is the
        caller's own); a calendar the caller may not see is answered with `errors: [{"reason": "notFound"}]`
        beside the others, not with a failed request."""
        if not isinstance(body, dict):
            raise GoogleError(400, "Invalid freebusy request.", "invalid")
        for name in ("timeMin", "timeMax"):
            if not body.get(name):
                raise GoogleError(400, f"Missing {name} parameter.", "required")
        start, end = parse_time(body["timeMin"]), parse_time(body["timeMax"])
        if start is None or end is None or end < start:
            raise GoogleError(400, "The specified time range is empty.", "timeRangeEmpty")
        items = body.get("items") or []
        if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in items):
            raise GoogleError(400, "Invalid items value.", "invalid")
        if len(items) > 50:
            raise GoogleError(400, "Too many calendars requested.", "tooManyCalendarsRequested")
        calendars: dict[str, Any] = {}
        with self._lock:
            for item in items:
                try:
                    calendar_id = self._calendar_of(item["id"], caller)
                except GoogleError:
                    calendars[item["id"]] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                    continue
                calendars[item["id"]] = {"busy": self._busy(calendar_id, start, end)}
        return {"kind": "calendar#freeBusy", "timeMin": format_time(start), "timeMax": format_time(end),
                "calendars": calendars}

    def resolve_conference(self, calendar_id: str, event_id: str, status: str = "success") -> dict:
        """Settle an event's conference request to success or failure."""
        if status not in ("success", "failure"):
            raise GoogleError(400, "status must be 'success' or 'failure'", "invalid")
        with self._lock:
            ev = self._event(self._calendar_of(calendar_id, None), event_id)
            current = self._conference_status(ev)
            if current is None:
                raise GoogleError(400, "Event has no conference request.", "invalid")
            if current != status:
                if status == "success":
                    self._attach_meet(ev)
                else:
                    self._fail_conference(ev)
                self._touch(ev)
            return copy.deepcopy(ev.resource)

    def events(self, calendar_id: str | None = None) -> list[dict]:
        """Every stored event (including cancelled ones) with its calendarId."""
        with self._lock:
            wanted = None if calendar_id is None else self._calendar_of(calendar_id, None)
            return [dict(copy.deepcopy(ev.resource), calendarId=cal) for (cal, _), ev in self._events.items()
                    if wanted in (None, "primary") or cal == wanted]

    # ------------------------------------------------------------------ Meet

    def _create_space(self, meeting_code: str | None = None, owner: str | None = None) -> _Space:
        code = (meeting_code or self._new_meeting_code()).lower()
        if code in self._space_by_code:
            return self._spaces[self._space_by_code[code]]
        while True:
            space_id = self._random(_ID_CHARS, 12)
            if space_id not in self._spaces:
                break
        space = _Space(id=space_id, code=code, created=self._now(), owner=(owner or self.default_owner).lower())
        self._spaces[space_id] = space
        self._space_by_code[code] = space_id
        return space

    def create_space(self, meeting_code: str | None = None, owner: str | None = None,
                     caller: Caller | None = None) -> dict:
        """Create (or return the existing) Meet space for a meeting code, owned by the caller (or `owner`)."""
        with self._lock:
            space = self._create_space(meeting_code, caller.email if caller else owner)
            self._check_owner(space, caller)
            return self._space_resource(space)

    @staticmethod
    def _check_owner(space: _Space, caller: Caller | None) -> None:
        # Meet shows a space, and the conferences held in it, to the user who owns it.
        if caller is not None and space.owner != caller.email:
            raise GoogleError(403, "The caller does not have permission", "forbidden")

    def _find_space(self, name: str) -> _Space:
        key = _short_id(name, "spaces")
        space = self._spaces.get(key)
        if space is None:
            code = key.lower()
            if "-" not in code and len(code) == 10:
                code = f"{code[:3]}-{code[3:7]}-{code[7:]}"
            space_id = self._space_by_code.get(code)
            space = self._spaces.get(space_id) if space_id else None
        if space is None:
            raise GoogleError(404, "Requested entity was not found.", "notFound")
        return space

    def _space_resource(self, space: _Space) -> dict:
        resource = {
            "name": f"spaces/{space.id}",
            "meetingUri": f"https://meet.google.com/{space.code}",
            "meetingCode": space.code,
            "config": copy.deepcopy(space.config),
        }
        active = [c for c in self._conferences.values() if c.space_id == space.id and c.end is None]
        if active:
            latest = max(active, key=lambda c: c.start)
            resource["activeConference"] = {"conferenceRecord": f"conferenceRecords/{latest.id}"}
        return resource

    def get_space(self, name: str, caller: Caller | None = None) -> dict:
        """meet.spaces.get by space id, space name or meeting code."""
        with self._lock:
            space = self._find_space(name)
            self._check_owner(space, caller)
            return self._space_resource(space)

    def patch_space(self, name: str, body: dict, update_mask: str | None, caller: Caller | None = None) -> dict:
        """meet.spaces.patch: change a space's `config`, field by field as `updateMask` names them.

        As Meet does (spaces.patch and SpaceConfig in the meet.v2 reference): the space is named by its id alone (a
        meeting code is "an alias of the space name to get the space" only); only its owner may change it; a mask
        path must be a field of `config` (anything else, output-only fields included, is INVALID_ARGUMENT); a path
        the body leaves out is reset to its default; without a mask, every field the body gives is updated; `*`
        replaces the whole config. Enum values outside the discovery document's lists are refused."""
        fields = space_config_fields()
        with self._lock:
            space = self._spaces.get(_short_id(name, "spaces"))
            if space is None:
                raise GoogleError(404, "Requested entity was not found.", "notFound")
            self._check_owner(space, caller)
            unknown = set(body) - {"name", "config"} - _SPACE_OUTPUT_ONLY
            if unknown:
                raise GoogleError(400, f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r} at "
                                       "'space': Cannot find field.", "invalid")
            config = body.get("config") or {}
            if not isinstance(config, dict):
                raise GoogleError(400, "Invalid value at 'space.config'.", "invalid")
            for path in _leaf_paths(config, "config"):
                if path not in fields or fields[path] is None:
                    raise GoogleError(400, f"Invalid JSON payload received. Unknown name at '{path}': Cannot find "
                                           "field.", "invalid")
                value = _get_path(config, path.split(".")[1:])
                if fields[path] and value not in fields[path]:
                    raise GoogleError(400, f"Invalid value at 'space.{path}' ({value!r}).", "invalid")
            paths = [p.strip() for p in (update_mask or "").split(",") if p.strip()]
            if not paths:
                paths = _leaf_paths(config, "config")
            for path in paths:
                if path != "*" and path not in fields:
                    raise GoogleError(400, f"Invalid update mask path: {path!r}.", "badRequest")
            defaults = default_space_config()
            if "*" in paths:
                space.config = _with_defaults(config, defaults)
            else:
                updated = copy.deepcopy(space.config)
                for path in paths:
                    parts = path.split(".")[1:]
                    if not parts:
                        updated = copy.deepcopy(config)
                    else:
                        _set_path(updated, parts, _get_path(config, parts))
                space.config = _with_defaults(updated, defaults)
            logger.debug("patched space %s (%s)", space.id, ",".join(paths))
            return self._space_resource(space)

    def peek_space(self, name: str) -> dict:
        """A space as its owner reads it (by id or meeting code), with its owner, not counted as an API call."""
        with self._lock:
            space = self._find_space(name)
            return dict(self._space_resource(space), owner=space.owner)

    def change_space_config(self, name: str, config: dict) -> dict:
        """Change a space's settings as its owner would in the Meet UI (host controls): `config` is merged in."""
        with self._lock:
            space = self._find_space(name)
            merged = copy.deepcopy(space.config)
            for path in _leaf_paths(config, "config"):
                parts = path.split(".")[1:]
                _set_path(merged, parts, _get_path(config, parts))
            space.config = _with_defaults(merged, default_space_config())
            return dict(self._space_resource(space), owner=space.owner)

    def end_active_conference(self, name: str, caller: Caller | None = None) -> None:
        """meet.spaces.endActiveConference."""
        with self._lock:
            space = self._find_space(name)
            self._check_owner(space, caller)
            active = [c for c in self._conferences.values() if c.space_id == space.id and c.end is None]
            if not active:
                raise GoogleError(400, "No active conference.", "failedPrecondition", status="FAILED_PRECONDITION")
            for conf in active:
                self._end_conference(conf, self._now())

    def _conference(self, conference_id: str, caller: Caller | None = None) -> _Conference:
        conf = self._conferences.get(_short_id(conference_id, "conferenceRecords"))
        if conf is None:
            raise GoogleError(404, "Requested entity was not found.", "notFound")
        self._check_owner(self._spaces[conf.space_id], caller)
        return conf

    def _record_resource(self, conf: _Conference) -> dict:
        resource = {"name": f"conferenceRecords/{conf.id}", "startTime": format_time(conf.start)}
        if conf.end is not None:
            resource["endTime"] = format_time(conf.end)
        resource["expireTime"] = format_time((conf.end or conf.start) + timedelta(days=30))
        resource["space"] = f"spaces/{conf.space_id}"
        return resource

    def _participant_resource(self, conf: _Conference, p: _Participant) -> dict:
        resource: dict[str, Any] = {"name": f"conferenceRecords/{conf.id}/participants/{p.id}"}
        if p.sessions:
            resource["earliestStartTime"] = format_time(min(s.start for s in p.sessions))
            if all(s.end is not None for s in p.sessions):
                resource["latestEndTime"] = format_time(max(s.end for s in p.sessions))
        if p.kind == "signedin":
            resource["signedinUser"] = {"user": f"users/{p.user_id}", "displayName": p.display_name}
        elif p.kind == "anonymous":
            resource["anonymousUser"] = {"displayName": p.display_name}
        else:
            resource["phoneUser"] = {"displayName": p.display_name}
        return resource

    @staticmethod
    def _session_resource(conf: _Conference, p: _Participant, s: _Session) -> dict:
        resource = {"name": f"conferenceRecords/{conf.id}/participants/{p.id}/participantSessions/{s.id}",
                    "startTime": format_time(s.start)}
        if s.end is not None:
            resource["endTime"] = format_time(s.end)
        return resource

    @staticmethod
    def _artifact_resource(conf: _Conference, a: _Artifact) -> dict:
        collection = "recordings" if a.kind == "recording" else "transcripts"
        resource: dict[str, Any] = {"name": f"conferenceRecords/{conf.id}/{collection}/{a.id}", "state": a.state,
                                    "startTime": format_time(a.start)}
        if a.end is not None and a.state != "STARTED":
            resource["endTime"] = format_time(a.end)
        if a.state == "FILE_GENERATED" and a.file_id:
            if a.kind == "recording":
                resource["driveDestination"] = {"file": a.file_id,
                                                "exportUri": f"https://drive.google.com/file/d/{a.file_id}/view"}
            else:
                resource["docsDestination"] = {"document": a.file_id,
                                               "exportUri": f"https://docs.google.com/document/d/{a.file_id}/edit"}
        return resource

    def _conference_view(self, conf: _Conference) -> dict:
        space = self._spaces[conf.space_id]
        view = self._record_resource(conf)
        view.update({
            "id": conf.id,
            "meetingCode": space.code,
            "owner": space.owner,
            "participants": [dict(self._participant_resource(conf, p), id=p.id, kind=p.kind, userId=p.user_id,
                                  sessions=[self._session_resource(conf, p, s) for s in p.sessions])
                             for p in conf.participants],
            "recordings": [dict(self._artifact_resource(conf, a), id=a.id) for a in conf.recordings],
            "transcripts": [dict(self._artifact_resource(conf, a), id=a.id) for a in conf.transcripts],
        })
        return view

    def _register_user(self, user_id: str, display_name: str, spec: dict) -> None:
        user = self._users.get(user_id)
        if user is None:
            user = _User(id=user_id, email=None, workspace=False, display_name=display_name)
            self._users[user_id] = user
        if "email" in spec:
            user.email = spec["email"] or None
        if "workspace" in spec:
            user.workspace = bool(spec["workspace"])
        user.display_name = display_name

    def _build_participant(self, conf: _Conference, spec: Any) -> _Participant:
        if not isinstance(spec, dict):
            raise GoogleError(400, "participant must be an object", "invalid")
        kind = spec.get("kind", "signedin")
        if kind not in PARTICIPANT_KINDS:
            raise GoogleError(400, f"participant kind must be one of {PARTICIPANT_KINDS}", "invalid")
        user_id = None
        if kind == "signedin":
            user_id = str(spec.get("user_id") or self._random(string.digits, 21))
        default_name = {"signedin": f"User {user_id}", "anonymous": "Anonymous", "phone": "Phone user"}[kind]
        display_name = spec.get("display_name") or default_name
        sessions_spec = spec.get("sessions")
        if sessions_spec is None:
            sessions_spec = [{"start": conf.start, "end": conf.end}]
        sessions = []
        for s in sessions_spec:
            start = parse_time(s.get("start"), self._now()) or conf.start
            sessions.append(_Session(id=self._random(_ID_CHARS, 16), start=start,
                                     end=parse_time(s.get("end"), self._now())))
        if kind == "signedin":
            self._register_user(user_id, display_name, spec)
        return _Participant(id=self._random(string.digits, 12), kind=kind, display_name=display_name,
                            user_id=user_id, sessions=sessions)

    def _register_file(self, file_id: str, artifact: _Artifact, conf: _Conference) -> None:
        code = self._spaces[conf.space_id].code
        when = artifact.start.strftime("%Y-%m-%d %H:%M GMT")
        if artifact.kind == "recording":
            resource = {"kind": "drive#file", "id": file_id, "name": f"{code} ({when}) - Recording",
                        "mimeType": "video/mp4", "webViewLink": f"https://drive.google.com/file/d/{file_id}/view",
                        "createdTime": format_time(artifact.end or self._now(), millis=True)}
            duration = artifact.duration_seconds
            if duration is None:
                duration = int(((artifact.end or artifact.start) - artifact.start).total_seconds()) or 1800
            metadata = {"durationMillis": str(int(duration) * 1000), "width": 1280, "height": 720}
        else:
            resource = {"kind": "drive#file", "id": file_id, "name": f"{code} ({when}) - Transcript",
                        "mimeType": "application/vnd.google-apps.document",
                        "webViewLink": f"https://docs.google.com/document/d/{file_id}/edit",
                        "createdTime": format_time(artifact.end or self._now(), millis=True)}
            metadata = None
        # Meet saves recordings and transcripts to the Drive of the meeting's organizer (the space owner).
        self._files[file_id] = _DriveFile(resource=resource, owner=self._spaces[conf.space_id].owner,
                                          meet_created=True, metadata=metadata,
                                          lag_left=max(0, int(artifact.metadata_lag_gets or 0)))

    def _new_drive_id(self) -> str:
        return "1" + self._random(_DRIVE_ID_CHARS, 32)

    def _ensure_file(self, conf: _Conference, artifact: _Artifact) -> None:
        if artifact.state != "FILE_GENERATED":
            return
        if not artifact.file_id:
            artifact.file_id = self._new_drive_id()
        if artifact.file_id not in self._files:
            self._register_file(artifact.file_id, artifact, conf)

    def _build_artifact(self, conf: _Conference, kind: str, spec: Any) -> _Artifact:
        if not isinstance(spec, dict):
            raise GoogleError(400, f"{kind} must be an object", "invalid")
        state = spec.get("state", "FILE_GENERATED")
        if state not in ARTIFACT_STATES:
            raise GoogleError(400, f"state must be one of {ARTIFACT_STATES}", "invalid")
        now = self._now()
        start = parse_time(spec.get("start_time"), now) or conf.start
        end = parse_time(spec.get("end_time"), now)
        duration = _to_int(spec.get("duration_seconds"), "duration_seconds")
        if end is None and state != "STARTED":
            end = conf.end or (start + timedelta(seconds=duration) if duration else now)
        file_key = "drive_file_id" if kind == "recording" else "document_id"
        artifact = _Artifact(id=self._random(_ID_CHARS, 20), kind=kind, state=state, start=start, end=end,
                             file_id=spec.get(file_key) or None, duration_seconds=duration,
                             metadata_lag_gets=_to_int(spec.get("metadata_lag_gets"), "metadata_lag_gets") or 0)
        self._ensure_file(conf, artifact)
        return artifact

    def create_conference(self, meeting_code: str | None = None, start_time: Any = None, end_time: Any = None,
                          participants: list | None = None, recordings: list | None = None,
                          transcripts: list | None = None, space: str | None = None, owner: str | None = None) -> dict:
        """Create a conference record (and its space, users and Drive files) and return a full view of it.

        A new space belongs to `owner` (default: the configured default owner); an existing one keeps its owner."""
        with self._lock:
            now = self._now()
            if space:
                space_obj = self._find_space(space)
            else:
                space_obj = self._create_space(meeting_code, owner)
            start = parse_time(start_time, now) or now
            end = parse_time(end_time, now)
            conf = _Conference(id=self._random(_ID_CHARS, 24), space_id=space_obj.id, start=start, end=end)
            conf.participants = [self._build_participant(conf, p) for p in participants or []]
            conf.recordings = [self._build_artifact(conf, "recording", r) for r in recordings or []]
            conf.transcripts = [self._build_artifact(conf, "transcript", t) for t in transcripts or []]
            self._conferences[conf.id] = conf
            logger.debug("created conference %s for %s", conf.id, space_obj.code)
            return self._conference_view(conf)

    def conference(self, conference_id: str) -> dict:
        """Full view of a conference record, including ids of its children."""
        with self._lock:
            return self._conference_view(self._conference(conference_id))

    def _end_conference(self, conf: _Conference, end: datetime) -> None:
        conf.end = end
        # Leaving the meeting ends whatever sessions were still open.
        for p in conf.participants:
            for s in p.sessions:
                if s.end is None:
                    s.end = max(end, s.start)

    def update_conference(self, conference_id: str, end_time: Any = UNSET) -> dict:
        """Set (or clear, with None) a conference record's end time."""
        with self._lock:
            conf = self._conference(conference_id)
            if end_time is not UNSET:
                end = parse_time(end_time, self._now())
                if end is None:
                    conf.end = None
                else:
                    self._end_conference(conf, end)
            return self._conference_view(conf)

    def add_participant(self, conference_id: str, participant: dict) -> dict:
        """Add a participant (with sessions) to an existing conference record."""
        with self._lock:
            conf = self._conference(conference_id)
            conf.participants.append(self._build_participant(conf, participant))
            return self._conference_view(conf)

    def add_recording(self, conference_id: str, recording: dict) -> dict:
        """Add a recording to an existing conference record."""
        with self._lock:
            conf = self._conference(conference_id)
            conf.recordings.append(self._build_artifact(conf, "recording", recording))
            return self._conference_view(conf)

    def add_transcript(self, conference_id: str, transcript: dict) -> dict:
        """Add a transcript to an existing conference record."""
        with self._lock:
            conf = self._conference(conference_id)
            conf.transcripts.append(self._build_artifact(conf, "transcript", transcript))
            return self._conference_view(conf)

    def _update_artifact(self, conference_id: str, kind: str, artifact_id: str, changes: dict) -> dict:
        with self._lock:
            conf = self._conference(conference_id)
            artifacts = conf.recordings if kind == "recording" else conf.transcripts
            collection = "recordings" if kind == "recording" else "transcripts"
            short = artifact_id.rsplit("/", 1)[-1] if f"/{collection}/" in artifact_id else artifact_id
            artifact = next((a for a in artifacts if a.id == short), None)
            if artifact is None:
                raise GoogleError(404, f"Unknown {kind} {artifact_id}", "notFound")
            now = self._now()
            state = changes.get("state")
            if state is not None:
                if state not in ARTIFACT_STATES:
                    raise GoogleError(400, f"state must be one of {ARTIFACT_STATES}", "invalid")
                artifact.state = state
            if changes.get("start_time") is not None:
                artifact.start = parse_time(changes["start_time"], now)
            if "end_time" in changes:
                artifact.end = parse_time(changes["end_time"], now)
            if artifact.state != "STARTED" and artifact.end is None:
                artifact.end = conf.end or now
            file_key = "drive_file_id" if kind == "recording" else "document_id"
            if changes.get(file_key):
                artifact.file_id = changes[file_key]
            if changes.get("duration_seconds") is not None:
                artifact.duration_seconds = _to_int(changes["duration_seconds"], "duration_seconds")
            if changes.get("metadata_lag_gets") is not None:
                artifact.metadata_lag_gets = _to_int(changes["metadata_lag_gets"], "metadata_lag_gets") or 0
            self._ensure_file(conf, artifact)
            return dict(self._artifact_resource(conf, artifact), id=artifact.id)

    def update_recording(self, conference_id: str, recording_id: str, state: str | None = None,
                         end_time: Any = UNSET, start_time: Any = None, drive_file_id: str | None = None,
                         duration_seconds: int | None = None, metadata_lag_gets: int | None = None) -> dict:
        """Change a recording; moving it to FILE_GENERATED creates its Drive file."""
        changes = {"state": state, "start_time": start_time, "drive_file_id": drive_file_id,
                   "duration_seconds": duration_seconds, "metadata_lag_gets": metadata_lag_gets}
        if end_time is not UNSET:
            changes["end_time"] = end_time
        return self._update_artifact(conference_id, "recording", recording_id, changes)

    def update_transcript(self, conference_id: str, transcript_id: str, state: str | None = None,
                          end_time: Any = UNSET, start_time: Any = None, document_id: str | None = None) -> dict:
        """Change a transcript; moving it to FILE_GENERATED creates its document."""
        changes = {"state": state, "start_time": start_time, "document_id": document_id}
        if end_time is not UNSET:
            changes["end_time"] = end_time
        return self._update_artifact(conference_id, "transcript", transcript_id, changes)

    _FILTER_TERM = re.compile(
        r'(space\.meeting_code|space\.name|start_time|end_time)\s*(>=|<=|!=|=|>|<)\s*"([^"]*)"', re.IGNORECASE)
    _NULL_TERM = re.compile(r"end_time\s+IS\s+(NOT\s+)?NULL", re.IGNORECASE)

    def _filter_matches(self, conf: _Conference, text: str) -> bool:
        space = self._spaces[conf.space_id]
        for m in self._NULL_TERM.finditer(text):
            if bool(m.group(1)) != (conf.end is not None):
                return False
        for key, op, value in self._FILTER_TERM.findall(text):
            key = key.lower()
            if key == "space.meeting_code":
                actual, expected = space.code, value.lower()
            elif key == "space.name":
                actual, expected = f"spaces/{space.id}", value if value.startswith("spaces/") else f"spaces/{value}"
            else:
                actual = conf.start if key == "start_time" else conf.end
                if actual is None:
                    return False
                expected = parse_time(value)
            ok = {"=": actual == expected, "!=": actual != expected, ">": actual > expected,
                  ">=": actual >= expected, "<": actual < expected, "<=": actual <= expected}[op]
            if not ok:
                return False
        return True

    def list_conference_records(self, filter: str | None = None, page_size: Any = None,
                                page_token: str | None = None, caller: Caller | None = None) -> dict:
        """meet.conferenceRecords.list, newest first: the conferences of the caller's spaces."""
        with self._lock:
            confs = [c for c in self._conferences.values()
                     if (caller is None or self._spaces[c.space_id].owner == caller.email)
                     and (not filter or self._filter_matches(c, filter))]
            confs.sort(key=lambda c: c.start, reverse=True)
            page, token = self._paginate(confs, page_size, page_token, 25)
            return self._list_result("conferenceRecords", [self._record_resource(c) for c in page], token)

    @staticmethod
    def _list_result(key: str, items: list, token: str | None) -> dict:
        result: dict[str, Any] = {key: items}
        if token:
            result["nextPageToken"] = token
        return result

    def get_conference_record(self, name: str, caller: Caller | None = None) -> dict:
        """meet.conferenceRecords.get."""
        with self._lock:
            return self._record_resource(self._conference(name, caller))

    def _participant(self, conf: _Conference, participant_id: str) -> _Participant:
        p = next((p for p in conf.participants if p.id == participant_id), None)
        if p is None:
            raise GoogleError(404, "Requested entity was not found.", "notFound")
        return p

    def list_participants(self, conference_id: str, page_size: Any = None, page_token: str | None = None,
                          caller: Caller | None = None) -> dict:
        """meet.conferenceRecords.participants.list, latest joiner first."""
        with self._lock:
            conf = self._conference(conference_id, caller)
            people = sorted(conf.participants, reverse=True,
                            key=lambda p: min((s.start for s in p.sessions), default=conf.start))
            page, token = self._paginate(people, page_size, page_token, 100)
            result = self._list_result("participants", [self._participant_resource(conf, p) for p in page], token)
            result["totalSize"] = len(people)
            return result

    def get_participant(self, conference_id: str, participant_id: str, caller: Caller | None = None) -> dict:
        """meet.conferenceRecords.participants.get."""
        with self._lock:
            conf = self._conference(conference_id, caller)
            return self._participant_resource(conf, self._participant(conf, participant_id))

    def list_participant_sessions(self, conference_id: str, participant_id: str, page_size: Any = None,
                                  page_token: str | None = None, caller: Caller | None = None) -> dict:
        """meet.conferenceRecords.participants.participantSessions.list, latest first."""
        with self._lock:
            conf = self._conference(conference_id, caller)
            p = self._participant(conf, participant_id)
            sessions = sorted(p.sessions, key=lambda s: s.start, reverse=True)
            page, token = self._paginate(sessions, page_size, page_token, 100)
            return self._list_result("participantSessions",
                                     [self._session_resource(conf, p, s) for s in page], token)

    def get_participant_session(self, conference_id: str, participant_id: str, session_id: str,
                                caller: Caller | None = None) -> dict:
        """meet.conferenceRecords.participants.participantSessions.get."""
        with self._lock:
            conf = self._conference(conference_id, caller)
            p = self._participant(conf, participant_id)
            s = next((s for s in p.sessions if s.id == session_id), None)
            if s is None:
                raise GoogleError(404, "Requested entity was not found.", "notFound")
            return self._session_resource(conf, p, s)

    def list_artifacts(self, conference_id: str, kind: str, page_size: Any = None,
                       page_token: str | None = None, caller: Caller | None = None) -> dict:
        """meet.conferenceRecords.recordings.list / transcripts.list, oldest first."""
        with self._lock:
            conf = self._conference(conference_id, caller)
            artifacts = conf.recordings if kind == "recording" else conf.transcripts
            page, token = self._paginate(artifacts, page_size, page_token, 10)
            key = "recordings" if kind == "recording" else "transcripts"
            return self._list_result(key, [self._artifact_resource(conf, a) for a in page], token)

    def get_artifact(self, conference_id: str, kind: str, artifact_id: str, caller: Caller | None = None) -> dict:
        """meet.conferenceRecords.recordings.get / transcripts.get."""
        with self._lock:
            conf = self._conference(conference_id, caller)
            artifacts = conf.recordings if kind == "recording" else conf.transcripts
            a = next((a for a in artifacts if a.id == artifact_id), None)
            if a is None:
                raise GoogleError(404, "Requested entity was not found.", "notFound")
            return self._artifact_resource(conf, a)

    # ------------------------------------------------------------------ Drive

    def add_drive_file(self, file_id: str | None = None, name: str | None = None, mime_type: str = "video/mp4",
                       duration_seconds: int | None = 1800, metadata_lag_gets: int = 0, owner: str | None = None,
                       created_by_meet: bool = False) -> dict:
        """Register a Drive file directly in `owner`'s Drive (video metadata only for video/* types)."""
        with self._lock:
            file_id = file_id or self._new_drive_id()
            resource = {"kind": "drive#file", "id": file_id, "name": name or f"{file_id}.mp4", "mimeType": mime_type,
                        "webViewLink": f"https://drive.google.com/file/d/{file_id}/view",
                        "createdTime": format_time(self._now(), millis=True)}
            metadata = None
            if mime_type.startswith("video/"):
                seconds = _to_int(duration_seconds, "duration_seconds") or 0
                metadata = {"durationMillis": str(seconds * 1000), "width": 1280, "height": 720}
            self._files[file_id] = _DriveFile(resource=resource, owner=(owner or self.default_owner).lower(),
                                              meet_created=bool(created_by_meet), metadata=metadata,
                                              lag_left=max(0, _to_int(metadata_lag_gets, "metadata_lag_gets") or 0))
            return copy.deepcopy(resource)

    @staticmethod
    def _can_see_file(f: _DriveFile, caller: Caller | None) -> bool:
        if caller is None:
            return True
        if f.owner != caller.email:
            return False
        # drive.meet.readonly: "files that were created or edited by Google Meet"; drive.file and the like see
        # only files the app made, which none of these are.
        return bool(caller.scopes & _DRIVE_ANY_FILE) or (_DRIVE_MEET in caller.scopes and f.meet_created)

    def get_drive_file(self, file_id: str, caller: Caller | None = None) -> dict:
        """drive.files.get; video metadata shows up only once the configured lag has elapsed."""
        with self._lock:
            f = self._files.get(file_id)
            # Drive answers 404 alike for a missing file and for one the caller may not see.
            if f is None or not self._can_see_file(f, caller):
                raise GoogleError(404, f"File not found: {file_id}.", "notFound")
            resource = copy.deepcopy(f.resource)
            if f.lag_left > 0:
                f.lag_left -= 1
            elif f.metadata is not None:
                resource["videoMediaMetadata"] = dict(f.metadata)
            return resource

    # ------------------------------------------------------------------ People / Directory

    def add_user(self, user_id: str, email: str | None = None, workspace: bool = False,
                 display_name: str | None = None) -> dict:
        """Register a Google account for People and (if workspace) Directory lookups."""
        with self._lock:
            user_id = str(user_id)
            self._users[user_id] = _User(id=user_id, email=email or None, workspace=bool(workspace),
                                         display_name=display_name or f"User {user_id}")
            return self._user_view(self._users[user_id])

    @staticmethod
    def _user_view(user: _User) -> dict:
        return {"user_id": user.id, "email": user.email, "workspace": user.workspace, "display_name": user.display_name}

    def users(self) -> list[dict]:
        """Every registered user."""
        with self._lock:
            return [self._user_view(u) for u in self._users.values()]

    def get_person(self, resource_name: str, person_fields: str | None) -> dict:
        """people.people.get."""
        if not person_fields:
            raise GoogleError(400, "personFields mask is required. Please specify one or more valid paths.",
                              "badRequest")
        fields = {f.strip() for f in person_fields.split(",")}
        with self._lock:
            user = self._users.get(_short_id(resource_name, "people"))
            if user is None:
                raise GoogleError(404, "Requested entity was not found.", "notFound")
            person: dict[str, Any] = {"resourceName": f"people/{user.id}", "etag": f"%{user.id}"}
            # Google shows another account's email only within the caller's Workspace domain: for a personal
            # account (a patient's gmail.com) people.get returns the public profile alone.
            in_domain = bool(user.email) and user.email.rpartition("@")[2].lower() == self.workspace_domain
            if "emailAddresses" in fields and user.email and in_domain:
                person["emailAddresses"] = [{"metadata": {"primary": True, "verified": True,
                                                          "source": {"type": "PROFILE", "id": user.id}},
                                             "value": user.email}]
            if "names" in fields:
                person["names"] = [{"metadata": {"primary": True, "source": {"type": "PROFILE", "id": user.id}},
                                    "displayName": user.display_name}]
            return person

    def get_directory_user(self, user_key: str) -> dict:
        """directory.users.get by id or primary email; only workspace users exist."""
        with self._lock:
            user = self._users.get(user_key)
            if user is None:
                user = next((u for u in self._users.values() if u.email and u.email.lower() == user_key.lower()), None)
            if user is None or not user.workspace or not user.email:
                raise GoogleError(404, "Resource Not Found: userKey", "notFound")
            given, _, family = user.display_name.partition(" ")
            return {"kind": "admin#directory#user", "id": user.id, "primaryEmail": user.email,
                    "name": {"fullName": user.display_name, "givenName": given, "familyName": family}}
