"""The HTTP hook: a WSGI app served on a free port over a real socket, then stopped; TLS,
a silent client's timeout, the connection cap and the generic 500."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest

from legation_core.grpc_server import ServerTls
from legation_core.http_server import HttpServer
from legation_devstack.tls import self_signed_files

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


def test_with_tls_files_it_serves_https_only(tmp_path: Path) -> None:
    cert, key = self_signed_files(tmp_path)
    server = HttpServer("page", 0, app, host="127.0.0.1", tls=ServerTls(cert, key))
    server.start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{server.port}/secure"
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            assert response.read() == b"you asked for /secure"
        # Plain HTTP on the TLS port: no answer but a closed connection (no token in clear).
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5)
    finally:
        server.stop()


def test_tls_files_that_do_not_fit_stop_it_before_binding(tmp_path: Path) -> None:
    cert, _key = self_signed_files(tmp_path, "one")
    _cert, other_key = self_signed_files(tmp_path, "two")
    with pytest.raises(ssl.SSLError):
        HttpServer("page", 0, app, host="127.0.0.1", tls=ServerTls(cert, other_key))


def test_a_silent_client_is_dropped_and_holds_no_other_request(tmp_path: Path) -> None:
    cert, key = self_signed_files(tmp_path)
    server = HttpServer(
        "page", 0, app, host="127.0.0.1", tls=ServerTls(cert, key), request_timeout=2.0
    )
    server.start()
    try:
        # Connects and never starts its TLS handshake: other clients are served meanwhile,
        # and the silent one is disconnected after the timeout (wide apart, so that a busy
        # machine's slow handshake is not mistaken for a wait on the silent client).
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        context = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{server.port}/other"
        started = time.monotonic()
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            assert response.read() == b"you asked for /other"
        assert time.monotonic() - started < 1.5
        assert silent.recv(1) == b""  # closed by the server
        silent.close()
    finally:
        server.stop()


def test_connections_beyond_the_cap_are_closed_at_once() -> None:
    server = HttpServer("page", 0, app, host="127.0.0.1", max_connections=2, request_timeout=5)
    server.start()
    try:
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(2)]
        time.sleep(0.2)  # both accepted and waiting for their request
        third = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        assert third.recv(1) == b""  # closed without being served
        third.close()
        for connection in held:
            connection.close()
        time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/again", timeout=5) as r:
            assert r.read() == b"you asked for /again"
    finally:
        server.stop()


def broken(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    raise KeyError("internal detail /srv/legation")


def broken_midway(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"half a page"
    raise ValueError("internal detail /srv/legation")


@pytest.mark.parametrize("failing", [broken, broken_midway])
def test_an_unexpected_exception_answers_a_generic_500_over_the_wire(failing: Any) -> None:
    server = HttpServer("page", 0, failing, host="127.0.0.1")
    server.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5)
        assert failed.value.code == 500
        assert failed.value.read() == b"internal error"
    finally:
        server.stop()


def test_an_ipv6_address_is_served_too() -> None:
    server = HttpServer("metrics", 0, app, host="::1")
    server.start()
    try:
        with urllib.request.urlopen(f"http://[::1]:{server.port}/m", timeout=5) as response:
            assert response.read() == b"you asked for /m"
    finally:
        server.stop()
