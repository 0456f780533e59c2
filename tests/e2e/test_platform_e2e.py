"""End to end: the four services as separate processes on the stand-in broker and index.

One stack for the module (starting it takes seconds); every test uses its own campaign so
its counts are exact whatever ran before it.
"""

from __future__ import annotations

import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import grpc
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from opensearchpy import OpenSearch

from legation.engager.v1 import engager_service_pb2 as engager_pb
from legation.engager.v1 import engager_service_pb2_grpc as engager_grpc
from legation.events.v1 import envelope_pb2, evaluate_pb2, listen_pb2, publish_pb2
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation.listener.v1 import listener_service_pb2_grpc as listener_grpc
from legation_core.catalog import default_catalog
from legation_core.codec import make_envelope
from legation_core.ids import stable_id
from legation_devstack.bench_latency import probe_feed, track_probe
from legation_devstack.demo import CAMPAIGN_ID, run_demo
from legation_devstack.lag import consumed_by, service_group, uncommitted
from legation_devstack.processes import wait_until
from legation_devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

MENTIONS = "legation.listen.mentions.v1"
REVIEWS = "legation.evaluate.reviews.v1"
BAD_INPUT_KEYS = (b"garbage", b"wrong", b"oversized")
# A value that fits the producer's 1 MiB limit alone but not with the DLQ headers: it put
# the engager and the evaluator into a crash loop.
OVERSIZED = 1_048_300
INDEX = "legation-events-v1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("stack"),
        # Small batches make commits frequent, so a crash lands between commits.
        extra_env={"LEGATION_CONSUMER_MAX_BATCH": "20", "LEGATION_LISTENER_POLL_SECONDS": "3600"},
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def index(stack: Stack) -> OpenSearch:
    assert stack.opensearch is not None
    return OpenSearch(hosts=[stack.opensearch.url], timeout=30)


def count(index: OpenSearch, suffix: str, campaign_id: str, **terms: str) -> int:
    index.indices.refresh(index=f"{INDEX}-*")
    filters: list[dict[str, Any]] = [{"term": {"campaign_ids": campaign_id}}]
    filters += [{"term": {field: value}} for field, value in terms.items()]
    response = index.count(
        index=f"{INDEX}-{suffix}*", body={"query": {"bool": {"filter": filters}}}
    )
    return int(response["count"])


def test_demo_campaign_flows_through_all_four_services(stack: Stack, index: OpenSearch) -> None:
    started = time.monotonic()
    card = run_demo(stack)
    elapsed = time.monotonic() - started

    # The fixtures hold 8 items; 6 match the issue's keywords, 4 of them ask a question.
    assert card.mentions == 6
    assert card.conversations_opened == 4
    assert card.publications == 1
    assert card.replies == 1
    assert card.feedback == 1
    assert card.events_by_service["listener"] == 7  # 6 mentions + the tracked issue
    assert card.events_by_service["publisher"] == 1
    assert card.events_by_service["engager"] == 5  # 4 opened + 1 reply
    assert card.events_by_service["evaluator"] >= 2  # campaign + feedback (+ snapshots)
    # en, fr and es each have a sentiment model, and each fixture item is clear enough.
    assert card.mentions_with_sentiment == 6
    assert sum(bucket.count for bucket in card.mentions_per_hour) == 6
    statuses = {objective.objective_id: objective.status for objective in card.objectives}
    assert statuses["conversation"] == 3  # ACHIEVED: 6 mentions ≥ 5

    assert count(index, "mention", CAMPAIGN_ID) == 6
    assert count(index, "interaction", CAMPAIGN_ID, **{"interaction.kind": "KIND_OPENED"}) == 4
    assert count(index, "publication", CAMPAIGN_ID) == 1

    site = feedparser.parse(stack.site_feed.read_bytes())
    assert site.bozo == 0
    assert [entry.title for entry in site.entries] == ["Our position on the plastics treaty"]
    print(f"\ndemo campaign settled in {elapsed:.1f} s")


def audit_documents(index: OpenSearch, **terms: str) -> list[dict[str, Any]]:
    index.indices.refresh(index=f"{INDEX}-*")
    filters = [{"term": {field: value}} for field, value in terms.items()]
    response = index.search(
        index=f"{INDEX}-audit_record*",
        body={"query": {"bool": {"filter": filters}}, "size": 100},
    )
    return [hit["_source"] for hit in response["hits"]["hits"]]


def test_commands_and_refusals_are_audited_into_the_index(stack: Stack, index: OpenSearch) -> None:
    trace = uuid.uuid4().hex
    metadata = (("x-trace-id", trace),)
    with stack.channel("listener", user="viewer") as channel:
        with pytest.raises(grpc.RpcError) as refused:
            listener_grpc.ListenerServiceStub(channel).DeleteIssue(
                listener_pb.DeleteIssueRequest(issue_id="plastics-treaty"),
                metadata=metadata,
                timeout=10,
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with stack.channel("engager", user=None) as channel:
        with pytest.raises(grpc.RpcError) as outsider:
            engager_grpc.EngagerServiceStub(channel).ListConversations(
                engager_pb.ListConversationsRequest(campaign_id=CAMPAIGN_ID),
                metadata=metadata,
                timeout=10,
            )
        assert outsider.value.code() == grpc.StatusCode.UNAUTHENTICATED

    wait_until(lambda: len(audit_documents(index, trace_id=trace)) == 2, 60, "audit records")
    found = {
        doc["source_service"]: doc["audit_record"] for doc in audit_documents(index, trace_id=trace)
    }
    assert found["listener"]["user"] == "viewer"
    assert found["listener"]["outcome"] == "OUTCOME_DENIED"
    assert found["listener"]["status_code"] == "PERMISSION_DENIED"
    assert found["listener"]["resource_ids"] == {"issue_id": "plastics-treaty"}
    assert found["engager"]["user"] == ""
    assert found["engager"]["status_code"] == "UNAUTHENTICATED"
    # The demo's commands (run by the test above as campaign-owner) are audited as granted.
    granted = audit_documents(
        index, **{"audit_record.user": "campaign-owner", "audit_record.outcome": "OUTCOME_GRANTED"}
    )
    methods = {doc["audit_record"]["method"].rsplit("/", 1)[1] for doc in granted}
    assert {"CreateCampaign", "TrackIssue", "CreatePost", "ReplyToConversation"} <= methods


def test_every_record_respects_the_catalog(stack: Stack) -> None:
    assert stack.kafka is not None
    catalog = default_catalog()
    consumer = KafkaConsumer(
        bootstrap_servers=stack.kafka.bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    seen = 0
    try:
        for spec in catalog:
            partitions = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            end = consumer.end_offsets(partitions)
            while any(consumer.position(tp) < end[tp] for tp in partitions):
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        if record.key in BAD_INPUT_KEYS:
                            continue  # the bad-input test's deliberate garbage
                        envelope = envelope_pb2.Envelope.FromString(record.value)
                        assert envelope.WhichOneof("payload") == spec.payload_field, spec.name
                        assert envelope.event_type == spec.message_type, spec.name
                        assert envelope.source_service in spec.producers, (spec.name, envelope)
                        seen += 1
    finally:
        consumer.close()
    assert seen > 0

    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap_servers)
    try:
        groups = [g["group_id"] if isinstance(g, dict) else g[0] for g in admin.list_groups()]
        ours = [group for group in groups if group.startswith("legation.")]
        assert ours, groups
        for group in ours:
            service = group.split(".")[1]
            offsets = admin.list_group_offsets({group: None})[group]
            for tp in offsets:
                assert service in catalog.topic(tp.topic).consumers, (group, tp.topic)
    finally:
        admin.close()


def _mention_envelope(campaign_id: str, number: int) -> envelope_pb2.Envelope:
    mention_id = stable_id("e2e", campaign_id, str(number))
    mention = listen_pb2.Mention(
        mention_id=mention_id,
        source="rss",
        source_url="https://feeds.example.org/e2e",
        item_id=f"item-{number}",
        title=f"Question {number}",
        text=f"What does the plastics treaty mean for town {number}?",
        language="en",
        campaign_ids=[campaign_id],
    )
    return make_envelope(
        mention,
        event_id=mention_id,
        source_service="listener",
        occurred_at=datetime.now(UTC),
        campaign_id=campaign_id,
        issue_id="plastics-treaty",
    )


def _producer(stack: Stack) -> KafkaProducer:
    assert stack.kafka is not None
    return KafkaProducer(bootstrap_servers=stack.kafka.bootstrap_servers, acks="all")


def test_bad_input_goes_to_the_dlq_and_consumers_keep_going(
    stack: Stack, index: OpenSearch
) -> None:
    assert stack.kafka is not None
    campaign_id = f"bad-input-{uuid.uuid4().hex[:8]}"
    wrong_payload = make_envelope(
        publish_pb2.Publication(publication_id="p1"),
        event_id="not-a-mention",
        source_service="publisher",
        occurred_at=datetime.now(UTC),
    )
    wrong_payload.event_type = "legation.events.v1.Mention"  # lies about its payload
    garbage = b"\xff\x00 definitely not protobuf \x13\x37"
    producer = _producer(stack)
    producer.send(MENTIONS, key=b"garbage", value=garbage)
    producer.send(MENTIONS, key=b"wrong", value=wrong_payload.SerializeToString())
    producer.send(
        MENTIONS, key=b"good", value=_mention_envelope(campaign_id, 1).SerializeToString()
    )
    producer.flush()
    producer.close()

    # Both consumer groups of the topic carry on past the bad records.
    wait_until(lambda: count(index, "mention", campaign_id) == 1, 60, "good mention indexed")
    wait_until(
        lambda: count(index, "interaction", campaign_id) == 1, 60, "good mention's conversation"
    )

    letters = _read_all(stack, MENTIONS + ".dlq")
    ours = [r for r in letters if r.key in (b"garbage", b"wrong")]
    reasons = {
        (r.key, dict(r.headers)["dlq-consumer-group"].decode()): dict(r.headers)[
            "dlq-reason"
        ].decode()
        for r in ours
    }
    groups = {"legation.engager.inbox", "legation.evaluator.indexer"}
    assert {group for _, group in reasons} == groups
    for group in groups:
        assert "not a legation.events.v1.Envelope" in reasons[(b"garbage", group)]
        assert "payload publication" in reasons[(b"wrong", group)]
    assert {r.value for r in ours if r.key == b"garbage"} == {garbage}

    metrics = _metrics(stack, "engager")
    assert (
        'legation_events_dlq_total{group="legation.engager.inbox",topic="legation.listen.mentions.v1"}'
        in metrics
    )


def test_a_record_of_a_megabyte_goes_to_the_dlq_truncated_and_consumers_keep_running(
    stack: Stack, index: OpenSearch
) -> None:
    campaign_id = f"oversized-{uuid.uuid4().hex[:8]}"
    pids = {name: stack.services[name].pid for name in ("engager", "evaluator")}
    oversized = b"\xff" * OVERSIZED  # not protobuf
    review = evaluate_pb2.AfterActionReview(
        review_id=stable_id("e2e-review", campaign_id), campaign_id=campaign_id, author="e2e"
    )
    valid_review = make_envelope(
        review,
        event_id=review.review_id,
        source_service="evaluator",
        occurred_at=datetime.now(UTC),
        campaign_id=campaign_id,
    )
    producer = _producer(stack)
    sources = {}
    for topic, valid in (
        (MENTIONS, _mention_envelope(campaign_id, 1)),
        (REVIEWS, valid_review),
    ):
        # The valid record comes after the oversized one on the same partition.
        sent = producer.send(topic, key=b"oversized", value=oversized, partition=0)
        sources[topic] = sent.get(30)
        producer.send(topic, key=b"valid", value=valid.SerializeToString(), partition=0).get(30)
    producer.close()

    wait_until(lambda: count(index, "mention", campaign_id) == 1, 60, "mention after it indexed")
    wait_until(lambda: count(index, "interaction", campaign_id) == 1, 60, "its conversation opened")
    wait_until(lambda: count(index, "after_action_review", campaign_id) == 1, 60, "review indexed")
    expected = {
        MENTIONS: {"legation.engager.inbox", "legation.evaluator.indexer"},
        REVIEWS: {"legation.evaluator.indexer"},
    }
    for topic, groups in expected.items():
        letters = [
            dict(letter.headers) | {"value": letter.value}
            for letter in _read_all(stack, topic + ".dlq")
            if dict(letter.headers)["dlq-source-offset"] == str(sources[topic].offset).encode()
            and dict(letter.headers)["dlq-source-partition"] == b"0"
        ]
        assert {letter["dlq-consumer-group"].decode() for letter in letters} == groups, topic
        for letter in letters:
            assert letter["dlq-reason"].startswith(b"not a legation.events.v1.Envelope")
            assert letter["dlq-source-topic"] == topic.encode()
            assert letter["dlq-truncated"] == b"value"
            assert letter["dlq-original-size"] == str(OVERSIZED).encode()
            assert oversized.startswith(letter["value"]) and len(letter["value"]) < OVERSIZED
    for name, pid in pids.items():
        assert stack.services[name].pid == pid and stack.services[name].alive(), name
        stack.wait_healthy(name, timeout=10)


def _read_all(stack: Stack, topic: str) -> list[Any]:
    assert stack.kafka is not None
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=stack.kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def _metrics(stack: Stack, service: str) -> str:
    url = f"http://127.0.0.1:{stack.ports[service].metrics}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


@pytest.mark.parametrize("victim", ["engager", "evaluator"])
def test_a_crash_mid_stream_loses_nothing_and_counts_nothing_twice(
    stack: Stack, index: OpenSearch, victim: str
) -> None:
    campaign_id = f"crash-{victim}-{uuid.uuid4().hex[:8]}"
    total = 300
    producer = _producer(stack)

    def stream() -> None:
        for number in range(total):
            producer.send(
                MENTIONS,
                key=str(number).encode(),
                value=_mention_envelope(campaign_id, number).SerializeToString(),
            )
            if number % 20 == 19:
                producer.flush()
                time.sleep(0.1)
        producer.flush()

    writer = threading.Thread(target=stream)
    writer.start()
    wait_until(
        lambda: count(index, "interaction", campaign_id) >= 20, 60, "first conversations", 0.05
    )
    stack.kill_service(victim)
    at_kill = count(index, "interaction", campaign_id)
    writer.join()
    producer.close()
    assert at_kill < total  # the crash happened mid-stream
    stack.start_service(victim)

    wait_until(
        lambda: count(index, "interaction", campaign_id) == total,
        120,
        "all conversations indexed",
        0.5,
    )
    wait_until(
        lambda: count(index, "mention", campaign_id) == total, 60, "all mentions indexed", 0.5
    )
    # Anything counted twice would be indexed by the time the engager and the indexer have
    # committed every record written so far: the counts are final then.
    assert stack.kafka is not None
    bootstrap = stack.kafka.bootstrap_servers
    wait_until(
        lambda: (
            uncommitted(bootstrap, service_group("engager", "inbox"), [MENTIONS]) == 0
            and uncommitted(
                bootstrap, service_group("evaluator", "indexer"), consumed_by("evaluator")
            )
            == 0
        ),
        60,
        "the engager and the indexer have committed every record",
        0.5,
    )
    assert count(index, "mention", campaign_id) == total
    assert count(index, "interaction", campaign_id) == total
    with stack.channel("engager") as channel:
        inbox = engager_grpc.EngagerServiceStub(channel).ListConversations(
            engager_pb.ListConversationsRequest(campaign_id=campaign_id), timeout=10
        )
    assert len(inbox.conversations) == total


def test_a_broker_restart_loses_nothing_acknowledged(stack: Stack, index: OpenSearch) -> None:
    campaign_id = f"broker-restart-{uuid.uuid4().hex[:8]}"
    before, after = range(0, 60), range(60, 120)
    producer = _producer(stack)
    for number in before:
        envelope = _mention_envelope(campaign_id, number)
        producer.send(MENTIONS, key=str(number).encode(), value=envelope.SerializeToString())
    producer.flush()
    producer.close()
    wait_until(lambda: count(index, "interaction", campaign_id) >= 1, 60, "first conversation")

    stack.restart_kafka()

    producer = _producer(stack)
    for number in after:
        envelope = _mention_envelope(campaign_id, number)
        producer.send(MENTIONS, key=str(number).encode(), value=envelope.SerializeToString())
    producer.flush()
    producer.close()
    total = len(before) + len(after)
    wait_until(
        lambda: count(index, "interaction", campaign_id) == total, 120, "all conversations", 0.5
    )
    wait_until(lambda: count(index, "mention", campaign_id) == total, 60, "all mentions", 0.5)
    for name in ("engager", "evaluator", "listener", "publisher"):
        assert stack.services[name].alive(), f"{name} died with the broker restart"


def test_a_feed_item_becomes_an_indexed_mention_and_conversation(
    stack: Stack, index: OpenSearch, tmp_path: Path
) -> None:
    """How long it takes is a benchmark: ``python -m legation_devstack bench-latency``."""
    campaign_id = f"latency-{uuid.uuid4().hex[:8]}"
    feed = tmp_path / "latency.rss"
    feed.write_text(probe_feed(1))
    with stack.channel("listener") as channel:
        listener = listener_grpc.ListenerServiceStub(channel)
        track_probe(listener, campaign_id, feed)
        emitted = listener.PollNow(listener_pb.PollNowRequest(issue_id=campaign_id), timeout=30)
    assert emitted.mentions_emitted == 1
    wait_until(lambda: count(index, "mention", campaign_id) == 1, 60, "mention indexed", 0.02)
    wait_until(
        lambda: count(index, "interaction", campaign_id) == 1, 60, "conversation indexed", 0.02
    )


def test_sigterm_stops_every_service_cleanly(stack: Stack) -> None:
    codes = {
        name: stack.stop_service(name) for name in ("listener", "publisher", "engager", "evaluator")
    }
    assert codes == {"listener": 0, "publisher": 0, "engager": 0, "evaluator": 0}
    for name in codes:
        log = Path(stack.services[name].log_path).read_text()
        assert '"message": "stopped"' in log
