"""ServiceRuntime.run end to end: consume, health over gRPC, and SIGTERM → commit, exit 0."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from wsgiref.types import StartResponse, WSGIEnvironment

import grpc
import pytest
from core_kafka_kit import EVERY_CLIENT, Kit, wait_for
from grpc_health.v1 import health_pb2, health_pb2_grpc

from legation_core.auth import Policy, reads
from legation_core.config import ConfigError
from legation_core.consumer import Incoming, Outgoing, per_event
from legation_core.lifecycle import ServiceRuntime
from legation_devstack.tls import self_signed_files

pytestmark = pytest.mark.integration


@pytest.fixture
def restore_signal_handlers() -> Iterator[None]:
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


@pytest.mark.usefixtures("restore_signal_handlers")
@EVERY_CLIENT
def test_runtime_serves_then_stops_cleanly_on_sigterm(kit: Kit) -> None:
    settings = kit.settings.model_copy(
        update={"grpc_port": 0, "metrics_port": 0, "shutdown_grace_seconds": 5}
    )
    runtime = ServiceRuntime("engager", settings, catalog=kit.catalog)
    handled: list[str] = []

    def handle(event: Incoming) -> list[Outgoing]:
        handled.append(event.envelope.event_id)
        return [kit.reply_to(event)]

    ticks: list[int] = []
    group = runtime.group(f"mentions-{kit.unique}")
    runtime.add_consumer(f"mentions-{kit.unique}", [kit.in_topic], per_event(handle))
    runtime.add_periodic("tick", 0.05, lambda: ticks.append(1))
    sent = kit.feed_mentions(range(4))
    statuses: list[int] = []
    problems: list[BaseException] = []

    def drive() -> None:
        try:
            wait_for(lambda: len(handled) >= 4, what="events handled")
            end = kit.end_offsets(kit.in_topic)
            wait_for(lambda: kit.committed(group) == end, what="offsets committed")
            wait_for(lambda: len(ticks) >= 2, what="the periodic job")
            port = wait_for(lambda: runtime.grpc_port, what="the gRPC port")
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                statuses.append(stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status)
        except BaseException as error:  # reported below
            problems.append(error)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    assert runtime.run() == 0
    driver.join(5)
    assert problems == []
    assert statuses == [health_pb2.HealthCheckResponse.SERVING]
    assert sorted(handled) == sorted(envelope.event_id for envelope in sent)
    assert sum(kit.end_offsets(kit.out_topic).values()) == 4
    assert runtime.stop.is_set()


@pytest.mark.usefixtures("restore_signal_handlers")
def test_a_consume_loop_that_dies_stops_the_service_with_exit_1(kit: Kit) -> None:
    settings = kit.settings.model_copy(
        update={"grpc_port": 0, "metrics_port": 0, "shutdown_grace_seconds": 5}
    )
    runtime = ServiceRuntime("engager", settings, catalog=kit.catalog)
    loop_died = threading.Event()
    runtime.add_consumer(f"mentions-{kit.unique}", [kit.in_topic], per_event(lambda e: []))

    def die() -> None:
        loop_died.set()
        raise RuntimeError("the broker client broke beyond repair")

    # A loop whose run raises (not a handler failure, which is retried) must not leave a
    # process that answers gRPC but consumes nothing.
    runtime._loops[0].run = die  # type: ignore[method-assign]
    assert runtime.run() == 1
    assert loop_died.is_set()
    assert runtime.stop.is_set()


def test_a_policy_that_misses_a_method_stops_the_service(kit: Kit) -> None:
    runtime = ServiceRuntime("engager", kit.settings, catalog=kit.catalog)
    health = "grpc.health.v1.Health"
    rules = {"Check": reads()}  # the Health service also has Watch (and List)
    with pytest.raises(ConfigError, match=r"no access rule for .*Watch"):
        runtime.add_grpc(lambda server: None, health, Policy(health, rules))
    runtime.producer.close(1)


@pytest.mark.usefixtures("restore_signal_handlers")
def test_every_http_port_serves_tls_when_configured_and_metrics_bind_where_told(
    kit: Kit, tmp_path: Path
) -> None:
    cert, key = self_signed_files(tmp_path)
    settings = kit.settings.model_copy(
        update={
            "grpc_port": 0,
            "metrics_port": 0,
            "metrics_host": "127.0.0.1",
            "http_tls_cert": cert,
            "http_tls_key": key,
            "shutdown_grace_seconds": 5,
        }
    )
    runtime = ServiceRuntime("engager", settings, catalog=kit.catalog)
    runtime.add_http("page", 0, hello, roles=None)
    context = ssl.create_default_context(cafile=str(cert))
    answers: dict[str, bytes] = {}
    problems: list[BaseException] = []

    def drive() -> None:
        try:
            page_port = wait_for(lambda: runtime.http_ports.get("page"), what="the page")
            metrics_port = runtime.metrics_port
            with urllib.request.urlopen(
                f"https://127.0.0.1:{page_port}/", timeout=5, context=context
            ) as response:
                answers["page"] = response.read()
            with urllib.request.urlopen(
                f"https://127.0.0.1:{metrics_port}/metrics", timeout=5, context=context
            ) as response:
                answers["metrics"] = response.read()
            # Bound to 127.0.0.1 only: not reachable on another local address.
            with socket.socket() as probe:
                probe.settimeout(1)
                answers["other address"] = b"%d" % probe.connect_ex(("127.0.0.2", metrics_port))
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{page_port}/", timeout=5)
                answers["plaintext"] = b"answered"
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException):
                answers["plaintext"] = b"refused"
        except BaseException as error:  # reported below
            problems.append(error)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    assert runtime.run() == 0
    driver.join(5)
    assert problems == []
    assert answers["page"] == b"hello"
    assert b"legation_events_produced_total" in answers["metrics"]
    assert answers["other address"] != b"0"  # connection refused
    assert answers["plaintext"] == b"refused"


@pytest.mark.usefixtures("restore_signal_handlers")
def test_a_port_that_cannot_be_bound_exits_2_naming_its_setting(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        settings = kit.settings.model_copy(update={"grpc_port": 0, "metrics_port": 0})
        runtime = ServiceRuntime("publisher", settings, catalog=kit.catalog)
        runtime.add_http("links", busy, hello, roles=None, port_variable="LEGATION_X_PORT")
        assert runtime.run() == 2
    assert f"LEGATION_X_PORT: cannot listen on {busy}" in capsys.readouterr().err
    runtime.producer.close(1)


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]
