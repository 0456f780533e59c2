"""The publisher's Publication and LinkClick events reach the evaluator's index: the
publisher and the evaluator run as processes on the Kafka and OpenSearch stand-ins; a post
with two translations is published to the site feed, a reader follows one of its short
links, and the evaluator's indexing (its own consume path, its own index prefix) holds one
document per Publication and one for the click, each counted for the post's campaign.
The reader following the link again, through a second publisher replica with the same click
secret, is the same event id, so still one document; another reader is a second one.

The documents are looked up by event id across the prefix's indices, so the assertion is
about documents, not about how the evaluator names its indices."""

from __future__ import annotations

import http.client
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from legation.events.v1 import publish_pb2
from legation.publisher.v1 import publisher_service_pb2 as pb
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec
from legation_core.config import CoreSettings
from legation_core.kafka import read_topic
from legation_core.topic_names import PUBLISH_LINK_CLICKS_V1
from legation_devstack.processes import Process, child_env, free_port, spawn, wait_until
from legation_devstack.standins import OpenSearchStandIn

pytestmark = pytest.mark.integration

CAMPAIGN = "plastics-2026"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile"


@pytest.fixture
def start_evaluator(
    kafka_settings: CoreSettings, opensearch_stand_in: OpenSearchStandIn, tmp_path: Path
) -> Iterator[Callable[[str], Process]]:
    """``start_evaluator(prefix)``: ``python -m legation_evaluator`` indexing under
    ``prefix``, stopped by process id after the test."""
    started: list[Process] = []

    def start(prefix: str) -> Process:
        grpc_port = free_port()
        env = child_env()
        env.update(
            {
                "LEGATION_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.kafka_bootstrap_servers,
                "LEGATION_AUTH_USERS_FILE": str(kafka_settings.auth_users_file),
                "LEGATION_CONSUMER_POLL_TIMEOUT_MS": "100",
                "LEGATION_CONSUMER_IDLE_WAIT_MS": "20",
                "LEGATION_OPENSEARCH_URL": opensearch_stand_in.url,
                "LEGATION_EVALUATOR_INDEX_PREFIX": prefix,
                "LEGATION_EVALUATOR_SNAPSHOT_SECONDS": "3600",
                "LEGATION_GRPC_PORT": str(grpc_port),
                "LEGATION_METRICS_PORT": str(free_port()),
                "LEGATION_WEB_PORT": str(free_port()),
            }
        )
        process = spawn(
            "evaluator", [sys.executable, "-m", "legation_evaluator"], tmp_path / "eval", env
        )
        started.append(process)
        process.wait_serving(grpc_port)
        return process

    yield start
    for process in started:
        process.stop()


def indexed(client: OpenSearch, prefix: str, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The documents of ``event_ids`` in any of the prefix's indices, by event id."""
    client.indices.refresh(index=f"{prefix}*")
    response = client.search(
        index=f"{prefix}*",
        body={"query": {"terms": {"event_id": event_ids}}, "size": 100},
    )
    return {hit["_source"]["event_id"]: hit["_source"] for hit in response["hits"]["hits"]}


def test_publications_and_link_clicks_reach_the_evaluators_index(
    start_publisher: Callable[..., Any],
    start_evaluator: Callable[[str], Process],
    opensearch_stand_in: OpenSearchStandIn,
    kafka_settings: CoreSettings,
    tmp_path: Path,
    unique: str,
) -> None:
    codec = EventCodec(default_catalog())
    same_secret = {"LEGATION_PUBLISHER_CLICK_SECRET": "click-secret-" + "x" * 32}
    publisher = start_publisher(tmp_path / "site" / "feed.atom", same_secret)
    with publisher.channel() as channel:
        editor = publisher.stub(channel, "editor")
        post_id = editor.CreatePost(
            pb.CreatePostRequest(
                request_id=f"indexed-{uuid.uuid4().hex[:8]}",
                campaign_id=CAMPAIGN,
                content=pb.VariantContent(
                    title="Our position", body="We support a cap. https://ministry.example/p"
                ),
            ),
            timeout=10,
        ).post.post_id
        editor.AddTranslation(
            pb.AddTranslationRequest(
                post_id=post_id,
                language="fr",
                content=pb.VariantContent(
                    title="Notre position",
                    body="Nous soutenons un plafond. https://ministry.example/p",
                ),
            ),
            timeout=10,
        )
        review = pb.ReviewRequest(post_id=post_id)
        editor.SubmitForReview(review, timeout=10)
        publisher.stub(channel, "approver").Approve(review, timeout=10)
        publisher.stub(channel, "campaign-owner").Approve(review, timeout=10)
        publisher.stub(channel, "publisher").Schedule(
            pb.ScheduleRequest(post_id=post_id, time_zone="Europe/Paris"), timeout=10
        )

    def published() -> bool:
        return bool(publisher.get_post(post_id).status == publish_pb2.POST_STATUS_PUBLISHED)

    wait_until(published, 30, "the post published", 0.2, detail=publisher.process.log_tail)
    with publisher.channel() as channel:
        publications = [
            p
            for p in publisher.stub(channel, "viewer")
            .ListPublications(pb.ListPublicationsRequest(), timeout=10)
            .publications
            if p.post_id == post_id
        ]
    assert sorted(p.language for p in publications) == ["en", "fr"]
    # A reader follows the French short link: a LinkClick. Three times, and once more
    # through another replica: still that one click. Another reader: a second click.
    [link] = [link for link in publisher.get_post(post_id).links if link.language == "fr"]
    replica = start_publisher(tmp_path / "replica" / "feed.atom", same_secret)
    for port, user_agent in [
        (publisher.redirect_port, FIREFOX),
        (publisher.redirect_port, FIREFOX),
        (publisher.redirect_port, FIREFOX),
        (replica.redirect_port, FIREFOX),
        (replica.redirect_port, SAFARI),
    ]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        headers = {"Referer": "https://news.example.org/a", "User-Agent": user_agent}
        connection.request("GET", f"/r/{link.code}", headers=headers)
        assert connection.getresponse().status == 302
        connection.close()
    produced = [
        envelope.event_id
        for envelope in read_topic(kafka_settings, "evaluator", codec, PUBLISH_LINK_CLICKS_V1, 30)
        if envelope.link_click.post_id == post_id
    ]
    assert len(produced) == 3  # once per replica for the first reader, once for the second
    assert len(set(produced)) == 2

    prefix = f"pub-{unique}"
    evaluator = start_evaluator(prefix)
    client = OpenSearch(hosts=[opensearch_stand_in.url], timeout=30)
    publication_ids = [p.publication_id for p in publications]

    def publications_indexed() -> bool:
        return len(indexed(client, prefix, publication_ids)) == 2

    wait_until(publications_indexed, 60, "publications indexed", 0.3, detail=evaluator.log_tail)
    documents = indexed(client, prefix, publication_ids)
    for publication in publications:
        document = documents[publication.publication_id]
        assert document["campaign_ids"] == [CAMPAIGN]
        assert document["source_service"] == "publisher"
        assert document["publication"]["post_id"] == post_id
        assert document["publication"]["channel_item_id"] == publication.channel_item_id
        assert document["publication"]["url"] == publication.url

    def click_documents() -> list[dict[str, Any]]:
        client.indices.refresh(index=f"{prefix}*")
        response = client.search(
            index=f"{prefix}*",
            body={"query": {"term": {"link_click.post_id": post_id}}, "size": 10},
        )
        return [hit["_source"] for hit in response["hits"]["hits"]]

    wait_until(lambda: len(click_documents()) == 2, 60, "the clicks indexed", 0.3)
    [click] = [c for c in click_documents() if c["event_id"] == produced[0]]
    assert click["campaign_ids"] == [CAMPAIGN]
    assert click["event_id"] == click["link_click"]["click_id"]
    assert (click["link_click"]["code"], click["link_click"]["language"]) == (link.code, "fr")
    assert click["link_click"]["channel"] == "site-atom"
    assert click["link_click"]["referrer_host"] == "news.example.org"
