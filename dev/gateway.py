"""The local gateway: one port that routes /v1/... to each function exactly as API Gateway does in production."""
from __future__ import annotations

import logging

from urllib.parse import quote

import urllib3
from werkzeug.wrappers import Request, Response

from shared.web.problems import problem
from shared.web.routes import ROUTES, resolve

log = logging.getLogger(__name__)

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

    def __init__(self, functions: dict[str, str], *, identity=None, timeout: float = 120.0):
        self.functions = functions  # function name -> base URL
        self.identity = identity  # a dev.id_tokens.IdTokenSource, or None to forward Authorization as it came
        self.http = urllib3.PoolManager(maxsize=32, retries=False, timeout=urllib3.Timeout(total=timeout))

    def __call__(self, environ, start_response):
        request = Request(environ)
        route, _, allowed = resolve(request.method, request.path, aliases=False)
        if route is None:
            if allowed:
                response = problem(405, f"Use {', '.join(allowed)} on this path.", headers={"Allow": ", ".join(allowed)})
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
            upstream = self.http.request(request.method, url, body=request.get_data(), headers=headers,
                                         redirect=False, preload_content=True)
        except urllib3.exceptions.HTTPError as exc:
            log.warning("function %s unreachable: %s", route.function, type(exc).__name__)
            response = problem(503, f"The {route.function} function is not answering.", title="Service unavailable",
                               headers={"Retry-After": "5"})
            return response(environ, start_response)
        out_headers = [(k, v) for k, v in upstream.headers.items()
                       if k.lower() not in _HOP_BY_HOP and k.lower() not in _OWN_RESPONSE_HEADERS]
        response = Response(upstream.data, status=upstream.status, headers=out_headers)
        return response(environ, start_response)


def routed_functions() -> list[str]:
    return list(dict.fromkeys(r.function for r in ROUTES))
