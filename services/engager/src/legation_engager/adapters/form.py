"""The public questions form: ``POST /questions/<questions_id>`` with ``text`` (required),
``author`` and ``language``, as a form or JSON. Served without a token on purpose (anyone
may ask); every question waits for moderation before anything is published, the form takes
at most 2,000 characters of text, and one address at most ``per_minute`` questions a
minute (429 with Retry-After beyond).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

import grpc

from legation.engager.v1 import engager_service_pb2 as pb
from legation_engager.adapters.grpc_api import EngagerApi

MAX_BODY = 16 * 1024
FORM_PREFIX = "/questions/"


class _Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class _Context:
    """Just enough of a gRPC context for the servicer's shared submit path."""

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise _Aborted(code, details)


_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: "400 Bad Request",
    grpc.StatusCode.NOT_FOUND: "404 Not Found",
    grpc.StatusCode.UNAVAILABLE: "503 Service Unavailable",
}


class RateLimit:
    """At most ``per_minute`` requests a minute per client address (a token bucket each,
    the most recent 10,000 addresses kept)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait(self, client: str) -> float:
        """0 when ``client`` may go on now (and counts it), else seconds to wait."""
        now = self.clock()
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
            self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > 10_000:
                self._buckets.popitem(last=False)
        return wait


class QuestionsForm:
    """WSGI app of the questions form."""

    def __init__(self, api: EngagerApi, per_minute: int = 10) -> None:
        self.api = api
        self.limit = RateLimit(per_minute)

    def __call__(self, environ: WSGIEnvironment, start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(FORM_PREFIX) or len(path) == len(FORM_PREFIX):
            return _answer(start, "404 Not Found", {"error": "POST /questions/<questions_id>"})
        if environ.get("REQUEST_METHOD") != "POST":
            return _answer(start, "405 Method Not Allowed", {"error": "use POST"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        wait = self.limit.wait(str(environ.get("REMOTE_ADDR", "")))
        if wait:
            return _answer(
                start,
                "429 Too Many Requests",
                {"error": "too many questions from this address; try again later"},
                [("Retry-After", str(max(1, round(wait))))],
            )
        if length > MAX_BODY:
            return _answer(start, "413 Content Too Large", {"error": f"at most {MAX_BODY} bytes"})
        body = environ["wsgi.input"].read(length) if length else b""
        fields = _fields(environ.get("CONTENT_TYPE", ""), body)
        if fields is None:
            return _answer(start, "400 Bad Request", {"error": "body: expected a form or JSON"})
        request = pb.SubmitQuestionRequest(
            questions_id=path[len(FORM_PREFIX) :],
            # A form post is one question: a fresh id unless the page sent one for retries.
            request_id=str(fields.get("request_id") or uuid.uuid4().hex),
            author=str(fields.get("author", ""))[:200],
            text=str(fields.get("text", "")),
            language=str(fields.get("language", ""))[:35],
        )
        try:
            self.api.submit(request, _Context(), source="form")  # type: ignore[arg-type]
        except _Aborted as error:
            status = _HTTP.get(error.code, "500 Internal Server Error")
            return _answer(start, status, {"error": error.details})
        return _answer(start, "202 Accepted", {"status": "received, awaiting moderation"})


def _fields(content_type: str, body: bytes) -> dict[str, Any] | None:
    try:
        if content_type.startswith("application/json"):
            data = json.loads(body or b"{}")
            return data if isinstance(data, dict) else None
        parsed = parse_qs(body.decode("utf-8"))
        return {key: values[0] for key, values in parsed.items()}
    except (ValueError, UnicodeDecodeError):
        return None


def _answer(
    start: StartResponse,
    status: str,
    body: dict[str, str],
    headers: list[tuple[str, str]] | None = None,
) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            *(headers or []),
        ],
    )
    return [data]
