"""What the shared gRPC runtime does around every servicer, over a real server: request
limits before any work, unexpected exceptions answered INTERNAL without their text,
dependencies down answered UNAVAILABLE, records too large INVALID_ARGUMENT, no write once
the caller's deadline has passed, and health answering while the API is saturated."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from legation.events.v1 import engage_pb2, publish_pb2
from legation_core.auth import (
    EDITOR,
    AuditEvent,
    AuthInterceptor,
    Outcome,
    Policy,
    command,
    load_users,
    reads,
    with_token,
)
from legation_core.calls import treat_as_unavailable
from legation_core.catalog import default_catalog
from legation_core.codec import make_envelope
from legation_core.config import CoreSettings
from legation_core.grpc_server import HEALTH_RESERVE, build_health_server, build_server
from legation_core.kafka import EventProducer
from legation_core.metrics import Metrics
from legation_core.state import StoreUnavailable
from legation_devstack.users import UsersFile, write_users_file

pytestmark = pytest.mark.integration

SERVICE = "legation.test.v1.Guarded"
POLICY = Policy(
    SERVICE,
    {
        "Echo": command(EDITOR),
        "Crash": command(EDITOR),
        "StoreDown": command(EDITOR),
        "IndexDown": reads(EDITOR),
        "Huge": command(EDITOR),
        "SlowWrite": command(EDITOR),
        "Block": reads(EDITOR),
    },
)
Publication = publish_pb2.Publication
INTERACTIONS = "legation.engage.interactions.v1"


class IndexConnectionRefused(Exception):
    """Stands for an index client's connection error (its text names host and port)."""


treat_as_unavailable(IndexConnectionRefused)


@dataclass
class FakeKafka:
    """Records what would reach Kafka."""

    sent: list[str] = field(default_factory=list)

    def send(self, topic: str, **record: Any) -> Any:
        self.sent.append(topic)
        return self

    def get(self, timeout: float | None = None) -> str:
        return "acknowledged"

    def flush(self, timeout: float | None = None) -> None:
        pass


@dataclass
class Served:
    port: int
    users: UsersFile
    audited: list[AuditEvent]
    kafka: FakeKafka
    release: threading.Event
    entered: threading.Semaphore
    slow_write_done: threading.Event
    health_port: int

    def channel(self) -> grpc.Channel:
        return with_token(grpc.insecure_channel(f"127.0.0.1:{self.port}"), self.users.token("ed"))

    def call(
        self,
        method: str,
        request: Publication | None = None,
        timeout: float = 5,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> Publication:
        with self.channel() as channel:
            stub = channel.unary_unary(
                f"/{SERVICE}/{method}",
                request_serializer=Publication.SerializeToString,
                response_deserializer=Publication.FromString,
            )
            response: Publication = stub(
                request or Publication(post_id="p-1"), timeout=timeout, metadata=metadata
            )
            return response


def interaction(text: str) -> Any:
    return make_envelope(
        engage_pb2.Interaction(interaction_id="i-1", text=text),
        event_id="e-1",
        source_service="engager",
        occurred_at=datetime(2026, 11, 20, tzinfo=UTC),
    )


def handlers(served: dict[str, Any], producer: EventProducer) -> grpc.GenericRpcHandler[Any, Any]:
    def echo(request: Publication, context: grpc.ServicerContext) -> Publication:
        return request

    def crash(request: Publication, context: grpc.ServicerContext) -> Publication:
        raise RuntimeError("cannot open /opt/legation/secret.db at db.internal:5432")

    def store_down(request: Publication, context: grpc.ServicerContext) -> Publication:
        raise StoreUnavailable("Kafka did not acknowledge: kafka-0.internal:9092 timed out")

    def index_down(request: Publication, context: grpc.ServicerContext) -> Publication:
        raise IndexConnectionRefused("connection refused: opensearch.internal:9200")

    def huge(request: Publication, context: grpc.ServicerContext) -> Publication:
        producer.send_and_wait([(INTERACTIONS, "c-1", interaction("é" * 600_000))])
        return request

    def slow_write(request: Publication, context: grpc.ServicerContext) -> Publication:
        try:
            time.sleep(0.6)  # work that takes longer than the caller waits
            producer.send_and_wait([(INTERACTIONS, "c-1", interaction("late"))])
            return request
        finally:
            served["slow_write_done"].set()

    def block(request: Publication, context: grpc.ServicerContext) -> Publication:
        served["entered"].release()
        served["release"].wait(10)
        return request

    behaviours: dict[str, Callable[[Publication, grpc.ServicerContext], Publication]] = {
        "Echo": echo,
        "Crash": crash,
        "StoreDown": store_down,
        "IndexDown": index_down,
        "Huge": huge,
        "SlowWrite": slow_write,
        "Block": block,
    }
    methods = {
        name: grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=Publication.FromString,
            response_serializer=Publication.SerializeToString,
        )
        for name, behaviour in behaviours.items()
    }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    audited: list[AuditEvent] = []
    users = write_users_file(tmp_path / "users.yaml", {"ed": frozenset({EDITOR})})
    kafka = FakeKafka()
    producer = EventProducer(
        CoreSettings(),
        "engager",
        default_catalog(),
        Metrics(CollectorRegistry()),
        producer=kafka,
    )
    state: dict[str, Any] = {
        "release": threading.Event(),
        "entered": threading.Semaphore(0),
        "slow_write_done": threading.Event(),
    }
    server, health_servicer, port = build_server(
        0,
        [lambda server: server.add_generic_rpc_handlers((handlers(state, producer),))],
        [],
        max_workers=4,
        host="127.0.0.1",
        auth=AuthInterceptor(load_users(users.path), [POLICY], audited.append),
    )
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_server, health_port = build_health_server(0, health_servicer, host="127.0.0.1")
    server.start()
    health_server.start()
    try:
        yield Served(port, users, audited, kafka, health_port=health_port, **state)
    finally:
        state["release"].set()
        server.stop(0).wait(5)
        health_server.stop(0).wait(5)


def code_of(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code(), raised.value.details() or ""


def test_a_request_beyond_a_limit_is_refused_before_the_servicer_and_audited(
    served: Served,
) -> None:
    # Crash would answer INTERNAL: the request never reaches it.
    code, details = code_of(lambda: served.call("Crash", Publication(post_id="p" * 5000)))
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "post_id: at most 1000 characters (got 5000)",
    )
    (event,) = served.audited
    assert (event.outcome, event.status) == (Outcome.FAILED, grpc.StatusCode.INVALID_ARGUMENT)
    assert event.resource_ids == {"post_id": "p" * 128}  # audited within a record's size
    code, details = code_of(lambda: served.call("Echo", Publication(title="a\x00b")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("title: control character U+0000 at position 1")


def test_an_unexpected_exception_is_internal_with_a_reference_not_its_text(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    code, details = code_of(
        lambda: served.call("Crash", metadata=(("x-trace-id", "trace-crash-1"),))
    )
    assert (code, details) == (grpc.StatusCode.INTERNAL, "internal error; reference trace-crash-1")
    logged = [r for r in caplog.records if r.getMessage() == "unexpected error in a gRPC call"]
    assert logged and "db.internal:5432" in str(logged[0].exc_info)
    (event,) = served.audited
    assert (event.status, event.detail) == (
        grpc.StatusCode.INTERNAL,
        "internal error; reference trace-crash-1",
    )


@pytest.mark.parametrize("method", ["StoreDown", "IndexDown"])
def test_a_dependency_down_is_unavailable_without_hosts_or_ports(
    served: Served, method: str
) -> None:
    code, details = code_of(lambda: served.call(method, metadata=(("x-trace-id", "t-2"),)))
    assert (code, details) == (
        grpc.StatusCode.UNAVAILABLE,
        "temporarily unavailable, retry; reference t-2",
    )


def test_a_record_too_large_for_kafka_is_invalid_argument_and_nothing_is_sent(
    served: Served,
) -> None:
    code, details = code_of(lambda: served.call("Huge"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "more than LEGATION_KAFKA_MAX_REQUEST_BYTES (1048576)" in details
    assert served.kafka.sent == []


def test_nothing_is_written_once_the_callers_deadline_has_passed(served: Served) -> None:
    code, _ = code_of(lambda: served.call("SlowWrite", timeout=0.2))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert served.slow_write_done.wait(5)
    time.sleep(0.1)  # the interceptor audits after the servicer returns
    assert served.kafka.sent == []
    (event,) = served.audited
    assert (event.outcome, event.status) == (Outcome.FAILED, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_a_saturated_api_refuses_more_calls_and_health_still_answers(served: Served) -> None:
    slots = 4 - HEALTH_RESERVE
    with served.channel() as channel:
        block = channel.unary_unary(
            f"/{SERVICE}/Block",
            request_serializer=Publication.SerializeToString,
            response_deserializer=Publication.FromString,
        )
        pending = [block.future(Publication(), timeout=10) for _ in range(slots)]
        for _ in range(slots):
            assert served.entered.acquire(timeout=5)
        code, details = code_of(lambda: served.call("Echo"))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert details == f"the server is busy with {slots} calls; retry shortly"
        for port in (served.port, served.health_port):
            with grpc.insecure_channel(f"127.0.0.1:{port}") as plain:
                health = health_pb2_grpc.HealthStub(plain)
                started = time.monotonic()
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
                assert time.monotonic() - started < 1
        served.release.set()
        assert all(call.result(timeout=5) == Publication() for call in pending)
    assert served.call("Echo", Publication(post_id="p-2")).post_id == "p-2"
