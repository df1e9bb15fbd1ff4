"""The OpenAPI 3.1 document, generated from the route table and the pydantic models."""
from __future__ import annotations

import copy
import functools
import re
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.web import examples as ex
from shared.web import models as m
from shared.web.routes import ROUTES, Route

_REF = "#/components/schemas/{model}"
_PROBLEM_DESCRIPTIONS = {
    400: "Malformed JSON", 401: "Missing or unknown API key", 403: "Not allowed for this key",
    404: "Unknown meeting or route", 409: "Conflicts with the meeting's state or reference",
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
    },
    "updateMeeting": {
        "reschedule": {"summary": "Move it, keeping its duration", "value": ex.RESCHEDULE},
        "retitle": {"summary": "New title; null clears the description", "value": ex.RETITLE},
        "invitees": {"summary": "Replace the invitees (they are notified)", "value": ex.NEW_INVITEES},
    },
}
_RESPONSE_EXAMPLES: dict[str, Any] = {
    "createMeeting": ex.UPCOMING_MEETING, "updateMeeting": ex.RESCHEDULED_MEETING,
    "cancelMeeting": ex.CANCELLED_MEETING, "listMeetings": ex.PAGE, "getMeeting": ex.FINISHED_MEETING,
    "listParticipants": {"items": ex.PARTICIPANTS}, "listRecordings": {"items": ex.RECORDINGS},
    "health": ex.HEALTH,
    "openapi": {"openapi": "3.1.0", "info": {"title": "Meet middleware API", "version": "1.0.0"}, "paths": {}},
}
_PARAM_EXAMPLES: dict[str, Any] = {"meeting_id": ex.MEETING_ID, **ex.LIST_FILTERS}
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


def _problem(status: int, problem_ref: dict[str, str], *, replayable: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _PROBLEM_DESCRIPTIONS.get(status, "Problem"), "content": {
        "application/problem+json": {"schema": problem_ref, "example": ex.problem(status)}}}
    headers = {401: _headers("WWW-Authenticate"), 503: _headers("Retry-After")}.get(status, {})
    if replayable:
        headers = {**headers, **_headers("Idempotent-Replayed")}
    if headers:
        response["headers"] = headers
    return response


def _success_content(route: Route, names: dict[tuple[type, str], str]) -> dict[str, Any]:
    example = _RESPONSE_EXAMPLES.get(route.operation_id)
    if route.response is not None:
        schema: dict[str, Any] = {"$ref": _REF.format(model=names[(route.response, "serialization")])}
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
    if route.query is not None:
        schema = _flatten(route.query.model_json_schema(ref_template=_REF))
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
    if route.body is not None:
        media: dict[str, Any] = {"schema": {"$ref": _REF.format(model=names[(route.body, "validation")])}}
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
            op["responses"][str(status)] = _problem(status, problem_ref, replayable=True)
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
        if r.body is not None:
            wanted.append((r.body, "validation"))
        if r.response is not None:
            wanted.append((r.response, "serialization"))
    wanted = list(dict.fromkeys(wanted))
    keys, defs = models_json_schema(wanted, ref_template=_REF)
    names = {key: ref["$ref"].rsplit("/", 1)[-1] for key, ref in keys.items()}
    schemas = _flatten(dict(defs.get("$defs", {})))
    problem_ref = {"$ref": _REF.format(model=names[(m.Problem, "serialization")])}
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        paths.setdefault(r.path, {})[r.method.lower()] = _operation(r, names, schemas, problem_ref)
    statuses = sorted({s for r in routes for s in r.errors} | {422})
    used = {tag_of(r.path) for r in routes}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Meet middleware API", "version": "1.0.0",
                 "description": "Google Meet video appointments for XOMA: create, read, list, reschedule, cancel, "
                                "and afterwards attendance and recordings. Every operation but health and "
                                "documentation needs `Authorization: Bearer <api key>`; errors are "
                                "`application/problem+json` (RFC 9457)."},
        "tags": [{"name": name, "description": text} for name, _, text in _TAGS if name in used],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "An API key minted with `make api-key`."}},
            "responses": {f"Problem{s}": _problem(s, problem_ref) for s in statuses},
        },
    }


_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def _with_examples(op: Any, examples: dict[str, Any]) -> Any:
    params = op.get("parameters") if isinstance(op, dict) else None
    if not params or not any(p.get("name") in examples for p in params):
        return op
    return {**op, "parameters": [dict(p, example=examples[p["name"]]) if p.get("name") in examples else p
                                 for p in params]}


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


def served(base_url: str, examples: dict[str, Any] | None = None) -> dict[str, Any]:
    """The document as served at `base_url`: its `servers` entry is that origin, usable as a client's base URL;
    `examples` replaces the example of the parameters so named (a page token signed by this deployment)."""
    doc = copy.copy(document())
    doc["servers"] = [{"url": base_url, "description": "The server this document was read from"}]
    if examples:
        doc["paths"] = {path: {method: _with_examples(op, examples) for method, op in ops.items()}
                        for path, ops in doc["paths"].items()}
    return {"openapi": doc["openapi"], "info": doc["info"], "servers": doc["servers"],
            **{k: v for k, v in doc.items() if k not in ("openapi", "info", "servers")}}
