"""Background HTTP server hosting the fake Google Workspace app."""

from __future__ import annotations

import io
import logging
import socket
import sys
import threading
from pathlib import Path
from wsgiref.handlers import SimpleHandler

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_app
from .control import FakeGoogleControl
from .identity import CERTS_PATH, IdTokenIssuer
from .persistence import StateFile
from .state import FakeWorld

logger = logging.getLogger(__name__)


class _Answer(SimpleHandler):
    """wsgiref's WSGI handler writing an HTTP/1.1 answer on a connection that stays open afterwards."""

    http_version = "1.1"
    origin_server = True  # it writes the status line, Date and Server itself
    os_environ: dict = {}  # the WSGI environ is the request's, not this process's environment

    sent_status = 500
    sent_length = False

    def log_exception(self, exc_info) -> None:
        logger.error("the fake Google failed on a request", exc_info=exc_info)

    def close(self) -> None:
        # What was sent, kept before wsgiref forgets it.
        if self.status:
            self.sent_status = int(self.status.split()[0])
        self.sent_length = self.headers is not None and "Content-Length" in self.headers
        super().close()


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's request handler with its access log at DEBUG in our logger, and connections kept open between
    requests as Google's front ends keep them (HTTP/1.1 persistent connections).

    werkzeug's development server closes every connection after one answer, since http.server cannot skip a body
    the app left unread before the next request line. Here a body is read whole, by its Content-Length, before the
    app sees it, and the answer is written by wsgiref's handler, so the connection can carry the next request.
    Otherwise a client that opens a connection per call and one that keeps its connections would look the same here,
    and every call would pay a new connection (and the fake a new thread) that Google's keep-alive spares. A chunked
    request body, or an answer without a Content-Length, still ends with the connection closed.
    """

    timeout = 60  # an idle connection is closed after a minute, as a front end closes it

    def setup(self) -> None:
        super().setup()
        # An answer goes out in several writes (status and headers, then the body): on a kept connection Nagle's
        # algorithm would hold the body back until the client's delayed ACK, some 40 ms per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.opened(self.connection)  # type: ignore[attr-defined]  # set by FakeGoogle.bind

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)  # type: ignore[attr-defined]

    def run_wsgi(self) -> None:
        environ = self.make_environ()
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if environ.get("wsgi.input_terminated") or length < 0:
            self.close_connection = True
            return super().run_wsgi()  # werkzeug's way: answer, then close
        body = io.BytesIO(self.rfile.read(length) if length else b"")
        environ["wsgi.input"] = body
        answer = _Answer(body, self.wfile, sys.stderr, environ, multithread=True, multiprocess=False)
        answer.server_software = self.server_version
        answer.run(self.server.app)
        if not answer.sent_length:
            self.close_connection = True  # the answer ends where the connection does
        self.log_request(answer.sent_status)

    def log(self, type: str, message: str, *args: object) -> None:
        """Log through the module logger."""
        idle = message.startswith("Request timed out")  # a kept connection the client left idle
        level = logging.ERROR if type == "error" and not idle else logging.DEBUG
        logger.log(level, "%s - " + message.rstrip(), self.address_string(), *args)


class FakeGoogle:
    """The fake Google Workspace server bound to loopback, run in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, state: FakeWorld | None = None,
                 service_accounts: dict[str, str | list[str]] | None = None,
                 id_token_key: Path | None = None, state_file: Path | None = None) -> None:
        """`service_accounts` maps a service account email to the PEM key(s) its assertions are signed with;
        `id_token_key` is the file of the key ID tokens are signed with (made there when missing); with `state_file`
        the world is read from that file at start and written to it after every request that may change it."""
        self.host = host
        self.port = port
        issuer = IdTokenIssuer(id_token_key) if id_token_key else None
        self.state = state or FakeWorld(service_accounts=service_accounts, id_tokens=issuer)
        self.app = create_app(self.state)
        if state_file is not None:
            self.app.wsgi_app = _Persisting(self.app.wsgi_app, self.state, StateFile(state_file))
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.connections_opened = 0  # every connection a client has opened to it

    def _opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)
            self.connections_opened += 1

    def _closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    @property
    def token_uri(self) -> str:
        """Where delegated access tokens are issued (the JWT-bearer grant)."""
        return self.url + "token"

    @property
    def certs_url(self) -> str:
        """Where the certificates of the ID tokens it issues are published (OIDC_CERTS_URL)."""
        return self.url + CERTS_PATH.lstrip("/")

    @property
    def url(self) -> str:
        """Root URL to pass as client_options api_endpoint, e.g. http://127.0.0.1:8765/."""
        if self._server is None:
            raise RuntimeError("FakeGoogle is not started")
        return f"http://{self.host}:{self._server.server_port}/"

    def bind(self) -> FakeGoogle:
        """Open the listening socket without serving yet (resolves an ephemeral port)."""
        if self._server is None:
            self._server = make_server(self.host, self.port, self.app, threaded=True, request_handler=_QuietHandler)
            self._server.daemon_threads = True
            self._server.opened = self._opened  # type: ignore[attr-defined]
            self._server.closed = self._closed  # type: ignore[attr-defined]
            self.port = self._server.server_port
        return self

    def start(self) -> FakeGoogle:
        """Serve in a daemon thread; returns self once the socket is listening."""
        if self._thread is not None:
            return self
        self.bind()
        assert self._server is not None
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-google", daemon=True)
        self._thread.start()
        logger.debug("fake Google Workspace listening on %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until stop() is called from another thread."""
        self.bind()
        assert self._server is not None
        logger.info("fake Google Workspace listening on %s", self.url)
        self._server.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join(timeout=5)
        server.server_close()
        with self._connections_lock:  # a stopped Google answers nothing, not even on a connection kept open
            kept, self._connections = self._connections, set()
        for connection in kept:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server = None
        self._thread = None

    def control(self) -> FakeGoogleControl:
        """HTTP control client for this server."""
        return FakeGoogleControl(self.url)

    def __enter__(self) -> FakeGoogle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Persisting:
    """WSGI middleware saving the world once a request that may have changed it is answered (before its bytes go
    out, so whatever the product was told exists is on disk)."""

    _READ_ONLY = ("/oauth2/", "/token")

    def __init__(self, app, world: FakeWorld, state: StateFile) -> None:
        self.app, self.world, self.state = app, world, state
        self._lock = threading.Lock()
        saved = state.read()
        if saved is not None:
            world.restore(saved)
            logger.info("fake Google world restored from %s", state.path)

    def __call__(self, environ, start_response):
        try:
            return self.app(environ, start_response)
        finally:
            path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
            if not path.startswith(self._READ_ONLY) and not (method == "GET" and path.startswith("/_fake/")):
                self.save()

    def save(self) -> None:
        with self._lock:  # snapshots are written in the order they were taken
            try:
                self.state.write(self.world.snapshot())
            except OSError as exc:
                logger.error("could not save the fake Google world to %s: %s", self.state.path, exc)
