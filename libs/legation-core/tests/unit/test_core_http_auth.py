"""Authenticated: a web page or JSON API behind the gRPC users file."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment
from wsgiref.util import setup_testing_defaults

import pytest

from legation_core.auth import Caller, parse_users
from legation_core.http_server import Authenticated

VIEWER_TOKEN = "viewer-token-1"
EDITOR_TOKEN = "editor-token-1"


def _hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


DIRECTORY = parse_users(
    {
        "users": [
            {"name": "vera", "roles": ["viewer"], "token_sha256": [_hex(VIEWER_TOKEN)]},
            {"name": "ed", "roles": ["editor"], "token_sha256": [_hex(EDITOR_TOKEN)]},
        ]
    },
    "test",
)


def _app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    caller = environ.get("legation.caller")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [caller.user.encode() if isinstance(caller, Caller) else b"anyone"]


def _get(
    app: Authenticated, path: str = "/", authorization: str | None = None
) -> tuple[str, dict[str, str], bytes]:
    environ: WSGIEnvironment = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = path
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    seen: dict[str, object] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))  # type: ignore[arg-type]
    return str(seen["status"]), dict(seen["headers"]), body  # type: ignore[call-overload]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


PAGE = Authenticated(_app, DIRECTORY, roles={"viewer"})


def test_no_credentials_asks_for_them() -> None:
    status, headers, _ = _get(PAGE)
    assert status.startswith("401")
    assert headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong",
        _basic("vera", "wrong"),
        "Basic !!notbase64",
        "Digest abc",
        # Found by the fuzz suite: two Authorization headers, joined by the WSGI server,
        # the second not ASCII (b64decode raised ValueError, an HTTP 500).
        "Basic !!!,\x80 Bearer nope",
        "Basic caf\xe9",
    ],
)
def test_unknown_or_malformed_credentials_are_refused(authorization: str) -> None:
    assert _get(PAGE, authorization=authorization)[0].startswith("401")


@pytest.mark.parametrize(
    "authorization", [f"Bearer {VIEWER_TOKEN}", _basic("anything", VIEWER_TOKEN)]
)
def test_a_reader_token_opens_the_page_as_its_user(authorization: str) -> None:
    status, _, body = _get(PAGE, authorization=authorization)
    assert status == "200 OK"
    assert body == b"vera"  # the token names the user, whatever Basic's user name says


def test_a_user_without_the_role_is_forbidden() -> None:
    status, _, body = _get(PAGE, authorization=f"Bearer {EDITOR_TOKEN}")
    assert status.startswith("403")
    assert b"viewer" in body


def test_the_health_check_is_open() -> None:
    assert _get(PAGE, path="/healthz") == ("200 OK", {"Content-Type": "text/plain"}, b"anyone")


def test_with_authentication_disabled_everyone_passes() -> None:
    assert _get(Authenticated(_app, None, roles={"viewer"}))[0] == "200 OK"
