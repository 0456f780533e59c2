"""One tracked issue watching a replayed feed, Mastodon, Bluesky, Reddit and a webhook,
through the Kafka stand-in: enriched mentions, a spike alert, a refused malformed query,
malformed payloads reported without losing anything else, a rate-limited source that
catches up, and a restart that neither duplicates nor misses items.

The listener runs in-process (state, real connectors, poller, gRPC API behind the users
file, webhook over HTTP) so the test controls the clock the spike detector sees: the issue
is first watched 13 hours "ago", so the surge hour has a full (empty) baseline.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from legation.listener.v1 import listener_service_pb2 as pb
from legation.listener.v1 import listener_service_pb2_grpc as pb_grpc
from legation_core.auth import AuthInterceptor, load_users, with_token
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, EventCodec
from legation_core.config import CoreSettings
from legation_core.grpc_server import build_server
from legation_core.http_server import HttpServer
from legation_core.kafka import EventProducer, read_topic
from legation_core.metrics import Metrics
from legation_core.topic_names import LISTEN_ALERTS_V1, LISTEN_MENTIONS_V1
from legation_devstack.processes import child_env, free_port, spawn, wait_until
from legation_devstack.source_servers import (
    BlueskySearchServer,
    FeedServer,
    MastodonTimelineServer,
    RedditApiServer,
)
from legation_devstack.users import UsersFile
from legation_listener import importer
from legation_listener.__main__ import address_policy, connectors
from legation_listener.adapters.connectors.base import Backoff
from legation_listener.adapters.connectors.webhook import WebhookApp
from legation_listener.adapters.feeds import FeedFetcher
from legation_listener.adapters.grpc_api import SERVICE_NAME, ListenerApi
from legation_listener.adapters.policy import POLICY
from legation_listener.adapters.poller import Poller
from legation_listener.adapters.state import ListenerState
from legation_listener.config import ListenerSettings
from legation_listener.domain.spikes import SpikeDetector, SpikeRule

pytestmark = pytest.mark.integration

SECRET = "webhook-test-secret"
QUERY = "treaty AND plastic* AND NOT football"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Platforms:
    feed: FeedServer
    mastodon: MastodonTimelineServer
    bluesky: BlueskySearchServer
    reddit: RedditApiServer

    def sources(self) -> list[str]:
        return [
            self.feed.feed_url,
            f"mastodon:{self.mastodon.url}/tags/plastics",
            f"bluesky:{self.bluesky.url}/search?q=treaty",
            f"reddit:{self.reddit.url}/r/worldnews/new",
            "webhook:ngo",
        ]


@pytest.fixture
def platforms() -> Iterator[Platforms]:
    servers = Platforms(
        FeedServer(), MastodonTimelineServer(), BlueskySearchServer(), RedditApiServer()
    )
    for server in (servers.feed, servers.mastodon, servers.bluesky, servers.reddit):
        server.start()
    try:
        yield servers
    finally:
        for server in (servers.feed, servers.mastodon, servers.bluesky, servers.reddit):
            server.stop()


class InProcessListener:
    """What ``legation_listener.__main__.wire`` builds, with a test clock and the state
    rebuilt from the Kafka stand-in."""

    def __init__(
        self, settings: CoreSettings, users: UsersFile, platforms: Platforms, clock: Clock
    ) -> None:
        listener_settings = ListenerSettings(
            listener_reddit_client_id=platforms.reddit.client_id,
            listener_reddit_client_secret=platforms.reddit.client_secret,
            listener_reddit_token_url=platforms.reddit.url,
            listener_reddit_api_url=platforms.reddit.url,
            # The replay servers listen on loopback, which production refuses.
            listener_fetch_allowed_networks="127.0.0.0/8,::1",
        )
        self.producer = EventProducer(settings, "listener", default_catalog(), Metrics())
        state = ListenerState.rebuild(settings, EventCodec(default_catalog()), self.producer)
        fetcher = FeedFetcher(5.0, 0, policy=address_policy(listener_settings))
        backoff = Backoff(1, backoff_seconds=0.05, max_backoff_seconds=5.0)
        self.poller = Poller(
            state,
            fetcher,
            self.producer,
            Metrics().registry,
            clock=clock,
            spikes=SpikeDetector(SpikeRule(baseline_hours=12, stddevs=3.0, min_count=10)),
            connectors=connectors(listener_settings, fetcher, backoff),
        )
        # The issue RPCs alone (the analyses' are ListenerServicer's).
        servicer = ListenerApi(state, self.poller)  # type: ignore[abstract]
        self.grpc, _, port = build_server(
            0,
            [lambda server: pb_grpc.add_ListenerServiceServicer_to_server(servicer, server)],
            [SERVICE_NAME],
            host="127.0.0.1",
            auth=AuthInterceptor(load_users(users.path), [POLICY]),
        )
        self.grpc.start()
        self.channel = with_token(
            grpc.insecure_channel(f"127.0.0.1:{port}"), users.token("analyst")
        )
        self.api = pb_grpc.ListenerServiceStub(self.channel)
        self.webhook = HttpServer("webhook", 0, WebhookApp(self.poller, SECRET), "127.0.0.1")
        self.webhook.start()

    def import_jsonl(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
        monkeypatch.setenv("LEGATION_LISTENER_WEBHOOK_SECRET", SECRET)
        url = f"http://127.0.0.1:{self.webhook.port}"
        return importer.main(["ngo", str(path), "--url", url])

    def close(self) -> None:
        self.webhook.stop()
        self.channel.close()
        self.grpc.stop(None)
        self.producer.close()


def events(settings: CoreSettings, topic: str, issue_id: str) -> list[Envelope]:
    # The evaluator is a catalogued consumer of both topics; the listener is not.
    codec = EventCodec(default_catalog())
    return [e for e in read_topic(settings, "evaluator", codec, topic) if e.issue_id == issue_id]


def test_an_issue_over_every_source_kind_emits_alerts_reports_and_survives_a_restart(
    kafka_settings: CoreSettings,
    auth_users: UsersFile,
    platforms: Platforms,
    tmp_path: Path,
    unique: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The steps in order, each its own function so that a failure names the step."""
    issue_id = f"plastics-{unique}"
    now = datetime.now(UTC)
    clock = Clock(now - timedelta(hours=13))
    first_post = step_every_platform_has_items_before_tracking(platforms, clock.now)
    jsonl = tmp_path / "ngo.jsonl"
    listener = InProcessListener(kafka_settings, auth_users, platforms, clock)
    try:
        step_a_wrong_query_is_refused_and_the_issue_tracked_and_read(
            listener.api, platforms, issue_id
        )
        clock.now = now
        reply = step_the_surge_hour_emits_its_mentions_and_one_alert(
            listener, platforms, issue_id, now, jsonl, capsys, monkeypatch
        )
        step_each_source_reports_its_state(listener.api, platforms, issue_id, now)
    finally:
        listener.close()
    late = step_a_restarted_listener_reads_only_what_is_new(
        kafka_settings, auth_users, platforms, clock, issue_id, now, jsonl, capsys, monkeypatch
    )
    step_each_mention_is_emitted_once_and_the_alert_names_its_sources(
        kafka_settings, platforms, issue_id, first_post, reply, late
    )


def step_every_platform_has_items_before_tracking(
    platforms: Platforms, early: datetime
) -> dict[str, Any]:
    """One matching and one non-matching item on every platform; returns the first Reddit
    post."""
    platforms.feed.publish(
        "Plastics treaty talks open", "Delegates meet on the plastic treaty.", published_at=early
    )
    platforms.feed.publish(
        "Football final", "A treaty of plastic football fans.", published_at=early
    )
    platforms.mastodon.post(
        "The plastics treaty starts today", tags=("plastics",), created_at=early
    )
    platforms.mastodon.post("plastic football treaty", tags=("plastics",), created_at=early)
    platforms.bluesky.post("Watching the plastics treaty talks", created_at=early)
    platforms.bluesky.post("treaty on football, no plastic", created_at=early)
    first_post = platforms.reddit.submit(
        "worldnews", "Plastic treaty: what is at stake", created_at=early
    )
    platforms.reddit.submit("worldnews", "Football treaty with plastic balls", created_at=early)
    return first_post


def step_a_wrong_query_is_refused_and_the_issue_tracked_and_read(
    api: pb_grpc.ListenerServiceStub, platforms: Platforms, issue_id: str
) -> None:
    """A query that does not parse is refused, naming where; the right one is tracked, read
    (the matching items only) and previewed."""
    with pytest.raises(grpc.RpcError) as refused:
        api.TrackIssue(
            pb.TrackIssueRequest(
                issue_id=issue_id,
                name="Plastics",
                query="treaty AND (plastic*",
                feeds=platforms.sources(),
            ),
            timeout=30,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "query: unclosed '(' at position 11"
    api.TrackIssue(
        pb.TrackIssueRequest(
            issue_id=issue_id,
            name="Plastics",
            query=QUERY,
            feeds=platforms.sources(),
            campaign_ids=["plastics-2026"],
        ),
        timeout=30,
    )
    first = api.PollNow(pb.PollNowRequest(issue_id=issue_id), timeout=60)
    assert (first.mentions_emitted, list(first.failed_feeds)) == (4, [])
    preview = api.PreviewQuery(
        pb.PreviewQueryRequest(query="football", feeds=platforms.sources()[2:5:2]), timeout=30
    )
    assert {m.source_url for m in preview.matches} == set(platforms.sources()[:4])
    assert list(preview.failed_feeds) == [
        "webhook:ngo: items are pushed; preview sees them in the recent items"
    ]


def step_the_surge_hour_emits_its_mentions_and_one_alert(
    listener: InProcessListener,
    platforms: Platforms,
    issue_id: str,
    now: datetime,
    jsonl: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """The surge hour: 3 matching items per platform, malformed payloads among them, a
    JSONL import through the webhook, and Bluesky asking us to come back much later.
    Returns the Mastodon reply."""
    api = listener.api
    for n in range(3):
        platforms.feed.publish(f"Plastic treaty day {n}", "Talks go on.", published_at=now)
        platforms.mastodon.post(
            f"Treaty on plastics, take {n}", tags=("plastics",), followers=100 + n
        )
        platforms.bluesky.post(f"More plastics treaty news {n}", handle=f"u{n}.bsky.social")
        platforms.reddit.submit("worldnews", f"Treaty on plastic waste, day {n}")
    platforms.mastodon.add_raw({"content": "<p>treaty plastics</p>", "account": "nobody"})
    platforms.reddit.add_raw(
        "worldnews", {"kind": "t3", "data": {"name": "t3_x", "title": "plastic treaty"}}
    )
    reply = platforms.mastodon.post(
        "Yes, the treaty must cap plastic production", tags=("plastics",), in_reply_to_id="42"
    )
    jsonl.write_text(
        "\n".join(
            [
                *(
                    json.dumps(
                        {
                            "id": f"ngo-{n}",
                            "text": f"NGO note {n} on the plastic treaty",
                            "author_id": "ngo",
                            "published_at": now.isoformat(),
                        }
                    )
                    for n in range(3)
                ),
                '{"id": "ngo-bad", "published_at": "soon", "text": "plastic treaty"}',
            ]
        )
        + "\n"
    )
    assert listener.import_jsonl(jsonl, monkeypatch) == 1  # one line was malformed
    assert json.loads(capsys.readouterr().out) == {"items": 3, "mentions": 3, "malformed": 1}
    platforms.bluesky.rate_limit_next(seconds=600)
    surge = api.PollNow(pb.PollNowRequest(issue_id=issue_id), timeout=60)
    assert surge.mentions_emitted == 3 + 4 + 3  # feed, Mastodon (with the reply), Reddit
    assert surge.alerts_emitted == 1
    [failed] = surge.failed_feeds
    assert (
        failed.startswith(f"bluesky:{platforms.bluesky.url}") and "retry asked after 600s" in failed
    )
    return reply


def step_each_source_reports_its_state(
    api: pb_grpc.ListenerServiceStub, platforms: Platforms, issue_id: str, now: datetime
) -> None:
    """Malformed items counted and named; Bluesky rate-limited until when it asked."""
    statuses = {
        s.source: s
        for s in api.ListSources(pb.ListSourcesRequest(issue_id=issue_id), timeout=30).sources
    }
    mastodon, bluesky, reddit, ngo = (statuses[s] for s in platforms.sources()[1:])
    assert (mastodon.state, mastodon.malformed_items) == ("ok", 1)
    assert "'created_at' is not a time" in mastodon.malformed[0]
    assert (reddit.state, reddit.malformed_items) == ("ok", 1)
    assert "'created_utc' is not a number" in reddit.malformed[0]
    assert (bluesky.state, bluesky.consecutive_failures) == ("rate_limited", 1)
    assert bluesky.not_before.ToDatetime(tzinfo=UTC) == now + timedelta(seconds=600)
    assert (ngo.state, ngo.malformed_items) == ("ok", 1)
    assert ngo.malformed[0].startswith("line 4: ngo-bad: 'published_at'")


def step_a_restarted_listener_reads_only_what_is_new(
    kafka_settings: CoreSettings,
    auth_users: UsersFile,
    platforms: Platforms,
    clock: Clock,
    issue_id: str,
    now: datetime,
    jsonl: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> list[str]:
    """A restart: state from Kafka, new items meanwhile, Bluesky reachable again. Returns
    the new items' ids."""
    late = [
        platforms.feed.publish("Plastic treaty: final text", "Adopted.", published_at=now),
        platforms.mastodon.post("Final plastics treaty text", tags=("plastics",))["id"],
        platforms.bluesky.post("The plastics treaty is adopted")["uri"],
        platforms.reddit.submit("worldnews", "Plastic treaty adopted")["data"]["name"],
    ]
    listener = InProcessListener(kafka_settings, auth_users, platforms, clock)
    try:
        after = listener.api.PollNow(pb.PollNowRequest(issue_id=issue_id), timeout=60)
        assert (after.mentions_emitted, list(after.failed_feeds)) == (
            4 + 3,
            [],
        )  # + Bluesky's surge
        assert listener.import_jsonl(jsonl, monkeypatch) == 1  # same file again: nothing new
        assert json.loads(capsys.readouterr().out)["mentions"] == 0
        again = listener.api.PollNow(pb.PollNowRequest(issue_id=issue_id), timeout=60)
        assert again.mentions_emitted == 0
    finally:
        listener.close()
    return late


def step_each_mention_is_emitted_once_and_the_alert_names_its_sources(
    kafka_settings: CoreSettings,
    platforms: Platforms,
    issue_id: str,
    first_post: dict[str, Any],
    reply: dict[str, Any],
    late: list[str],
) -> None:
    """Every matching item once, labelled and with its campaign; one alert of the surge
    hour."""
    mentions = events(kafka_settings, LISTEN_MENTIONS_V1, issue_id)
    ids = Counter(e.event_id for e in mentions)
    assert max(ids.values()) == 1, "a mention was emitted twice"
    by_source = Counter(e.mention.source for e in mentions)
    assert by_source == {"rss": 5, "mastodon": 6, "bluesky": 5, "reddit": 5, "webhook": 3}
    items = {e.mention.item_id: e.mention for e in mentions}
    assert set(late) <= set(items) and first_post["data"]["name"] in items
    replied = items[reply["id"]]
    assert (replied.in_reply_to, replied.author_id, replied.reach) == (
        "42", reply["account"]["url"], 10,
    )  # fmt: skip
    for mention in items.values():
        assert mention.language and mention.sentiment.value, mention.item_id
        assert mention.campaign_ids == ["plastics-2026"]
        assert "football" not in mention.text.lower()
    [alert] = events(kafka_settings, LISTEN_ALERTS_V1, issue_id)
    assert alert.alert.count == 3 + 3 + 4 + 3  # webhook, feed, Mastodon, Reddit in the surge hour
    assert {c.value for c in alert.alert.top_sources} >= {
        "webhook:ngo",
        f"mastodon:{platforms.mastodon.url}/tags/plastics",
    }


def test_the_service_process_reads_connector_sources_and_serves_its_webhook(
    kafka_settings: CoreSettings,
    auth_users: UsersFile,
    platforms: Platforms,
    tmp_path: Path,
    unique: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wiring of ``python -m legation_listener``: connectors configured from the
    environment, the webhook on its port with its secret, ListSources for a viewer."""
    grpc_port, webhook_port = free_port(), free_port()
    env = child_env()
    env.update(
        {
            "LEGATION_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.kafka_bootstrap_servers,
            "LEGATION_GRPC_PORT": str(grpc_port),
            "LEGATION_METRICS_PORT": str(free_port()),
            "LEGATION_AUTH_USERS_FILE": str(auth_users.path),
            "LEGATION_LISTENER_POLL_SECONDS": "3600",
            "LEGATION_LISTENER_FETCH_RETRIES": "0",
            "LEGATION_LISTENER_REDDIT_CLIENT_ID": platforms.reddit.client_id,
            "LEGATION_LISTENER_REDDIT_CLIENT_SECRET": platforms.reddit.client_secret,
            "LEGATION_LISTENER_REDDIT_TOKEN_URL": platforms.reddit.url,
            "LEGATION_LISTENER_REDDIT_API_URL": platforms.reddit.url,
            "LEGATION_LISTENER_WEBHOOK_PORT": str(webhook_port),
            "LEGATION_LISTENER_WEBHOOK_SECRET": SECRET,
            # The replay servers listen on loopback, which production refuses.
            "LEGATION_LISTENER_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8,::1",
        }
    )
    process = spawn("listener", [sys.executable, "-m", "legation_listener"], tmp_path, env)
    try:
        wait_until(
            lambda: '"message": "poll done"' in process.log_path.read_text(),
            60,
            "listener start-up",
            detail=process.log_tail,
        )
        platforms.mastodon.post("The plastics treaty", tags=("plastics",))
        platforms.reddit.submit("worldnews", "Plastic treaty news")
        issue_id = f"proc-sources-{unique}"
        # Issues of other tests live on in the session's topics: a webhook name of our own.
        hook = f"proc-{unique}"
        sources = [platforms.sources()[1], platforms.sources()[3], f"webhook:{hook}"]
        with with_token(
            grpc.insecure_channel(f"127.0.0.1:{grpc_port}"), auth_users.token("analyst")
        ) as channel:
            api = pb_grpc.ListenerServiceStub(channel)
            request = pb.TrackIssueRequest(issue_id=issue_id, name="p", query=QUERY, feeds=sources)
            api.TrackIssue(request, timeout=30)
            assert (
                api.PollNow(pb.PollNowRequest(issue_id=issue_id), timeout=60).mentions_emitted == 2
            )
        jsonl = tmp_path / "items.jsonl"
        jsonl.write_text(json.dumps({"id": "p1", "text": "A plastic treaty note"}) + "\n")
        monkeypatch.setenv("LEGATION_LISTENER_WEBHOOK_SECRET", SECRET)
        assert importer.main([hook, str(jsonl), "--url", f"http://127.0.0.1:{webhook_port}"]) == 0
        assert json.loads(capsys.readouterr().out)["mentions"] == 1
        with with_token(
            grpc.insecure_channel(f"127.0.0.1:{grpc_port}"), auth_users.token("viewer")
        ) as channel:
            listed = pb_grpc.ListenerServiceStub(channel).ListSources(
                pb.ListSourcesRequest(issue_id=issue_id), timeout=30
            )
        assert [(s.source, s.state) for s in listed.sources] == [(s, "ok") for s in sources]
    finally:
        assert process.stop() == 0
    assert Counter(
        e.mention.source for e in events(kafka_settings, LISTEN_MENTIONS_V1, issue_id)
    ) == {
        "mastodon": 1,
        "reddit": 1,
        "webhook": 1,
    }
