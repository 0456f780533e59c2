"""The shared HTTP helpers, without a socket: bodies read only within their limit, JSON with
bounded size and depth, the client's address behind trusted proxies, and the generic 500."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest

from legation_core.http_server import (
    Guarded,
    HttpError,
    client_address,
    json_depth_exceeds,
    parse_json,
    read_body,
)
from legation_core.networks import parse_networks


class Stream(io.RawIOBase):
    """An endless request body that counts what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        view[:] = b"x" * len(view)
        self.read_bytes += len(view)
        return len(view)


def environ(length: str | None, body: Any = None, **extra: str) -> dict[str, Any]:
    env: dict[str, Any] = {"wsgi.input": body if body is not None else io.BytesIO(b"")}
    if length is not None:
        env["CONTENT_LENGTH"] = length
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("length", "extra", "status", "reason"),
    [
        ("-1", {}, "400", "Content-Length: not a number of bytes"),
        ("1e3", {}, "400", "Content-Length: not a number of bytes"),
        ("+5", {}, "400", "Content-Length: not a number of bytes"),
        ("1_0", {}, "400", "Content-Length: not a number of bytes"),
        ("99999999999999999999999", {}, "400", "Content-Length: not a number of bytes"),
        (None, {}, "411", "Content-Length is required (at most 1024 bytes)"),
        ("", {}, "411", "Content-Length is required"),
        ("10", {"HTTP_TRANSFER_ENCODING": "chunked"}, "411", "chunked bodies are not accepted"),
        ("1025", {}, "413", "body: at most 1024 bytes"),
    ],
)
def test_a_body_is_refused_before_anything_is_read(
    length: str | None, extra: dict[str, str], status: str, reason: str
) -> None:
    stream = Stream()
    with pytest.raises(HttpError) as refused:
        read_body(environ(length, io.BufferedReader(stream), **extra), limit=1024)
    assert refused.value.status.startswith(status)
    assert reason in refused.value.reason
    assert stream.read_bytes == 0


def test_a_body_longer_than_declared_is_read_only_as_far_as_declared() -> None:
    stream = Stream()
    body = read_body(environ("100", io.BufferedReader(stream, buffer_size=128)), limit=1024)
    assert body == b"x" * 100
    assert stream.read_bytes <= 1024 + 1


def test_a_body_shorter_than_declared_is_a_bad_request() -> None:
    with pytest.raises(HttpError, match="shorter than its Content-Length"):
        read_body(environ("10", io.BytesIO(b"abc")))
    assert read_body(environ("0")) == b""
    assert read_body(environ("3", io.BytesIO(b"abcdef"))) == b"abc"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 100_000, "body: JSON nested deeper than 20 levels"),
        (b'{"a":' * 21 + b"1" + b"}" * 21, "body: JSON nested deeper than 20 levels"),
        (b"{", "body: not valid JSON (Expecting property name enclosed in double quotes"),
        (b'{"a": NaN}', "body: not valid JSON (NaN is not a JSON number)"),
        (b"[Infinity]", "body: not valid JSON (Infinity is not a JSON number)"),
        (b"\xff\xfe", "body: not UTF-8"),
        (b"1" * 5000, "body: not valid JSON (Exceeds the limit"),
    ],
)
def test_bad_json_is_a_400_naming_the_problem(body: bytes, reason: str) -> None:
    with pytest.raises(HttpError) as refused:
        parse_json(body, max_bytes=200_000)
    assert refused.value.status == "400 Bad Request"
    assert refused.value.reason.startswith(reason)


def test_json_within_the_limits_parses() -> None:
    nested = b'{"a":' * 20 + b"1" + b"}" * 20
    assert parse_json(nested) is not None
    # Brackets inside strings are text, not nesting.
    assert parse_json(json.dumps({"text": "[[[[" * 50}).encode()) == {"text": "[[[[" * 50}
    assert parse_json(b'"\\"[["') == '"[['
    with pytest.raises(HttpError, match="at most 10 bytes") as big:
        parse_json(b"[" + b"1," * 10 + b"1]", max_bytes=10)
    assert big.value.status.startswith("413")


def test_depth_counting_ignores_escaped_quotes() -> None:
    assert not json_depth_exceeds(b'["\\"[[[[["]', 2)
    assert json_depth_exceeds(b"[[[", 2)


TRUSTED = parse_networks("10.0.0.0/8, 192.0.2.1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", "", "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a proxy of ours: ignored
        ("10.1.2.3", "198.51.100.1", "198.51.100.1"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client's own claim: no
        ("10.1.2.3", "198.51.100.1, 192.0.2.1", "198.51.100.1"),  # two proxies of ours
        ("10.1.2.3", "", "10.1.2.3"),
        ("10.1.2.3", "not-an-address", "10.1.2.3"),
    ],
)
def test_the_client_address_behind_trusted_proxies(peer: str, forwarded: str, client: str) -> None:
    env = {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded}
    assert client_address(env, TRUSTED) == client


def test_trusted_proxies_name_the_bad_entry() -> None:
    assert parse_networks("") == ()
    with pytest.raises(ValueError, match="'ingress' is not an address or CIDR range"):
        parse_networks("10.0.0.0/8,ingress")


def call(app: Any, env: WSGIEnvironment) -> tuple[str, bytes]:
    seen: dict[str, str] = {}

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"] = status
        return lambda data: None

    body = b"".join(app(env, start))
    return seen["status"], body


def test_an_unexpected_exception_is_a_generic_500_with_the_stack_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        raise RuntimeError("/srv/app/secret.py: password=hunter2")

    with caplog.at_level(logging.ERROR, logger="legation_core.http_server"):
        status, body = call(Guarded(broken, "page"), {"PATH_INFO": "/x", "REQUEST_METHOD": "GET"})
    assert (status, body) == ("500 Internal Server Error", b"internal error")
    [record] = caplog.records
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])


def test_an_exception_while_producing_the_body_is_caught_too() -> None:
    def lazy(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        raise ValueError("internal detail")

    status, body = call(Guarded(lazy, "page"), {})
    assert (status, body) == ("500 Internal Server Error", b"internal error")


def test_an_http_error_is_answered_with_its_status_and_reason() -> None:
    def strict(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        read_body(environ, 10)
        return []

    status, body = call(Guarded(strict, "form"), environ("-1"))
    assert (status, body) == ("400 Bad Request", b"Content-Length: not a number of bytes")
