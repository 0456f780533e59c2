"""Faults no input may turn into a stopped consumer, against the Kafka stand-in: a record too
large to dead-letter whole, a handler whose event is too large to produce, undecodable
records on a state topic, and a member killed and restarted (its commits must be accepted
again within seconds). Each test has its own topics and group (see conftest)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from core_kafka_kit import EVERY_CLIENT, WHEN, Kit, wait_for
from prometheus_client import CollectorRegistry

from legation.events.v1 import engage_pb2, listen_pb2
from legation_core.codec import EventCodec, make_envelope
from legation_core.consumer import Incoming, Outgoing, per_event
from legation_core.kafka import EventProducer, record_size
from legation_core.metrics import Metrics
from legation_core.state import StateTable
from legation_devstack.processes import Process, spawn

pytestmark = [pytest.mark.integration, EVERY_CLIENT]

DLQ_TOTAL = "legation_events_dlq_total"
OVERSIZED = 1_048_300  # the value that put the engager and evaluator into a crash loop
MEMBER = Path(__file__).with_name("consumer_process.py")


def all_committed(kit: Kit) -> bool:
    end = kit.end_offsets(kit.in_topic)
    return kit.committed() == {p: offset for p, offset in end.items() if offset > 0}


def test_a_record_too_large_to_dead_letter_whole_goes_truncated_and_the_loop_goes_on(
    kit: Kit,
) -> None:
    handled: list[str] = []

    def handle(event: Incoming) -> list[Outgoing]:
        handled.append(event.envelope.event_id)
        return [kit.reply_to(event)]

    oversized = b"\xff" * OVERSIZED  # not protobuf: it goes to the DLQ
    kit.feed(oversized, key=b"oversized", partition=0)
    [valid] = kit.feed_mentions(range(1), partition=0)

    running = kit.start_loop(per_event(handle))
    [letter] = kit.read(f"{kit.in_topic}.dlq", 1)
    wait_for(lambda: handled == [valid.event_id], what="the valid event after it handled")
    wait_for(lambda: all_committed(kit), what="offsets committed past both")
    assert running.thread.is_alive()
    running.halt()

    assert kit.committed() == {0: 2}
    headers = dict(letter.headers)
    assert headers["dlq-reason"].decode().startswith("not a legation.events.v1.Envelope")
    assert headers["dlq-source-topic"] == kit.in_topic.encode()
    assert headers["dlq-source-partition"] == b"0"
    assert headers["dlq-source-offset"] == b"0"
    assert headers["dlq-consumer-group"] == kit.group.encode()
    assert headers["dlq-truncated"] == b"value"
    assert headers["dlq-original-size"] == str(OVERSIZED).encode()
    assert letter.key == b"oversized"
    assert 0 < len(letter.value) < OVERSIZED and oversized.startswith(letter.value)
    assert record_size(letter.key, letter.value, list(letter.headers)) <= 1_048_576
    assert running.value(DLQ_TOTAL, topic=kit.in_topic, group=kit.group) == 1


def test_an_event_too_large_to_produce_dead_letters_its_source_and_the_loop_goes_on(
    kit: Kit,
) -> None:
    """A handler whose output exceeds the producer's limit is a bug in the service, but one
    input must not stop the loop (it used to end it, and the service crash-looped)."""

    def echo_twice(event: Incoming) -> list[Outgoing]:
        reply = kit.reply_to(event)
        reply.envelope.interaction.text = event.envelope.mention.text * 2
        return [reply]

    kit.feed_mentions(range(2), partition=0)
    large = kit.mention(2, text="x" * 600_000)  # fits the topic; twice that does not
    kit.feed(EventCodec.encode(large), key=b"m-2", partition=0)
    kit.feed_mentions(range(3, 5), partition=0)

    running = kit.start_loop(per_event(echo_twice))
    outputs = kit.read(kit.out_topic, 4)
    [letter] = kit.read(f"{kit.in_topic}.dlq", 1)
    wait_for(lambda: all_committed(kit), what="offsets committed")
    assert running.thread.is_alive()
    running.halt()

    mentions = {kit.codec.decode(kit.out_topic, r.value).interaction.mention_id for r in outputs}
    assert mentions == {"m-0", "m-1", "m-3", "m-4"}
    assert letter.value == EventCodec.encode(large)
    reason = dict(letter.headers)["dlq-reason"].decode()
    assert reason.startswith("its events cannot be produced: RecordTooLarge: ")
    assert "LEGATION_KAFKA_MAX_REQUEST_BYTES (1048576)" in reason
    assert dict(letter.headers)["dlq-source-offset"] == b"2"
    assert kit.committed() == {0: 5}
    assert running.value(DLQ_TOTAL, topic=kit.in_topic, group=kit.group) == 1


def test_a_state_rebuild_dead_letters_undecodable_records_once(kit: Kit) -> None:
    garbage = b"\xff\x00 not protobuf"
    kit.feed(garbage, key=b"garbage", partition=0)
    [valid] = kit.feed_mentions(range(1), partition=0)
    wrong_payload = make_envelope(
        engage_pb2.Interaction(interaction_id="i-1"),
        event_id="wrong-1",
        source_service="engager",
        occurred_at=WHEN,
    )
    kit.feed(EventCodec.encode(wrong_payload), key=b"wrong", partition=1)

    def rebuilt() -> tuple[StateTable[listen_pb2.Mention], Metrics]:
        metrics = Metrics(CollectorRegistry())
        producer = EventProducer(kit.settings, "engager", kit.catalog, metrics)
        table: StateTable[listen_pb2.Mention] = StateTable(
            kit.in_topic,
            listen_pb2.Mention,
            lambda mention: mention.mention_id,
            lambda mention: 1,
            lambda mention: kit.mention(0),
        )
        try:
            table.rebuild(kit.settings, "engager", kit.codec, 30, dead_letters=producer)
        finally:
            producer.close()
        return table, metrics

    table, metrics = rebuilt()
    assert [mention.mention_id for mention in table.all()] == [valid.mention.mention_id]
    letters = kit.read(f"{kit.in_topic}.dlq", 2)
    by_key = {letter.key: dict(letter.headers) for letter in letters}
    assert sorted(by_key) == [b"garbage", b"wrong"]
    for headers in by_key.values():
        assert headers["dlq-consumer-group"] == b"legation.engager.state-rebuild"
        assert headers["dlq-source-topic"] == kit.in_topic.encode()
    assert by_key[b"garbage"]["dlq-source-offset"] == b"0"
    assert by_key[b"garbage"]["dlq-reason"].startswith(b"not a legation.events.v1.Envelope")
    assert by_key[b"wrong"]["dlq-reason"] == (
        f"{kit.in_topic} carries legation.events.v1.Mention, got payload interaction".encode()
    )
    assert [letter.value for letter in letters if letter.key == b"garbage"] == [garbage]
    assert (
        metrics.registry.get_sample_value(
            DLQ_TOTAL, {"topic": kit.in_topic, "group": "legation.engager.state-rebuild"}
        )
        == 2
    )

    # A restart rebuilds again: the records already in the DLQ are not sent twice.
    _, again = rebuilt()
    assert sum(kit.end_offsets(f"{kit.in_topic}.dlq").values()) == 2
    assert not again.registry.get_sample_value(
        DLQ_TOTAL, {"topic": kit.in_topic, "group": "legation.engager.state-rebuild"}
    )


def test_a_member_killed_and_restarted_has_its_commits_accepted_within_seconds(
    kit: Kit, tmp_path: Path
) -> None:
    """SIGKILL, a restart killed again while it joins (a crash loop), a last restart: its
    commits must be accepted within seconds. They were refused "during a rebalance" for
    minutes: the loop polled without waiting, and kafka-python never finished the rejoin."""
    feeding = threading.Event()
    fed: list[int] = []

    def feed() -> None:
        number = 0
        while not feeding.is_set():
            kit.feed_mentions(range(number, number + 10))
            number += 10
            fed.append(number)
            time.sleep(0.05)

    def member(n: int) -> Process:
        bootstrap, client = kit.settings.kafka_bootstrap_servers, kit.settings.kafka_client
        argv = [sys.executable, str(MEMBER), bootstrap, kit.unique, client]
        return spawn(f"member-{n}", argv, tmp_path)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    members: list[Process] = []
    try:
        members.append(member(0))
        wait_for(lambda: sum(kit.committed().values()) > 0, what="the first member's commits")
        members[-1].kill()
        members.append(member(1))
        time.sleep(1.5)
        members[-1].kill()
        members.append(member(2))
        restarted = time.monotonic()
        before = sum(kit.committed().values())
        wait_for(lambda: sum(kit.committed().values()) > before, 20, "a commit after restart")
        accepted_after = time.monotonic() - restarted
        time.sleep(3)  # commits must go on being accepted, not just once
        feeding.set()
        writer.join(10)
        wait_for(lambda: all_committed(kit), 10, "everything fed committed")
        assert members[-1].stop() == 0
    finally:
        feeding.set()
        for process in members:
            process.kill()
    log = members[-1].log_path.read_text()
    assert log.count("commit refused") <= 2, members[-1].log_tail()
    assert accepted_after < 10
    print(f"\ncommits accepted {accepted_after:.1f} s after the restart; {fed[-1]} records fed")
