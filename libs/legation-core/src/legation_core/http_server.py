"""A small HTTP server for a service's web page or JSON API: any WSGI application, served
by the standard library (one thread per request) on a background thread, so the
:class:`~legation_core.lifecycle.ServiceRuntime` starts and stops it with the rest."""

from __future__ import annotations

import logging
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import WSGIApplication

log = logging.getLogger(__name__)


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
