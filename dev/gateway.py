"""The local gateway: one port that routes /v1/... to each function exactly as API Gateway does in production."""
from __future__ import annotations

import logging
import re
from urllib.parse import quote

import urllib3
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from shared.web.app import read_body
from shared.web.problems import from_exception, problem
from shared.web.routes import ROUTES, resolve

log = logging.getLogger(__name__)

# What a request may be, checked before anything is forwarded, so every refusal is the gateway's own problem+json
# (the functions' gunicorn refuses the same things, at the same sizes, before the app sees them). The request line
# is bounded by the HTTP server itself: 64 KiB (414).
MAX_HEADER_FIELD = 8190  # bytes of one "Name: value" line: gunicorn's limit_request_field_size
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024  # the functions refuse far less (MAX_BODY_BYTES); this only bounds what is buffered
BODY_SECONDS = 10.0
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # HTAB is the one control character a field value may hold

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "host", "content-length"}
# The gateway's own server stamps these on every answer, as API Gateway does: the function's would be a second copy.
_OWN_RESPONSE_HEADERS = {"server", "date"}


class Gateway:
    """A WSGI app forwarding each request to the function the route table names.

    With an `identity` (the gateway's service account) it calls the public functions as API Gateway does: its own ID
    token, for the function's address, in `Authorization`, and the caller's `Authorization` moved to
    `X-Forwarded-Authorization` (one a caller sends is dropped). Internal routes get the caller's headers unchanged:
    in the cloud those functions are not behind API Gateway, and the gateway adds nothing to them.
    """

    def __init__(self, functions: dict[str, str], *, identity=None, timeout: float = 120.0,
                 body_seconds: float = BODY_SECONDS):
        self.functions = functions  # function name -> base URL
        self.identity = identity  # a dev.id_tokens.IdTokenSource, or None to forward Authorization as it came
        self.body_seconds = body_seconds
        self.http = urllib3.PoolManager(maxsize=32, retries=False, timeout=urllib3.Timeout(total=timeout))

    def __call__(self, environ, start_response):
        request = Request(environ)
        refused = _header_refusal(request)
        if refused is not None:
            return refused(environ, start_response)
        route, _, allowed = resolve(request.method, request.path, aliases=False)
        if route is None:
            if allowed:
                response = problem(405, f"Use {', '.join(allowed)} on this path.",
                                   headers={"Allow": ", ".join(allowed)})
            else:
                response = problem(404, "There is no such route.", title="Not found")
            return response(environ, start_response)
        base = self.functions[route.function]
        # Re-encode the decoded path: an id holding "?" or "#" must reach the function as part of the path.
        url = base + quote(request.path, safe="/!$&'()*+,;=:@-._~")
        if request.query_string:
            url += "?" + request.query_string.decode("latin-1")
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in _HOP_BY_HOP and k.lower() != "x-forwarded-authorization"}
        if route.auth != "internal" and self.identity is not None:
            caller = next((headers.pop(k) for k in list(headers) if k.lower() == "authorization"), None)
            if caller is not None:
                headers["X-Forwarded-Authorization"] = caller
            try:
                headers["Authorization"] = f"Bearer {self.identity.token(base)}"
            except Exception as exc:  # the token endpoint out of reach: the backend cannot be called as the gateway
                log.warning("no ID token for %s: %s", route.function, type(exc).__name__)
                return problem(503, "The gateway cannot authenticate to the function right now.",
                               title="Service unavailable", headers={"Retry-After": "5"})(environ, start_response)
        # What the caller used, as a reverse proxy says it (the OpenAPI document's `servers` is built from it).
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        try:
            body = read_body(environ, request.stream, request.content_length, limit=MAX_BODY_BYTES,
                             seconds=self.body_seconds)
        except HTTPException as exc:
            return from_exception(exc)(environ, start_response)
        try:
            upstream = self.http.request(request.method, url, body=body, headers=headers,
                                         redirect=False, preload_content=True)
        except urllib3.exceptions.HTTPError as exc:
            log.warning("function %s unreachable: %s", route.function, type(exc).__name__)
            response = problem(503, f"The {route.function} function is not answering.", title="Service unavailable",
                               headers={"Retry-After": "5"})
            return response(environ, start_response)
        out_headers = [(k, v) for k, v in upstream.headers.items()
                       if k.lower() not in _HOP_BY_HOP and k.lower() not in _OWN_RESPONSE_HEADERS]
        answer = Response(upstream.data, status=upstream.status, headers=out_headers)
        return answer(environ, start_response)


def routed_functions() -> list[str]:
    return list(dict.fromkeys(r.function for r in ROUTES))


def _header_refusal(request: Request) -> Response | None:
    """A 431 or 400 problem for headers the functions' server would refuse, naming the header; None when fine."""
    total = 0
    for name, value in request.headers.items():
        size = len(name) + 2 + len(value)
        total += size
        if size > MAX_HEADER_FIELD:
            return problem(431, f"The {name[:100]} header is larger than {MAX_HEADER_FIELD} bytes.")
        if _CONTROL.search(name) or _CONTROL.search(value):
            return problem(400, f"The {_CONTROL.sub('?', name[:100])} header holds a control character.")
    if total > MAX_HEADER_BYTES:
        return problem(431, f"The headers are larger than {MAX_HEADER_BYTES} bytes together.")
    return None


class GatewayRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, with the HTTP server's own refusals (request line over 64 KiB, a header line over
    64 KiB, more than 100 headers, a malformed request line) as problem+json, and access lines without the query
    string: filters such as organizer_email carry personal data."""

    def send_error(self, code, message=None, explain=None):
        response = problem(int(code), _SERVER_REFUSALS.get(int(code), "The request is not valid HTTP."))
        body = response.get_data()
        # A request line it could not parse leaves the HTTP/0.9 default, which would send the body without a status
        # line: nobody speaks HTTP/0.9 to an API.
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.1"
        self.send_response(code)
        for name, value in (("Content-Type", response.content_type), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), ("Connection", "close")):
            self.send_header(name, value)
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def log_request(self, code="-", size="-"):
        path = getattr(self, "path", None) or "-"
        log.info("%s %s -> %s", getattr(self, "command", None) or "-", path.split("?", 1)[0][:200],
                 getattr(code, "value", code))


_SERVER_REFUSALS = {
    400: "The request line or a header is malformed.",
    408: "The request did not arrive in time.",
    414: "The request URI is longer than 65536 bytes.",
    431: "A header line is longer than 65536 bytes, or there are more than 100 headers.",
}
