"""The HTTP edge every function shares: werkzeug routing from the route table, auth, bodies, problem+json."""
from __future__ import annotations

import gc
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import flask
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import (
    BadRequest,
    ClientDisconnected,
    HTTPException,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)

import shared
from shared import bootstrap, deadline, logs
from shared.domain import errors
from shared.settings import get_settings
from shared.web import idempotency, watchdog
from shared.web.models import READ_ONLY_FIELDS
from shared.web.problems import field_errors, from_exception, problem
from shared.web.routes import OPERATIONS, ROUTES, Route, allowed_methods, routes_of, url_map

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

__all__ = ["Context", "FunctionApp", "Reply", "problem"]


@dataclass
class Reply:
    """A handler's answer when the route's default status and headers are not enough."""

    body: BaseModel | dict | str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class Context:
    """One request as a handler sees it."""

    def __init__(self, request: flask.Request, route: Route, deps: bootstrap.Deps):
        self.request, self.route, self.deps = request, route, deps
        self.principal: Any = None
        self._raw: bytes | None = None
        self.body_read = False

    def raw_body(self) -> bytes:
        """The request body, read once, refused past the size limit (413), short of its length (400) or the read
        time (408)."""
        if self._raw is None:
            self.body_read = True
            settings = self.deps.settings
            self._raw = read_body(self.request.environ, self.request.stream, self.request.content_length,
                                  limit=settings.max_body_bytes, seconds=settings.body_read_timeout_seconds)
        return self._raw

    def body(self, model: type[M]) -> M:
        """The JSON body validated into `model`: 415, 413, 400 or 422 otherwise."""
        mimetype = (self.request.mimetype or "").lower()
        if mimetype != "application/json" and not mimetype.endswith("+json"):
            raise UnsupportedMediaType("Send the body as application/json.")
        raw = self.raw_body()
        duplicate = _duplicate_key(raw)
        if duplicate is not None:
            raise errors.InvalidInput.field(duplicate, "is given more than once")
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise BadRequest("The body is not valid JSON.") from None
            raise errors.InvalidInput(field_errors(exc, READ_ONLY_FIELDS)) from None

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
            raise errors.InvalidInput(field_errors(exc, READ_ONLY_FIELDS)) from None


Handler = Callable[..., Any]

# The connection of a request, where the server says: gunicorn (functions-framework, Cloud Functions) or werkzeug's.
_SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")
# What is read and dropped of a body refused for its size, so the answer is not lost to a reset of the connection.
_DISCARD_BYTES = 1024 * 1024


def read_body(environ: dict, stream, declared: int | None, *, limit: int, seconds: float) -> bytes:
    """The body: at most `limit` bytes (413 beyond), all that was declared (400), read within `seconds` (408).

    A body declared longer than what is sent would otherwise hold the connection, and a request slot of the
    instance, for as long as the client likes: functions-framework reads every body to its end before answering.
    At the deadline the connection's read side is shut, which ends the read however the bytes trickle in; the answer
    still goes out on the write side.
    """
    sock = next((environ[k] for k in _SOCKET_KEYS if k in environ), None)
    expired = threading.Event()

    def shut_reading() -> None:
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass

    def expire() -> None:
        expired.set()
        shut_reading()

    timer = watchdog.arm(seconds, expire)
    try:
        raw = _read_up_to(stream, limit + 1 if (declared or 0) <= limit else 0)
        if len(raw) > limit or (declared or 0) > limit:
            # Refused for its size: what is still coming is dropped (a bounded amount), not left to reset the
            # connection under the answer.
            if len(_read_up_to(stream, _DISCARD_BYTES)) >= _DISCARD_BYTES:
                shut_reading()
            raise RequestEntityTooLarge(f"The body is larger than {limit} bytes.")
    except (ClientDisconnected, OSError):
        raw = None
    finally:
        timer.disarm()
    if expired.is_set():
        raise RequestTimeout(f"The body did not arrive within {seconds:g} s.")
    if raw is None or (declared is not None and len(raw) < declared):
        raise BadRequest("The body ended before the length it declared.")
    return bytes(raw)


def _finish_body(request: flask.Request, settings) -> None:
    """Read (and drop) a body the answer did not need, under the same bounds: functions-framework reads it to its end
    before answering, and a body that never comes would hold the connection until the client gives up."""
    if not request.content_length and "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return
    try:
        read_body(request.environ, request.stream, request.content_length, limit=settings.max_body_bytes,
                  seconds=settings.body_read_timeout_seconds)
    except HTTPException:
        pass  # the answer stands; the connection's read side is shut when the body was too slow


def _read_up_to(stream, size: int) -> bytearray:
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(min(64 * 1024, size - len(data)))
        if not chunk:
            break
        data += chunk
    return data


_gc_waits_for_first_request = shared.GC_PAUSED_FOR_LOADING
_gc_lock = threading.Lock()


def _resume_gc() -> None:
    """After the first request: what it loaded (driver, clients) frozen with the rest, collections back on."""
    global _gc_waits_for_first_request
    with _gc_lock:
        if _gc_waits_for_first_request:
            _gc_waits_for_first_request = False
            gc.freeze()
            gc.enable()


class _Duplicate(Exception):
    pass


def _duplicate_key(raw: bytes) -> str | None:
    """The first key a JSON object repeats ({"a": 1, "a": 2} would otherwise keep the last), or None."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                raise _Duplicate(key)
            seen[key] = value
        return seen

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except _Duplicate as found:
        return str(found.args[0])[:200]
    except (ValueError, RecursionError):
        return None  # not JSON: pydantic says so precisely
    return None


# gunicorn refuses these before any app code runs (functions-framework sets no limits of its own but an unbounded
# request line): a header line over 8190 bytes or more than 100 headers (431), a control character in a header, a
# malformed request line (400), an unsupported Transfer-Encoding (501). Its answer is an HTML page that echoes the
# offending input; ours is the problem+json every other refusal is, naming nothing the client sent.
_SERVER_REFUSALS = {
    400: "The request line or a header is malformed (a header value may not hold control characters such as NUL).",
    414: "The request URI is too long.",
    431: "A header line is longer than 8190 bytes, or there are more than 100 headers.",
    501: "This Transfer-Encoding is not supported.",
}


def _server_refusals_as_problems() -> None:
    """Make gunicorn's own error answers problem+json (functions-framework offers no hook for them)."""
    try:
        from gunicorn import util
    except ImportError:  # another server (werkzeug's, with --debug): its refusals are its own
        return
    if getattr(util.write_error, "problem_json", False):
        return

    def write_error(sock, status_int, reason, mesg):
        status = int(status_int)
        answer = problem(status, _SERVER_REFUSALS.get(status, "The request could not be read."), title=reason)
        body = answer.get_data()
        head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: {answer.content_type}\r\n"
                f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n\r\n").encode("latin-1")
        util.write_nonblock(sock, head + body)

    write_error.problem_json = True  # type: ignore[attr-defined]
    util.write_error = write_error


class FunctionApp:
    """A Cloud Function's HTTP entry point: dispatches the routes the table gives this function to its handlers."""

    def __init__(self, name: str):
        self.name = self.__name__ = name  # functions-framework registers the target by __name__
        self.routes = routes_of(name)
        self.map = url_map(self.routes)
        self.handlers: dict[str, Handler] = {}
        # Misconfiguration fails here, at cold start, not on the first unlucky request.
        settings = get_settings()
        logs.configure(settings.log_level)
        if flask.has_app_context():
            # functions-framework loads the source inside its app: what its own router refuses (a newline in the
            # path) gets the same problem+json mapping.
            flask.current_app.register_error_handler(HTTPException, from_exception)
            # What its server (gunicorn) refuses before the app: problem+json too.
            _server_refusals_as_problems()
        off = [what for what, on in (("Cloud Tasks (TASKS_QUEUE unset: sweeps do the background work)",
                                      settings.tasks_queue),
                                     ("Firestore (FIRESTORE_DATABASE unset: no task dedupe, no "
                                      "Idempotency-Key replays)", settings.firestore_database)) if not on]
        if off:
            log.warning("%s: running without %s", name, "; without ".join(off))
        if _gc_waits_for_first_request:
            gc.freeze()  # before gunicorn forks the worker: its collections never touch what loading made

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
        ctx: Context | None = None
        try:
            route, params = self._match(request)
            operation = route.operation_id
            ctx = Context(request, route, deps)
            # A caller waits on Google only so long; past it, a 503 and the status check finishes the work.
            deadline.start(deps.settings.google_deadline_seconds if route.auth == "key" else None)
            self._authenticate(ctx)
            key = request.headers.get("Idempotency-Key")
            if key is not None and route.method in idempotency.METHODS and route.auth == "key":
                response = idempotency.replay_or_run(
                    deps.idempotency, scope=ctx.principal.client_id, key=key,
                    fingerprint=idempotency.fingerprint(request.method, request.path, ctx.raw_body()),
                    run=lambda: self._answer(ctx, route, params), secret_fields=route.secret_fields)
            else:
                response = self._render(route, self.handlers[route.operation_id](ctx, **params))
        except (errors.DomainError, HTTPException) as exc:
            response = from_exception(exc, retry_after=deps.settings.retry_after_seconds)
        except Exception:
            log.exception("unhandled error", extra={"function": self.name, "operation": operation})
            response = problem(500, "Something went wrong on our side; it has been logged.")
        finally:
            deadline.start(None)
        if ctx is None or not ctx.body_read:
            _finish_body(request, deps.settings)
        log.info("%s %s", request.method, operation, extra={
            "function": self.name, "operation": operation, "status": response.status_code,
            "duration_ms": round((time.monotonic() - started) * 1000, 1)})
        if _gc_waits_for_first_request:
            _resume_gc()
        return response

    def _match(self, request: flask.Request) -> tuple[Route, dict[str, str]]:
        """The route and path parameters of a request; werkzeug's NotFound or MethodNotAllowed otherwise."""
        try:
            operation, params = self.map.bind("localhost").match(request.path, method=request.method)
        except (MethodNotAllowed, NotFound) as own:
            # Behind API Gateway's catch-all, the whole table says which methods the path has.
            try:
                url_map(ROUTES, aliases=False).bind("localhost").match(request.path, method=request.method)
            except MethodNotAllowed as everywhere:
                if allowed_methods(everywhere):
                    raise everywhere from None
            except HTTPException:
                pass
            if isinstance(own, MethodNotAllowed) and allowed_methods(own):
                raise own from None
            raise NotFound("There is no such route.") from None
        return OPERATIONS[operation], dict(params)

    @staticmethod
    def _authenticate(ctx: Context) -> None:
        request, deps = ctx.request, ctx.deps
        if ctx.route.auth == "key":
            from shared.services.auth import authenticate_caller

            # API Gateway moves the caller's header to X-Forwarded-Authorization and signs its own call.
            ctx.principal = authenticate_caller(deps.db, request.headers.get("Authorization"),
                                                request.headers.get("X-Forwarded-Authorization"),
                                                settings=deps.settings, cache=deps.key_cache)
        elif ctx.route.auth == "internal":
            from shared.services.auth import authenticate_internal

            ctx.principal = authenticate_internal(deps.db, request.headers.get("Authorization"),
                                                  settings=deps.settings, cache=deps.key_cache)

    def _answer(self, ctx: Context, route: Route, params: dict) -> flask.Response:
        """Run the handler, its refusals rendered as responses (so an Idempotency-Key can keep them)."""
        try:
            return self._render(route, self.handlers[route.operation_id](ctx, **params))
        except (errors.DomainError, HTTPException) as exc:
            return from_exception(exc, retry_after=ctx.deps.settings.retry_after_seconds)

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
