"""The HTTP edge every function shares: routing from the route table, auth, body parsing, one problem+json mapping."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import flask
from pydantic import BaseModel, ValidationError

from shared import bootstrap, logs

from shared.domain import errors
from shared.web.models import READ_ONLY_FIELDS
from shared.web.routes import ROUTES, Route, resolve, routes_of
from shared.settings import get_settings

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

PROBLEM_TYPE = "urn:meet-middleware:problem:"
_STATUS = {
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.Unavailable: 503,
    errors.UpstreamFailed: 502,
}
_SLUG = {400: "malformed-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
         405: "method-not-allowed", 409: "conflict", 413: "payload-too-large", 415: "unsupported-media-type",
         422: "invalid-input", 500: "internal-error", 502: "upstream-failed", 503: "unavailable"}
_TITLES = {400: "Malformed request", 405: "Method not allowed", 413: "Payload too large",
           415: "Unsupported media type", 500: "Internal error"}


_IDEMPOTENT_METHODS = frozenset({"POST", "PATCH", "DELETE"})
_REPLAYED_HEADERS = ("Location", "Content-Type")
_IDEMPOTENCY_WAIT_S = 15.0


def idempotent(ctx: "Context", key: str, run: Callable[[], flask.Response]) -> flask.Response:
    """Idempotency-Key: the first final answer is kept 24 h and replayed; the same key with another request is 422."""
    import hashlib

    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise errors.InvalidInput.field("Idempotency-Key", "must be 1 to 255 printable ASCII characters")
    request = ctx.request
    body = b"" if request.method == "DELETE" else ctx.raw_body()  # on DELETE the key and the path identify it
    fingerprint = hashlib.sha256(f"{request.method} {request.path}\n".encode() + body).hexdigest()
    scoped = f"{ctx.principal.client_id}:{key}"
    ledger = ctx.deps.ledger
    claim = ledger.begin_request(scoped, fingerprint=fingerprint)
    deadline = time.monotonic() + _IDEMPOTENCY_WAIT_S
    while claim.state.value == "running" and claim.fingerprint == fingerprint and time.monotonic() < deadline:
        time.sleep(0.2)  # the same request is in flight: wait for its answer rather than refuse
        claim = ledger.begin_request(scoped, fingerprint=fingerprint)
    if claim.fingerprint is not None and claim.fingerprint != fingerprint:
        raise errors.InvalidInput.field("Idempotency-Key", "was already used with a different request")
    if claim.state.value == "done" and claim.response:
        stored = claim.response
        response = flask.Response(stored["body"], status=stored["status"])
        for name, value in stored.get("headers", {}).items():
            response.headers[name] = value
        response.headers["Idempotent-Replayed"] = "true"
        return response
    if claim.state.value == "running":
        raise errors.Conflict("A request with this Idempotency-Key is still in progress; retry shortly.")
    try:
        response = run()
    except BaseException:
        ledger.abort_request(scoped)
        raise
    if response.status_code >= 500 or response.status_code == 429:
        ledger.abort_request(scoped)  # not a final answer: the retry must really run
    else:
        ledger.finish_request(scoped, fingerprint=fingerprint, response={
            "status": response.status_code, "body": response.get_data(as_text=True),
            "headers": {h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers}})
    return response


class HttpProblem(Exception):
    """An HTTP-level refusal raised by the edge itself (not by a use case)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


@dataclass
class Reply:
    """A handler's answer when the route's default status and headers are not enough."""

    body: BaseModel | dict | str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def problem(status: int, detail: str, *, title: str | None = None, field_errors: list[dict] | None = None,
            headers: dict[str, str] | None = None) -> flask.Response:
    """An RFC 9457 problem+json response."""
    body: dict[str, Any] = {"type": PROBLEM_TYPE + _SLUG.get(status, "error"),
                            "title": title or _TITLES.get(status, "Error"), "status": status, "detail": detail}
    if field_errors is not None:
        body["errors"] = field_errors
    response = flask.Response(json.dumps(body), status=status, mimetype="application/problem+json")
    response.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as `{field, message}`, the field as a dotted path."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            message = "is read-only" if loc in READ_ONLY_FIELDS else "unknown field"
        else:
            message = err["msg"].removeprefix("Value error, ")
        out.append({"field": loc, "message": message})
    return out


class Context:
    """One request as a handler sees it."""

    def __init__(self, request: flask.Request, route: Route, deps: bootstrap.Deps):
        self.request, self.route, self.deps = request, route, deps
        self.principal = None

    def raw_body(self) -> bytes:
        """The request body, read once, refused past the size limit (413)."""
        if not hasattr(self, "_raw"):
            limit = self.deps.settings.max_body_bytes
            if (self.request.content_length or 0) > limit:
                raise HttpProblem(413, f"The body is larger than {limit} bytes.")
            raw = self.request.stream.read(limit + 1)
            if len(raw) > limit:
                raise HttpProblem(413, f"The body is larger than {limit} bytes.")
            self._raw = raw
        return self._raw

    def body(self, model: type[M]) -> M:
        """The JSON body validated into `model`: 415, 413, 400 or 422 otherwise."""
        mimetype = (self.request.mimetype or "").lower()
        if mimetype != "application/json" and not mimetype.endswith("+json"):
            raise HttpProblem(415, "Send the body as application/json.")
        raw = self.raw_body()
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise HttpProblem(400, "The body is not valid JSON.") from None
            raise errors.InvalidInput(field_errors(exc)) from None

    @property
    def task_name(self) -> str | None:
        """The Cloud Tasks task being delivered, if this request is a task delivery."""
        name = self.request.headers.get("X-CloudTasks-TaskName")
        return name[:500] if name else None

    def query(self, model: type[M]) -> M:
        """The query string validated into `model` (422 naming the parameter otherwise)."""
        args = {key: values[-1] for key, values in self.request.args.lists()}
        try:
            return model.model_validate(args)
        except ValidationError as exc:
            raise errors.InvalidInput(field_errors(exc)) from None


Handler = Callable[..., Any]


class FunctionApp:
    """A Cloud Function's HTTP entry point: dispatches the routes the table gives this function to its handlers."""

    def __init__(self, name: str):
        self.name = self.__name__ = name  # functions-framework registers the target by __name__
        self.routes = routes_of(name)
        self.handlers: dict[str, Handler] = {}
        # Misconfiguration fails here, at cold start, not on the first unlucky request.
        settings = get_settings()
        logs.configure(settings.log_level)
        if flask.has_app_context():
            # functions-framework loads the source inside its app: requests its router refuses (a newline in the
            # path) get problem+json too, never Flask's HTML page.
            from werkzeug.exceptions import HTTPException

            flask.current_app.register_error_handler(
                HTTPException, lambda e: problem(e.code or 500, e.description or e.name, title=e.name))
        off = [what for what, on in (("Cloud Tasks (TASKS_QUEUE unset: sweeps do the background work)",
                                      settings.tasks_queue),
                                     ("the Firestore ledger (FIRESTORE_DATABASE unset: no task dedupe, no "
                                      "Idempotency-Key replays)", settings.firestore_database)) if not on]
        if off:
            log.warning("%s: running without %s", name, "; without ".join(off))

    def route(self, operation_id: str) -> Callable[[Handler], Handler]:
        """Register the handler of one operation of the route table."""
        if operation_id not in {r.operation_id for r in self.routes}:
            raise LookupError(f"{operation_id} is not a route of {self.name}")

        def register(handler: Handler) -> Handler:
            self.handlers[operation_id] = handler
            return handler

        return register

    def __call__(self, request: flask.Request) -> flask.Response:
        started = time.monotonic()
        deps = bootstrap.deps()
        logs.set_trace(request.headers.get("X-Cloud-Trace-Context"), deps.settings.gcp_project)
        operation = "-"
        try:
            route, params, allowed = resolve(request.method, request.path, self.routes)
            if route is None:
                # Behind API Gateway's catch-all, the whole table says which methods the path has.
                allowed = resolve(request.method, request.path, ROUTES, aliases=False)[2] or allowed
                if allowed:
                    raise HttpProblem(405, f"Use {', '.join(allowed)} on this path.", {"Allow": ", ".join(allowed)})
                raise errors.NotFound("There is no such route.")
            operation = route.operation_id
            ctx = Context(request, route, deps)
            if route.auth == "key":
                from shared.services.auth import authenticate

                # API Gateway moves the caller's header to X-Forwarded-Authorization and signs its own call.
                header = request.headers.get("X-Forwarded-Authorization") or request.headers.get("Authorization")
                ctx.principal = authenticate(deps.db, header)
            elif route.auth == "internal":
                from shared.services.auth import authenticate_internal

                ctx.principal = authenticate_internal(deps.db, request.headers.get("Authorization"),
                                                      settings=deps.settings)
            key = request.headers.get("Idempotency-Key")
            if key is not None and route.method in _IDEMPOTENT_METHODS and route.auth == "key":
                response = idempotent(ctx, key, lambda: self._guarded(ctx, route, params, deps))
            else:
                response = self._guarded(ctx, route, params, deps, reraise=True)
        except HttpProblem as exc:
            response = problem(exc.status, exc.detail, headers=exc.headers)
        except errors.DomainError as exc:
            response = self._domain_problem(exc, deps)
        except Exception:
            log.exception("unhandled error", extra={"function": self.name, "operation": operation})
            response = problem(500, "Something went wrong on our side; it has been logged.")
        log.info("%s %s", request.method, operation, extra={
            "function": self.name, "operation": operation, "status": response.status_code,
            "duration_ms": round((time.monotonic() - started) * 1000, 1)})
        return response

    def _guarded(self, ctx: Context, route: Route, params: dict, deps: bootstrap.Deps, *,
                 reraise: bool = False) -> flask.Response:
        """Run the handler; with `reraise=False` its refusals become responses (so they can be stored)."""
        try:
            return self._render(route, self.handlers[route.operation_id](ctx, **params))
        except HttpProblem as exc:
            if reraise:
                raise
            return problem(exc.status, exc.detail, headers=exc.headers)
        except errors.DomainError as exc:
            if reraise:
                raise
            return self._domain_problem(exc, deps)

    @staticmethod
    def _domain_problem(exc: errors.DomainError, deps: bootstrap.Deps) -> flask.Response:
        status = next(code for kind, code in _STATUS.items() if isinstance(exc, kind))
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="meet-middleware"'
        if status == 503:
            headers["Retry-After"] = str(deps.settings.retry_after_seconds)
        extra = exc.errors if isinstance(exc, errors.InvalidInput) else None
        return problem(status, exc.detail, title=exc.title, field_errors=extra, headers=headers)

    @staticmethod
    def _render(route: Route, result: Any) -> flask.Response:
        reply = result if isinstance(result, Reply) else Reply(result, status=route.status,
                                                               content_type=route.content_type)
        if isinstance(reply.body, BaseModel):
            payload = reply.body.model_dump_json()
        elif isinstance(reply.body, str):
            payload = reply.body
        else:
            payload = json.dumps(reply.body)
        response = flask.Response(payload, status=reply.status, mimetype=reply.content_type)
        response.headers["Cache-Control"] = "no-store"
        for key, value in reply.headers.items():
            response.headers[key] = value
        return response
