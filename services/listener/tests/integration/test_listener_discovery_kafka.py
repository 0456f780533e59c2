"""Discovery over the Kafka stand-in and the replay servers: an issue tracked on two sources
(a news feed and a Reddit search) yields a ranked community list in which a blog and a
subreddit seen in its mentions but not tracked are suggested, the blog with the feed its home
page announces (RSS autodiscovery); accepting the feed starts its mentions flowing. The
reports reach their topics, themes are compared with a publication read from the
publications topic, and the analyses' window rebuilt from the mentions topic gives the same
communities after a restart.

The listener runs in-process as ``legation_listener.__main__.wire`` builds it (real
connectors, fetcher, gRPC API behind the users file).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from legation.events.v1 import listen_pb2, publish_pb2
from legation.listener.v1 import listener_service_pb2 as pb
from legation.listener.v1 import listener_service_pb2_grpc as pb_grpc
from legation_core.auth import AuthInterceptor, load_users, with_token
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_core.grpc_server import build_server
from legation_core.kafka import EventProducer, read_topic
from legation_core.metrics import Metrics
from legation_core.topic_names import (
    LISTEN_COMMUNITIES_V1,
    LISTEN_MENTIONS_V1,
    LISTEN_THEMES_V1,
    PUBLISH_PUBLICATIONS_V1,
)
from legation_devstack.source_servers import FeedServer, RedditApiServer
from legation_devstack.users import UsersFile
from legation_listener.__main__ import connectors
from legation_listener.adapters.connectors.base import Backoff
from legation_listener.adapters.feeds import FeedFetcher
from legation_listener.adapters.grpc_api import SERVICE_NAME
from legation_listener.adapters.grpc_insights import ListenerServicer
from legation_listener.adapters.insights import Autodiscovery, Insights
from legation_listener.adapters.policy import POLICY
from legation_listener.adapters.poller import Poller
from legation_listener.adapters.publications import PublicationStore
from legation_listener.adapters.replay import MentionSink, replay_mentions
from legation_listener.adapters.state import ListenerState
from legation_listener.config import ListenerSettings
from legation_listener.domain.addresses import AddressPolicy
from legation_listener.domain.observed import MentionWindow

pytestmark = pytest.mark.integration


class Servers:
    def __init__(self) -> None:
        self.news = FeedServer("World news")
        self.blog = FeedServer("Ocean blog")
        self.reddit = RedditApiServer()
        self.all = (self.news, self.blog, self.reddit)


@pytest.fixture
def servers() -> Iterator[Servers]:
    found = Servers()
    for server in found.all:
        server.start()
    try:
        yield found
    finally:
        for server in found.all:
            server.stop()


class Listener:
    """The listener's parts wired as in ``__main__.wire``."""

    def __init__(self, settings: CoreSettings, users: UsersFile, servers: Servers) -> None:
        listener_settings = ListenerSettings(
            listener_reddit_client_id=servers.reddit.client_id,
            listener_reddit_client_secret=servers.reddit.client_secret,
            listener_reddit_token_url=servers.reddit.url,
            listener_reddit_api_url=servers.reddit.url,
            listener_full_text_max_per_read=0,
        )
        codec = EventCodec(default_catalog())
        self.producer = EventProducer(settings, "listener", default_catalog(), Metrics())
        state = ListenerState.rebuild(settings, codec, self.producer)
        self.window = MentionWindow()
        replay_mentions(settings, codec, [MentionSink("insights", 30, self.window.add_mention)])
        self.publications = PublicationStore()
        self.publications.rebuild(settings, codec)
        # The replay servers listen on loopback, which production refuses.
        fetcher = FeedFetcher(5.0, 0, policy=AddressPolicy.from_setting("127.0.0.0/8,::1"))
        poller = Poller(
            state,
            fetcher,
            self.producer,
            Metrics().registry,
            connectors=connectors(listener_settings, fetcher, Backoff(0)),
            on_mentions=self.window.add_mentions,
        )
        self.insights = Insights(
            state,
            self.window,
            self.publications,
            Autodiscovery(fetcher),
            self.producer,
            reddit_api=listener_settings.listener_reddit_api_url,
        )
        # The label RPCs (TeachingServicer) are not under test here.
        servicer = ListenerServicer(state, poller, self.insights)  # type: ignore[abstract]
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

    def close(self) -> None:
        self.channel.close()
        self.grpc.stop(None)
        self.producer.close()


def events(settings: CoreSettings, topic: str, issue_id: str) -> list[Envelope]:
    codec = EventCodec(default_catalog())
    return [e for e in read_topic(settings, "evaluator", codec, topic) if e.issue_id == issue_id]


def seed(servers: Servers) -> None:
    """News items that link to the blog's articles and to posts in r/plasticfree; a Reddit
    search that finds posts of r/plasticfree; the blog's own feed about the treaty."""
    now = datetime.now(UTC)
    for n in range(3):
        at = now - timedelta(hours=3 - n)
        article = servers.blog.publish(
            f"Plastics treaty diary {n}",
            f"Why the plastics treaty needs a production cap, part {n}.",
            published_at=at,
        )
        post = servers.reddit.submit(
            "plasticfree",
            f"Plastics treaty: what a cap means for us ({n})",
            "Will the plastics treaty cap production?",
            author=f"user{n}",
            subscribers=120_000,
            created_at=at,
        )
        servers.news.publish(
            f"Plastics treaty round {n}",
            f"Negotiators argue over the plastics treaty. Read {article} and the debate at"
            f" https://www.reddit.com{post['data']['permalink']}",
            published_at=at,
        )
    servers.reddit.submit("worldnews", "Plastics treaty talks resume", created_at=now)
    servers.blog.publish(
        "Plastics treaty diary 3", "The plastics treaty text is out.", published_at=now
    )


def test_communities_suggest_an_untracked_blog_and_subreddit_and_accepting_one_reads_it(
    kafka_settings: CoreSettings, auth_users: UsersFile, servers: Servers, unique: str
) -> None:
    issue_id = f"plastics-{unique}"
    seed(servers)
    search = f"reddit:{servers.reddit.url}/search?q=plastics+treaty"
    blog_feed = servers.blog.feed_url
    # Our publication about the issue, as the publisher sends it.
    publisher = EventProducer(kafka_settings, "publisher", default_catalog(), Metrics())
    publication = publish_pb2.Publication(
        publication_id=f"pub-{unique}",
        post_id=f"post-{unique}",
        title="A production cap",
        body="We support a cap on plastic production in the treaty.",
    )
    publication.published_at.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    publisher.send_and_wait(
        [
            (
                PUBLISH_PUBLICATIONS_V1,
                publication.post_id,
                make_envelope(
                    publication,
                    event_id=publication.publication_id,
                    source_service="publisher",
                    occurred_at=datetime.now(UTC),
                    issue_id=issue_id,
                ),
            )
        ]
    )
    publisher.close()

    listener = Listener(kafka_settings, auth_users, servers)
    try:
        api = listener.api
        api.TrackIssue(
            pb.TrackIssueRequest(
                issue_id=issue_id,
                name="Plastics treaty",
                keywords=["plastics treaty"],
                feeds=[servers.news.feed_url, search],
                campaign_ids=["plastics-2026"],
            ),
            timeout=30,
        )
        first = api.PollNow(pb.PollNowRequest(issue_id=issue_id), timeout=60)
        assert first.failed_feeds == []
        assert first.mentions_emitted == 7  # 3 news items, 4 Reddit posts

        report = api.DiscoverCommunities(
            pb.DiscoverCommunitiesRequest(issue_id=issue_id, autodiscover=True, min_mentions=2),
            timeout=60,
        )
        assert report.mentions == 7
        communities = {c.label: c for c in report.communities}
        blog_host = servers.blog.url.removeprefix("http://")
        news_host = servers.news.url.removeprefix("http://")
        subreddit = communities["r/plasticfree"]
        assert (subreddit.kind, subreddit.mentions, subreddit.tracked) == ("subreddit", 6, False)
        assert subreddit.cited == 3 and subreddit.reach == 120_000
        blog = communities[blog_host]
        assert (blog.kind, blog.mentions, blog.cited, blog.tracked) == ("domain", 3, 3, False)
        assert communities[news_host].tracked
        assert report.communities[0].label == "r/plasticfree"  # most mentions and reach
        tone = {t.language: t for t in subreddit.tone}
        assert "questions welcome" in tone["en"].recommendation

        suggestions = {s.community: s for s in report.suggestions}
        reddit_suggestion = suggestions["r/plasticfree"]
        assert reddit_suggestion.source == f"reddit:{servers.reddit.url}/r/plasticfree/new"
        assert reddit_suggestion.evidence_urls
        feed_suggestion = suggestions[blog_host]
        assert feed_suggestion.source == blog_feed
        assert feed_suggestion.found_on == servers.blog.url + "/"
        assert (feed_suggestion.feed_items, feed_suggestion.feed_matches) == (4, 4)
        assert "announces this feed" in feed_suggestion.reason

        # A command: the analyst accepts the feed; its items become mentions.
        issue = api.AcceptSourceSuggestion(
            pb.AcceptSourceSuggestionRequest(issue_id=issue_id, source=feed_suggestion.source),
            timeout=30,
        )
        assert list(issue.feeds) == [servers.news.feed_url, search, blog_feed]
        again = api.AcceptSourceSuggestion(
            pb.AcceptSourceSuggestionRequest(issue_id=issue_id, source=blog_feed), timeout=30
        )
        assert list(again.feeds) == list(issue.feeds)
        second = api.PollNow(pb.PollNowRequest(issue_id=issue_id), timeout=60)
        assert second.mentions_emitted == 4
        after = api.DiscoverCommunities(
            pb.DiscoverCommunitiesRequest(issue_id=issue_id, autodiscover=True, min_mentions=2),
            timeout=60,
        )
        assert {c.label: c for c in after.communities}[blog_host].tracked
        assert blog_host not in {s.community for s in after.suggestions}

        themes = api.MapArguments(pb.MapArgumentsRequest(issue_id=issue_id), timeout=60)
        assert themes.mentions == 11
        assert themes.publications_compared == 1

        with pytest.raises(grpc.RpcError) as refused:
            api.DiscoverCommunities(
                pb.DiscoverCommunitiesRequest(issue_id=issue_id, window_hours=721), timeout=10
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "window_hours must be at most 720" in (refused.value.details() or "")

        listener.insights.publish_all()
    finally:
        listener.close()

    mentions = events(kafka_settings, LISTEN_MENTIONS_V1, issue_id)
    assert sum(1 for e in mentions if e.mention.source_url == blog_feed) == 4
    [community_event] = events(kafka_settings, LISTEN_COMMUNITIES_V1, issue_id)
    assert community_event.campaign_id == "plastics-2026"
    assert community_event.community_report.report_id == community_event.event_id
    assert community_event.community_report.communities[0].label == "r/plasticfree"
    [theme_event] = events(kafka_settings, LISTEN_THEMES_V1, issue_id)
    assert theme_event.theme_report.mentions == 11

    # After a restart the window comes back from the mentions topic: the same communities.
    restarted = Listener(kafka_settings, auth_users, servers)
    try:
        rebuilt = restarted.api.DiscoverCommunities(
            pb.DiscoverCommunitiesRequest(issue_id=issue_id), timeout=60
        )
        assert [(c.label, c.mentions) for c in rebuilt.communities] == [
            (c.label, c.mentions) for c in after.communities
        ]
        assert len(restarted.publications.for_issue(issue_id, [])) == 1
    finally:
        restarted.close()
    assert isinstance(rebuilt, listen_pb2.CommunityReport)
