"""Polling: read every feed of the tracked issues and emit a Mention per new matching item.

For one feed of one issue the order is: read the feed, keep the items the cursor has not
seen, build the mentions of those that match, send the mentions and wait for their acks,
and only then store the new cursor. A crash in between re-reads the same items next time
and re-emits the same mention ids (at-least-once, and consumers deduplicate on event id).

Every item read also goes into the recent-items buffer (for PreviewQuery), and every
acknowledged mention into the spike detector; after an issue's feeds, the detector's spikes
are sent as Alert events (an alert not acknowledged is tried again at the next poll).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from legation.events.v1 import listen_pb2
from legation_core.kafka import EventProducer
from legation_listener.adapters.feeds import FetchResult
from legation_listener.adapters.state import ALERTS, MENTIONS, ListenerState, StateStore
from legation_listener.domain.cursor import advance
from legation_listener.domain.mentions import mentions_for
from legation_listener.domain.recent import RecentItems
from legation_listener.domain.spikes import SpikeDetector, alert_envelope

log = logging.getLogger(__name__)


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
        store: StateStore,
        fetcher: Fetcher,
        producer: EventProducer,
        registry: CollectorRegistry,
        *,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        recent: RecentItems | None = None,
        spikes: SpikeDetector | None = None,
    ) -> None:
        self.state = state
        self.recent = recent if recent is not None else RecentItems()
        self.spikes = spikes if spikes is not None else SpikeDetector()
        self.store = store
        self.fetcher = fetcher
        self.producer = producer
        self.stop = stop or threading.Event()
        self.clock = clock
        # The periodic job and PollNow may ask at once; two polls of one feed would race
        # on its cursor.
        self._lock = threading.Lock()
        self.feed_failures = Counter(
            "legation_listener_feed_failures_total",
            "Feed reads or mention deliveries that failed (the feed is retried next poll)",
            ["feed"],
            registry=registry,
        )
        self.items_seen = Counter(
            "legation_listener_items_seen_total",
            "Feed items examined for the first time for an issue",
            ["issue_id"],
            registry=registry,
        )
        self.alert_failures = Counter(
            "legation_listener_alert_failures_total",
            "Spike alerts Kafka did not acknowledge (tried again at the next poll)",
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
            self.spikes.prune(now)
            for issue in issues:
                self.spikes.watch(issue.issue_id, now)
                for feed in issue.feeds:
                    if self.stop.is_set():
                        return result
                    try:
                        result.mentions_emitted += self._poll_feed(issue, feed)
                    except Exception as error:  # one feed must not stop the rest
                        log.warning(
                            "feed failed",
                            exc_info=True,
                            extra={"issue_id": issue.issue_id, "feed": feed},
                        )
                        self.feed_failures.labels(feed=feed).inc()
                        reason = str(error) or type(error).__name__
                        result.failed_feeds.append(
                            reason if reason.startswith(feed) else f"{feed}: {reason}"
                        )
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

    def _poll_feed(self, issue: listen_pb2.TrackedIssue, feed: str) -> int:
        cursor = self.state.cursor(issue.issue_id, feed)
        fetched = self.fetcher.fetch(feed, cursor.etag, cursor.last_modified)
        if fetched.not_modified:
            return 0
        self.recent.add(feed, fetched.items)
        step = advance(cursor, fetched.items, fetched.etag, fetched.last_modified)
        envelopes = mentions_for(issue, feed, step.new_items, observed_at=self.clock())
        self.producer.send_and_wait(
            [(MENTIONS, envelope.mention.mention_id, envelope) for envelope in envelopes]
        )
        self.spikes.record(
            issue.issue_id, [envelope.mention for envelope in envelopes], self.clock()
        )
        if step.next_cursor != cursor:
            self.store.save_cursor(step.next_cursor, self.clock())
        self.items_seen.labels(issue_id=issue.issue_id).inc(len(step.new_items))
        if envelopes:
            log.info(
                "mentions emitted",
                extra={"issue_id": issue.issue_id, "feed": feed, "mentions": len(envelopes)},
            )
        return len(envelopes)

    def _send_alerts(self, issue: listen_pb2.TrackedIssue) -> int:
        now = self.clock()
        sent = 0
        for spike in self.spikes.check(issue.issue_id, now):
            envelope = alert_envelope(issue, spike, now)
            try:
                self.producer.send_and_wait([(ALERTS, issue.issue_id, envelope)])
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
