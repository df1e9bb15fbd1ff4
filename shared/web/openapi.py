"""The OpenAPI 3.1 document, generated from the route table and the pydantic models."""
from __future__ import annotations

import copy
import functools
import re
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.domain.events import EventType
from shared.web import examples as ex
from shared.web import models as m
from shared.web.routes import ROUTES, Route
from shared.web.webhook_models import EVENT_MODELS

_REF = "#/components/schemas/{model}"
_PROBLEM_DESCRIPTIONS = {
    400: "Malformed JSON", 401: "Missing or unknown API key", 403: "Not allowed for this key",
    404: "Unknown meeting or route",
    409: "Conflicts with the meeting's state or reference, or (with `reject_conflicts`) the organizer is busy in "
         "the slot: see `conflicts`",
    413: "Body too large", 415: "Body is not application/json", 422: "Invalid input (see `errors`)",
    502: "Google refused the operation", 503: "Google or the database unavailable; retry after `Retry-After`",
}
# Operations are grouped by the resource their path names, not by the Cloud Function that serves them.
_TAGS = (
    ("meetings", "/v1/meetings", "Video appointments: create, read, list, reschedule, cancel; attendance and "
                                 "recordings"),
    ("webhooks", "/v1/webhook-endpoints", "Where the API pushes events about your meetings"),
    ("availability", "/v1/availability", "Clinicians' busy times"),
    ("health", "/v1", "Liveness and this API's own documentation (no key needed)"),
)
_IDEMPOTENT = frozenset({"POST", "PATCH", "DELETE"})
# Refusals a replay returns as first given: 4xx other than the key checks, which run before the ledger is read.
_REPLAYABLE = frozenset({400, 404, 409, 413, 415, 422})

_HEADERS: dict[str, dict[str, Any]] = {
    "Location": {"description": "Where the meeting can be read", "required": True,
                 "schema": {"type": "string"}, "example": f"/v1/meetings/{ex.MEETING_ID}"},
    "Idempotent-Replayed": {"description": "`true` when this is the stored answer to an earlier request with the "
                                           "same `Idempotency-Key`", "schema": {"type": "string", "enum": ["true"]},
                            "example": "true"},
    "Retry-After": {"description": "Seconds to wait before retrying", "required": True,
                    "schema": {"type": "integer", "minimum": 0}, "example": 5},
    "WWW-Authenticate": {"description": "The scheme the API expects", "required": True,
                         "schema": {"type": "string"}, "example": 'Bearer realm="meet-middleware"'},
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes a retry safe: the first final answer is kept for 24 h (per client) and replayed with "
                   "`Idempotent-Replayed: true`; the same key with a different request is a 422. On DELETE the key "
                   "alone identifies the request.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}

_BODY_EXAMPLES: dict[str, dict[str, Any]] = {
    "createMeeting": {
        "upcoming": {"summary": "An upcoming appointment (it can then be rescheduled and cancelled)",
                     "value": ex.UPCOMING},
        "seed": {"summary": "XOMA's body as sent today (its slot is past: the meeting is soon FINISHED)",
                 "value": ex.SEED},
        "protected": {"summary": "A room only invitees enter, recorded by Meet; refused (409) if the doctor is busy "
                                 "then", "value": ex.PROTECTED},
    },
    "updateMeeting": {
        "reschedule": {"summary": "Move it, keeping its duration", "value": ex.RESCHEDULE},
        "retitle": {"summary": "New title; null clears the description", "value": ex.RETITLE},
        "invitees": {"summary": "Replace the invitees (they are notified)", "value": ex.NEW_INVITEES},
        "room": {"summary": "Change the room's policy (the other fields keep theirs)", "value": ex.ROOM_CHANGE},
        "reschedule_if_free": {"summary": "Move it only if the doctor is free then (else 409 with the conflicts)",
                               "value": ex.RESCHEDULE_IF_FREE},
    },
    "createWebhookEndpoint": {
        "local": {"summary": "A receiver on this machine (make run accepts loopback receivers)",
                  "value": ex.WEBHOOK_CREATE_LOCAL},
        "production": {"summary": "Every event to XOMA's https receiver", "value": ex.WEBHOOK_CREATE},
    },
}
_RESPONSE_EXAMPLES: dict[str, Any] = {
    "createMeeting": ex.UPCOMING_MEETING, "updateMeeting": ex.RESCHEDULED_MEETING,
    "cancelMeeting": ex.CANCELLED_MEETING, "listMeetings": ex.PAGE, "getMeeting": ex.FINISHED_MEETING,
    "listParticipants": {"items": ex.PARTICIPANTS}, "listRecordings": {"items": ex.RECORDINGS},
    "getAvailability": ex.AVAILABILITY, "health": ex.HEALTH,
    "createWebhookEndpoint": ex.WEBHOOK_CREATED, "listWebhookEndpoints": {"items": [ex.WEBHOOK_ENDPOINT]},
    "getWebhookEndpoint": ex.WEBHOOK_ENDPOINT, "rotateWebhookSecret": ex.WEBHOOK_SECRET,
    "listWebhookDeliveries": ex.WEBHOOK_DELIVERIES,
    "retryWebhookDelivery": dict(ex.WEBHOOK_DELIVERY, status="pending"),
    "openapi": {"openapi": "3.1.0", "info": {"title": "Meet middleware API", "version": "1.0.0"}, "paths": {}},
}
_PARAM_EXAMPLES: dict[str, Any] = {"meeting_id": ex.MEETING_ID, "endpoint_id": ex.ENDPOINT_ID,
                                   "delivery_id": ex.DELIVERY_ID, **ex.LIST_FILTERS, **ex.AVAILABILITY_QUERY}
# A refusal whose example says more on one operation than the generic one: a busy slot on create and reschedule.
_PROBLEM_EXAMPLES: dict[tuple[str, int], Any] = {("createMeeting", 409): ex.BUSY, ("updateMeeting", 409): ex.BUSY}
_PARAM_DESCRIPTIONS = {"meeting_id": "The meeting's `id`"}


def public_routes() -> list[Route]:
    return [r for r in ROUTES if r.public]


def tag_of(path: str) -> str:
    """The resource an operation belongs to, read from its path."""
    return next(name for name, prefix, _ in _TAGS if path == prefix or path.startswith(prefix + "/"))


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: drop the null branch pydantic adds to optionals."""
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
        return {**rest, **branches[0]}
    if branches and len(branches) < len(schema.get("anyOf", [])):
        return {**{k: v for k, v in schema.items() if k != "default"}, "anyOf": branches}
    return schema


def _flatten(node: Any) -> Any:
    """anyOf inside anyOf (an optional field of a type that is itself a union) as one flat anyOf."""
    if isinstance(node, list):
        return [_flatten(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _flatten(value) for key, value in node.items()}
    if "anyOf" in node:
        branches = []
        for branch in node["anyOf"]:
            if set(branch) <= {"anyOf", "description"} and "anyOf" in branch:
                branches.extend(branch["anyOf"])
                node.setdefault("description", branch.get("description"))
            else:
                branches.append(branch)
        node["anyOf"] = branches
        if node.get("description") is None:
            node.pop("description", None)
    return node


def _headers(*names: str) -> dict[str, Any]:
    return {name: _HEADERS[name] for name in names}


def _problem(status: int, problem_ref: dict[str, str], *, replayable: bool = False,
             example: Any = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _PROBLEM_DESCRIPTIONS.get(status, "Problem"), "content": {
        "application/problem+json": {"schema": problem_ref, "example": example or ex.problem(status)}}}
    headers = {401: _headers("WWW-Authenticate"), 503: _headers("Retry-After")}.get(status, {})
    if replayable:
        headers = {**headers, **_headers("Idempotent-Replayed")}
    if headers:
        response["headers"] = headers
    return response


def _success_content(route: Route, names: dict[tuple[type, str], str]) -> dict[str, Any]:
    example = _RESPONSE_EXAMPLES.get(route.operation_id)
    if route.response_model is not None:
        schema: dict[str, Any] = {"$ref": _REF.format(model=names[(route.response_model, "serialization")])}
    elif route.content_type == "application/json":
        schema = {"type": "object"}
    else:
        schema = {"type": "string"}
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    if route.operation_id == "docs":
        media["example"] = "<!doctype html><html lang=\"en\">…</html>"
    if route.operation_id == "docsAsset":
        return {"text/css": {"schema": {"type": "string"}, "example": ".swagger-ui{…}"},
                "text/javascript": {"schema": {"type": "string"}, "example": "!function(){…}()"}}
    return {route.content_type: media}


def _parameters(route: Route, defs: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in route.params:
        schema: dict[str, Any] = {"type": "string"}
        if name == "meeting_id":
            schema["format"] = "uuid"
        elif route.operation_id == "docsAsset":
            from shared.web import docs_page

            schema["enum"] = sorted(docs_page.ASSETS)
        param = {"name": name, "in": "path", "required": True, "schema": schema,
                 "example": _PARAM_EXAMPLES.get(name, schema.get("enum", [None])[0])}
        if name in _PARAM_DESCRIPTIONS:
            param["description"] = _PARAM_DESCRIPTIONS[name]
        params.append(param)
    if route.query_model is not None:
        schema = _flatten(route.query_model.model_json_schema(ref_template=_REF))
        defs.update(schema.get("$defs", {}))
        for name, prop in schema["properties"].items():
            param = {"name": name, "in": "query", "required": name in schema.get("required", []),
                     "schema": _non_null(prop)}
            if "description" in param["schema"]:
                param["description"] = param["schema"]["description"]
            if name in _PARAM_EXAMPLES:
                param["example"] = _PARAM_EXAMPLES[name]
            params.append(param)
    if route.method in _IDEMPOTENT and route.auth == "key":
        params.append(dict(_IDEMPOTENCY_KEY, example=ex.idempotency_key(route.operation_id)))
    return params


def _operation(route: Route, names: dict[Any, str], defs: dict[str, Any],
               problem_ref: dict[str, str]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary,
                          "tags": [tag_of(route.path)], "x-function": route.function}
    params = _parameters(route, defs)
    if params:
        op["parameters"] = params
    if route.body_model is not None:
        media: dict[str, Any] = {"schema": {"$ref": _REF.format(model=names[(route.body_model, "validation")])}}
        if route.operation_id in _BODY_EXAMPLES:
            media["examples"] = _BODY_EXAMPLES[route.operation_id]
        op["requestBody"] = {"required": True, "content": {"application/json": media}}
    idempotent = route.method in _IDEMPOTENT and route.auth == "key"
    headers = _headers("Location") if route.operation_id == "createMeeting" else {}
    if idempotent:
        headers = {**headers, **_headers("Idempotent-Replayed")}
    content = _success_content(route, names)
    success: dict[str, Any] = {"description": "Success", "content": content}
    if headers:
        success["headers"] = headers
    op["responses"] = {str(route.status): success}
    for status in route.extra_status:
        op["responses"][str(status)] = dict(success, description="The same request again: the stored result")
    errors = route.errors if not idempotent or 422 in route.errors else (*route.errors, 422)
    for status in sorted(errors):
        if idempotent and status in _REPLAYABLE:
            op["responses"][str(status)] = _problem(status, problem_ref, replayable=True,
                                                    example=_PROBLEM_EXAMPLES.get((route.operation_id, status)))
        else:
            op["responses"][str(status)] = {"$ref": f"#/components/responses/Problem{status}"}
    if route.operation_id == "health":
        # The health check answers its own body when the database is down; the gateway a problem when it cannot
        # reach the function at all.
        op["responses"]["503"] = {
            "description": "The database (or the function) is unavailable",
            "headers": {"Retry-After": dict(_HEADERS["Retry-After"], required=False)},
            "content": {"application/json": {"schema": content["application/json"]["schema"],
                                             "example": dict(ex.HEALTH, status="unavailable", database="unavailable")},
                        "application/problem+json": {"schema": problem_ref, "example": ex.problem(503)}}}
    op["security"] = [] if route.auth == "none" else [{"apiKey": []}]
    return op


@functools.cache
def document() -> dict[str, Any]:
    """The whole public API as OpenAPI 3.1 (without `servers`: see `served`)."""
    routes = public_routes()
    wanted: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [(m.Problem, "serialization")]
    for r in routes:
        if r.body_model is not None:
            wanted.append((r.body_model, "validation"))
        if r.response_model is not None:
            wanted.append((r.response_model, "serialization"))
    wanted += webhook_models()
    wanted = list(dict.fromkeys(wanted))
    keys, defs = models_json_schema(wanted, ref_template=_REF)
    names = {key: ref["$ref"].rsplit("/", 1)[-1] for key, ref in keys.items()}
    schemas = _flatten(dict(defs.get("$defs", {})))
    problem_ref = {"$ref": _REF.format(model=names[(m.Problem, "serialization")])}
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        paths.setdefault(r.path, {})[r.method.lower()] = _operation(r, names, schemas, problem_ref)
    _no_content(paths)
    statuses = sorted({s for r in routes for s in r.errors} | {422})
    used = {tag_of(r.path) for r in routes}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Meet middleware API", "version": "1.0.0",
                 "description": "Google Meet video appointments for XOMA: create, read, list, reschedule, cancel, "
                                "and afterwards attendance and recordings; patient-safe rooms (who enters without "
                                "knocking, automatic recording and transcripts) and clinicians' availability, with "
                                "busy slots refused on request. Every operation but health and "
                                "documentation needs `Authorization: Bearer <api key>`; errors are "
                                "`application/problem+json` (RFC 9457)."},
        "tags": [{"name": name, "description": text} for name, _, text in _TAGS if name in used],
        "paths": paths,
        "webhooks": webhooks_section(names),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "An API key minted with `make api-key`."}},
            "responses": {f"Problem{s}": _problem(s, problem_ref) for s in statuses},
        },
    }


_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def origin(headers: Any, host_url: str) -> str:
    """The scheme and host the caller used: a proxy's X-Forwarded-Proto and -Host when given, else the request's."""
    scheme, _, rest = host_url.partition("://")
    host = rest.rstrip("/")
    forwarded_host = (headers.get("X-Forwarded-Host") or "").split(",")[0].strip()
    forwarded_proto = (headers.get("X-Forwarded-Proto") or "").split(",")[0].strip().lower()
    if forwarded_host and _HOST.match(forwarded_host):
        host = forwarded_host
    if forwarded_proto in ("http", "https"):
        scheme = forwarded_proto
    return f"{scheme}://{host}"


def served(base_url: str) -> dict[str, Any]:
    """The document as served at `base_url`: its `servers` entry is that origin, usable as a client's base URL."""
    doc = copy.copy(document())
    doc["servers"] = [{"url": base_url, "description": "The server this document was read from"}]
    return {"openapi": doc["openapi"], "info": doc["info"], "servers": doc["servers"],
            **{k: v for k, v in doc.items() if k not in ("openapi", "info", "servers")}}


# --- push events: what a client's webhook endpoints receive (OpenAPI 3.1 `webhooks`) -------------------------

_EVENT_SUMMARIES = {
    EventType.MEETING_CREATED: "The meeting exists: its Calendar event and, unless still pending, its Meet link",
    EventType.MEETING_UPDATED: "Rescheduled or edited (PATCH), a pending Meet link filled in, or moved in Google",
    EventType.MEETING_CANCELLED: "Cancelled through the API or in Google Calendar",
    EventType.MEETING_STARTED: "Meet reports a live conference (IN_PROGRESS)",
    EventType.MEETING_FINISHED: "The conference ended, or the slot and the grace period passed (FINISHED)",
    EventType.ATTENDANCE_UPDATED: "A recording sync changed who attended and for how long",
    EventType.RECORDING_READY: "A recording's file reached FILE_GENERATED; `data.recording` is that recording",
    EventType.TRANSCRIPT_READY: "A transcript's document reached FILE_GENERATED; `data.transcript` is that transcript",
}
_WEBHOOK_HEADERS = (
    ("webhook-id", "The event's id, the same on every attempt of it: deduplicate on it.",
     {"type": "string", "format": "uuid"}),
    ("webhook-timestamp", "Unix seconds of this attempt; refuse a delivery more than 5 minutes off your clock.",
     {"type": "string", "pattern": "^[0-9]+$"}),
    ("webhook-signature", "Space-separated `v1,<base64 HMAC-SHA256>` entries, one per valid secret, over "
     "`{webhook-id}.{webhook-timestamp}.{body}` keyed with the base64-decoded part of the secret after `whsec_` "
     "(Standard Webhooks v1).", {"type": "string"}),
)


def webhook_models() -> list[tuple[type[BaseModel], Literal["validation", "serialization"]]]:
    """The event bodies the document describes, for the shared schema generation."""
    return [(model, "serialization") for model in dict.fromkeys(EVENT_MODELS.values())]


def webhooks_section(names: dict[Any, str]) -> dict[str, Any]:
    """One `post` per event type, as the middleware sends it to an endpoint subscribed to that type."""
    out: dict[str, Any] = {}
    for event_type, model in EVENT_MODELS.items():
        ref = {"$ref": _REF.format(model=names[(model, "serialization")])}
        out[event_type.value] = {"post": {
            "operationId": "".join(p if i == 0 else p.capitalize()
                                   for i, p in enumerate(event_type.value.split("."))) + "Event",
            "summary": _EVENT_SUMMARIES[event_type],
            "description": "Sent to every endpoint of the meeting's client that receives this event type. A 2xx "
                           "answer within 15 s is delivered; 410 disables the endpoint; anything else is retried "
                           "after about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, then the delivery is failed.",
            "tags": ["webhooks"],
            "parameters": [{"name": name, "in": "header", "required": True, "description": text, "schema": schema}
                           for name, text, schema in _WEBHOOK_HEADERS],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"allOf": [
                ref, {"type": "object", "properties": {"type": {"const": event_type.value}}}]}}}},
            "responses": {
                "2XX": {"description": "Delivered"},
                "410": {"description": "Gone: the endpoint is disabled and receives nothing more"},
                "default": {"description": "Not delivered: retried on the schedule above"},
            },
        }}
    return out


def _no_content(paths: dict[str, dict[str, Any]]) -> None:
    """A 204 answer has no body, so it declares no content."""
    for item in paths.values():
        for op in item.values():
            if "204" in op["responses"]:
                headers = op["responses"]["204"].get("headers")
                done: dict[str, Any] = {"description": "Done (no content)"}
                if headers:
                    done["headers"] = headers
                op["responses"]["204"] = done
