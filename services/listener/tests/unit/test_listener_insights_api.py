"""The analyses' gRPC methods over a fake Kafka and fake fetcher: limits checked before any
work (the message names the field), the reports built from the mention window, feed
autodiscovery through the fetcher (and remembered), accepting a suggestion as UpdateIssue
would, and the periodic reports on their topics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as pb
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec
from legation_core.kafka import EventProducer
from legation_core.metrics import Metrics
from legation_core.testing import Aborted, FakeContext, RecordingKafka
from legation_core.topic_names import (
    LISTEN_COMMUNITIES_V1,
    LISTEN_THEMES_V1,
    LISTEN_TRACKED_ISSUES_V1,
)
from legation_listener.adapters.feeds import FeedError, FetchResult
from legation_listener.adapters.grpc_insights import ListenerServicer
from legation_listener.adapters.insights import Autodiscovery, Insights
from legation_listener.adapters.poller import Poller
from legation_listener.adapters.publications import PublicationStore
from legation_listener.adapters.state import ListenerState
from legation_listener.config import ListenerSettings
from legation_listener.domain.items import FeedItem
from legation_listener.domain.observed import MentionWindow
from legation_listener.models.planted import planted_issue

NOW = datetime(2026, 11, 20, tzinfo=UTC)
NEWS = "https://news.example.org/feed.xml"
HOME = "https://blog.example.net/"


@dataclass
class FakeWeb:
    """A home page announcing a feed, and that feed."""

    calls: list[str] = field(default_factory=list)

    def fetch(self, feed: str, etag: str = "", last_modified: str = "") -> FetchResult:
        self.calls.append(feed)
        if feed != "https://blog.example.net/feed.xml":
            raise FeedError(f"{feed}: HTTP 404")
        items = [
            FeedItem(f"b{n}", f"{HOME}{n}", title, "", "", NOW, "en")
            for n, title in enumerate(["Plastics treaty diary", "Gardening tips"])
        ]
        return FetchResult(items=items)

    def fetch_article(self, url: str, max_bytes: int = 0) -> tuple[bytes, str]:
        self.calls.append(url)
        if url != HOME:
            raise FeedError(f"{url}: HTTP 404")
        page = '<link rel="alternate" type="application/rss+xml" href="/feed.xml">'
        return page.encode(), "text/html"


@dataclass
class Parts:
    kafka: RecordingKafka
    web: FakeWeb
    state: ListenerState
    api: ListenerServicer
    insights: Insights


def make(mentions: bool = True) -> Parts:
    kafka, web = RecordingKafka(), FakeWeb()
    metrics = Metrics()
    producer = EventProducer(
        ListenerSettings(), "listener", default_catalog(), metrics, producer=kafka
    )
    state = ListenerState(producer, clock=lambda: NOW)
    poller = Poller(state, web, producer, metrics.registry, clock=lambda: NOW)
    window = MentionWindow()
    planted = planted_issue(end=NOW)
    if mentions:
        # The planted mentions cite the blog now and then.
        cited = [
            m if n % 40 else m.__class__(**{**m.__dict__, "links": (f"{HOME}post/{n}",)})
            for n, m in enumerate(planted.mentions)
        ]
        window.add("plastics", cited, NOW)
    insights = Insights(
        state,
        window,
        PublicationStore(),
        Autodiscovery(web, clock=lambda: NOW),
        producer,
        reddit_api="https://oauth.reddit.com",
        clock=lambda: NOW,
    )
    state.save_issue(
        listen_pb2.TrackedIssue(
            issue_id="plastics",
            name="Plastics treaty",
            keywords=["treaty"],
            feeds=[NEWS],
            campaign_ids=["plastics-2026"],
            active=True,
        )
    )
    return Parts(
        kafka,
        web,
        state,
        ListenerServicer(state, poller, insights),  # type: ignore[abstract]  # labels not under test
        insights,
    )


DISCOVER, MAP, ACCEPT = (
    pb.DiscoverCommunitiesRequest,
    pb.MapArgumentsRequest,
    pb.AcceptSourceSuggestionRequest,
)
LIMITS = [
    (DISCOVER(), "issue_id is required"),
    (DISCOVER(issue_id="x" * 201), "issue_id characters must be at most 200"),
    (DISCOVER(issue_id="plastics", window_hours=721), "window_hours must be at most 720"),
    (DISCOVER(issue_id="plastics", limit=501), "limit must be at most 500"),
    (DISCOVER(issue_id="plastics", min_mentions=100_001), "min_mentions must be at most 100000"),
    (MAP(issue_id="plastics", max_themes=21), "max_themes must be at most 20"),
    (MAP(issue_id="plastics", max_themes=1), "max_themes must be at least 2"),
    (MAP(issue_id="plastics", window_hours=10_000), "window_hours must be at most 720"),
    (ACCEPT(issue_id="plastics"), "source is required"),
    (ACCEPT(issue_id="plastics", source="h" * 2001), "source characters must be at most 2000"),
    (ACCEPT(issue_id="plastics", source="gopher://x"), "source has an unsupported scheme"),
]


@pytest.mark.parametrize(("request_", "message"), LIMITS)
def test_every_limit_is_checked_before_any_work_and_names_the_field(
    request_: Any, message: str
) -> None:
    parts = make(mentions=False)
    context = FakeContext()
    methods: dict[type, Any] = {
        DISCOVER: parts.api.DiscoverCommunities,
        MAP: parts.api.MapArguments,
        ACCEPT: parts.api.AcceptSourceSuggestion,
    }
    method = methods[type(request_)]
    with pytest.raises(Aborted):
        context.run(method, request_)
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details.startswith(message), context.details
    assert parts.web.calls == []


def test_an_unknown_issue_is_not_found() -> None:
    parts = make(mentions=False)
    context = FakeContext()
    with pytest.raises(Aborted):
        context.run(parts.api.MapArguments, pb.MapArgumentsRequest(issue_id="nope"))
    assert context.code == grpc.StatusCode.NOT_FOUND


def test_communities_with_a_feed_found_by_autodiscovery_and_remembered() -> None:
    parts = make()
    context: Any = FakeContext()
    request = pb.DiscoverCommunitiesRequest(issue_id="plastics", autodiscover=True, limit=5)
    report = context.run(parts.api.DiscoverCommunities, request)
    assert report.mentions == 440
    assert len(report.communities) == 5 and report.communities[0].rank == 1
    assert report.communities[0].tone[0].recommendation
    feeds = [s for s in report.suggestions if s.kind == "rss"]
    assert [(s.source, s.found_on, s.feed_items, s.feed_matches) for s in feeds] == [
        ("https://blog.example.net/feed.xml", HOME, 2, 1)
    ]
    assert {s.source for s in report.suggestions} >= {
        "reddit:https://oauth.reddit.com/r/plasticfree/new",
        "mastodon:https://social.example/tags/plastics",
    }
    # The forum's home page does not answer: no suggestion for it, the rest goes on.
    looked = sorted(parts.web.calls)
    assert looked == [HOME, "https://blog.example.net/feed.xml", "https://forum.example.com/"]
    again = context.run(parts.api.DiscoverCommunities, request)
    assert again.report_id == report.report_id  # same content, same id
    assert sorted(parts.web.calls) == looked  # remembered
    quiet = context.run(
        parts.api.DiscoverCommunities, pb.DiscoverCommunitiesRequest(issue_id="plastics")
    )
    assert not any(s.kind == "rss" for s in quiet.suggestions)


def test_accepting_a_suggestion_saves_the_issue_as_update_issue_would() -> None:
    parts = make(mentions=False)
    context: Any = FakeContext()
    source = "reddit:https://oauth.reddit.com/r/plasticfree/new"
    issue = context.run(
        parts.api.AcceptSourceSuggestion,
        pb.AcceptSourceSuggestionRequest(issue_id="plastics", source=f" {source} "),
    )
    assert list(issue.feeds) == [NEWS, source]
    assert issue.active and list(issue.campaign_ids) == ["plastics-2026"]
    assert parts.state.issue("plastics") == issue
    assert parts.kafka.on(LISTEN_TRACKED_ISSUES_V1)[-1][1].tracked_issue == issue
    written = len(parts.kafka.records)
    context.run(
        parts.api.AcceptSourceSuggestion,
        pb.AcceptSourceSuggestionRequest(issue_id="plastics", source=source),
    )
    assert len(parts.kafka.records) == written  # already there: nothing written


def test_the_periodic_job_sends_both_reports_of_every_active_issue() -> None:
    parts = make()
    parts.insights.publish_all()
    assert parts.web.calls == []  # no web request from the background job
    [(_, community)] = parts.kafka.on(LISTEN_COMMUNITIES_V1)
    assert not any(s.kind == "rss" for s in community.community_report.suggestions)
    [(_, themes)] = parts.kafka.on(LISTEN_THEMES_V1)
    for envelope, topic in ((community, LISTEN_COMMUNITIES_V1), (themes, LISTEN_THEMES_V1)):
        EventCodec.validate(default_catalog().topic(topic), envelope)
        assert envelope.issue_id == "plastics"
        assert envelope.campaign_id == "plastics-2026"
    assert community.event_id == community.community_report.report_id
    assert themes.theme_report.mentions == 440
    assert themes.theme_report.window_end.ToDatetime(tzinfo=UTC) == NOW
    assert themes.theme_report.window_start.ToDatetime(tzinfo=UTC) == NOW - timedelta(days=7)
    assert len(themes.theme_report.themes) >= 5
    # Once an analyst's call found the blog's feed, the next periodic report carries it.
    parts.api.DiscoverCommunities(
        pb.DiscoverCommunitiesRequest(issue_id="plastics", autodiscover=True),
        FakeContext(),  # type: ignore[arg-type]
    )
    parts.insights.publish_all()
    latest = parts.kafka.on(LISTEN_COMMUNITIES_V1)[-1][1].community_report
    assert "https://blog.example.net/feed.xml" in {s.source for s in latest.suggestions}


def test_a_stored_query_the_parser_now_refuses_counts_no_feed_matches() -> None:
    from legation_listener.adapters.insights import _count_matches

    item = FeedItem(
        item_id="1",
        url="https://blog.example/1",
        title="treaty",
        text="the plastics treaty",
        author="a",
        published_at=datetime(2026, 12, 1, tzinfo=UTC),
        language="en",
    )
    valid = listen_pb2.TrackedIssue(issue_id="p", query="treaty")
    refused = listen_pb2.TrackedIssue(issue_id="p", query="treaty links:example.org")
    assert _count_matches(valid, "https://blog.example/feed", [item]) == 1
    assert _count_matches(refused, "https://blog.example/feed", [item]) == 0
