"""ConsumerLoop against the Kafka stand-in: decode → handle → produce → commit, DLQ,
transient failures and stopping. Each test has its own topics and group (see conftest)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from core_kafka_kit import EVERY_CLIENT, PARTITIONS, WHEN, Kit, wait_for

from legation.events.v1 import engage_pb2
from legation_core.codec import EventCodec, InvalidEvent, make_envelope
from legation_core.consumer import BatchResult, Incoming, Outgoing, TransientError, per_event

pytestmark = [pytest.mark.integration, EVERY_CLIENT]

DLQ_TOTAL = "legation_events_dlq_total"
FAILURES_TOTAL = "legation_handler_failures_total"


def all_committed(kit: Kit) -> bool:
    end = kit.end_offsets(kit.in_topic)
    return kit.committed() == {p: offset for p, offset in end.items() if offset > 0}


def test_events_are_handled_produced_and_committed_once(kit: Kit) -> None:
    handled: list[str] = []

    def handle(event: Incoming) -> list[Outgoing]:
        handled.append(event.envelope.event_id)
        return [kit.reply_to(event)]

    sent = kit.feed_mentions(range(12))
    running = kit.start_loop(per_event(handle))
    records = kit.read(kit.out_topic, 12)
    wait_for(lambda: all_committed(kit), what="offsets committed")
    group = kit.group
    wait_for(
        lambda: all(
            running.metrics.registry.get_sample_value(
                "legation_consumer_lag",
                {"topic": kit.in_topic, "partition": str(p), "group": group},
            )
            == 0
            for p in range(PARTITIONS)
        ),
        what="lag 0",
    )
    running.halt()

    assert sorted(handled) == sorted(envelope.event_id for envelope in sent)
    assert kit.committed() == {0: 6, 1: 6}
    assert sum(kit.end_offsets(kit.out_topic).values()) == 12
    outputs = [kit.codec.decode(kit.out_topic, record.value) for record in records]
    assert sorted(o.interaction.mention_id for o in outputs) == sorted(f"m-{n}" for n in range(12))
    assert {o.source_service for o in outputs} == {"engager"}
    for record, output in zip(records, outputs, strict=True):
        assert record.key == output.interaction.mention_id.encode()
        assert dict(record.headers)["event-type"] == b"legation.events.v1.Interaction"
    assert running.value("legation_events_consumed_total", topic=kit.in_topic, group=group) == 12
    assert running.value("legation_events_produced_total", topic=kit.out_topic) == 12
    assert running.value(DLQ_TOTAL, topic=kit.in_topic, group=group) == 0
    assert running.value("legation_handler_seconds_count", group=group) >= 1

    # A restart of the same group starts after the committed offsets: only new events come.
    again: list[str] = []

    def handle_again(event: Incoming) -> list[Outgoing]:
        again.append(event.envelope.event_id)
        return [kit.reply_to(event)]

    restarted = kit.start_loop(per_event(handle_again))
    fresh = [kit.feed_mentions(range(100 + p, 101 + p), partition=p)[0] for p in range(PARTITIONS)]
    wait_for(lambda: len(again) >= PARTITIONS, what="the new events handled")
    wait_for(lambda: all_committed(kit), what="offsets committed after restart")
    restarted.halt()
    assert sorted(again) == sorted(envelope.event_id for envelope in fresh)
    assert kit.committed() == {0: 7, 1: 7}
    assert sum(kit.end_offsets(kit.out_topic).values()) == 12 + PARTITIONS


def test_bad_records_go_to_the_dlq_and_the_loop_keeps_going(kit: Kit) -> None:
    handled: list[str] = []

    def handle(event: Incoming) -> list[Outgoing]:
        handled.append(event.envelope.event_id)
        return [kit.reply_to(event)]

    garbage = b"\xff\x00 this is not protobuf"
    wrong_payload = EventCodec.encode(
        make_envelope(
            engage_pb2.Interaction(interaction_id="i-1"),
            event_id="wrong-1",
            source_service="engager",
            occurred_at=WHEN,
        )
    )
    kit.feed(garbage, key=b"garbage-key")
    kit.feed(wrong_payload, key=b"wrong-key")
    [valid] = kit.feed_mentions(range(1), partition=0)

    running = kit.start_loop(per_event(handle))
    letters = kit.read(f"{kit.in_topic}.dlq", 2)
    wait_for(lambda: handled == [valid.event_id], what="the valid event handled")
    wait_for(lambda: all_committed(kit), what="offsets committed")
    running.halt()

    assert kit.committed() == {0: 3}
    by_offset = {int(dict(letter.headers)["dlq-source-offset"]): letter for letter in letters}
    assert sorted(by_offset) == [0, 1]
    first, second = by_offset[0], by_offset[1]
    assert first.value == garbage
    assert first.key == b"garbage-key"
    assert second.value == wrong_payload
    assert second.key == b"wrong-key"
    first_headers, second_headers = dict(first.headers), dict(second.headers)
    assert first_headers["dlq-reason"].decode().startswith("not a legation.events.v1.Envelope")
    assert second_headers["dlq-reason"].decode() == (
        f"{kit.in_topic} carries legation.events.v1.Mention, got payload interaction"
    )
    for headers in (first_headers, second_headers):
        assert headers["dlq-source-topic"] == kit.in_topic.encode()
        assert headers["dlq-source-partition"] == b"0"
        assert headers["dlq-consumer-group"] == kit.group.encode()
    assert running.value(DLQ_TOTAL, topic=kit.in_topic, group=kit.group) == 2
    assert sum(kit.end_offsets(kit.out_topic).values()) == 1


def test_handler_rejecting_one_event_dead_letters_only_that_one(kit: Kit) -> None:
    def handle(event: Incoming) -> list[Outgoing]:
        if event.envelope.mention.text == "reject me":
            raise InvalidEvent("mention text is not acceptable")
        return [kit.reply_to(event)]

    kit.feed_mentions(range(2), partition=0)
    rejected = kit.mention(2, text="reject me")
    kit.feed(EventCodec.encode(rejected), key=b"m-2", partition=0)
    kit.feed_mentions(range(3, 5), partition=0)

    running = kit.start_loop(per_event(handle))
    outputs = kit.read(kit.out_topic, 4)
    [letter] = kit.read(f"{kit.in_topic}.dlq", 1)
    wait_for(lambda: all_committed(kit), what="offsets committed")
    running.halt()

    assert sorted(
        kit.codec.decode(kit.out_topic, r.value).interaction.mention_id for r in outputs
    ) == [
        "m-0",
        "m-1",
        "m-3",
        "m-4",
    ]
    assert letter.value == EventCodec.encode(rejected)
    assert letter.key == b"m-2"
    headers = dict(letter.headers)
    assert headers["dlq-reason"] == b"mention text is not acceptable"
    assert headers["dlq-source-offset"] == b"2"
    assert sum(kit.end_offsets(f"{kit.in_topic}.dlq").values()) == 1
    assert running.value(DLQ_TOTAL, topic=kit.in_topic, group=kit.group) == 1
    assert kit.committed() == {0: 5}


def test_a_poison_event_that_breaks_the_handler_is_dead_lettered_alone(kit: Kit) -> None:
    """A handler bug on one event (not a transient failure) must neither stall the partition
    nor lose its neighbours: the batch is re-run event by event and only that one is DLQ'd."""
    attempts: list[str] = []

    def handle(event: Incoming) -> list[Outgoing]:
        attempts.append(event.envelope.event_id)
        if event.envelope.mention.text == "poison":
            raise ValueError("cannot handle this mention")
        return [kit.reply_to(event)]

    kit.feed_mentions(range(2), partition=0)
    poison = kit.mention(2, text="poison")
    kit.feed(EventCodec.encode(poison), key=b"m-2", partition=0)
    kit.feed_mentions(range(3, 5), partition=0)

    running = kit.start_loop(per_event(handle))
    outputs = kit.read(kit.out_topic, 4)
    [letter] = kit.read(f"{kit.in_topic}.dlq", 1)
    wait_for(lambda: all_committed(kit), what="offsets committed")
    running.halt()

    mentions = sorted(
        kit.codec.decode(kit.out_topic, r.value).interaction.mention_id for r in outputs
    )
    assert mentions == ["m-0", "m-1", "m-3", "m-4"]
    assert letter.value == EventCodec.encode(poison)
    assert dict(letter.headers)["dlq-reason"] == (
        b"handler failed: ValueError: cannot handle this mention"
    )
    assert running.value(DLQ_TOTAL, topic=kit.in_topic, group=kit.group) == 1
    assert running.value("legation_handler_failures_total", group=kit.group) == 0
    assert kit.committed() == {0: 5}


def test_transient_failure_is_retried_and_nothing_is_committed_before_success(kit: Kit) -> None:
    calls = 0
    failing = threading.Event()
    proceed = threading.Event()
    handled: list[str] = []

    def handler(batch: Sequence[Incoming]) -> BatchResult:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransientError("index unavailable (1)")
        if calls == 2:
            failing.set()
            proceed.wait(20)  # the test looks at the committed offsets meanwhile
            raise TransientError("index unavailable (2)")
        handled.extend(event.envelope.event_id for event in batch)
        return BatchResult(outgoing=[kit.reply_to(event) for event in batch])

    sent = kit.feed_mentions(range(6))
    running = kit.start_loop(handler)
    wait_for(failing.is_set, what="the second failure")
    try:
        assert kit.committed() == {}
        assert sum(kit.end_offsets(kit.out_topic).values()) == 0
        assert running.value(FAILURES_TOTAL, group=kit.group) == 1
    finally:
        proceed.set()
    records = kit.read(kit.out_topic, 6)
    wait_for(lambda: all_committed(kit), what="offsets committed")
    running.halt()

    assert sorted(handled) == sorted(envelope.event_id for envelope in sent)  # once each
    assert sum(kit.end_offsets(kit.out_topic).values()) == 6
    assert len({record.value for record in records}) == 6
    assert running.value(FAILURES_TOTAL, group=kit.group) == 2
    assert kit.committed() == {0: 3, 1: 3}


def test_records_arriving_on_other_partitions_during_a_retry_are_not_lost(kit: Kit) -> None:
    handled: list[str] = []
    fail_until: list[float] = []

    def handler(batch: Sequence[Incoming]) -> BatchResult:
        if not fail_until:
            fail_until.append(time.monotonic() + 1.5)
            # While partition 0's batch fails, an event arrives on partition 1.
            kit.feed(EventCodec.encode(kit.mention(1)), key=b"m-1", partition=1)
        if time.monotonic() < fail_until[0]:
            raise TransientError("index unavailable")
        handled.extend(event.envelope.event_id for event in batch)
        return BatchResult(outgoing=[kit.reply_to(event) for event in batch])

    kit.feed_mentions(range(1), partition=0)
    running = kit.start_loop(handler)
    wait_for(lambda: len(handled) >= 2, timeout=20, what="both events handled")
    wait_for(lambda: all_committed(kit), what="offsets committed")
    running.halt()
    assert sorted(handled) == sorted([kit.mention(0).event_id, kit.mention(1).event_id])
    assert kit.committed() == {0: 1, 1: 1}
    assert running.value(FAILURES_TOTAL, group=kit.group) >= 2


def test_stop_while_idle_returns_promptly(kit: Kit) -> None:
    running = kit.start_loop(per_event(lambda event: [kit.reply_to(event)]))
    wait_for(running.has_polled, what="the first poll")
    assert running.loop.heartbeat.age() < 5
    took = running.halt()
    assert took < 3
    assert kit.committed() == {}


def test_stop_during_retries_hands_the_batch_back(kit: Kit) -> None:
    def broken(batch: Sequence[Incoming]) -> BatchResult:
        raise ConnectionError("index unavailable")

    sent = kit.feed_mentions(range(4))
    running = kit.start_loop(broken)
    wait_for(lambda: running.value(FAILURES_TOTAL, group=kit.group) >= 2, what="retries")
    took = running.halt()
    assert took < 5
    assert kit.committed() == {}
    assert sum(kit.end_offsets(kit.out_topic).values()) == 0

    handled: list[str] = []

    def handle(event: Incoming) -> list[Outgoing]:
        handled.append(event.envelope.event_id)
        return [kit.reply_to(event)]

    restarted = kit.start_loop(per_event(handle))
    wait_for(lambda: len(handled) >= 4, what="the handed-back events handled")
    wait_for(lambda: all_committed(kit), what="offsets committed")
    restarted.halt()
    assert sorted(handled) == sorted(envelope.event_id for envelope in sent)
    assert sum(kit.end_offsets(kit.out_topic).values()) == 4
