"""Dead letters that fit the producer's limit: the pure sizing, and EventProducer.dead_letter
over an in-memory stand-in for KafkaProducer that refuses what a broker would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from prometheus_client import CollectorRegistry

from legation_core.catalog import default_catalog
from legation_core.config import CoreSettings
from legation_core.dlq import (
    MAX_REASON_CHARS,
    DeadLetter,
    dead_letter_headers,
    fit_dead_letter,
    without_value,
)
from legation_core.kafka import EventProducer, record_size
from legation_core.metrics import Metrics

MENTIONS = "legation.listen.mentions.v1"
DLQ = MENTIONS + ".dlq"
GROUP = "legation.engager.inbox"
LIMIT = 1_048_576  # kafka-python's default max_request_size, the setting's default
OVERSIZED = 1_048_300  # the value that put the engager and evaluator into a crash loop
CORRUPT = (
    "not a legation.events.v1.Envelope: Error parsing message with type "
    "'legation.events.v1.Envelope': Wire format was corrupt"
)  # the codec's reason for it


def letter(value: bytes | None, key: bytes | None = b"m-1", reason: str = "bad") -> DeadLetter:
    return DeadLetter(MENTIONS, 4, 1234, key, value, reason)


def headers_of(record_headers: list[tuple[str, bytes]]) -> dict[str, bytes]:
    return dict(record_headers)


def test_a_letter_that_fits_keeps_the_original_bytes() -> None:
    record = fit_dead_letter(letter(b"\xff\x00 not protobuf"), DLQ, GROUP, LIMIT, record_size)
    assert record.topic == DLQ
    assert record.value == b"\xff\x00 not protobuf"
    assert record.key == b"m-1"
    assert not record.truncated
    assert record.headers == dead_letter_headers(letter(b""), GROUP)


def test_the_oversized_record_is_cut_to_the_longest_value_that_fits() -> None:
    value = bytes(range(256)) * (OVERSIZED // 256) + b"x" * (OVERSIZED % 256)
    assert len(value) == OVERSIZED
    dead = letter(value, reason=CORRUPT)
    # The whole letter does not fit: this is what the producer refused before.
    assert record_size(dead.key, value, dead_letter_headers(dead, GROUP)) > LIMIT

    record = fit_dead_letter(dead, DLQ, GROUP, LIMIT, record_size)

    assert record.truncated
    assert record.value is not None and value.startswith(record.value)
    assert record_size(record.key, record.value, record.headers) <= LIMIT
    # The longest prefix: one byte more would not fit.
    assert record_size(record.key, value[: len(record.value) + 1], record.headers) > LIMIT
    assert len(record.value) > OVERSIZED - 400  # only the headers' room was given up
    headers = headers_of(record.headers)
    assert headers["dlq-truncated"] == b"value"
    assert headers["dlq-original-size"] == str(OVERSIZED).encode()
    assert headers["dlq-reason"] == dead.reason.encode()
    assert headers["dlq-source-topic"] == MENTIONS.encode()
    assert headers["dlq-source-partition"] == b"4"
    assert headers["dlq-source-offset"] == b"1234"
    assert headers["dlq-consumer-group"] == GROUP.encode()
    assert record.key == b"m-1"


@pytest.mark.parametrize("limit", [65_536, 500_000, LIMIT])
def test_the_limit_is_the_producers_setting(limit: int) -> None:
    record = fit_dead_letter(letter(b"v" * LIMIT), DLQ, GROUP, limit, record_size)
    assert record.value is not None
    assert record_size(record.key, record.value, record.headers) <= limit
    assert record_size(record.key, record.value + b"v", record.headers) > limit


def test_a_key_too_large_for_any_value_is_cut_as_well() -> None:
    key = b"k" * (LIMIT + 10)
    record = fit_dead_letter(letter(b"value", key=key), DLQ, GROUP, LIMIT, record_size)
    headers = headers_of(record.headers)
    assert headers["dlq-truncated"] == b"key,value"
    assert headers["dlq-original-key-size"] == str(LIMIT + 10).encode()
    assert headers["dlq-original-size"] == b"5"
    assert record.key is not None and key.startswith(record.key)
    assert record.value == b""
    assert record_size(record.key, record.value, record.headers) <= LIMIT


def test_headers_alone_over_the_limit_are_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="headers alone exceed 200 bytes"):
        fit_dead_letter(letter(b"v" * 1000, key=None), DLQ, GROUP, 200, record_size)


def test_the_reason_is_capped() -> None:
    headers = headers_of(dead_letter_headers(letter(b"v", reason="r" * 5000), GROUP))
    assert headers["dlq-reason"] == b"r" * MAX_REASON_CHARS


def test_without_value_keeps_coordinates_and_marks() -> None:
    whole = fit_dead_letter(letter(b"v" * 100), DLQ, GROUP, LIMIT, record_size)
    bare = without_value(whole, 100)
    headers = headers_of(bare.headers)
    assert bare.value == b""
    assert bare.truncated
    assert headers["dlq-truncated"] == b"value"
    assert headers["dlq-original-size"] == b"100"
    assert headers["dlq-source-offset"] == b"1234"
    cut = fit_dead_letter(letter(b"v" * (LIMIT + 1)), DLQ, GROUP, LIMIT, record_size)
    assert without_value(cut, LIMIT + 1).headers == cut.headers  # marked once


class Refused:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> str:
        if self.error is not None:
            raise self.error
        return "metadata"


@dataclass
class BrokerLikeProducer:
    """Refuses, like kafka-python's send(), a record over max_request_size; and, like a
    broker with a lower message.max.bytes, fails the future of a value over ``broker_limit``."""

    max_request_size: int = LIMIT
    broker_limit: int | None = None
    transient: bool = False
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send(self, topic: str, **record: Any) -> Refused:
        size = record_size(record["key"], record["value"], record["headers"])
        if size > self.max_request_size:
            raise MessageSizeTooLargeError(f"The message is {size} bytes")
        self.sent.append({"topic": topic, **record})
        if self.transient:
            return Refused(KafkaTimeoutError("no ack"))
        if self.broker_limit is not None and len(record["value"] or b"") > self.broker_limit:
            return Refused(MessageSizeTooLargeError())
        return Refused(None)

    def flush(self, timeout: float | None = None) -> None:
        pass


def producer_over(fake: BrokerLikeProducer) -> tuple[EventProducer, Metrics]:
    metrics = Metrics(CollectorRegistry())
    producer = EventProducer(CoreSettings(), "engager", default_catalog(), metrics, producer=fake)
    return producer, metrics


def dead_lettered(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "legation_events_dlq_total", {"topic": MENTIONS, "group": GROUP}
    )
    return value or 0.0


def test_dead_letter_sends_an_oversized_record_truncated() -> None:
    fake = BrokerLikeProducer()
    producer, metrics = producer_over(fake)
    producer.dead_letter([letter(b"\xff" * OVERSIZED, reason=CORRUPT), letter(b"small")], GROUP)
    big, small = fake.sent
    assert big["topic"] == DLQ
    assert headers_of(big["headers"])["dlq-original-size"] == str(OVERSIZED).encode()
    assert 0 < len(big["value"]) < OVERSIZED
    assert small["value"] == b"small"
    assert "dlq-truncated" not in headers_of(small["headers"])
    assert dead_lettered(metrics) == 2


def test_a_letter_the_broker_refuses_goes_again_without_its_value() -> None:
    fake = BrokerLikeProducer(broker_limit=500_000)
    producer, metrics = producer_over(fake)
    producer.dead_letter([letter(b"\xff" * 600_000)], GROUP)
    first, second = fake.sent
    assert len(first["value"]) == 600_000
    assert second["value"] == b""
    assert headers_of(second["headers"])["dlq-original-size"] == b"600000"
    assert headers_of(second["headers"])["dlq-source-offset"] == b"1234"
    assert dead_lettered(metrics) == 1


def test_dead_letter_raises_when_not_acknowledged_and_counts_nothing() -> None:
    producer, metrics = producer_over(BrokerLikeProducer(transient=True))
    with pytest.raises(KafkaTimeoutError):
        producer.dead_letter([letter(b"v")], GROUP)
    assert dead_lettered(metrics) == 0


def test_dead_letter_of_nothing_sends_nothing() -> None:
    fake = BrokerLikeProducer()
    producer, _ = producer_over(fake)
    producer.dead_letter([], GROUP)
    assert fake.sent == []
