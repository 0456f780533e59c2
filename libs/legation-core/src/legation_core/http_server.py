"""A small HTTP server for a service's web page, JSON API or metrics: any WSGI application,
served by the standard library (one thread per connection, at most ``max_connections`` at
once) on a background thread, so the :class:`~legation_core.lifecycle.ServiceRuntime`
starts and stops it with the rest.

Every HTTP surface of the platform goes through the helpers here:

- :func:`read_body` reads a request body only after checking its declared length against a
  limit (411 without a length, 400 for a bad one, 413 above the limit), and never reads
  more than declared;
- :func:`parse_json` parses JSON with a bounded size and nesting depth (400 naming the
  problem, never a 500 from a recursion error);
- :class:`Guarded` (applied by :class:`HttpServer` to every app) answers an unexpected
  exception with a generic 500, the stack trace going to the log only;
- :class:`HttpServer` serves TLS when given the same :class:`ServerTls` files as the gRPC
  server, and drops a connection that does not finish its request in time;
- :func:`client_address` names the client behind trusted reverse proxies.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import re
import socket
import ssl
import sys
import threading
from collections.abc import Collection, Iterable, Sequence
from socketserver import ThreadingMixIn
from typing import Any, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from legation_core.auth import ADMIN, Caller, Directory
from legation_core.grpc_server import ServerTls
from legation_core.networks import Network

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""Default largest request body :func:`read_body` accepts."""
MAX_JSON_DEPTH = 20
"""Default deepest nesting of arrays and objects :func:`parse_json` accepts."""
REQUEST_TIMEOUT_SECONDS = 30.0
"""A connection silent this long (TLS handshake, request line, headers or body) is dropped."""
MAX_CONNECTIONS = 64
"""Connections served at once by one :class:`HttpServer`; more are closed at once."""

_DIGITS = re.compile(r"[0-9]{1,18}")


class HttpError(Exception):
    """A request refused with an HTTP ``status`` (``"413 Content Too Large"``) and a plain
    ``reason`` that names the field or limit; safe to show to the client."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def read_body(environ: WSGIEnvironment, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, at most ``limit`` bytes, checked before anything is read.

    Raises :class:`HttpError`: 411 for a chunked body or one without ``Content-Length``,
    400 for a length that is not a number of bytes (``-1``, ``1e3``, ``+5``) or a body
    shorter than declared, 413 above ``limit``, 408 when the body does not arrive in time.
    Bytes beyond the declared length are never read (the connection closes after the
    answer), so a body of any size costs at most ``limit`` bytes of memory."""
    if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
        raise HttpError(
            "411 Length Required",
            f"chunked bodies are not accepted: send Content-Length (at most {limit} bytes)",
        )
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    if not declared:
        raise HttpError(
            "411 Length Required", f"Content-Length is required (at most {limit} bytes)"
        )
    if not _DIGITS.fullmatch(declared):
        raise HttpError("400 Bad Request", "Content-Length: not a number of bytes")
    length = int(declared)
    if length > limit:
        raise HttpError("413 Content Too Large", f"body: at most {limit} bytes")
    if length == 0:
        return b""
    try:
        body = bytes(environ["wsgi.input"].read(length))
    except (TimeoutError, OSError):
        raise HttpError("408 Request Timeout", "body: not received in time") from None
    if len(body) < length:
        raise HttpError("400 Bad Request", "body: shorter than its Content-Length")
    return body


def json_depth_exceeds(data: bytes, max_depth: int) -> bool:
    """True when the JSON text ``data`` nests arrays and objects deeper than ``max_depth``
    (brackets inside strings do not count). Linear, no recursion: safe on any input."""
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(
    body: bytes,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    max_bytes: int = MAX_BODY_BYTES,
    what: str = "body",
) -> Any:
    """``body`` parsed as UTF-8 JSON; raises :class:`HttpError` (413 above ``max_bytes``,
    400 otherwise) naming ``what`` and the problem: not UTF-8, nested deeper than
    ``max_depth``, ``NaN``/``Infinity``, or not JSON (with the line and column)."""
    if len(body) > max_bytes:
        raise HttpError("413 Content Too Large", f"{what}: at most {max_bytes} bytes")
    if json_depth_exceeds(body, max_depth):
        raise HttpError("400 Bad Request", f"{what}: JSON nested deeper than {max_depth} levels")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError("400 Bad Request", f"{what}: not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise HttpError(
            "400 Bad Request",
            f"{what}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})",
        ) from None
    except RecursionError:  # unreachable after the depth check; kept as a guarantee
        raise HttpError(
            "400 Bad Request", f"{what}: JSON nested deeper than {max_depth} levels"
        ) from None
    except ValueError as error:  # NaN, Infinity, an integer of thousands of digits
        raise HttpError("400 Bad Request", f"{what}: not valid JSON ({error})") from None


def client_address(environ: WSGIEnvironment, trusted_proxies: Sequence[Network] = ()) -> str:
    """The client's address: the peer's, unless the peer is one of ``trusted_proxies``
    (your ingress), in which case the right-most address of ``X-Forwarded-For`` that is not
    a trusted proxy (what a client writes to the left of it cannot be trusted)."""
    peer = str(environ.get("REMOTE_ADDR", ""))
    if not trusted_proxies or not _within(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for hop in str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        if not _within(hop, trusted_proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed hop: the proxy's own address is all we know
    return hops[0] if hops else peer


def _within(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def plain(
    start_response: StartResponse,
    status: str,
    reason: str,
    headers: Sequence[tuple[str, str]] = (),
    exc_info: Any = None,
) -> list[bytes]:
    """Answers ``status`` with ``reason`` as a short plain-text body."""
    body = reason.encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
            *headers,
        ],
        exc_info,
    )
    return [body]


class Guarded:
    """Wraps a WSGI ``app`` so that nothing internal reaches a client: an
    :class:`HttpError` the app lets through is answered with its status and reason, and any
    other exception with ``500 Internal Server Error`` and a generic text, its stack trace
    going to the service's log. The app's answer is gathered before it is sent, so an
    exception while producing the body is caught as well."""

    def __init__(self, app: WSGIApplication, name: str) -> None:
        self.app = app
        self.name = name

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        result: Iterable[bytes] | None = None
        try:
            result = self.app(environ, start_response)
            return list(result)
        except HttpError as error:
            return plain(start_response, error.status, error.reason, exc_info=sys.exc_info())
        except Exception:
            log.exception(
                "http request failed",
                extra={
                    "server": self.name,
                    "method": str(environ.get("REQUEST_METHOD", "")),
                    "path": str(environ.get("PATH_INFO", ""))[:200],
                },
            )
            return plain(
                start_response,
                "500 Internal Server Error",
                "internal error",
                exc_info=sys.exc_info(),
            )
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


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
            except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8
                return None
            return self.users.by_token(decoded.partition(":")[2])
        return None


def _refuse(start_response: StartResponse, status: str, body: bytes) -> Iterable[bytes]:
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    if status.startswith("401"):
        headers.append(("WWW-Authenticate", 'Basic realm="Legation", charset="UTF-8"'))
    start_response(status, headers)
    return [body]


def tls_context(tls: ServerTls) -> ssl.SSLContext:
    """The server-side TLS context of ``tls`` (TLS 1.2 at least); with a client CA, every
    client must present a certificate it signed. Raises OSError or ssl.SSLError when a
    file cannot be read or the key does not match."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert, tls.key)
    if tls.client_ca is not None:
        context.load_verify_locations(cafile=tls.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow client never holds the process at exit
    ssl_context: ssl.SSLContext | None = None
    request_timeout: float = REQUEST_TIMEOUT_SECONDS
    slots: threading.BoundedSemaphore

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            log.warning(
                "http connection refused: too many at once", extra={"port": self.server_port}
            )
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        # In the connection's own thread: a client that never finishes its TLS handshake
        # holds only this thread, and only until the timeout.
        connection = cast(socket.socket, request)
        connection.settimeout(self.request_timeout)
        if self.ssl_context is None:
            super().finish_request(connection, client_address)
            return
        try:
            secure = self.ssl_context.wrap_socket(connection, server_side=True)
        except (OSError, ssl.SSLError) as error:
            log.debug("tls handshake failed", extra={"error": str(error)})
            return
        try:
            super().finish_request(secure, client_address)
        finally:
            secure.close()  # the plain socket was detached by the wrap


class _ThreadingWSGIServer6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _LoggingHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # Requests go to the service's JSON log at debug level, not to stderr; without the
        # client's address (readers of our short links are not logged).
        log.debug("http request", extra={"line": format % args})


class HttpServer:
    """Serves ``app`` on ``host:port`` (port 0 picks a free one) until :meth:`stop`, over
    TLS when ``tls`` is given. Every app is :class:`Guarded`; a connection silent for
    ``request_timeout`` seconds is dropped, and beyond ``max_connections`` at once new
    connections are closed. Raises OSError when the port cannot be bound, ssl.SSLError when
    the TLS files do not fit together."""

    def __init__(
        self,
        name: str,
        port: int,
        app: WSGIApplication,
        host: str = "0.0.0.0",
        tls: ServerTls | None = None,
        *,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.name = name
        context = tls_context(tls) if tls is not None else None  # before binding the port
        self._server = make_server(
            host,
            port,
            Guarded(app, name),
            server_class=_ThreadingWSGIServer6 if ":" in host else _ThreadingWSGIServer,
            handler_class=_LoggingHandler,
        )
        self._server.ssl_context = context
        self._server.request_timeout = request_timeout
        self._server.slots = threading.BoundedSemaphore(max_connections)
        self.port: int = self._server.server_port
        self.tls = tls is not None
        self._thread = threading.Thread(
            # A short poll interval: stop() returns within 0.1 s.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"http-{name}",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stops accepting requests and closes the socket (also when never started)."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
