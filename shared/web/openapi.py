"""The OpenAPI 3.1 document, generated from the route table and the pydantic models."""
from __future__ import annotations

import functools
from typing import Any

from pydantic.json_schema import models_json_schema

from shared.domain.events import EventType
from shared.web import models as m
from shared.web.routes import ROUTES, Route
from shared.web.webhook_models import EVENT_MODELS

_REF = "#/components/schemas/{model}"
_PROBLEM_DESCRIPTIONS = {
    400: "Malformed JSON", 401: "Missing or unknown API key", 403: "Not allowed for this key",
    404: "Unknown meeting or route", 409: "Conflicts with the meeting's state or reference",
    413: "Body too large", 415: "Body is not application/json", 422: "Invalid input (see `errors`)",
    502: "Google refused the operation", 503: "Google or the database unavailable; retry after `Retry-After`",
}


def public_routes() -> list[Route]:
    return [r for r in ROUTES if r.public]


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: drop the null branch pydantic adds to optionals."""
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
        return {**rest, **branches[0]}
    return schema


def _operation(route: Route, names: dict[tuple[type, str], str], defs: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary,
                          "tags": [route.function], "x-function": route.function}
    params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in route.params]
    if route.query is not None:
        schema = route.query.model_json_schema(ref_template=_REF)
        defs.update(schema.get("$defs", {}))
        for name, prop in schema["properties"].items():
            params.append({"name": name, "in": "query", "required": name in schema.get("required", []),
                           "schema": _non_null(prop)})
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": _REF.format(model=names[(route.body, "validation")])}}}}
    if route.response is not None:
        content = {"application/json": {"schema": {"$ref": _REF.format(model=names[(route.response, "serialization")])}}}
    elif route.content_type == "text/html":
        content = {"text/html": {"schema": {"type": "string"}}}
    else:
        content = {"application/json": {"schema": {"type": "object"}}}
    op["responses"] = {str(route.status): {"description": "Success", "content": content}}
    for status in route.extra_status:
        op["responses"][str(status)] = {"description": "Success (replayed)", "content": content}
    for status in route.errors:
        op["responses"][str(status)] = {"$ref": f"#/components/responses/Problem{status}"}
    op["security"] = [] if route.auth == "none" else [{"apiKey": []}]
    return op


@functools.cache
def document() -> dict[str, Any]:
    """The whole public API as OpenAPI 3.1."""
    routes = public_routes()
    wanted: list[tuple[type, str]] = [(m.Problem, "serialization")]
    for r in routes:
        if r.body is not None:
            wanted.append((r.body, "validation"))
        if r.response is not None:
            wanted.append((r.response, "serialization"))
    wanted += webhook_models()
    wanted = list(dict.fromkeys(wanted))
    keys, defs = models_json_schema(wanted, ref_template=_REF)
    names = {key: ref["$ref"].rsplit("/", 1)[-1] for key, ref in keys.items()}
    schemas = dict(defs.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        paths.setdefault(r.path, {})[r.method.lower()] = _operation(r, names, schemas)
    _no_content(paths)
    statuses = sorted({s for r in routes for s in r.errors})
    problem_ref = {"$ref": _REF.format(model=names[(m.Problem, "serialization")])}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Meet middleware API", "version": "1.0.0",
                 "description": "Google Meet video appointments for XOMA: create, read, list, reschedule, cancel, "
                                "and afterwards attendance and recordings."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "webhooks": webhooks_section(names),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "An API key minted with `make api-key`."}},
            "responses": {
                f"Problem{s}": {"description": _PROBLEM_DESCRIPTIONS.get(s, "Problem"),
                                "content": {"application/problem+json": {"schema": problem_ref}}}
                for s in statuses
            },
        },
    }


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


def webhook_models() -> list[tuple[type, str]]:
    """The event bodies the document describes, for the shared schema generation."""
    return [(model, "serialization") for model in dict.fromkeys(EVENT_MODELS.values())]


def webhooks_section(names: dict[tuple[type, str], str]) -> dict[str, Any]:
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
                op["responses"]["204"] = {"description": "Done (no content)"}


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Meet middleware API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1f2328}
h1{margin-bottom:.2rem} .op{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.m{display:inline-block;min-width:4.5rem;font-weight:600;font-family:monospace}
.GET{color:#0969da}.POST{color:#1a7f37}.PATCH{color:#9a6700}.DELETE{color:#cf222e}
code,pre{font-family:ui-monospace,monospace;font-size:13px} pre{background:#f6f8fa;padding:.6rem;overflow:auto}
table{border-collapse:collapse} td,th{border-bottom:1px solid #eee;padding:.2rem .6rem;text-align:left}
</style></head><body>
<h1>Meet middleware API</h1><p id="desc"></p><p>Raw document: <a href="openapi.json">openapi.json</a></p>
<div id="ops">Loading…</div>
<script>
const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\\"":"&quot;"}[c]));
fetch("openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("desc").textContent = doc.info.description;
  const out = [];
  for (const [path, item] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(item)) {
    const M = method.toUpperCase();
    const params = (op.parameters || []).map(p => `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td>
      <td>${p.required ? "required" : ""}</td></tr>`).join("");
    const body = op.requestBody ? `<p>Body: <code>${esc(op.requestBody.content["application/json"].schema.$ref.split("/").pop())}</code></p>` : "";
    const codes = Object.keys(op.responses).map(esc).join(", ");
    out.push(`<div class="op"><div><span class="m ${M}">${M}</span><code>${esc(path)}</code></div>
      <p>${esc(op.summary)}${op.security && op.security.length ? " — needs an API key" : ""}</p>
      ${params ? `<table><tr><th>parameter</th><th>in</th><th></th></tr>${params}</table>` : ""}${body}
      <p>Responses: ${codes}</p></div>`);
  }
  out.push("<h2>Schemas</h2>");
  for (const [name, schema] of Object.entries(doc.components.schemas))
    out.push(`<details><summary><code>${esc(name)}</code></summary><pre>${esc(JSON.stringify(schema, null, 2))}</pre></details>`);
  document.getElementById("ops").innerHTML = out.join("");
}).catch(err => { document.getElementById("ops").textContent = "Could not load openapi.json: " + err; });
</script></body></html>
"""
