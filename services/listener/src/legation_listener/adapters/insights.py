"""Communities, sources to add, themes and angles of an issue, as reports.

The domain does the work (:mod:`~legation_listener.domain.discovery`,
:mod:`~legation_listener.domain.themes`, :mod:`~legation_listener.domain.tone`) over the
issue's recent mentions (:class:`~legation_listener.domain.observed.MentionWindow`) and our
publications (:class:`~legation_listener.adapters.publications.PublicationStore`); this
module adds the one piece of I/O, feed autodiscovery on the sites that keep appearing
(through the listener's :class:`~legation_listener.adapters.feeds.FeedFetcher`, with its
timeout, retries and size limits), turns the results into ``CommunityReport`` and
``ThemeReport`` events, and sends them for every active issue on a schedule.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from legation.events.v1 import listen_pb2
from legation_core.codec import Envelope, make_envelope, message_of
from legation_core.ids import stable_id
from legation_core.state import EventSink
from legation_core.topic_names import LISTEN_COMMUNITIES_V1, LISTEN_THEMES_V1
from legation_listener.adapters.feeds import FeedError, FetchResult
from legation_listener.adapters.publications import PublicationStore
from legation_listener.adapters.state import SERVICE, ListenerState
from legation_listener.domain import discovery as disc
from legation_listener.domain.items import FeedItem
from legation_listener.domain.mentions import matched_terms
from legation_listener.domain.observed import MentionWindow, Observed
from legation_listener.domain.query import QueryError
from legation_listener.domain.themes import AngleStats, ThemeStats, map_themes
from legation_listener.domain.tone import ToneProfile

log = logging.getLogger(__name__)

DEFAULT_WINDOW_HOURS = 168
MAX_WINDOW_HOURS = 720
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_MIN_MENTIONS = 100_000
DEFAULT_MAX_THEMES = 8
MAX_THEMES = 20
# Sites looked at for a feed per report, and how long what was found is remembered.
MAX_AUTODISCOVERED = 5
AUTODISCOVERY_TTL = timedelta(hours=6)
MAX_HOME_PAGE_BYTES = 2 * 1024 * 1024
FEEDS_TRIED = 3
QUOTE_CHARS = 280


class PageFetcher(Protocol):
    """Reads feeds and web pages (:class:`~legation_listener.adapters.feeds.FeedFetcher`)."""

    def fetch(self, feed: str, etag: str = "", last_modified: str = "") -> FetchResult: ...

    def fetch_article(self, url: str, max_bytes: int = ...) -> tuple[bytes, str]: ...


class Autodiscovery:
    """Finds the feed a site announces on its home page (RSS autodiscovery) and reads it;
    what it finds (or that it found nothing) is remembered for :data:`AUTODISCOVERY_TTL`."""

    def __init__(
        self,
        fetcher: PageFetcher,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ttl: timedelta = AUTODISCOVERY_TTL,
    ) -> None:
        self.fetcher = fetcher
        self.clock = clock
        self.ttl = ttl
        self._lock = threading.Lock()
        self._found: dict[str, tuple[datetime, str, list[FeedItem]]] = {}

    def feed_on(self, home: str, *, read: bool = True) -> tuple[str, list[FeedItem]] | None:
        """The first feed ``home`` announces that reads as a feed, with its items; None when
        the page cannot be read or announces none that can. ``read=False`` answers only what
        is remembered (no request)."""
        now = self.clock()
        with self._lock:
            cached = self._found.get(home)
        if cached is not None and now - cached[0] < self.ttl:
            return (cached[1], cached[2]) if cached[1] else None
        if not read:
            return None
        feed, items = "", []
        try:
            page, _ = self.fetcher.fetch_article(home, MAX_HOME_PAGE_BYTES)
            for link in disc.feed_links(page.decode("utf-8", errors="replace"), home)[:FEEDS_TRIED]:
                try:
                    items = self.fetcher.fetch(link).items
                except FeedError as error:
                    log.info(
                        "announced feed unreadable", extra={"feed": link, "problem": str(error)}
                    )
                    continue
                feed = link
                break
        except FeedError as error:
            log.info("no home page for autodiscovery", extra={"page": home, "problem": str(error)})
        with self._lock:
            self._found[home] = (now, feed, items)
        return (feed, items) if feed else None


def _counts(pairs: Sequence[tuple[str, int]]) -> list[listen_pb2.ValueCount]:
    return [listen_pb2.ValueCount(value=value, count=count) for value, count in pairs]


def _tone(tone: ToneProfile) -> listen_pb2.ToneAdvice:
    return message_of(listen_pb2.ToneAdvice, tone)


def community_message(c: disc.CommunityStats) -> listen_pb2.Community:
    """A community as the API and the event carry it."""
    return message_of(
        listen_pb2.Community,
        c,
        languages=_counts(c.languages),
        sentiment=_counts(c.sentiment),
        stance=_counts(c.stance),
        tone=[_tone(t) for t in c.tone],
    )


def voice_message(v: disc.VoiceStats) -> listen_pb2.Voice:
    """A voice as the API and the event carry it."""
    return message_of(
        listen_pb2.Voice,
        v,
        languages=_counts(v.languages),
        sentiment=_counts(v.sentiment),
        stance=_counts(v.stance),
    )


def suggestion_message(s: disc.Suggestion) -> listen_pb2.SourceSuggestion:
    """A source suggestion as the API and the event carry it."""
    return message_of(listen_pb2.SourceSuggestion, s, evidence_urls=list(s.evidence_urls))


def mention_ref(m: Observed) -> listen_pb2.MentionRef:
    """A mention quoted as an example."""
    return message_of(listen_pb2.MentionRef, m, text=m.full_text[:QUOTE_CHARS])


def theme_message(t: ThemeStats) -> listen_pb2.Theme:
    """A theme as the API and the event carry it."""
    return message_of(
        listen_pb2.Theme,
        t,
        stance=_counts(t.stance),
        sentiment=_counts(t.sentiment),
        languages=_counts(t.languages),
        communities=_counts(t.communities),
        representative=[mention_ref(m) for m in t.representative],
    )


def angle_message(a: AngleStats) -> listen_pb2.Angle:
    """An angle as the API and the event carry it."""
    return message_of(listen_pb2.Angle, a, evidence=[mention_ref(m) for m in a.evidence])


def _content_id(kind: str, report: listen_pb2.CommunityReport | listen_pb2.ThemeReport) -> str:
    # Taken before report_id and computed_at are set: the same report, whenever computed,
    # carries the same id.
    return stable_id(kind, report.SerializeToString(deterministic=True).hex())


def issue_terms(issue: listen_pb2.TrackedIssue) -> list[str]:
    """The words that name the issue (left out of themes: every mention has them)."""
    return [issue.name, *issue.keywords]


class Insights:
    """Builds the community and theme reports of tracked issues and sends them."""

    def __init__(
        self,
        state: ListenerState,
        window: MentionWindow,
        publications: PublicationStore,
        autodiscovery: Autodiscovery,
        producer: EventSink,
        *,
        reddit_api: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.state = state
        self.window = window
        self.publications = publications
        self.autodiscovery = autodiscovery
        self.producer = producer
        self.reddit_api = reddit_api
        self.clock = clock

    def community_report(
        self,
        issue: listen_pb2.TrackedIssue,
        *,
        window_hours: int = DEFAULT_WINDOW_HOURS,
        limit: int = DEFAULT_LIMIT,
        autodiscover: bool = True,
        min_mentions: int = disc.DEFAULT_MIN_MENTIONS,
        read_pages: bool = True,
    ) -> listen_pb2.CommunityReport:
        """The issue's communities, voices and source suggestions over the last
        ``window_hours``; sites are looked at for a feed when ``autodiscover`` (only among
        the feeds remembered from earlier reads when not ``read_pages``)."""
        now = self.clock()
        start = now - timedelta(hours=window_hours)
        kept = self.window.mentions(issue.issue_id, start - timedelta(hours=window_hours), now)
        # Every community may give a suggestion; the report lists the first ``limit``.
        found = disc.discover(kept, start, now, tracked_sources=list(issue.feeds))
        candidates = disc.suggest_sources(
            issue.issue_id,
            found,
            list(issue.feeds),
            reddit_api=self.reddit_api,
            min_mentions=min_mentions,
        )
        suggestions: list[disc.Suggestion] = []
        looked = 0
        for candidate in candidates:
            if not candidate.needs_feed:
                suggestions.append(candidate)
                continue
            if not autodiscover or looked >= MAX_AUTODISCOVERED:
                continue
            looked += 1
            feed = self.autodiscovery.feed_on(candidate.source, read=read_pages)
            if feed is None or feed[0] in issue.feeds:
                continue
            url, items = feed
            matches = _count_matches(issue, url, items)
            suggestions.append(disc.with_feed(candidate, url, len(items), matches))
        report = listen_pb2.CommunityReport(
            issue_id=issue.issue_id,
            mentions=found.mentions,
            communities=[community_message(c) for c in found.communities[:limit]],
            voices=[voice_message(v) for v in found.voices[:limit]],
            suggestions=[suggestion_message(s) for s in suggestions],
            campaign_ids=list(issue.campaign_ids),
        )
        report.window_start.FromDatetime(start)
        report.window_end.FromDatetime(now)
        report.report_id = _content_id("community-report", report)
        report.computed_at.FromDatetime(now)
        return report

    def theme_report(
        self,
        issue: listen_pb2.TrackedIssue,
        *,
        window_hours: int = DEFAULT_WINDOW_HOURS,
        max_themes: int = DEFAULT_MAX_THEMES,
    ) -> listen_pb2.ThemeReport:
        """The issue's themes over the last ``window_hours`` and the angles they offer
        against our publications about the issue or its campaigns."""
        now = self.clock()
        start = now - timedelta(hours=window_hours)
        kept = self.window.mentions(issue.issue_id, start, now)
        community_of = {}
        for m in kept:
            places = disc.posted_communities(m)
            chosen = [label for key, label, _ in places if key.kind != disc.HASHTAG] or [
                label for _, label, _ in places
            ]
            if chosen:
                community_of[m.mention_id] = chosen[0]
        publications = self.publications.for_issue(issue.issue_id, issue.campaign_ids, now)
        mapped = map_themes(
            issue.issue_id,
            kept,
            start,
            now,
            issue_terms=issue_terms(issue),
            publications=publications,
            max_themes=max_themes,
            community_of=community_of,
        )
        report = listen_pb2.ThemeReport(
            issue_id=issue.issue_id,
            mentions=mapped.mentions,
            unassigned=mapped.unassigned,
            themes=[theme_message(t) for t in mapped.themes],
            angles=[angle_message(a) for a in mapped.angles],
            publications_compared=mapped.publications_compared,
            campaign_ids=list(issue.campaign_ids),
        )
        report.window_start.FromDatetime(start)
        report.window_end.FromDatetime(now)
        report.report_id = _content_id("theme-report", report)
        report.computed_at.FromDatetime(now)
        return report

    def publish_all(self) -> None:
        """The periodic job: both reports of every active issue, sent and acknowledged. It
        makes no web request: its site suggestions are the feeds analysts' own
        DiscoverCommunities calls found (remembered for :data:`AUTODISCOVERY_TTL`)."""
        for issue in self.state.active_issues():
            try:
                communities = self.community_report(issue, read_pages=False)
                events = [
                    (LISTEN_COMMUNITIES_V1, issue.issue_id, self._envelope(communities)),
                    (LISTEN_THEMES_V1, issue.issue_id, self._envelope(self.theme_report(issue))),
                ]
                self.producer.send_and_wait(events)
            except Exception:  # one issue must not stop the others; the next run retries
                log.exception("insight reports not sent", extra={"issue_id": issue.issue_id})
                continue
            log.info("insight reports sent", extra={"issue_id": issue.issue_id})

    def _envelope(self, report: listen_pb2.CommunityReport | listen_pb2.ThemeReport) -> Envelope:
        at = report.computed_at.ToDatetime(tzinfo=UTC)
        return make_envelope(
            report,
            event_id=report.report_id,
            source_service=SERVICE,
            occurred_at=at,
            campaign_id=report.campaign_ids[0] if report.campaign_ids else "",
            issue_id=report.issue_id,
            observed_at=at,
        )


def _count_matches(issue: listen_pb2.TrackedIssue, feed: str, items: Sequence[FeedItem]) -> int:
    """How many of a suggested feed's items the issue would match; 0 when its stored query
    is one the parser now refuses (the issue's own reads report that error)."""
    try:
        return sum(1 for item in items if matched_terms(issue, feed, item))
    except QueryError:
        return 0
