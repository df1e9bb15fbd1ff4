"""Flask routes of the fake Google Workspace server."""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any, Callable
from urllib.parse import parse_qsl

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from .identity import CERTS_PATH, TokenRefused
from .state import UNSET, FakeWorld, GoogleError

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/_fake/"

# Discovery servicePaths that are non-empty (Meet, People and Directory have none).
SERVICE_PATHS = ("/calendar/v3/", "/drive/v3/")

TOKEN_OPERATION = "oauth2.token"
CERTS_OPERATION = "oauth2.certs"
# Reached without a bearer token, as at Google.
_OPEN_OPERATIONS = (TOKEN_OPERATION, CERTS_OPERATION, "unmatched")

# Operation names follow the discovery documents' method ids.
OPERATIONS = (
    TOKEN_OPERATION, CERTS_OPERATION,
    "calendar.events.insert", "calendar.events.get", "calendar.events.list", "calendar.events.patch",
    "calendar.events.update", "calendar.events.delete", "calendar.freebusy.query",
    "meet.spaces.create", "meet.spaces.get", "meet.spaces.patch", "meet.spaces.endActiveConference",
    "meet.conferenceRecords.list", "meet.conferenceRecords.get",
    "meet.conferenceRecords.participants.list", "meet.conferenceRecords.participants.get",
    "meet.conferenceRecords.participants.participantSessions.list",
    "meet.conferenceRecords.participants.participantSessions.get",
    "meet.conferenceRecords.recordings.list", "meet.conferenceRecords.recordings.get",
    "meet.conferenceRecords.transcripts.list", "meet.conferenceRecords.transcripts.get",
    "drive.files.get", "people.people.get", "directory.users.get",
)


def _error_response(err: GoogleError) -> Response:
    resp = jsonify(err.to_json())
    resp.status_code = err.code
    if err.retry_after is not None:
        resp.headers["Retry-After"] = str(err.retry_after)
    for name, value in err.headers.items():
        resp.headers[name] = value
    return resp


def _token_error(refused: TokenRefused) -> Response:
    resp = jsonify(refused.to_json())
    resp.status_code = refused.status
    return resp


def _token_fault(fault: GoogleError) -> Response:
    """An injected fault on the token endpoint, in the OAuth 2.0 error shape google-auth reads."""
    error = fault.given_reason or ("internal_failure" if fault.code >= 500 else "invalid_request")
    resp = _token_error(TokenRefused(fault.code, error, fault.message))
    if fault.retry_after is not None:
        resp.headers["Retry-After"] = str(fault.retry_after)
    return resp


def _json_body() -> Any:
    """Request JSON (None when empty); malformed JSON is a 400 like Google's parseError."""
    raw = g.get("raw_body", b"")
    if not raw:
        return None
    body = request.get_json(silent=True, force=True)
    if body is None:
        raise GoogleError(400, "Invalid JSON payload received.", "parseError")
    return body


def _object_body() -> dict:
    body = _json_body()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise GoogleError(400, "Request body must be a JSON object.", "parseError")
    return body


def _kwargs(body: dict, allowed: tuple[str, ...]) -> dict:
    unknown = set(body) - set(allowed)
    if unknown:
        raise GoogleError(400, f"Unknown fields: {sorted(unknown)}; allowed: {list(allowed)}", "invalid")
    return dict(body)


def _flag(name: str) -> bool:
    return (request.args.get(name) or "").lower() in ("1", "true", "yes")


def create_app(world: FakeWorld) -> Flask:
    """Build the Flask app serving the Google APIs and the /_fake/ control API over `world`."""
    app = Flask("fake_google")
    app.json.sort_keys = False
    app.url_map.strict_slashes = False
    endpoint_ops: dict[str, str] = {}

    def api(rule: str, operation: str, methods: tuple[str, ...] = ("GET",)) -> Callable:
        def register(view: Callable) -> Callable:
            endpoint = operation.replace(".", "__")
            endpoint_ops[endpoint] = operation
            app.add_url_rule(rule, endpoint=endpoint, view_func=view, methods=list(methods))
            # api_endpoint replaces rootUrl + servicePath in googleapiclient, so a client built with the bare
            # root omits the servicePath; serve both spellings.
            for service_path in SERVICE_PATHS:
                if rule.startswith(service_path):
                    app.add_url_rule(rule[len(service_path) - 1:], endpoint=endpoint, view_func=view,
                                     methods=list(methods))
            return view
        return register

    def control(rule: str, methods: tuple[str, ...] = ("GET",)) -> Callable:
        def register(view: Callable) -> Callable:
            endpoint = "fake_" + view.__name__
            app.add_url_rule(CONTROL_PREFIX.rstrip("/") + rule, endpoint=endpoint, view_func=view,
                             methods=list(methods))
            return view
        return register

    @app.before_request
    def _before() -> Response | None:
        # Read the body first so an early (fault) answer never leaves bytes on a keep-alive connection.
        g.raw_body = request.get_data(cache=True)
        if request.path.startswith(CONTROL_PREFIX):
            g.operation = None
            return None
        g.operation = endpoint_ops.get(request.endpoint or "", "unmatched")
        delay = world.latency_for(g.operation, request.method, request.path)
        if delay:
            time.sleep(delay)
        if g.operation not in _OPEN_OPERATIONS:
            # Google checks the bearer token and its scopes before the service sees the request.
            g.caller = world.authenticate(request.headers.get("Authorization"), g.operation)
        fault = world.take_fault(g.operation, request.method, request.path)
        if fault is not None:
            g.fault = True
            logger.info("injected %s on %s %s", fault.code, request.method, request.path)
            return _token_fault(fault) if g.operation == TOKEN_OPERATION else _error_response(fault)
        return None

    @app.after_request
    def _after(resp: Response) -> Response:
        operation = g.get("operation")
        if operation is not None:
            if operation == TOKEN_OPERATION:
                body = g.get("token_claims")  # the claims, never the signed assertion itself
            else:
                body = request.get_json(silent=True, force=True) if g.get("raw_body") else None
            caller = g.get("caller")
            subject = caller.email if caller is not None else (body or {}).get("sub")
            world.record_request(request.method, request.path, request.args.to_dict(flat=True), body,
                                 resp.status_code, operation, fault=g.get("fault", False), subject=subject)
        return resp

    @app.errorhandler(GoogleError)
    def _google_error(err: GoogleError) -> Response:
        return _error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Response:
        code = err.code or 500
        return _error_response(GoogleError(code, err.description if code != 404 else "Not Found"))

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        logger.exception("fake Google failed on %s %s", request.method, request.path)
        return _error_response(GoogleError(500, f"Fake server error: {err}", "backendError"))

    # ------------------------------------------------------------------ OAuth 2.0 token endpoint

    @api("/token", TOKEN_OPERATION, ("POST",))
    def token() -> Response:
        form = dict(parse_qsl(g.raw_body.decode("utf-8", "replace")))
        g.token_claims = _claims_for_log(form)
        try:
            return jsonify(world.issue_token(form, request.base_url))
        except TokenRefused as refused:
            logger.info("token refused: %s", refused)
            return _token_error(refused)

    @api(CERTS_PATH, CERTS_OPERATION)
    def certs() -> Response:
        # What ID tokens (`id_token` answers of /token) are verified against; cacheable like Google's.
        resp = jsonify(world.id_tokens.certs())
        resp.headers["Cache-Control"] = "public, max-age=3600"
        return resp

    # ------------------------------------------------------------------ Calendar v3

    events_rule = "/calendar/v3/calendars/<calendar_id>/events"

    @api(events_rule, "calendar.events.insert", ("POST",))
    def calendar_insert(calendar_id: str) -> Response:
        return jsonify(world.insert_event(calendar_id, _object_body(), request.args.get("conferenceDataVersion"),
                                          request.args.get("sendUpdates"), caller=g.caller))

    @api(events_rule, "calendar.events.list")
    def calendar_list(calendar_id: str) -> Response:
        return jsonify(world.list_events(calendar_id, request.args.get("pageToken"), request.args.get("maxResults"),
                                         _flag("showDeleted"), request.args.get("iCalUID"), caller=g.caller))

    @api(events_rule + "/<event_id>", "calendar.events.get")
    def calendar_get(calendar_id: str, event_id: str) -> Response:
        return jsonify(world.get_event(calendar_id, event_id, caller=g.caller))

    @api(events_rule + "/<event_id>", "calendar.events.patch", ("PATCH",))
    def calendar_patch(calendar_id: str, event_id: str) -> Response:
        return jsonify(world.update_event(calendar_id, event_id, _object_body(),
                                          request.args.get("conferenceDataVersion"), replace=False, caller=g.caller))

    @api(events_rule + "/<event_id>", "calendar.events.update", ("PUT",))
    def calendar_update(calendar_id: str, event_id: str) -> Response:
        return jsonify(world.update_event(calendar_id, event_id, _object_body(),
                                          request.args.get("conferenceDataVersion"), replace=True, caller=g.caller))

    @api(events_rule + "/<event_id>", "calendar.events.delete", ("DELETE",))
    def calendar_delete(calendar_id: str, event_id: str) -> Response:
        world.delete_event(calendar_id, event_id, request.args.get("sendUpdates"), caller=g.caller)
        return Response(status=204)

    @api("/calendar/v3/freeBusy", "calendar.freebusy.query", ("POST",))
    def calendar_freebusy() -> Response:
        return jsonify(world.freebusy(_object_body(), caller=g.caller))

    # ------------------------------------------------------------------ Meet v2

    @api("/v2/spaces", "meet.spaces.create", ("POST",))
    def meet_space_create() -> Response:
        return jsonify(world.create_space(caller=g.caller))

    @api("/v2/spaces/<name>", "meet.spaces.get")
    def meet_space_get(name: str) -> Response:
        return jsonify(world.get_space(name, caller=g.caller))

    @api("/v2/spaces/<name>", "meet.spaces.patch", ("PATCH",))
    def meet_space_patch(name: str) -> Response:
        return jsonify(world.patch_space(name, _object_body(), request.args.get("updateMask"), caller=g.caller))

    @api("/v2/spaces/<name>:endActiveConference", "meet.spaces.endActiveConference", ("POST",))
    def meet_space_end(name: str) -> Response:
        world.end_active_conference(name, caller=g.caller)
        return jsonify({})

    records_rule = "/v2/conferenceRecords"

    def _page_args() -> dict:
        return {"page_size": request.args.get("pageSize"), "page_token": request.args.get("pageToken"),
                "caller": g.caller}

    @api(records_rule, "meet.conferenceRecords.list")
    def meet_records_list() -> Response:
        return jsonify(world.list_conference_records(request.args.get("filter"), **_page_args()))

    @api(records_rule + "/<cid>", "meet.conferenceRecords.get")
    def meet_record_get(cid: str) -> Response:
        return jsonify(world.get_conference_record(cid, caller=g.caller))

    @api(records_rule + "/<cid>/participants", "meet.conferenceRecords.participants.list")
    def meet_participants_list(cid: str) -> Response:
        return jsonify(world.list_participants(cid, **_page_args()))

    @api(records_rule + "/<cid>/participants/<pid>", "meet.conferenceRecords.participants.get")
    def meet_participant_get(cid: str, pid: str) -> Response:
        return jsonify(world.get_participant(cid, pid, caller=g.caller))

    @api(records_rule + "/<cid>/participants/<pid>/participantSessions",
         "meet.conferenceRecords.participants.participantSessions.list")
    def meet_sessions_list(cid: str, pid: str) -> Response:
        return jsonify(world.list_participant_sessions(cid, pid, **_page_args()))

    @api(records_rule + "/<cid>/participants/<pid>/participantSessions/<sid>",
         "meet.conferenceRecords.participants.participantSessions.get")
    def meet_session_get(cid: str, pid: str, sid: str) -> Response:
        return jsonify(world.get_participant_session(cid, pid, sid, caller=g.caller))

    @api(records_rule + "/<cid>/recordings", "meet.conferenceRecords.recordings.list")
    def meet_recordings_list(cid: str) -> Response:
        return jsonify(world.list_artifacts(cid, "recording", **_page_args()))

    @api(records_rule + "/<cid>/recordings/<rid>", "meet.conferenceRecords.recordings.get")
    def meet_recording_get(cid: str, rid: str) -> Response:
        return jsonify(world.get_artifact(cid, "recording", rid, caller=g.caller))

    @api(records_rule + "/<cid>/transcripts", "meet.conferenceRecords.transcripts.list")
    def meet_transcripts_list(cid: str) -> Response:
        return jsonify(world.list_artifacts(cid, "transcript", **_page_args()))

    @api(records_rule + "/<cid>/transcripts/<tid>", "meet.conferenceRecords.transcripts.get")
    def meet_transcript_get(cid: str, tid: str) -> Response:
        return jsonify(world.get_artifact(cid, "transcript", tid, caller=g.caller))

    # ------------------------------------------------------------------ Drive, People, Directory

    @api("/drive/v3/files/<file_id>", "drive.files.get")
    def drive_get(file_id: str) -> Response:
        return jsonify(world.get_drive_file(file_id, caller=g.caller))

    @api("/v1/people/<person_id>", "people.people.get")
    def people_get(person_id: str) -> Response:
        return jsonify(world.get_person(person_id, request.args.get("personFields")))

    @api("/admin/directory/v1/users/<user_key>", "directory.users.get")
    def directory_get(user_key: str) -> Response:
        # Directory users.get: only an administrator reads the admin view; anyone else of the domain must ask for
        # viewType=domain_public (Admin SDK Directory API, users.get, "viewType").
        if request.args.get("viewType") != "domain_public":
            raise GoogleError(403, "Not Authorized to access this resource/api", "forbidden")
        return jsonify(world.get_directory_user(user_key))

    # ------------------------------------------------------------------ control API

    @control("/health")
    def health() -> Response:
        return jsonify({"ok": True})

    @control("/reset", ("POST",))
    def reset() -> Response:
        world.reset()
        return jsonify({"ok": True})

    @control("/requests", ("GET", "DELETE"))
    def requests_log() -> Response:
        if request.method == "DELETE":
            world.clear_requests()
            return jsonify({"ok": True})
        return jsonify({"items": world.requests(request.args.get("operation"), request.args.get("method"),
                                                request.args.get("path_contains"))})

    @control("/stats")
    def stats() -> Response:
        return jsonify(world.stats())

    @control("/config", ("GET", "POST"))
    def config() -> Response:
        if request.method == "GET":
            return jsonify(world.config())
        body = _kwargs(_object_body(), ("conference_mode", "pending_polls", "max_page_size", "workspace_domain",
                                        "open_directory", "delegation_scopes", "token_lifetime_seconds",
                                        "default_owner"))
        body.setdefault("pending_polls", UNSET)
        return jsonify(world.configure(**body))

    @control("/faults", ("GET", "POST", "DELETE"))
    def faults() -> Response:
        if request.method == "DELETE":
            world.clear_faults()
            return jsonify({"ok": True})
        if request.method == "POST":
            world.add_fault(**_kwargs(_object_body(), ("status", "operation", "path_regex", "method", "count",
                                                       "retry_after", "after", "reason", "message")))
        return jsonify({"items": world.faults()})

    @control("/latency", ("POST", "DELETE"))
    def latency() -> Response:
        if request.method == "DELETE":
            world.clear_latency()
            return jsonify({"items": []})
        body = _kwargs(_object_body(), ("ms", "operation", "path_regex", "method"))
        return jsonify({"items": world.set_latency(**body)})

    @control("/calendar/events")
    def all_events() -> Response:
        return jsonify({"items": world.events(request.args.get("calendar_id"))})

    @control("/calendar/<calendar_id>/events/<event_id>")
    def peek_event(calendar_id: str, event_id: str) -> Response:
        return jsonify(world.get_event(calendar_id, event_id, poll=False))

    @control("/calendar/<calendar_id>/events/<event_id>/conference", ("POST",))
    def resolve_conference(calendar_id: str, event_id: str) -> Response:
        body = _kwargs(_object_body(), ("status",))
        return jsonify(world.resolve_conference(calendar_id, event_id, body.get("status", "success")))

    @control("/meet/spaces", ("POST",))
    def create_space() -> Response:
        return jsonify(world.create_space(**_kwargs(_object_body(), ("meeting_code", "owner"))))

    @control("/meet/spaces/<name>")
    def peek_space(name: str) -> Response:
        return jsonify(world.peek_space(name))

    @control("/meet/spaces/<name>/config", ("PATCH",))
    def change_space_config(name: str) -> Response:
        return jsonify(world.change_space_config(name, _object_body()))

    @control("/meet/conferences", ("POST",))
    def create_conference() -> Response:
        body = _kwargs(_object_body(), ("meeting_code", "space", "start_time", "end_time", "participants",
                                        "recordings", "transcripts", "owner"))
        return jsonify(world.create_conference(**body))

    @control("/meet/conferences/<cid>", ("GET", "PATCH"))
    def conference(cid: str) -> Response:
        if request.method == "GET":
            return jsonify(world.conference(cid))
        body = _kwargs(_object_body(), ("end_time",))
        return jsonify(world.update_conference(cid, body.get("end_time", UNSET)))

    @control("/meet/conferences/<cid>/participants", ("POST",))
    def add_participant(cid: str) -> Response:
        return jsonify(world.add_participant(cid, _object_body()))

    @control("/meet/conferences/<cid>/recordings", ("POST",))
    def add_recording(cid: str) -> Response:
        return jsonify(world.add_recording(cid, _object_body()))

    @control("/meet/conferences/<cid>/transcripts", ("POST",))
    def add_transcript(cid: str) -> Response:
        return jsonify(world.add_transcript(cid, _object_body()))

    @control("/meet/conferences/<cid>/recordings/<rid>", ("PATCH",))
    def update_recording(cid: str, rid: str) -> Response:
        body = _kwargs(_object_body(), ("state", "start_time", "end_time", "drive_file_id", "duration_seconds",
                                        "metadata_lag_gets"))
        return jsonify(world.update_recording(cid, rid, **body))

    @control("/meet/conferences/<cid>/transcripts/<tid>", ("PATCH",))
    def update_transcript(cid: str, tid: str) -> Response:
        body = _kwargs(_object_body(), ("state", "start_time", "end_time", "document_id"))
        return jsonify(world.update_transcript(cid, tid, **body))

    @control("/drive/files", ("POST",))
    def add_drive_file() -> Response:
        body = _kwargs(_object_body(), ("file_id", "name", "mime_type", "duration_seconds", "metadata_lag_gets",
                                        "owner", "created_by_meet"))
        return jsonify(world.add_drive_file(**body))

    @control("/users", ("GET", "POST"))
    def users() -> Response:
        if request.method == "GET":
            return jsonify({"items": world.users()})
        body = _kwargs(_object_body(), ("user_id", "email", "workspace", "display_name"))
        if not body.get("user_id"):
            raise GoogleError(400, "user_id is required", "required")
        return jsonify(world.add_user(**body))

    @control("/service-accounts", ("GET", "POST"))
    def service_accounts() -> Response:
        if request.method == "POST":
            body = _kwargs(_object_body(), ("email", "public_key"))
            world.register_service_account(body.get("email"), body.get("public_key") or "")
        return jsonify({"items": world.service_accounts()})

    @control("/service-accounts/<email>", ("DELETE",))
    def remove_service_account(email: str) -> Response:
        world.remove_service_account(email)
        return jsonify({"items": world.service_accounts()})

    @control("/workspace/users", ("GET", "POST"))
    def workspace_users() -> Response:
        if request.method == "POST":
            body = _kwargs(_object_body(), ("email", "suspended"))
            return jsonify(world.add_workspace_user(body.get("email"), bool(body.get("suspended"))))
        return jsonify({"items": world.workspace_users()})

    @control("/workspace/users/<email>", ("DELETE",))
    def remove_workspace_user(email: str) -> Response:
        world.remove_workspace_user(email)
        return jsonify({"items": world.workspace_users()})

    @control("/tokens", ("POST",))
    def user_token() -> Response:
        body = _kwargs(_object_body(), ("email", "scopes", "lifetime_seconds"))
        return jsonify(world.user_token(body.get("email"), body.get("scopes") or [], body.get("lifetime_seconds")))

    return app


def _claims_for_log(form: dict) -> dict:
    """What a token request asked for (grant type and the assertion's claims), read without verifying it."""
    logged = {"grant_type": form.get("grant_type")}
    try:
        part = (form.get("assertion") or "").split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        if isinstance(claims, dict):
            logged.update({k: claims.get(k) for k in ("iss", "sub", "scope", "aud")})
    except (IndexError, ValueError):
        pass
    return logged
