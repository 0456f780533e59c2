"""Two evaluators in one indexer group, the partitions split between them, as the prod
overlay runs them: each answers scorecards from its aggregates (its tail of every
partition, not only its indexer's share), with the values of one search over the events;
and again after one of them restarted while events kept coming."""

from __future__ import annotations

import contextlib
import random
import re
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import grpc
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from opensearchpy import OpenSearch
from test_evaluator_aggregates import CAMPAIGN, START, close, comparable, events, the_campaign
from test_evaluator_aggregates import updates as later_versions

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as pb_grpc
from legation.events.v1 import listen_pb2
from legation_core.auth import with_token
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, make_envelope
from legation_devstack.processes import free_port, spawn, wait_until
from legation_devstack.stack import ServicePorts, Stack
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.config import EvaluatorSettings
from legation_evaluator.domain.scorecard import scorecard_from_response
from legation_evaluator.reindex import committed_offsets

pytestmark = [pytest.mark.integration]

PREFIX = "legation-events-v1"
GROUP = "legation.evaluator.indexer"
MENTIONS = "legation.listen.mentions.v1"
SECOND = "evaluator-b"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("replicas"),
        extra_env={"LEGATION_EVALUATOR_SNAPSHOT_SECONDS": "3600"},
    )
    try:
        stack.start_infrastructure()
        stack.start_service("evaluator")
        start_second(stack)
        yield stack
    finally:
        stack.stop()


def start_second(stack: Stack) -> None:
    """A second evaluator process: the same settings, its own ports and group instance."""
    ports = stack.ports.setdefault(SECOND, ServicePorts(free_port(), free_port(), free_port()))
    env = stack.env_for("evaluator")
    env.update(
        {
            "LEGATION_GRPC_PORT": str(ports.grpc),
            "LEGATION_METRICS_PORT": str(ports.metrics),
            "LEGATION_WEB_PORT": str(ports.web),
            "LEGATION_CONSUMER_INSTANCE_ID": "evaluator-1",
        }
    )
    stack.services[SECOND] = spawn(
        SECOND, [sys.executable, "-m", "legation_evaluator"], stack.log_dir, env
    )
    stack.wait_healthy(SECOND)


def settings(stack: Stack) -> EvaluatorSettings:
    assert stack.kafka is not None
    return EvaluatorSettings(kafka_bootstrap_servers=stack.kafka.bootstrap_servers)


def split(stack: Stack, probes: list[int]) -> bool:
    """Produces a few mentions of no campaign; True once both indexers took some of them
    (the group split the partitions between the two)."""
    first = len(probes)
    probes.extend(range(first, first + 12))
    produce(
        stack,
        [
            make_envelope(
                listen_pb2.Mention(mention_id=f"probe-{number}", title="probe"),
                event_id=f"probe-{number}",
                source_service="listener",
                occurred_at=START,
            )
            for number in probes[first:]
        ],
    )
    return all(consumed_mentions(stack, name) > 0 for name in ("evaluator", SECOND))


def topic_of() -> dict[str, str]:
    """Payload field -> the topic the evaluator indexes it from."""
    topics: dict[str, str] = {}
    for spec in default_catalog().consumed_by("evaluator"):
        topics.setdefault(spec.payload_field, spec.name)
    return topics


def produce(stack: Stack, envelopes: list[Envelope]) -> None:
    topics = topic_of()
    producer = KafkaProducer(
        bootstrap_servers=settings(stack).kafka_bootstrap_servers, acks="all", linger_ms=5
    )
    try:
        for envelope in envelopes:
            topic = topics[str(envelope.WhichOneof("payload"))]
            producer.send(topic, key=envelope.event_id.encode(), value=envelope.SerializeToString())
        producer.flush()
    finally:
        producer.close()


def indexed_everything(stack: Stack) -> bool:
    """The indexer group committed every record of its topics (so the index holds them)."""
    topics = list(topic_of().values())
    consumer = KafkaConsumer(
        bootstrap_servers=settings(stack).kafka_bootstrap_servers, group_id=None
    )
    try:
        partitions = [
            TopicPartition(topic, number)
            for topic in topics
            for number in consumer.partitions_for_topic(topic) or ()
        ]
        ends = consumer.end_offsets(partitions)
    finally:
        consumer.close()
    done = committed_offsets(settings(stack), GROUP, partitions)
    return all((done[tp] or 0) >= end for tp, end in ends.items())


def scorecard(stack: Stack, name: str) -> pb.Scorecard:
    assert stack.users is not None
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports[name].grpc}") as channel:
        stub = pb_grpc.EvaluatorServiceStub(with_token(channel, stack.users.token("viewer")))
        return stub.GetCampaignScorecard(
            pb.GetCampaignScorecardRequest(campaign_id=CAMPAIGN), timeout=60
        )


def consumed_mentions(stack: Stack, name: str) -> float:
    url = f"http://127.0.0.1:{stack.ports[name].metrics}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    pattern = (
        r"^legation_events_consumed_total\{(?=[^}]*group=\"" + re.escape(GROUP) + r"\")"
        r"(?=[^}]*topic=\"" + re.escape(MENTIONS) + r"\")[^}]*\} (\S+)$"
    )
    return sum(float(value) for value in re.findall(pattern, text, re.MULTILINE))


def searched(stack: Stack, card: pb.Scorecard) -> dict[str, Any]:
    """The scorecard of one search over the events, judged at the same moment as ``card``."""
    assert stack.opensearch is not None
    index = EventIndex(OpenSearch(hosts=[stack.opensearch.url], timeout=120), PREFIX)
    index.client.indices.refresh(index=f"{PREFIX}-*")
    campaign = index.campaign(CAMPAIGN)
    assert campaign is not None
    at = card.computed_at.ToDatetime(tzinfo=UTC)
    return comparable(scorecard_from_response(campaign, index.search_scorecard(campaign), at))


def from_aggregates_as_searched(stack: Stack, name: str) -> pb.Scorecard:
    """Waits until replica ``name`` answers from its aggregates with the search's values
    (its tail may still be reading), and returns that answer."""
    last: list[pb.Scorecard] = []

    def same() -> bool:
        card = scorecard(stack, name)
        last[:] = [card]
        if card.computed_from != "aggregates":
            return False
        try:
            close(comparable(card), searched(stack, card))
        except AssertionError:
            return False
        return True

    with contextlib.suppress(TimeoutError):  # the asserts below say what differs
        wait_until(same, 180, f"{name}: the scorecard from its aggregates", 2.0)
    card = last[0]
    assert card.computed_from == "aggregates", stack.services[name].log_tail()
    close(comparable(card), searched(stack, card))  # the difference, if any
    return card


def test_every_replica_answers_from_its_aggregates_as_one_search(stack: Stack) -> None:
    probes: list[int] = []
    wait_until(lambda: split(stack, probes), 120, "the partitions split", 2.0)
    before = [consumed_mentions(stack, name) for name in ("evaluator", SECOND)]
    rng = random.Random(29)
    originals = events(rng)
    campaign_event = make_envelope(
        the_campaign(), event_id="campaign", source_service="evaluator", occurred_at=START
    )
    produce(stack, [campaign_event, *originals])
    newer = later_versions(originals, rng)
    # Updates, redeliveries and an older copy after a newer one, through the log.
    produce(stack, [*originals[::5], *newer, *originals[:30]])
    wait_until(lambda: indexed_everything(stack), 240, "everything indexed", 1.0)

    # Each indexer took a share of the campaign's mentions: neither indexed them all.
    after = [consumed_mentions(stack, name) for name in ("evaluator", SECOND)]
    shares = [now - then for now, then in zip(after, before, strict=True)]
    assert all(share > 0 for share in shares), shares
    first = from_aggregates_as_searched(stack, "evaluator")
    second = from_aggregates_as_searched(stack, SECOND)
    assert first.mentions > 300 and sorted(first.objectives_from_events) == [
        "by-author",
        "by-feed",
        "by-tag",
    ]
    assert (second.mentions, second.replies) == (first.mentions, first.replies)

    # One replica restarts while events keep coming: its partitions wait, then it takes
    # them back, loads the index, tails on, and both answer as the search again.
    assert stack.stop_service(SECOND) == 0
    more = events(random.Random(31))
    renumbered = [
        _renumbered(envelope, 10_000 + number) for number, envelope in enumerate(more[:300])
    ]
    produce(stack, renumbered)
    start_second(stack)
    wait_until(lambda: indexed_everything(stack), 240, "everything indexed again", 1.0)
    after_first = from_aggregates_as_searched(stack, "evaluator")
    after_second = from_aggregates_as_searched(stack, SECOND)
    assert after_first.mentions > first.mentions
    assert after_second.mentions == after_first.mentions


def _renumbered(envelope: Envelope, number: int) -> Envelope:
    """The same event under a new id (new events, not versions of the first ones)."""
    copy = Envelope()
    copy.CopyFrom(envelope)
    copy.event_id = f"ev-{number}"
    return copy
