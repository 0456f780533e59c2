"""An index that lost its data heals itself: the evaluator runs as a process against the
stand-ins, events keep arriving, the index server is killed and restarted empty (it keeps
nothing across a restart), and the scorecard comes back with complete counts without
anyone running ``legation-evaluator reindex``. Meanwhile it is served marked "rebuilding"
(or the campaign is UNAVAILABLE until it is back), never NOT_FOUND. The time from the
restart to complete counts is printed; ``LEGATION_INDEX_LOSS_EVENTS`` (default 1,000)
sets how many events the index held when it was lost.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from kafka import KafkaProducer
from opensearchpy import OpenSearch

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as pb_grpc
from legation.events.v1 import engage_pb2, evaluate_pb2, listen_pb2
from legation_core.codec import make_envelope
from legation_devstack.processes import wait_until
from legation_devstack.stack import Stack
from legation_devstack.standins import start_opensearch
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.domain.rebuild import COMPLETE, marker_index
from legation_evaluator.domain.scorecard import scorecard_from_response

pytestmark = [pytest.mark.integration]

PREFIX = "legation-events-v1"
CAMPAIGN_ID = "index-loss"
MENTIONS = "legation.listen.mentions.v1"
INTERACTIONS = "legation.engage.interactions.v1"
HELD = int(os.environ.get("LEGATION_INDEX_LOSS_EVENTS", "1000"))
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("index-loss"),
        extra_env={"LEGATION_EVALUATOR_SNAPSHOT_SECONDS": "3600"},
    )
    try:
        stack.start_infrastructure()
        stack.start_service("evaluator")
        yield stack
    finally:
        stack.stop()


class Traffic:
    """Mentions (and some conversations) of the campaign, produced as the listener and
    engager would."""

    def __init__(self, stack: Stack) -> None:
        assert stack.kafka is not None
        self.producer = KafkaProducer(
            bootstrap_servers=stack.kafka.bootstrap_servers, acks="all", linger_ms=5
        )
        self.mentions = 0
        self.opened = 0

    def mention(self) -> None:
        number = self.mentions
        mention = listen_pb2.Mention(
            mention_id=f"{CAMPAIGN_ID}-m{number}",
            title=f"Treaty talks {number}",
            author=f"author-{number % 13}",
            campaign_ids=[CAMPAIGN_ID],
            stance=listen_pb2.Label(value="favour" if number % 3 else "against", score=0.8),
        )
        envelope = make_envelope(
            mention,
            event_id=mention.mention_id,
            source_service="listener",
            occurred_at=NOW - timedelta(minutes=number % 600),
            campaign_id=CAMPAIGN_ID,
            issue_id="plastics",
        )
        self.producer.send(
            MENTIONS, key=mention.mention_id.encode(), value=envelope.SerializeToString()
        )
        self.mentions += 1
        if number % 10 == 0:
            opened = engage_pb2.Interaction(
                interaction_id=f"{CAMPAIGN_ID}-open-{number}",
                conversation_id=f"{CAMPAIGN_ID}-c{number}",
                mention_id=mention.mention_id,
                kind=engage_pb2.Interaction.KIND_OPENED,
            )
            envelope = make_envelope(
                opened,
                event_id=opened.interaction_id,
                source_service="engager",
                occurred_at=NOW - timedelta(minutes=number % 600),
                campaign_id=CAMPAIGN_ID,
            )
            key = opened.conversation_id.encode()
            self.producer.send(INTERACTIONS, key=key, value=envelope.SerializeToString())
            self.opened += 1

    def flush(self) -> None:
        self.producer.flush()

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()


def create_campaign(stack: Stack) -> None:
    campaign = evaluate_pb2.Campaign(
        campaign_id=CAMPAIGN_ID,
        name="Index loss",
        issue_ids=["plastics"],
        objectives=[
            evaluate_pb2.Objective(
                objective_id="conversation",
                metric="mentions",
                comparison=evaluate_pb2.Objective.COMPARISON_AT_LEAST,
                target=10,
            )
        ],
    )
    with stack.channel("evaluator") as channel:
        pb_grpc.EvaluatorServiceStub(channel).CreateCampaign(campaign, timeout=30)


def scorecard(stack: Stack) -> pb.Scorecard:
    with stack.channel("evaluator", user="viewer") as channel:
        return pb_grpc.EvaluatorServiceStub(channel).GetCampaignScorecard(
            pb.GetCampaignScorecardRequest(campaign_id=CAMPAIGN_ID), timeout=30
        )


def indexed_mentions(search: OpenSearch) -> int:
    search.indices.refresh(index=f"{PREFIX}-*")
    body = {"query": {"term": {"campaign_ids": CAMPAIGN_ID}}}
    return int(search.count(index=f"{PREFIX}-mention*", body=body)["count"])


def test_an_index_restarted_empty_is_rebuilt_without_a_manual_step(stack: Stack) -> None:
    create_campaign(stack)
    traffic = Traffic(stack)
    for _ in range(HELD):
        traffic.mention()
    traffic.flush()

    assert stack.opensearch is not None
    search = OpenSearch(hosts=[stack.opensearch.url], timeout=30)
    # Counted directly (a scorecard search beside the bulks would slow the stand-in down).
    wait_until(
        lambda: indexed_mentions(search) == HELD,
        60 + HELD / 50,
        "the events indexed before the loss",
        1.0,
    )
    marker = search.get(index=marker_index(PREFIX), id="marker")["_source"]
    assert marker["state"] == COMPLETE  # written at the first start (nothing to rebuild)
    assert scorecard(stack).mentions == HELD

    # Traffic keeps coming while the index server dies and comes back with nothing.
    streaming = threading.Event()
    streaming.set()

    def stream() -> None:
        while streaming.is_set():
            traffic.mention()
            traffic.flush()
            time.sleep(0.02)

    writer = threading.Thread(target=stream)
    writer.start()
    seen: list[str] = []
    errors: list[tuple[str, str]] = []
    card = pb.Scorecard()
    total = -1
    try:
        time.sleep(1.0)
        port = stack.opensearch.port
        stack.opensearch.process.kill()
        time.sleep(2.0)
        stack.opensearch = start_opensearch(stack.log_dir, port=port)
        restarted = time.monotonic()
        deadline = restarted + 120 + HELD / 20
        while time.monotonic() < deadline:
            if total < 0 and time.monotonic() - restarted > 3.0:  # the traffic stops
                streaming.clear()
                writer.join()
                traffic.close()
                total = traffic.mentions
            try:
                card = scorecard(stack)
            except grpc.RpcError as error:
                seen.append(error.code().name)
                errors.append((error.code().name, str(error.details())))
            else:
                seen.append("rebuilding" if card.rebuilding else f"ok {card.mentions}")
                if card.mentions == total and not card.rebuilding:
                    break
            time.sleep(1.0)
    finally:
        streaming.clear()
        writer.join()
    healed = time.monotonic() - restarted
    print(
        f"\nindex restarted empty holding {HELD + 0} events before the loss: complete counts "
        f"({total} mentions) {healed:.1f} s after the restart, without a manual step"
    )
    assert card.mentions == total and not card.rebuilding, seen[-10:]
    # The scorecard said so meanwhile: rebuilding, or the campaign not back yet; never that
    # the campaign does not exist.
    assert "rebuilding" in seen or "UNAVAILABLE" in seen, seen[:10]
    assert "NOT_FOUND" not in seen, errors
    assert all("rebuilt" in text for code, text in errors if code == "UNAVAILABLE"), errors
    assert card.conversations_opened == traffic.opened
    # Nothing lost, nothing counted twice: the live indexer and the rebuild wrote the same
    # documents. The scorecard counts from the log tail, which may run ahead of the indexer by
    # its last batch, so the index gets the time to catch up, never more than the total.
    search = OpenSearch(hosts=[stack.opensearch.url], timeout=30)
    wait_until(lambda: indexed_mentions(search) >= total, 30, "the index caught up", 0.5)
    assert indexed_mentions(search) == total
    assert search.get(index=marker_index(PREFIX), id="marker")["_source"]["state"] == COMPLETE
    # The counts kept in memory across the loss (and counted again by the rebuild) are the
    # counts one search over the rebuilt index computes: nothing lost, nothing twice.
    events = EventIndex(search, PREFIX)
    campaign = events.campaign(CAMPAIGN_ID)
    assert campaign is not None
    searched = scorecard_from_response(
        campaign, events.search_scorecard(campaign), datetime.now(UTC)
    )
    after = scorecard(stack)
    assert not after.rebuilding

    def counters(card: pb.Scorecard) -> tuple[int, ...]:
        return (
            card.mentions,
            card.publications,
            card.conversations_opened,
            card.replies,
            card.feedback,
            card.mentions_with_sentiment,
        )

    assert counters(after) == counters(searched)
