"""A small HTTP server for a service's web page or JSON API: any WSGI application, served
by the standard library (one thread per request) on a background thread, so the
:class:`~legation_core.lifecycle.ServiceRuntime` starts and stops it with the rest."""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Collection, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from legation_core.auth import ADMIN, Caller, Directory

log = logging.getLogger(__name__)


class Authenticated:
    """Puts a WSGI ``app`` behind the gRPC API's users file: a request needs one of
    ``roles``, shown as ``Authorization: Bearer <token>`` or as HTTP Basic with the token as
    the password (what a browser can send; the user name is ignored, the token names the
    user). Paths in ``open_paths`` (a health check) need nothing. With ``users`` None
    (authentication explicitly disabled) every request passes."""

    def __init__(
        self,
        app: WSGIApplication,
        users: Directory | None,
        roles: Collection[str],
        open_paths: Collection[str] = ("/healthz",),
    ) -> None:
        self.app = app
        self.users = users
        self.roles = frozenset(roles)
        self.open_paths = frozenset(open_paths)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.users is None or environ.get("PATH_INFO", "/") in self.open_paths:
            return self.app(environ, start_response)
        caller = self._caller(str(environ.get("HTTP_AUTHORIZATION", "")))
        if caller is None:
            return _refuse(start_response, "401 Unauthorized", b"a token is required")
        if not (caller.roles & (self.roles | {ADMIN})):
            needed = " or ".join(sorted(self.roles))
            return _refuse(start_response, "403 Forbidden", f"needs the role {needed}".encode())
        environ["legation.caller"] = caller
        return self.app(environ, start_response)

    def _caller(self, header: str) -> Caller | None:
        assert self.users is not None
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer":
            return self.users.by_token(credentials.strip())
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            return self.users.by_token(decoded.partition(":")[2])
        return None


def _refuse(start_response: StartResponse, status: str, body: bytes) -> Iterable[bytes]:
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    if status.startswith("401"):
        headers.append(("WWW-Authenticate", 'Basic realm="Legation", charset="UTF-8"'))
    start_response(status, headers)
    return [body]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow client never holds the process at exit


class _LoggingHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # Requests go to the service's JSON log at debug level, not to stderr.
        log.debug("http request", extra={"client": self.client_address[0], "line": format % args})


class HttpServer:
    """Serves ``app`` on ``host:port`` (port 0 picks a free one) until :meth:`stop`."""

    def __init__(self, name: str, port: int, app: WSGIApplication, host: str = "0.0.0.0") -> None:
        self.name = name
        self._server = make_server(
            host, port, app, server_class=_ThreadingWSGIServer, handler_class=_LoggingHandler
        )
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"http-{name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stops accepting requests and closes the socket."""
        self._server.shutdown()
        self._server.server_close()
