"""The HTTP hook: a WSGI app served on a free port over a real socket, then stopped."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest

from legation_core.http_server import HttpServer

pytestmark = pytest.mark.integration


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    body = f"you asked for {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def test_serves_the_app_on_a_picked_port_until_stopped() -> None:
    server = HttpServer("page", 0, app, host="127.0.0.1")
    assert server.port > 0
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/x?y=1", timeout=5) as r:
            assert r.read() == b"you asked for /x"
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=2)
