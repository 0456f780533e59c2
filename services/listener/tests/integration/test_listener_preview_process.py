"""PreviewQuery against ``python -m legation_listener`` (issue 11, finding 2): a FIFO, a
device or an endless body does not grow the process, a socket that never answers does
not hold the gRPC workers (health and other calls answer at once), and the loopback, the
cloud metadata address and local files are refused with words that tell nothing apart."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from listener_kit import ListenerProcess, rss

from legation.listener.v1 import listener_service_pb2 as pb
from legation.listener.v1 import listener_service_pb2_grpc as pb_grpc
from legation_core.config import CoreSettings
from legation_devstack.processes import free_port
from legation_devstack.users import UsersFile

pytestmark = pytest.mark.integration

DEADLINE = 2.0
CONCURRENT = 2
# As the local stack runs it: fixture files and loopback replay servers are feeds.
DEVELOPMENT = {
    "LEGATION_LISTENER_PREVIEW_DEADLINE_SECONDS": str(DEADLINE),
    "LEGATION_LISTENER_PREVIEW_MAX_CONCURRENT": str(CONCURRENT),
}
# As production runs it: no local files, no address off the public internet.
PRODUCTION = {
    **DEVELOPMENT,
    "LEGATION_LISTENER_ALLOW_LOCAL_FEEDS": "false",
    "LEGATION_LISTENER_FETCH_ALLOWED_NETWORKS": "",
}


@pytest.fixture
def start_listener(
    kafka_settings: CoreSettings, auth_users: UsersFile, tmp_path: Path
) -> Iterator[Callable[[dict[str, str]], ListenerProcess]]:
    started: list[ListenerProcess] = []

    def start(env: dict[str, str]) -> ListenerProcess:
        logs = tmp_path / f"logs-{len(started)}"
        started.append(ListenerProcess(kafka_settings, auth_users, logs, env))
        return started[-1]

    yield start
    for listener in started:
        listener.process.stop()


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Endless(BaseHTTPRequestHandler):
    """``/endless``: zeros until the client goes; anything else: a small feed."""

    def do_GET(self) -> None:
        self.send_response(200)
        if self.path != "/endless":
            body = rss(("https://x.example/1", "Plastics treaty")).encode()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"\0" * 65536)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def endless() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A socket that takes connections and never answers a byte."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listening.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listening.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listening.getsockname()[1]}/feed.xml"
    stop.set()
    thread.join(2)
    for connection in held:
        connection.close()
    listening.close()


def preview(listener: ListenerProcess, feeds: list[str], user: str = "analyst") -> Any:
    with listener.channel(user) as channel:
        return pb_grpc.ListenerServiceStub(channel).PreviewQuery(
            pb.PreviewQueryRequest(query="treaty", feeds=feeds), timeout=30
        )


def test_fifos_devices_and_endless_bodies_are_refused_and_memory_stays_flat(
    start_listener: Callable[[dict[str, str]], ListenerProcess],
    tmp_path: Path,
    endless: str,
) -> None:
    listener = start_listener(DEVELOPMENT)
    fifo = tmp_path / "feed.rss"
    os.mkfifo(fifo)
    feed = tmp_path / "good.rss"
    feed.write_text(rss(("https://x.example/1", "Plastics treaty")))

    # A writer that feeds the FIFO a gigabyte if anyone reads it (nobody does: it gets a
    # broken pipe once the listener, having opened the FIFO, refuses it and closes it).
    def write() -> None:
        with contextlib.suppress(OSError):
            fifo.write_bytes(b"\0" * (1 << 30))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    before = resident_mb(listener.process.pid)
    for _ in range(3):
        started = time.monotonic()
        answer = preview(listener, [str(fifo), "/dev/zero", f"{endless}/endless", str(feed)])
        assert time.monotonic() - started < DEADLINE + 2
        assert list(answer.failed_feeds) == [
            f"{fifo}: could not read the feed",
            "/dev/zero: could not read the feed",
            f"{endless}/endless: could not read the feed",
        ]
        assert [m.source_url for m in answer.matches if m.source_url == str(feed)] == [str(feed)]
    grown = resident_mb(listener.process.pid) - before
    # It grew by gigabytes before; one capped body (20 MiB) at a time now.
    assert grown < 120, f"the listener grew by {grown:.0f} MB"
    log = listener.process.log_path.read_text()
    assert "is not a regular file" in log and "larger than the limit" in log


def test_a_socket_that_never_answers_does_not_hold_the_grpc_workers(
    start_listener: Callable[[dict[str, str]], ListenerProcess], black_hole: str
) -> None:
    listener = start_listener(DEVELOPMENT)
    calls = 12  # more than the server's 8 workers

    def one() -> tuple[str, float]:
        started = time.monotonic()
        try:
            answer = preview(listener, [black_hole])
        except grpc.RpcError as error:
            return error.code().name, time.monotonic() - started
        assert list(answer.failed_feeds) == [f"{black_hole}: could not read the feed"]
        return "OK", time.monotonic() - started

    with ThreadPoolExecutor(calls) as pool:
        outcomes = [pool.submit(one) for _ in range(calls)]
        time.sleep(0.3)  # the previews are in flight now
        health_times: list[float] = []
        with listener.channel(None) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while not all(outcome.done() for outcome in outcomes):
                started = time.monotonic()
                status = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                health_times.append(time.monotonic() - started)
                assert status.status == health_pb2.HealthCheckResponse.SERVING
                time.sleep(0.1)
        with listener.channel("viewer") as channel:
            started = time.monotonic()
            pb_grpc.ListenerServiceStub(channel).ListIssues(pb.ListIssuesRequest(), timeout=1)
            assert time.monotonic() - started < 1
        results = [outcome.result() for outcome in outcomes]
    codes = sorted(code for code, _ in results)
    assert codes.count("OK") >= 1 and codes.count("OK") <= CONCURRENT
    assert codes.count("RESOURCE_EXHAUSTED") == calls - codes.count("OK"), codes
    assert max(seconds for _, seconds in results) < DEADLINE + 1.5
    assert health_times and max(health_times) < 1


def test_loopback_metadata_and_local_files_are_refused_alike(
    start_listener: Callable[[dict[str, str]], ListenerProcess], endless: str
) -> None:
    listener = start_listener(PRODUCTION)
    closed = f"http://127.0.0.1:{free_port()}/feed.xml"
    feeds = [
        f"{endless}/feed.xml",  # an open loopback port serving a feed
        closed,  # a closed loopback port
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        f"http://localhost:{free_port()}/",
        "http://[::1]/",
    ]
    answer = preview(listener, feeds)
    assert list(answer.failed_feeds) == [f"{feed}: could not read the feed" for feed in feeds]
    assert answer.total_matches == 0
    details = set()
    for path in ("/etc/passwd", "/no/such/file", "file:///etc/hostname"):
        with pytest.raises(grpc.RpcError) as refused:
            preview(listener, [path])
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details.add(refused.value.details() or "")
    assert len(details) == 1 and "feeds cannot name a local file" in details.pop()
    with pytest.raises(grpc.RpcError) as denied:
        preview(listener, ["https://feeds.example.org/news.xml"], user="viewer")
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
