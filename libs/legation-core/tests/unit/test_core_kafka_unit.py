"""EventProducer and client options, with an in-memory stand-in for KafkaProducer."""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from kafka import KafkaConsumer
from kafka.coordinator.base import BaseCoordinator
from kafka.coordinator.consumer import ConsumerCoordinator
from kafka.errors import MessageSizeTooLargeError
from kafka.future import Future
from kafka.structs import ConsumerGroupMetadata, MemberState
from prometheus_client import CollectorRegistry

from legation.events.v1 import engage_pb2, listen_pb2
from legation_core.calls import CallExpired, serving
from legation_core.catalog import CatalogError, default_catalog
from legation_core.codec import Envelope, EventCodec, InvalidEvent, make_envelope
from legation_core.config import CoreSettings
from legation_core.consumer import (
    BatchResult,
    ConsumerLoop,
    DeadLetter,
    Incoming,
    Outgoing,
    dead_letter_headers,
    per_event,
)
from legation_core.kafka import (
    EventProducer,
    RecordTooLarge,
    client_options,
    event_headers,
    fits,
    group_settling,
    raise_if_failed,
    record_size,
)
from legation_core.metrics import Metrics

MENTIONS = "legation.listen.mentions.v1"
INTERACTIONS = "legation.engage.interactions.v1"
WHEN = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)


class FakeFuture:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> str:
        if self.error:
            raise self.error
        return "metadata"


@dataclass
class FakeKafkaProducer:
    fail_with: Exception | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)
    flushed: int = 0
    closed: bool = False

    def send(self, topic: str, **record: Any) -> FakeFuture:
        self.sent.append({"topic": topic, **record})
        return FakeFuture(self.fail_with)

    def flush(self, timeout: float | None = None) -> None:
        self.flushed += 1

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def interaction(source_service: str = "engager") -> Envelope:
    return make_envelope(
        engage_pb2.Interaction(interaction_id="i-1", mention_id="m-1"),
        event_id="e-1",
        source_service=source_service,
        occurred_at=WHEN,
        trace_id="trace-1",
    )


def mention() -> Envelope:
    return make_envelope(
        listen_pb2.Mention(mention_id="m-1"),
        event_id="e-0",
        source_service="listener",
        occurred_at=WHEN,
    )


def producer_for(service: str, fake: FakeKafkaProducer) -> tuple[EventProducer, Metrics]:
    metrics = Metrics(CollectorRegistry())
    settings = CoreSettings()
    return EventProducer(settings, service, default_catalog(), metrics, producer=fake), metrics


def produced(metrics: Metrics, topic: str) -> float | None:
    return metrics.registry.get_sample_value("legation_events_produced_total", {"topic": topic})


def test_send_and_wait_produces_encoded_envelope_with_headers() -> None:
    fake = FakeKafkaProducer()
    producer, metrics = producer_for("engager", fake)
    envelope = interaction()
    producer.send_and_wait([(INTERACTIONS, "conv-1", envelope)])
    assert fake.flushed == 1
    [record] = fake.sent
    assert record["topic"] == INTERACTIONS
    assert record["key"] == b"conv-1"
    assert record["value"] == EventCodec.encode(envelope)
    headers = dict(record["headers"])
    assert headers["event-type"] == b"legation.events.v1.Interaction"
    assert headers["source-service"] == b"engager"
    assert headers["schema-version"] == b"1"
    assert headers["trace-id"] == b"trace-1"
    assert headers["content-type"] == b"application/x-protobuf"
    assert produced(metrics, INTERACTIONS) == 1


def test_send_refuses_topics_the_service_may_not_produce() -> None:
    fake = FakeKafkaProducer()
    producer, _ = producer_for("engager", fake)
    with pytest.raises(CatalogError, match=f"engager may not produce to {MENTIONS}"):
        producer.send(MENTIONS, "k", mention())
    with pytest.raises(CatalogError):
        producer.send("not.catalogued", "k", interaction())
    assert fake.sent == []


def test_send_refuses_another_services_envelope() -> None:
    fake = FakeKafkaProducer()
    producer, _ = producer_for("engager", fake)
    with pytest.raises(InvalidEvent, match="engager cannot send an event of evaluator"):
        producer.send(INTERACTIONS, "k", interaction(source_service="evaluator"))
    assert fake.sent == []


def test_send_validates_the_envelope() -> None:
    fake = FakeKafkaProducer()
    producer, _ = producer_for("engager", fake)
    envelope = interaction()
    envelope.event_id = ""
    with pytest.raises(InvalidEvent, match="missing event_id"):
        producer.send(INTERACTIONS, "k", envelope)
    assert fake.sent == []


def test_an_event_over_the_size_limit_is_refused_naming_the_limit() -> None:
    fake = FakeKafkaProducer()
    metrics = Metrics(CollectorRegistry())
    settings = CoreSettings(kafka_max_request_bytes=100_000)
    producer = EventProducer(settings, "engager", default_catalog(), metrics, producer=fake)
    small, large = interaction(), interaction()
    large.interaction.text = "x" * 100_000
    with pytest.raises(RecordTooLarge) as refused:
        producer.send_and_wait([(INTERACTIONS, "k", small), (INTERACTIONS, "k", large)])
    size = record_size(b"k", EventCodec.encode(large), event_headers(large))
    assert refused.value.reason == (
        f"legation.events.v1.Interaction event for {INTERACTIONS} is {size} bytes, more than "
        "LEGATION_KAFKA_MAX_REQUEST_BYTES (100000)"
    )
    assert isinstance(refused.value, InvalidEvent)  # a consume loop dead-letters its source
    assert fake.sent == []  # not even the small one: nothing of a refused batch goes out
    producer.send_and_wait([(INTERACTIONS, "k", small)])
    assert len(fake.sent) == 1


def test_the_producer_is_configured_with_the_limit_it_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options: dict[str, Any] = {}

    def kafka_producer(**given: Any) -> FakeKafkaProducer:
        options.update(given)
        return FakeKafkaProducer()

    monkeypatch.setattr("legation_core.kafka.KafkaProducer", kafka_producer)
    settings = CoreSettings(kafka_max_request_bytes=2_000_000, kafka_client="kafka-python")
    producer = EventProducer(settings, "engager", default_catalog(), Metrics(CollectorRegistry()))
    assert producer.max_request_bytes == 2_000_000
    assert options["max_request_size"] == 2_000_000

    config: dict[str, Any] = {}
    monkeypatch.setattr("legation_core.confluent.confluent_kafka.Producer", config.update)
    confluent = EventProducer(
        settings.model_copy(update={"kafka_client": "confluent"}),
        "engager",
        default_catalog(),
        Metrics(CollectorRegistry()),
    )
    assert confluent.max_request_bytes == 2_000_000
    assert config["message.max.bytes"] == 2_000_000


def test_wait_raises_when_the_broker_did_not_acknowledge() -> None:
    fake = FakeKafkaProducer(fail_with=TimeoutError("no ack"))
    producer, metrics = producer_for("engager", fake)
    pending = producer.send(INTERACTIONS, "k", interaction())
    with pytest.raises(TimeoutError, match="no ack"):
        producer.wait([pending])
    assert produced(metrics, INTERACTIONS) is None


def test_wait_on_nothing_does_not_flush_and_close_closes() -> None:
    fake = FakeKafkaProducer()
    producer, _ = producer_for("engager", fake)
    producer.wait([])
    assert fake.flushed == 0
    producer.close()
    assert fake.closed


def test_send_raw_keeps_bytes_and_headers() -> None:
    fake = FakeKafkaProducer()
    producer, _ = producer_for("engager", fake)
    pending = producer.send_raw("any.dlq", b"k", b"\xff\x00", [("h", b"v")])
    assert pending.topic == "any.dlq"
    assert fake.sent == [
        {"topic": "any.dlq", "key": b"k", "value": b"\xff\x00", "headers": [("h", b"v")]}
    ]


def test_event_headers() -> None:
    assert dict(event_headers(interaction()))["event-type"] == b"legation.events.v1.Interaction"


def test_client_options_plaintext() -> None:
    options = client_options(CoreSettings(kafka_bootstrap_servers="a:1,b:2"))
    assert options == {
        "bootstrap_servers": ["a:1", "b:2"],
        "security_protocol": "PLAINTEXT",
        "request_timeout_ms": 30_000,
    }


def test_client_options_sasl_and_tls() -> None:
    settings = CoreSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="user",
        kafka_sasl_password="secret",
        kafka_ssl_cafile="/etc/ca.pem",
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_username"] == "user"
    assert options["sasl_plain_password"] == "secret"
    assert options["ssl_cafile"] == "/etc/ca.pem"


def incoming(offset: int, text: str) -> Incoming:
    envelope = mention()
    envelope.mention.text = text
    return Incoming(MENTIONS, 0, offset, b"key", envelope)


def test_per_event_rejects_only_the_invalid_event() -> None:
    def handle(event: Incoming) -> list[Outgoing]:
        if event.envelope.mention.text == "bad":
            raise InvalidEvent("text is bad")
        return [Outgoing(INTERACTIONS, f"k{event.offset}", interaction())]

    result = per_event(handle)([incoming(0, "ok"), incoming(1, "bad"), incoming(2, "ok")])
    assert isinstance(result, BatchResult)
    assert [out.key for out in result.outgoing] == ["k0", "k2"]
    assert [(r.incoming.offset, r.reason) for r in result.rejected] == [(1, "text is bad")]


def test_per_event_lets_transient_errors_fail_the_batch() -> None:
    def handle(event: Incoming) -> list[Outgoing]:
        raise ConnectionError("index down")

    with pytest.raises(ConnectionError):
        per_event(handle)([incoming(0, "ok")])


def test_dead_letter_headers() -> None:
    letter = DeadLetter(MENTIONS, 3, 17, b"k", b"v", "not a legation.events.v1.Envelope")
    assert dead_letter_headers(letter, "legation.engager.mentions") == [
        ("dlq-reason", b"not a legation.events.v1.Envelope"),
        ("dlq-source-topic", MENTIONS.encode()),
        ("dlq-source-partition", b"3"),
        ("dlq-source-offset", b"17"),
        ("dlq-consumer-group", b"legation.engager.mentions"),
    ]


def test_consumer_loop_refuses_topics_the_service_may_not_consume() -> None:
    catalog = default_catalog()
    fake = FakeKafkaProducer()
    producer, metrics = producer_for("publisher", fake)
    with pytest.raises(CatalogError, match=f"publisher may not consume {MENTIONS}"):
        ConsumerLoop(
            settings=CoreSettings(),
            service="publisher",
            group="g",
            topics=[MENTIONS],
            handler=per_event(lambda event: []),
            codec=EventCodec(catalog),
            producer=producer,
            metrics=metrics,
            stop=threading.Event(),
        )


@dataclass
class FakeJoin:
    is_done: bool


@dataclass
class FakeCoordinator:
    """The parts of kafka-python's ConsumerCoordinator that group_settling reads."""

    rejoin: bool = False
    _join_task: FakeJoin | None = None
    rejoin_requests: int = 0

    def need_rejoin(self) -> bool:
        return self.rejoin

    def request_rejoin(self) -> None:
        self.rejoin_requests += 1
        self.rejoin = True


@dataclass
class FakeConsumer:
    _coordinator: FakeCoordinator
    state: str = MemberState.STABLE

    def group_metadata(self) -> ConsumerGroupMetadata:
        return ConsumerGroupMetadata(group_id="g", state=self.state)


def test_a_stable_member_may_poll_without_waiting() -> None:
    consumer = FakeConsumer(FakeCoordinator())
    assert group_settling(cast(KafkaConsumer, consumer)) is False


def test_a_member_that_must_rejoin_or_is_joining_waits() -> None:
    assert group_settling(cast(KafkaConsumer, FakeConsumer(FakeCoordinator(rejoin=True))))
    joining = FakeConsumer(
        FakeCoordinator(_join_task=FakeJoin(is_done=False)), state=MemberState.REBALANCING
    )
    assert group_settling(cast(KafkaConsumer, joining))
    assert joining._coordinator.rejoin_requests == 0  # its join is under way


def test_a_join_finished_without_a_stable_member_is_repaired_by_a_rejoin() -> None:
    """kafka-python 3.0.12 can finish a join in the background and never apply it (see
    group_settling): the member stays rebalancing and every commit is refused."""
    stranded = FakeConsumer(
        FakeCoordinator(_join_task=FakeJoin(is_done=True)), state=MemberState.REBALANCING
    )
    assert group_settling(cast(KafkaConsumer, stranded))
    assert stranded._coordinator.rejoin_requests == 1
    assert stranded._coordinator.need_rejoin()  # the next waiting poll joins again


def test_the_kafka_python_internals_group_settling_reads_are_there() -> None:
    """An upgrade of kafka-python that renames them must fail here, not in production."""
    assert callable(KafkaConsumer.group_metadata)
    assert "state" in ConsumerGroupMetadata._fields
    assert callable(ConsumerCoordinator.need_rejoin)
    assert callable(ConsumerCoordinator.request_rejoin)
    assert "self._join_task" in inspect.getsource(BaseCoordinator.__init__)
    assert "self._coordinator" in inspect.getsource(KafkaConsumer.__init__)


@dataclass
class Call:
    active: bool = True
    remaining: float | None = None

    def is_active(self) -> bool:
        return self.active

    def time_remaining(self) -> float | None:
        return self.remaining


@pytest.mark.parametrize(
    ("call", "written"),
    [
        (Call(), True),  # no deadline
        (Call(remaining=3.0), True),
        (Call(remaining=0.0), False),  # the deadline has passed
        (Call(active=False, remaining=3.0), False),  # cancelled
    ],
)
def test_send_and_wait_writes_only_while_the_caller_waits(call: Call, written: bool) -> None:
    fake = FakeKafkaProducer()
    producer, _ = producer_for("engager", fake)
    with serving(call):
        if written:
            producer.send_and_wait([(INTERACTIONS, "c-1", interaction())])
        else:
            with pytest.raises(CallExpired):
                producer.send_and_wait([(INTERACTIONS, "c-1", interaction())])
    assert bool(fake.sent) is written
    producer.send_and_wait([(INTERACTIONS, "c-1", interaction())])  # outside a call: no check


def test_fits_agrees_with_the_exact_size_at_and_around_the_limit() -> None:
    headers = event_headers(interaction())
    for limit in (200, 1_000, 100_000):
        exact = record_size(b"key", b"v" * limit, headers)
        over = exact - limit  # the value length at which the record is exactly `limit`
        for length in (0, limit - over - 1, limit - over, limit - over + 1, limit):
            value = b"v" * max(length, 0)
            expected = record_size(b"key", value, headers) <= limit
            assert fits(b"key", value, headers, limit) is expected, (limit, length)


def test_raise_if_failed_reads_a_settled_kafka_future_and_waits_on_others() -> None:
    ok, failed = Future(), Future()
    ok.success("metadata")
    failed.failure(MessageSizeTooLargeError("too large"))
    raise_if_failed(ok, timeout=1)
    with pytest.raises(MessageSizeTooLargeError):
        raise_if_failed(failed, timeout=1)
    with pytest.raises(KeyError):
        raise_if_failed(FakeFuture(KeyError("from get")), timeout=1)  # no state: get() decides
