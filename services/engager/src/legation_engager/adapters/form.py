"""The public questions form: ``POST /questions/<questions_id>`` with ``text`` (required),
``author`` and ``language``, as a form or JSON. Served without a token on purpose (anyone
may ask); every question waits for moderation before anything is published. Limits, all
checked before the work they protect: one address at most ``per_minute`` questions a minute
(429 with Retry-After beyond), a body of at most 16 KiB with its ``Content-Length`` (411
without one, 413 above), JSON nested at most 4 levels, at most 2,000 characters of text.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

import grpc

from legation.engager.v1 import engager_service_pb2 as pb
from legation_core.auth import answer
from legation_core.http_server import (
    HttpError,
    client_address,
    parse_json,
    read_body,
)
from legation_core.ids import new_trace_id
from legation_core.networks import Network
from legation_core.ratelimit import RateLimit
from legation_engager.adapters.grpc_questions import QuestionsApi

MAX_BODY = 16 * 1024
MAX_JSON_DEPTH = 4
FORM_PREFIX = "/questions/"
_FIELDS = ("text", "author", "language", "request_id")

__all__ = ["FORM_PREFIX", "MAX_BODY", "QuestionsForm", "RateLimit"]


# The HTTP status of each gRPC status the shared submit path may end with (the errors map
# to gRPC statuses in one place, legation_core.auth.answer).
_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: "400 Bad Request",
    grpc.StatusCode.NOT_FOUND: "404 Not Found",
    grpc.StatusCode.FAILED_PRECONDITION: "409 Conflict",
    grpc.StatusCode.UNAVAILABLE: "503 Service Unavailable",
}


class QuestionsForm:
    """WSGI app of the questions form. ``trusted_proxies``: the reverse proxies whose
    ``X-Forwarded-For`` names the client (see :func:`~legation_core.http_server.client_address`)."""

    def __init__(
        self, api: QuestionsApi, per_minute: int = 10, trusted_proxies: Sequence[Network] = ()
    ) -> None:
        self.api = api
        self.limit = RateLimit(per_minute)
        self.trusted_proxies = tuple(trusted_proxies)

    def __call__(self, environ: WSGIEnvironment, start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(FORM_PREFIX) or len(path) == len(FORM_PREFIX):
            return _answer(start, "404 Not Found", {"error": "POST /questions/<questions_id>"})
        if environ.get("REQUEST_METHOD") != "POST":
            return _answer(start, "405 Method Not Allowed", {"error": "use POST"})
        wait = self.limit.wait(client_address(environ, self.trusted_proxies))
        if wait:
            return _answer(
                start,
                "429 Too Many Requests",
                {"error": "too many questions from this address; try again later"},
                [("Retry-After", str(max(1, round(wait))))],
            )
        try:
            body = read_body(environ, MAX_BODY)
            fields = _fields(str(environ.get("CONTENT_TYPE", "")), body)
        except HttpError as error:
            return _answer(start, error.status, {"error": error.reason})
        request = pb.SubmitQuestionRequest(
            questions_id=path[len(FORM_PREFIX) :],
            # A form post is one question: a fresh id unless the page sent one for retries.
            request_id=fields.get("request_id") or uuid.uuid4().hex,
            author=fields.get("author", "")[:200],
            text=fields.get("text", ""),
            language=fields.get("language", "")[:35],
        )
        try:
            self.api.submit(request, source="form")
        except Exception as raised:
            code, details = answer(raised, "questions-form", new_trace_id())
            status = _HTTP.get(code)
            if status is None:  # nothing internal reaches the public
                return _answer(start, "500 Internal Server Error", {"error": "internal error"})
            return _answer(start, status, {"error": details})
        return _answer(start, "202 Accepted", {"status": "received, awaiting moderation"})


def _fields(content_type: str, body: bytes) -> dict[str, str]:
    """The form's fields from a JSON object or an urlencoded form; raises HttpError 400
    naming the problem."""
    if content_type.startswith("application/json"):
        data = parse_json(body or b"{}", max_depth=MAX_JSON_DEPTH, max_bytes=MAX_BODY)
        if not isinstance(data, dict):
            raise HttpError("400 Bad Request", "body: expected a form or JSON object")
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise HttpError("400 Bad Request", "body: not UTF-8") from None
        try:
            parsed = parse_qs(text, max_num_fields=20)
        except ValueError:
            raise HttpError("400 Bad Request", "body: at most 20 form fields") from None
        data = {key: values[0] for key, values in parsed.items()}
    fields: dict[str, str] = {}
    for name in _FIELDS:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise HttpError("400 Bad Request", f"{name}: expected a string")
        fields[name] = value
    return fields


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
