"""Polling: read every source of the tracked issues and emit a Mention per new matching item.

Each source sits behind a connector (``adapters/connectors``): RSS/Atom, Mastodon,
Bluesky, Reddit. For one source of one issue the order is, page by page: read the page
after the stored cursor, build the mentions of its new items that match, send them and
wait for their acks, and only then store the page's cursor. A crash in between re-reads
the same page next time and re-emits the same mention ids (at-least-once, and consumers
deduplicate on event id). A source has at most ``max_pages`` pages read per poll; the rest
waits for the next poll (its cursor says where).

Pushed items (the webhook, JSONL imports) go through :meth:`Poller.ingest`: the same
matching, sending and cursor, for every active issue that watches the pushed source. A
push does not wait for a poll (polls never touch a pushed source's cursor); pushes to one
source run one at a time (each reads, moves and stores its cursors), pushes to different
sources at once, and the spike detector is shared under its own lock.

Every item read also goes into the recent-items buffer (for PreviewQuery), and every
acknowledged mention into the spike detector; after an issue's sources, the detector's
spikes are sent as Alert events (an alert not acknowledged is tried again at the next
poll). Each source's outcome (read, failed, rate limited, malformed items skipped) goes to
the status book (``ListSources``) and the metrics; a failing source never stops the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge

from legation.events.v1 import listen_pb2
from legation_core.calls import CallExpired
from legation_core.codec import make_envelope
from legation_core.kafka import EventProducer
from legation_core.metrics import BoundedLabel
from legation_core.topic_names import LISTEN_ALERTS_V1, LISTEN_MENTIONS_V1, LISTEN_SOURCE_HEALTH_V1
from legation_listener.adapters.connectors.base import (
    Connector,
    RateLimited,
    next_cursor,
    remember,
    unseen,
)
from legation_listener.adapters.connectors.rss import RssConnector
from legation_listener.adapters.connectors.webhook import IngestResult
from legation_listener.adapters.feeds import FetchResult
from legation_listener.adapters.state import ListenerState
from legation_listener.domain.items import FeedItem
from legation_listener.domain.mentions import mentions_for
from legation_listener.domain.recent import RecentItems
from legation_listener.domain.sources import (
    WEBHOOK,
    Source,
    parse_source,
    source_kind,
    source_location,
)
from legation_listener.domain.spikes import SpikeDetector, alert_envelope
from legation_listener.domain.status import SourceState, SourceStatusBook, health_change

log = logging.getLogger(__name__)


class Deferred(Exception):
    """A source that asked us (429 with Retry-After) not to come back before ``until``."""

    def __init__(self, message: str, until: datetime, *, skipped: bool = False) -> None:
        super().__init__(message)
        self.until = until
        # True when the source was not read at all this time (still inside its wait).
        self.skipped = skipped


def rate_limit_key(source: Source) -> str:
    """What a rate limit applies to: the platform host (every source read there)."""
    host = urlsplit(source.base_url or source.url).netloc or source.url
    return f"{source.kind} {host}"


# Ids a pushed source's cursor remembers (a repeated push of older items re-emits the same
# mention ids, which consumers deduplicate).
PUSH_SEEN_KEPT = 2000


class Fetcher(Protocol):
    """Reads a feed (:class:`~legation_listener.adapters.feeds.FeedFetcher` in production)."""

    def fetch(self, feed: str, etag: str = "", last_modified: str = "") -> FetchResult: ...


@dataclass
class PollResult:
    """What one poll did: mentions acknowledged by Kafka, and feeds that failed (with why)."""

    mentions_emitted: int = 0
    failed_feeds: list[str] = field(default_factory=list)
    alerts_emitted: int = 0


class Poller:
    """Polls the feeds of tracked issues; one poll runs at a time."""

    def __init__(
        self,
        state: ListenerState,
        fetcher: Fetcher,
        producer: EventProducer,
        registry: CollectorRegistry,
        *,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        recent: RecentItems | None = None,
        spikes: SpikeDetector | None = None,
        connectors: Sequence[Connector] = (),
        statuses: SourceStatusBook | None = None,
        max_pages: int = 10,
        on_mentions: Callable[[str, list[listen_pb2.Mention]], None] | None = None,
        failing_after: int = 3,
    ) -> None:
        self.state = state
        # Failed reads in a row after which a source is reported failing (SourceHealth).
        self.failing_after = max(1, failing_after)
        # Sees every mention Kafka acknowledged (the analyses' mention window).
        self.on_mentions = on_mentions
        # RSS/Atom through ``fetcher`` unless a connector for "rss" is given.
        self.connectors: dict[str, Connector] = {"rss": RssConnector(fetcher)}
        self.connectors.update({connector.kind: connector for connector in connectors})
        self.statuses = statuses if statuses is not None else SourceStatusBook()
        self.max_pages = max(1, max_pages)
        # Per platform host: no read before this time (the host answered 429 asking so).
        self._not_before: dict[str, datetime] = {}
        self.recent = recent if recent is not None else RecentItems()
        self.spikes = spikes if spikes is not None else SpikeDetector()
        self.fetcher = fetcher
        self.producer = producer
        self.stop = stop or threading.Event()
        self.clock = clock
        # The periodic job and PollNow may ask at once; two polls of one feed would race
        # on its cursor.
        self._lock = threading.Lock()
        # Per pushed source: its pushes one at a time, since each reads, moves and stores
        # the source's cursor of every issue watching it. Pushed sources are never polled,
        # so a push does not wait for a poll in progress, nor for a push to another source.
        # What pushes and polls share is thread-safe: the state tables, the recent items,
        # the status book (keyed by issue and source), the mention window, the metrics, the
        # producer; the spike detector (plain domain code) under its own lock, which also
        # makes an alert's check-send-record one step. A lock is made at a source's first
        # push, once an issue watches it, and kept (a handful per listener).
        self._push_locks: dict[str, threading.Lock] = {}
        self._push_locks_lock = threading.Lock()
        self._spikes_lock = threading.RLock()
        self.source_failures = Counter(
            "legation_listener_source_failures_total",
            "Source reads or mention deliveries that failed (the source is read again next poll)",
            ["kind", "source"],
            registry=registry,
        )
        self.last_success = Gauge(
            "legation_listener_source_last_success_timestamp_seconds",
            "When a source of a host was last read (or pushed to) successfully, Unix time: alert "
            "on age",
            ["kind", "source"],
            registry=registry,
        )
        self.malformed_items = Counter(
            "legation_listener_malformed_items_total",
            "Items of a readable page that were malformed and skipped (the rest was taken)",
            ["kind", "source"],
            registry=registry,
        )
        self.items_seen = Counter(
            "legation_listener_items_seen_total",
            "Feed items examined for the first time for an issue",
            ["issue_id"],
            registry=registry,
        )
        # Label values: a source's host (never its URL, which may carry a token), an
        # issue's id, each the first 50 distinct, then "other".
        self._source_label = BoundedLabel(limit=50)
        self._issue_label = BoundedLabel(limit=50)
        self.alert_failures = Counter(
            "legation_listener_alert_failures_total",
            "Spike alerts Kafka did not acknowledge (tried again at the next poll)",
            registry=registry,
        )
        self.health_failures = Counter(
            "legation_listener_source_health_failures_total",
            "SourceHealth events (failing, recovered) Kafka did not acknowledge (not sent again)",
            registry=registry,
        )

    def poll(self, issue_ids: Sequence[str] | None = None) -> PollResult:
        """Polls the feeds of the active issues in ``issue_ids`` (None: every active issue).
        A failing feed is logged, counted and reported; the other feeds go on."""
        with self._lock:
            issues = self.state.active_issues()
            if issue_ids is not None:
                wanted = set(issue_ids)
                issues = [issue for issue in issues if issue.issue_id in wanted]
            result = PollResult()
            now = self.clock()
            with self._spikes_lock:
                self.spikes.prune(now)
            for issue in issues:
                with self._spikes_lock:
                    self.spikes.watch(issue.issue_id, now)
                for feed in issue.feeds:
                    if self.stop.is_set():
                        return result
                    try:
                        result.mentions_emitted += self._poll_source(issue, feed)
                    except CallExpired:
                        raise  # PollNow's caller is gone: stop (the next poll goes on)
                    except Exception as error:  # one source must not stop the rest
                        reason = str(error) or type(error).__name__
                        reason = reason if reason.startswith(feed) else f"{feed}: {reason}"
                        self._failed(issue.issue_id, feed, reason, error)
                        result.failed_feeds.append(reason)
                result.alerts_emitted += self._send_alerts(issue)
            return result

    def poll_all(self) -> None:
        """The periodic job: polls every active issue."""
        result = self.poll()
        log.info(
            "poll done",
            extra={
                "mentions": result.mentions_emitted,
                "alerts": result.alerts_emitted,
                "failed_feeds": result.failed_feeds,
            },
        )

    def ingest(self, source: str, items: list[FeedItem], malformed: list[str]) -> IngestResult:
        """Takes pushed items of ``source`` (``webhook:<name>``) for every active issue that
        watches it: match, send, wait for the acks, store the cursor (the ids seen), then
        check spikes. LookupError when no active issue watches the source; an exception
        from Kafka means nothing was acknowledged for that issue (the sender retries).
        Pushes to one source wait for each other; pushes to different sources do not."""
        self._watching(source)  # refused before a lock is made for it
        with self._push_lock(source):
            issues = self._watching(source)  # again: the issues may have changed meanwhile
            result = IngestResult(items=len(items), malformed=list(malformed))
            now = self.clock()
            with self._spikes_lock:
                self.spikes.prune(now)
            self.recent.add(source, items)
            for issue in issues:
                with self._spikes_lock:
                    self.spikes.watch(issue.issue_id, now)
                cursor = self.state.cursor(issue.issue_id, source)
                following = next_cursor(
                    cursor,
                    position="",
                    seen_item_ids=remember(
                        cursor.seen_item_ids, [item.item_id for item in items], PUSH_SEEN_KEPT
                    ),
                )
                try:
                    result.mentions += self._emit(
                        issue, source, unseen(cursor, items), cursor, following
                    )
                except Exception as error:
                    self._failed(issue.issue_id, source, f"{source}: {error}", error)
                    raise
                self._read(issue.issue_id, source, len(items), malformed)
                result.issues.append(issue.issue_id)
                self._send_alerts(issue)
            return result

    def _watching(self, source: str) -> list[listen_pb2.TrackedIssue]:
        """The active issues that watch ``source``; LookupError when none does."""
        issues = [issue for issue in self.state.active_issues() if source in issue.feeds]
        if not issues:
            raise LookupError(f"no active tracked issue watches {source}")
        return issues

    def _push_lock(self, source: str) -> threading.Lock:
        """The lock of the pushes to ``source``."""
        with self._push_locks_lock:
            return self._push_locks.setdefault(source, threading.Lock())

    def _poll_source(self, issue: listen_pb2.TrackedIssue, spec: str) -> int:
        source = parse_source(spec)
        if source.kind == WEBHOOK:
            return 0  # pushed to us; nothing to read
        connector = self.connectors.get(source.kind)
        if connector is None:
            raise LookupError(f"{spec}: the {source.kind} connector is not configured")
        host = rate_limit_key(source)
        until = self._not_before.get(host)
        if until is not None and until > self.clock():
            raise Deferred(
                f"{spec}: rate limited, not read before {until.isoformat(timespec='seconds')}",
                until,
                skipped=True,
            )
        emitted = 0
        for _ in range(self.max_pages):
            cursor = self.state.cursor(issue.issue_id, spec)
            try:
                page = connector.fetch(source, cursor)
            except RateLimited as error:
                if error.retry_after is not None:
                    until = self.clock() + timedelta(seconds=error.retry_after)
                    self._not_before[host] = until
                    raise Deferred(str(error), until) from None
                raise
            if page.not_modified:
                self._read(issue.issue_id, spec, 0, [])
                break
            self.recent.add(spec, page.items)
            emitted += self._emit(issue, spec, page.new_items, cursor, page.next_cursor)
            self._read(issue.issue_id, spec, len(page.items), page.malformed)
            if not page.more or self.stop.is_set():
                break
        return emitted

    def _emit(
        self,
        issue: listen_pb2.TrackedIssue,
        spec: str,
        new_items: list[FeedItem],
        cursor: listen_pb2.FeedCursor,
        following: listen_pb2.FeedCursor,
    ) -> int:
        """Sends the mentions of ``new_items``, waits for the acks, records them for
        spikes, then stores ``following`` (when it moved)."""
        envelopes = mentions_for(issue, spec, new_items, observed_at=self.clock())
        self.producer.send_and_wait(
            [(LISTEN_MENTIONS_V1, envelope.mention.mention_id, envelope) for envelope in envelopes]
        )
        with self._spikes_lock:
            self.spikes.record(
                issue.issue_id, [envelope.mention for envelope in envelopes], self.clock()
            )
        if self.on_mentions is not None and envelopes:
            self.on_mentions(issue.issue_id, [envelope.mention for envelope in envelopes])
        if following != cursor:
            self.state.save_cursor(following)
        self.items_seen.labels(issue_id=self._issue_label(issue.issue_id)).inc(len(new_items))
        if envelopes:
            log.info(
                "mentions emitted",
                extra={"issue_id": issue.issue_id, "source": spec, "mentions": len(envelopes)},
            )
        return len(envelopes)

    def _labels(self, spec: str) -> dict[str, str]:
        """The metric labels of a source: its kind, and its host (a webhook: its name; a
        local file: "file"), bounded."""
        kind = source_kind(spec)
        location = source_location(spec)
        if kind == WEBHOOK:
            where = location
        elif "://" in location:
            where = urlsplit(location).hostname or "none"
        else:
            where = "file"
        return {"kind": kind, "source": self._source_label(where)}

    def _read(self, issue_id: str, spec: str, items: int, malformed: list[str]) -> None:
        now = self.clock()
        self._report_health(*self.statuses.succeeded(issue_id, spec, now, items, malformed))
        self.last_success.labels(**self._labels(spec)).set(now.timestamp())
        if malformed:
            self.malformed_items.labels(**self._labels(spec)).inc(len(malformed))
            log.warning(
                "malformed items skipped",
                extra={"issue_id": issue_id, "source": spec, "malformed": malformed[:20]},
            )

    def _failed(self, issue_id: str, spec: str, reason: str, error: BaseException) -> None:
        log.warning(
            "source failed",
            exc_info=not isinstance(error, RateLimited | Deferred | LookupError | ValueError),
            extra={"issue_id": issue_id, "source": spec, "problem": reason},
        )
        if isinstance(error, Deferred) and error.skipped:
            self.statuses.deferred(issue_id, spec, reason, error.until)
            return
        self.source_failures.labels(**self._labels(spec)).inc()
        before, after = self.statuses.failed(
            issue_id,
            spec,
            self.clock(),
            reason,
            rate_limited=isinstance(error, RateLimited | Deferred),
            not_before=error.until if isinstance(error, Deferred) else None,
        )
        self._report_health(before, after)

    def _report_health(self, before: SourceState, after: SourceState) -> None:
        """Sends the SourceHealth event a read's outcome makes (failing, recovered), if any;
        one Kafka does not acknowledge is logged and counted, and the poll goes on."""
        health = health_change(before, after, self.failing_after)
        if health is None:
            return
        issue = self.state.issue(health.issue_id)
        campaign_ids = list(issue.campaign_ids) if issue is not None else []
        health.campaign_ids.extend(campaign_ids)
        envelope = make_envelope(
            health,
            event_id=health.health_id,
            source_service="listener",
            occurred_at=health.at.ToDatetime(tzinfo=UTC),
            campaign_id=campaign_ids[0] if campaign_ids else "",
            issue_id=health.issue_id,
        )
        try:
            self.producer.send_and_wait([(LISTEN_SOURCE_HEALTH_V1, health.issue_id, envelope)])
        except Exception:
            self.health_failures.inc()
            log.warning(
                "source health not delivered", exc_info=True, extra={"issue_id": health.issue_id}
            )

    def forget_spikes(self, issue_id: str) -> None:
        """Drops an issue's spike counts (paused or deleted: its baseline starts again)."""
        with self._spikes_lock:
            self.spikes.forget(issue_id)

    def _send_alerts(self, issue: listen_pb2.TrackedIssue) -> int:
        # One check-send-record at a time, so a poll and a push never send one alert twice.
        with self._spikes_lock:
            return self._send_alerts_locked(issue)

    def _send_alerts_locked(self, issue: listen_pb2.TrackedIssue) -> int:
        now = self.clock()
        sent = 0
        for spike in self.spikes.check(issue.issue_id, now):
            envelope = alert_envelope(issue, spike, now)
            try:
                self.producer.send_and_wait([(LISTEN_ALERTS_V1, issue.issue_id, envelope)])
            except Exception:
                log.warning(
                    "alert not delivered", exc_info=True, extra={"issue_id": issue.issue_id}
                )
                self.alert_failures.inc()
                continue
            self.spikes.alerted(spike)
            sent += 1
            log.info(
                "spike alert",
                extra={
                    "issue_id": issue.issue_id,
                    "window_start": spike.window_start.isoformat(),
                    "count": spike.count,
                    "threshold": spike.verdict.threshold,
                },
            )
        return sent
