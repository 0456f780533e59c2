"""The confluent-kafka client behind the runtime: librdkafka's errors as the runtime tells
them apart (one mapping), deliveries as kafka-python's futures, the client choice setting.
No broker: a producer pointed at a closed port refuses or times out on its own."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import confluent_kafka
import pytest
from kafka.errors import (
    CommitFailedError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)
from prometheus_client import CollectorRegistry

from legation_core.catalog import default_catalog
from legation_core.config import ConfigError, CoreSettings, load_settings
from legation_core.confluent import (
    ClientError,
    ConfluentProducer,
    Delivery,
    client_error,
    confluent_options,
)
from legation_core.consumer import _unproducible, group_consumer, transient
from legation_core.kafka import EventProducer
from legation_core.metrics import Metrics
from legation_devstack.tls import self_signed_files

Codes = confluent_kafka.KafkaError


@pytest.mark.parametrize(
    ("code", "retriable", "expected", "is_transient"),
    [
        # The size fallback of dead letters and the event-by-event re-run catch this one.
        (Codes.MSG_SIZE_TOO_LARGE, False, MessageSizeTooLargeError, False),
        (Codes._MSG_TIMED_OUT, False, KafkaTimeoutError, True),
        (Codes.REQUEST_TIMED_OUT, True, KafkaTimeoutError, True),
        # A commit refused while the group moves on: logged, the batch is redone elsewhere.
        (Codes.REBALANCE_IN_PROGRESS, False, CommitFailedError, False),
        (Codes.ILLEGAL_GENERATION, False, CommitFailedError, False),
        (Codes.UNKNOWN_MEMBER_ID, False, CommitFailedError, False),
        (Codes._ASSIGNMENT_LOST, False, CommitFailedError, False),
        # Broker errors: kafka-python's class of the same protocol code.
        (Codes.NOT_LEADER_FOR_PARTITION, False, NotLeaderForPartitionError, True),
        (Codes.TOPIC_AUTHORIZATION_FAILED, False, TopicAuthorizationFailedError, False),
        # librdkafka's own errors: retriable as librdkafka says.
        (Codes._TRANSPORT, True, ClientError, True),
        (Codes._ALL_BROKERS_DOWN, False, ClientError, False),
    ],
)
def test_librdkafka_errors_map_to_the_exceptions_the_runtime_tells_apart(
    code: int, retriable: bool, expected: type[Exception], is_transient: bool
) -> None:
    error = client_error(Codes(code, retriable=retriable))
    assert type(error) is expected
    assert transient(error) is is_transient
    assert Codes(code).name() in str(error)
    assert _unproducible(error) is (expected is MessageSizeTooLargeError)


def test_a_broker_error_librdkafka_deems_retriable_is_transient() -> None:
    # kafka-python deems INVALID_REQUEST final; librdkafka knows better per request.
    assert not transient(client_error(Codes(Codes.INVALID_REQUEST)))
    assert transient(client_error(Codes(Codes.INVALID_REQUEST, retriable=True)))


class _Idle:
    """A producer with nothing to serve (what ``Delivery.get`` polls while it waits)."""

    polls = 0

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return 0


def settled(delivery: Delivery) -> bool:
    return delivery.is_done


def test_a_delivery_reads_as_a_kafka_python_future() -> None:
    outcomes: list[object] = []
    ok = Delivery(_Idle())  # type: ignore[arg-type]
    ok.add_callback(lambda metadata: outcomes.append(("ok", metadata)))
    ok.add_errback(lambda error: outcomes.append(("failed", error)))
    assert not settled(ok)
    ok(None, object())  # librdkafka's delivery report
    assert ok.is_done and not ok.failed() and ok.exception is None
    ok.get(timeout=0)
    late: list[object] = []
    ok.add_callback(late.append)  # added once settled: runs at once
    assert outcomes == [("ok", None)] and late == [None]

    refused = Delivery(_Idle())  # type: ignore[arg-type]
    refused.add_callback(lambda metadata: outcomes.append(("ok", metadata)))
    refused.add_errback(lambda error: outcomes.append(("failed", type(error))))
    refused(Codes(Codes.MSG_SIZE_TOO_LARGE), object())
    assert refused.failed() and isinstance(refused.exception, MessageSizeTooLargeError)
    with pytest.raises(MessageSizeTooLargeError):
        refused.get(timeout=1)
    assert outcomes[-1] == ("failed", MessageSizeTooLargeError)


def test_waiting_on_a_delivery_polls_the_producer_and_gives_up_with_a_kafka_timeout() -> None:
    idle = _Idle()
    pending = Delivery(idle)  # type: ignore[arg-type]
    with pytest.raises(KafkaTimeoutError, match=r"no acknowledgement within 0\.2 s"):
        pending.get(timeout=0.2)
    assert idle.polls >= 1 and not pending.is_done


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port nothing listens on (held bound, not listening, for the test)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_a_record_librdkafka_refuses_as_too_large_fails_its_delivery_at_once(
    closed_port: int,
) -> None:
    settings = CoreSettings(
        kafka_bootstrap_servers=f"127.0.0.1:{closed_port}", kafka_max_request_bytes=65_536
    )
    producer = ConfluentProducer(settings)
    try:
        delivery = producer.send("t", key=b"k", value=b"x" * 70_000, headers=[("h", b"v")])
        assert delivery.is_done
        assert isinstance(delivery.exception, MessageSizeTooLargeError)
    finally:
        producer.close(timeout=0)


def test_a_record_never_acknowledged_fails_as_transient_and_close_drops_the_rest(
    closed_port: int,
) -> None:
    settings = CoreSettings(kafka_bootstrap_servers=f"127.0.0.1:{closed_port}")
    producer = ConfluentProducer(settings, **{"message.timeout.ms": 300})
    timed_out = producer.send("t", key=b"k", value=b"v")
    with pytest.raises(KafkaTimeoutError) as raised:
        timed_out.get(timeout=10)
    assert transient(raised.value)

    dropped: list[Exception] = []
    slow = ConfluentProducer(settings)
    slow.send("t", value=b"v").add_errback(dropped.append)
    slow.close(timeout=0.1)
    slow.close()  # closing again does nothing, as kafka-python's close
    producer.close(timeout=0)
    assert len(dropped) == 1 and isinstance(dropped[0], ClientError)
    assert "PURGE" in str(dropped[0])


def test_the_client_setting_picks_the_producer_and_the_consumer(closed_port: int) -> None:
    confluent = CoreSettings(
        kafka_bootstrap_servers=f"127.0.0.1:{closed_port}", kafka_client="confluent"
    )
    producer = EventProducer(confluent, "engager", default_catalog(), Metrics(CollectorRegistry()))
    try:
        assert isinstance(producer._producer, ConfluentProducer)
    finally:
        producer.close(timeout=0)
    consumer = group_consumer(confluent, ["t"], "g")
    try:
        assert type(consumer).__name__ == "ConfluentConsumer"
        assert consumer.assignment() == frozenset() and not consumer.settling()
    finally:
        consumer.close()
    assert CoreSettings().kafka_client == "kafka-python"  # the default


def test_an_unknown_client_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATION_KAFKA_CLIENT", "librdkafka")
    refused = "LEGATION_KAFKA_CLIENT: Input should be 'confluent' or 'kafka-python'"
    with pytest.raises(ConfigError, match=refused):
        load_settings(CoreSettings)
    monkeypatch.setenv("LEGATION_KAFKA_CLIENT", "confluent")
    assert load_settings(CoreSettings).kafka_client == "confluent"


def test_the_connection_settings_reach_librdkafka_under_its_names(
    closed_port: int, tmp_path: Path
) -> None:
    ca, _key = self_signed_files(tmp_path)
    settings = CoreSettings(
        kafka_bootstrap_servers=f"127.0.0.1:{closed_port},127.0.0.2:{closed_port}",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="user",
        kafka_sasl_password="secret",
        kafka_ssl_cafile=str(ca),
        kafka_request_timeout_ms=5_000,
    )
    options = confluent_options(settings)
    assert {name: value for name, value in options.items() if name != "logger"} == {
        "bootstrap.servers": f"127.0.0.1:{closed_port},127.0.0.2:{closed_port}",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "user",
        "sasl.password": "secret",
        "ssl.ca.location": str(ca),
        "socket.timeout.ms": 5_000,
    }
    confluent_kafka.Producer(options).close()  # librdkafka knows every name and value
