"""The one mapping from what can go wrong to an RFC 9457 `application/problem+json` answer."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import flask
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from shared.domain import errors

PROBLEM_TYPE = "urn:meet-middleware:problem:"
STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.Unavailable: 503,
    errors.UpstreamFailed: 502,
}
_SLUG = {400: "malformed-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
         405: "method-not-allowed", 408: "request-timeout", 409: "conflict", 413: "payload-too-large",
         414: "uri-too-long", 415: "unsupported-media-type", 422: "invalid-input", 431: "header-fields-too-large",
         500: "internal-error", 501: "not-implemented", 502: "upstream-failed", 503: "unavailable"}
_TITLES = {400: "Malformed request", 404: "Not found", 405: "Method not allowed", 408: "Request timeout",
           413: "Payload too large", 414: "URI too long", 415: "Unsupported media type",
           431: "Request header fields too large", 500: "Internal error", 501: "Not implemented"}


def problem(status: int, detail: str, *, title: str | None = None, field_errors: list[dict] | None = None,
            headers: dict[str, str] | None = None, members: dict[str, Any] | None = None) -> flask.Response:
    """An RFC 9457 problem+json response; `members` are extension members of the problem type."""
    body: dict[str, Any] = {"type": PROBLEM_TYPE + _SLUG.get(status, "error"),
                            "title": title or _TITLES.get(status, "Error"), "status": status, "detail": detail}
    if field_errors is not None:
        body["errors"] = field_errors
    body.update(members or {})
    response = flask.Response(json.dumps(body), status=status, mimetype="application/problem+json")
    response.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def from_exception(exc: errors.DomainError | HTTPException, *, retry_after: int = 5) -> flask.Response:
    """The problem for a domain error or a werkzeug HTTP exception (404, 405 with Allow, 413, 415, 400...)."""
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        headers = {}
        if isinstance(exc, MethodNotAllowed):
            from shared.web.routes import allowed_methods

            allowed = allowed_methods(exc)
            headers["Allow"] = ", ".join(allowed)
            detail = f"Use {', '.join(allowed)} on this path."
        else:
            detail = exc.description or exc.name
        return problem(status, detail, title=_TITLES.get(status, exc.name), headers=headers)
    status = next(code for kind, code in STATUS.items() if isinstance(exc, kind))
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="meet-middleware"'
    if status == 503:
        headers["Retry-After"] = str(retry_after)
    extra = exc.errors if isinstance(exc, errors.InvalidInput) else None
    members = None
    if isinstance(exc, errors.Busy):
        members = {"conflicts": [{"start": _utc(start), "end": _utc(end)} for start, end in exc.conflicts]}
    return problem(status, exc.detail, title=exc.title, field_errors=extra, headers=headers, members=members)


def _utc(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def field_errors(exc: ValidationError, read_only: frozenset[str] = frozenset()) -> list[dict[str, str]]:
    """Pydantic errors as `{field, message}`, the field as a dotted path."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            message = "is read-only" if loc in read_only else "unknown field"
        else:
            message = err["msg"].removeprefix("Value error, ")
        out.append({"field": loc, "message": message})
    return out
