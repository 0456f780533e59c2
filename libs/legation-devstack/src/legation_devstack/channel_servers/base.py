"""The HTTP plumbing every channel server shares: a threaded server on a free port, a
record of every request, canned failures to inject, and static files to serve as media."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def form(self) -> dict[str, list[str]]:
        """A form-encoded or multipart body as lists of values (files as their bytes
        decoded latin-1, which keeps them intact)."""
        content_type = self.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + self.body
            )
            values: dict[str, list[str]] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                text = payload.decode("latin-1") if isinstance(payload, bytes) else ""
                values.setdefault(str(name), []).append(text)
            return values
        if content_type.startswith("application/json"):
            data = self.json() or {}
            return {k: v if isinstance(v, list) else [v] for k, v in data.items()}
        return parse_qs(self.body.decode(), keep_blank_values=True)


@dataclass(frozen=True)
class Canned:
    """A response to give instead of the real one (a rate limit, an outage)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Response = tuple[int, Any, dict[str, str]]


@dataclass(frozen=True)
class _Late:
    """An answer to hold back: from the next request matching method and path prefix."""

    seconds: float
    method: str = ""
    path_prefix: str = ""


class RecordingHttpServer:
    """Serves one platform's API on 127.0.0.1 on a free port, in a background thread.

    Subclasses implement :meth:`handle`. ``fail_next`` queues canned responses given to
    the next requests matching a path prefix before the real handling (so a canned 429
    means the platform did nothing).
    """

    def __init__(self, port: int = 0) -> None:
        """``port``: 0 picks a free one (tests); a fixed one lets a restarted local stack
        find the same server at the same address."""
        self.received: list[Received] = []
        self._canned: deque[tuple[str, Canned]] = deque()
        self._files: dict[str, tuple[bytes, str]] = {}
        self._delays: deque[_Late] = deque()
        # Requests held by answer_late (handled, answer not sent yet): a test waits for one
        # to know the platform has acted, then kills the client mid-delivery.
        self.held: list[Received] = []
        self._stopping = threading.Event()
        self.lock = threading.RLock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Received(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                status, payload, headers = owner._respond(request)
                delay = owner._take_delay(request)
                if delay:
                    # The platform did the work but answers late (our client times out, or
                    # is killed while it waits). Stopping the server cuts the wait short.
                    with owner.lock:
                        owner.held.append(request)
                    owner._stopping.wait(delay)
                data = (
                    payload
                    if isinstance(payload, bytes)
                    else b""
                    if payload is None
                    else json.dumps(payload).encode()
                )
                if "Content-Type" not in headers and not isinstance(payload, bytes):
                    headers = {**headers, "Content-Type": "application/json; charset=utf-8"}
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up waiting (answer_late): as on a real platform, the
                    # work is done and the answer is lost.
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def fail_next(self, path_prefix: str, canned: Canned, times: int = 1) -> None:
        """The next ``times`` requests under ``path_prefix`` get ``canned``."""
        with self.lock:
            self._canned.extend((path_prefix, canned) for _ in range(times))

    def answer_late(self, seconds: float, method: str = "", path_prefix: str = "") -> None:
        """The next request (the next ``method`` request under ``path_prefix`` when given)
        is handled at once but answered ``seconds`` later; it is in :attr:`held` while the
        answer waits. With a filter, a crash can be placed between the platform acting and
        our recording it, past the lookups an adapter makes first."""
        with self.lock:
            self._delays.append(_Late(seconds, method.upper(), path_prefix))

    def _take_delay(self, request: Received) -> float:
        with self.lock:
            for position, late in enumerate(self._delays):
                if (not late.method or late.method == request.method) and request.path.startswith(
                    late.path_prefix
                ):
                    del self._delays[position]
                    return late.seconds
            return 0.0

    def serve_file(self, path: str, data: bytes, content_type: str) -> str:
        """Serves ``data`` at ``path`` (media for adapters to fetch); returns its URL."""
        self._files[path] = (data, content_type)
        return self.url + path

    def requests_to(self, method: str, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.method == method and r.path == path]

    def _respond(self, request: Received) -> Response:
        with self.lock:
            self.received.append(request)
            for position, (prefix, canned) in enumerate(self._canned):
                if request.path.startswith(prefix):
                    del self._canned[position]
                    return canned.status, canned.body, dict(canned.headers)
            if request.method == "GET" and request.path in self._files:
                data, content_type = self._files[request.path]
                return 200, data, {"Content-Type": content_type}
            return self.handle(request)

    def handle(self, request: Received) -> Response:
        raise NotImplementedError
