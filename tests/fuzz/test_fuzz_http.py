"""Every HTTP surface (the listener's webhook, the engager's questions form, the publisher's
short links, the evaluator's scorecard page) over raw sockets: well-formed requests with
hostile paths, headers and bodies (signed for the webhook, with a reader's token for the
page), wrong or negative Content-Length, chunked bodies, huge headers, deep JSON, bodies of
64 MiB, connections left open or half-closed, and bytes that are not HTTP at all. Each gets
2xx, 3xx, 4xx or a 503 that says why, in time, with no internal text; no surface reads a
body far past its limit; memory stays bounded."""

from __future__ import annotations

import errno
import hmac
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from hypothesis import strategies as st

from legation_core.proto_strategies import SPECIAL_STRINGS, hostile_text, weighted
from legation_devstack.users import UsersFile
from legation_listener.adapters.connectors.webhook import SIGNATURE_HEADER, sign
from legation_listener.config import ListenerSettings
from tests.fuzz.budget import Fuzz
from tests.fuzz.harness import (
    HttpTarget,
    start_form,
    start_page,
    start_redirects,
    start_webhook,
)
from tests.fuzz.properties import (
    HTTP_LIMIT_SECONDS,
    MemoryBound,
    check_http,
    failure,
)

# Bytes a server may take into its socket buffers without reading them (loopback buffers
# reach a few MiB each way); a surface that accepted more than its limit plus this read it.
BUFFER_SLACK = 16 * 1024 * 1024
BIG_SIZES = (1_100_000, 11 * 1024 * 1024, 64 * 1024 * 1024)
SURFACES = ["webhook", "questions-form", "short-links", "scorecard-page"]


@dataclass(frozen=True)
class Body:
    """``head + unit * count + tail``, streamed without building it whole."""

    head: bytes = b""
    unit: bytes = b""
    count: int = 0
    tail: bytes = b""

    def __len__(self) -> int:
        return len(self.head) + len(self.unit) * self.count + len(self.tail)

    def pieces(self, size: int = 1 << 20) -> Iterator[bytes]:
        yield self.head
        if self.unit and self.count:
            per = max(1, size // len(self.unit))
            left = self.count
            while left:
                take = min(per, left)
                yield self.unit * take
                left -= take
        yield self.tail

    def prefix(self, limit: int = 1 << 20) -> bytes:
        """The first ``limit`` bytes (what an error message may legitimately echo)."""
        out = bytearray()
        for piece in self.pieces():
            out += piece[: limit - len(out)]
            if len(out) >= limit:
                break
        return bytes(out)


class Request:
    """One generated HTTP exchange: the head's bytes, the body, and whether the client
    half-closes after sending; ``http`` False for bytes that are not an HTTP/1.x request,
    ``method_known`` False for a method HTTP does not define (501 is then the answer)."""

    def __init__(
        self, head: bytes, body: Body, close_write: bool, http: bool, method_known: bool = True
    ) -> None:
        self.head = head
        self.body = body
        self.close_write = close_write
        self.http = http
        self.method_known = method_known

    def __repr__(self) -> str:
        head = self.head if len(self.head) < 800 else self.head[:800] + b"..."
        shown = self.body.prefix(300)
        return (
            f"Request(head={head!r}, body={shown!r} ({len(self.body):,} bytes), "
            f"close_write={self.close_write}, http={self.http})"
        )


# ---------------------------------------------------------------------------- strategies


def _json_values() -> st.SearchStrategy[object]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        hostile_text(huge=False),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(hostile_text(huge=False), inner, max_size=4),
        ),
        max_leaves=12,
    )


def _items() -> st.SearchStrategy[object]:
    """Webhook items and form fields, mostly valid, one field hostile."""
    field = st.sampled_from(["id", "text", "title", "published_at", "reach", "url", "author"])
    valid = {"id": "i-1", "text": "plastic treaty", "title": "t", "published_at": "2026-11-20"}
    return st.builds(
        lambda key, value: {**valid, key: value},
        field,
        st.one_of(_json_values(), st.sampled_from(["9999-99-99", "-1", 10**30, -5, 1.5])),
    )


def hostile_bodies() -> st.SearchStrategy[Body]:
    """Bodies no surface should choke on: any JSON, deep JSON, forms, binary, 64 MiB."""
    deep = st.sampled_from([100, 1_000, 10_000, 100_000])
    small = weighted(
        (2, _items().map(lambda v: json.dumps(v).encode())),
        (2, _json_values().map(lambda v: json.dumps(v).encode())),
        (1, st.lists(_items(), max_size=5).map(lambda v: json.dumps(v).encode())),
        (1, st.lists(_items(), max_size=5).map(lambda v: "\n".join(map(json.dumps, v)).encode())),
        (1, st.binary(max_size=256)),
        (1, hostile_text().map(lambda t: t.encode("utf-8", "replace"))),
        (1, _form_fields()),
    )
    return weighted(
        (4, small.map(Body)),
        (1, deep.map(lambda n: Body(b"[" * n + b"]" * n))),
        (1, deep.map(lambda n: Body(b'{"a":' * n + b"1" + b"}" * n))),
        (
            1,
            st.sampled_from(BIG_SIZES).map(
                lambda n: Body(b'[{"id":"big","text":"', b"plastic ", n // 8, b'"}]')
            ),
        ),
    )


def _form_fields() -> st.SearchStrategy[bytes]:
    return st.dictionaries(
        st.sampled_from(["text", "author", "language", "request_id", "x"]),
        hostile_text(huge=False),
        max_size=4,
    ).map(lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode("utf-8", "replace"))


CONTENT_TYPES = [
    "application/json",
    "application/x-ndjson",
    "application/x-www-form-urlencoded",
    "application/json; charset=latin-1",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
]
# What a generated request may do differently from the surface's valid request.
DEVIATIONS = (
    "body",
    "length",
    "method",
    "path",
    "content-type",
    "credentials",
    "headers",
    "version",
)


@st.composite
def http_requests(draw: st.DrawFn, target: HttpTarget) -> Request:
    """The surface's valid request (``target.valid``) with one to three deviations."""
    deviations = draw(st.sets(st.sampled_from(DEVIATIONS), min_size=1, max_size=3))
    method, path, content_type, valid_body = target.valid
    body = Body(valid_body)
    if "method" in deviations:
        method = draw(st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "BREW", "GET /x"]))
    if "path" in deviations:
        path = draw(
            weighted(
                (3, st.sampled_from(target.paths)),
                (
                    2,
                    st.builds(
                        lambda base, extra: base + extra,
                        st.sampled_from(target.paths),
                        st.sampled_from(
                            ["/..", "%00", "%2e%2e/%2e%2e/etc/passwd", "?a=1&a=2", "é", "/" * 9]
                        ),
                    ),
                ),
                (1, hostile_text(huge=False).map(lambda t: "/" + t.replace(" ", "%20"))),
                (1, st.sampled_from(["*", "http://evil.example/", "/" + "a" * 70_000])),
            )
        )
    if "body" in deviations:
        body = draw(hostile_bodies())
    headers: list[tuple[str, str]] = [("Host", "127.0.0.1")]
    if "content-type" in deviations:
        content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type:
        headers.append(("Content-Type", content_type))
    if "credentials" in deviations:
        forged = st.sampled_from(
            [
                ("Authorization", "Bearer nope"),
                ("Authorization", "Basic !!!"),
                ("Authorization", "Basic " + "A" * 10_000),
                (SIGNATURE_HEADER, "sha256=" + "0" * 64),
                (SIGNATURE_HEADER, "md5=x"),
            ]
        )
        headers += draw(st.lists(forged, max_size=2))
    else:
        headers += target.credentials
        if target.secret is not None:
            headers.append((SIGNATURE_HEADER, signature(target.secret, body)))
    length = "exact"
    if "length" in deviations:
        length = draw(
            st.sampled_from(
                ["absent", "-1", "huge", "smaller", "larger", "junk", "twice", "chunked"]
            )
        )
    size = len(body)
    if length == "exact":
        headers.append(("Content-Length", str(size)))
    elif length in ("-1", "junk"):
        headers.append(("Content-Length", "-1" if length == "-1" else "12abc"))
    elif length == "huge":
        headers.append(("Content-Length", str(10**15)))
    elif length in ("smaller", "larger"):
        wrong = max(0, size - 7) if length == "smaller" else size + 7
        headers.append(("Content-Length", str(wrong)))
    elif length == "twice":
        headers += [("Content-Length", str(size)), ("Content-Length", "0")]
    elif length == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        if size < BIG_SIZES[0]:
            data = body.prefix(size)
            good = draw(st.booleans())
            body = Body(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data) if good else b"zz\r\n" + data)
    if "headers" in deviations:
        headers += draw(
            st.one_of(
                st.lists(
                    st.tuples(
                        st.sampled_from(["X-A", "User-Agent", "Referer", "Cookie", "Expect"]),
                        st.sampled_from([*SPECIAL_STRINGS[:20], "100-continue", "x" * 70_000]),
                    ),
                    min_size=1,
                    max_size=3,
                ),
                st.just([(f"X-{n}", "v") for n in range(150)]),
            )
        )
    version = "HTTP/1.1"
    if "version" in deviations:
        version = draw(st.sampled_from(["HTTP/1.0", "HTTP/9", "HTTP/1.1 extra"]))
    lines = [f"{method} {path} {version}", *(f"{k}: {v}" for k, v in headers)]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    # A server may wait for bytes the request announced and did not send (a longer
    # Content-Length, an unfinished chunk): then the client closes its side, and the server
    # must answer at the end of the stream. Otherwise the request is complete, or says
    # nothing a server should wait on (Content-Length -1), and the connection may stay open.
    announced_more = length in ("huge", "larger", "chunked")
    # A request line that is not HTTP/1.x (version 9, whitespace in the target, a method
    # with a space) may get the standard library's HTTP/0.9-style answer, or none.
    well_formed = version in ("HTTP/1.0", "HTTP/1.1") and not re.search(r"\s", path + method)
    known = method in ("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS")
    return Request(head, body, announced_more or draw(st.booleans()), well_formed, known)


def signature(secret: str, body: Body) -> str:
    """The webhook's signature of ``body`` (legation_listener's ``sign``), computed piece
    by piece: a 64 MiB body is never joined."""
    if len(body) < BIG_SIZES[0]:
        return sign(secret, body.prefix(len(body)))
    digest = hmac.new(secret.encode(), digestmod="sha256")
    for piece in body.pieces():
        digest.update(piece)
    return "sha256=" + digest.hexdigest()


@st.composite
def garbage(draw: st.DrawFn, target: HttpTarget) -> Request:
    """Bytes that are not an HTTP request (random, or a request mangled)."""
    valid = draw(http_requests(target))
    data = bytearray(valid.head)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=8))
    raw = draw(st.one_of(st.binary(max_size=300), st.just(bytes(data)), st.just(b"\r\n" * 500)))
    # Not a request: the server cannot know it has all of it until the client closes.
    return Request(raw, Body(), True, False, False)


def exchanges(target: HttpTarget) -> st.SearchStrategy[Request]:
    return weighted((6, http_requests(target)), (1, garbage(target)))


# ---------------------------------------------------------------------------- sending


@dataclass
class Answer:
    status: int | None
    body: bytes
    elapsed: float
    body_sent: int
    sent_all: bool


def exchange(port: int, request: Request) -> Answer:
    """Sends ``request`` on a fresh connection and reads the answer (until the server
    closes or the declared length arrived), waiting at most the HTTP time limit."""
    started = time.perf_counter()
    connection = socket.create_connection(("127.0.0.1", port), timeout=HTTP_LIMIT_SECONDS)
    sent, sent_all = 0, True
    try:
        try:
            connection.sendall(request.head)
            for piece in request.body.pieces():
                connection.sendall(piece)
                sent += len(piece)
            if request.close_write:
                try:
                    connection.shutdown(socket.SHUT_WR)
                except OSError as error:
                    # ENOTCONN: the server answered and closed first (all was sent).
                    if error.errno != errno.ENOTCONN:
                        raise
        except (BrokenPipeError, ConnectionResetError):
            sent_all = False  # the server answered (or gave up) before reading it all
        except TimeoutError:
            sent_all = False  # the server stopped reading
        data = _read_answer(connection, started + HTTP_LIMIT_SECONDS + 1)
    finally:
        connection.close()
    elapsed = time.perf_counter() - started
    status, body = _parse(data)
    return Answer(status, body, elapsed, sent, sent_all)


def _read_answer(connection: socket.socket, deadline: float) -> bytes:
    data = bytearray()
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return bytes(data)
        connection.settimeout(left)
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            return bytes(data)
        except ConnectionResetError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk
        head, found, rest = bytes(data).partition(b"\r\n\r\n")
        if found:
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                declared = name.strip().lower() == b"content-length" and value.strip().isdigit()
                if declared and len(rest) >= int(value):
                    return bytes(data)


def _parse(data: bytes) -> tuple[int | None, bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None, data
    return int(parts[1]), body


# ---------------------------------------------------------------------------- the test


@pytest.fixture
def surface(
    request: pytest.FixtureRequest, auth_users: UsersFile, unique: str
) -> Iterator[HttpTarget]:
    name = request.node.callspec.params["name"]
    starters: dict[str, Callable[[], HttpTarget]] = {
        "webhook": lambda: start_webhook(ListenerSettings()),
        "questions-form": start_form,
        "short-links": start_redirects,
        "scorecard-page": lambda: start_page(
            auth_users,
            request.getfixturevalue("opensearch_stand_in").url,
            f"fuzz-page-{unique}",
        ),
    }
    target = starters[name]()
    try:
        yield target
    finally:
        target.stop()


@pytest.mark.fuzz(weight=8)
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=[pytest.mark.integration] if n == "scorecard-page" else [])
        for n in SURFACES
    ],
)
def test_every_http_request_gets_a_clean_answer_in_time(
    name: str, surface: HttpTarget, fuzz: Fuzz
) -> None:
    memory = MemoryBound()

    @fuzz.given(exchanges(surface))
    def answers_cleanly(request: Request) -> None:
        answer = exchange(surface.port, request)
        echoed = [
            request.head.decode("utf-8", "replace"),
            request.body.prefix().decode("utf-8", "replace"),
        ]
        check_http(
            name,
            answer.status,
            answer.body,
            answer.elapsed,
            echoed,
            may_close=not request.http,
            # Not HTTP/1.x, or a method HTTP does not define: Not Implemented and HTTP
            # Version Not Supported are the right answers.
            also=(501, 505) if not (request.http and request.method_known) else (),
        )
        limit = surface.max_body + BUFFER_SLACK
        if answer.sent_all and answer.body_sent > limit:
            raise failure(
                "read past its limit",
                f"{name} took {answer.body_sent:,} bytes of body (limit {surface.max_body:,}) "
                f"and answered {answer.status}",
            )
        memory.check(name)

    answers_cleanly()
