"""Spike alerts: hourly mention volume of each tracked issue against its own baseline.

The rule. Mentions are counted per issue and per hour of publication (``published_at``,
UTC, ``[hh:00, hh+1:00)``). A window (an hour) is a spike when

    count > mean + k * stddev   and   count >= min_count

where ``mean`` and ``stddev`` (population) are taken over the hourly counts of the
``baseline_hours`` hours just before the window, empty hours counting as 0. Defaults:
12 hours, k = 3, min_count = 10. The detector checks the current hour (so a surge alerts
while it happens) and the previous one (items published late in an hour are often fetched
in the next); each window alerts at most once, with the count it had when it crossed.

Warm-up. Counts live in memory, so the baseline of an issue is only known for hours the
detector has watched: an issue alerts only for windows that start ``baseline_hours`` after
the hour it was first watched (listener start-up or issue creation). A restart therefore
cannot alert twice for one window, and ``alert_id`` (derived from issue and window) would
make a repeat recognisable anyway.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from legation.events.v1 import listen_pb2
from legation_core.codec import Envelope, make_envelope
from legation_core.ids import stable_id

SERVICE = "listener"
HOUR = timedelta(hours=1)
TOP = 5


@dataclass(frozen=True)
class SpikeRule:
    """``count > mean + stddevs * stddev`` of the previous ``baseline_hours``, and at least
    ``min_count`` mentions."""

    baseline_hours: int = 12
    stddevs: float = 3.0
    min_count: int = 10

    def __post_init__(self) -> None:
        if self.baseline_hours < 1:
            raise ValueError("baseline_hours must be at least 1")
        if self.stddevs < 0:
            raise ValueError("stddevs cannot be negative")
        if self.min_count < 1:
            raise ValueError("min_count must be at least 1")


@dataclass(frozen=True)
class Verdict:
    spike: bool
    mean: float
    stddev: float
    threshold: float


def judge(count: int, baseline: Sequence[int], rule: SpikeRule) -> Verdict:
    """Applies the rule to one window's ``count`` and its baseline hourly counts."""
    mean = sum(baseline) / len(baseline) if baseline else 0.0
    variance = sum((c - mean) ** 2 for c in baseline) / len(baseline) if baseline else 0.0
    stddev = math.sqrt(variance)
    threshold = mean + rule.stddevs * stddev
    return Verdict(count > threshold and count >= rule.min_count, mean, stddev, threshold)


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour holding ``moment``."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def alert_id_for(issue_id: str, window_start: datetime) -> str:
    """One id per issue and window: a repeated alert is the same event."""
    return stable_id("alert", issue_id, hour_of(window_start).isoformat())


@dataclass
class _Hour:
    mention_ids: set[str] = field(default_factory=set)
    terms: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    sentiment: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return len(self.mention_ids)


@dataclass(frozen=True)
class Spike:
    """A window that crossed the rule, with what the surge was made of."""

    issue_id: str
    window_start: datetime
    count: int
    verdict: Verdict
    baseline_hours: int
    top_terms: list[tuple[str, int]]
    top_sources: list[tuple[str, int]]
    sentiment: list[tuple[str, int]]

    @property
    def window_end(self) -> datetime:
        return self.window_start + HOUR

    @property
    def alert_id(self) -> str:
        return alert_id_for(self.issue_id, self.window_start)


def _ranked(counter: Counter[str], limit: int | None = TOP) -> list[tuple[str, int]]:
    # Most frequent first; ties by value so the order is reproducible.
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


class SpikeDetector:
    """Hourly counts per issue and the windows already alerted (memory only, no I/O)."""

    def __init__(self, rule: SpikeRule | None = None) -> None:
        self.rule = rule or SpikeRule()
        self._hours: dict[str, dict[datetime, _Hour]] = {}
        self._watched_since: dict[str, datetime] = {}
        self._alerted: set[tuple[str, datetime]] = set()

    def watch(self, issue_id: str, now: datetime) -> None:
        """Starts the issue's warm-up at ``now`` unless it is already watched."""
        self._watched_since.setdefault(issue_id, hour_of(now))

    def forget(self, issue_id: str) -> None:
        """Drops everything about an issue (deleted)."""
        self._hours.pop(issue_id, None)
        self._watched_since.pop(issue_id, None)
        self._alerted = {key for key in self._alerted if key[0] != issue_id}

    def record(self, issue_id: str, mentions: Iterable[listen_pb2.Mention], now: datetime) -> None:
        """Counts mentions in the hour they were published; a mention id counts once.
        Mentions published before the oldest hour a check can still look at, or more than
        an hour ahead of ``now`` (a wrong clock in the feed), are not counted."""
        oldest = hour_of(now) - HOUR * (self.rule.baseline_hours + 1)
        latest = hour_of(now) + HOUR
        hours = self._hours.setdefault(issue_id, {})
        for mention in mentions:
            hour = hour_of(mention.published_at.ToDatetime(tzinfo=UTC))
            if hour < oldest or hour > latest:
                continue
            bucket = hours.setdefault(hour, _Hour())
            if mention.mention_id in bucket.mention_ids:
                continue
            bucket.mention_ids.add(mention.mention_id)
            bucket.terms.update(dict.fromkeys(mention.matched_keywords, 1))
            bucket.sources[mention.source_url] += 1
            bucket.sentiment[mention.sentiment.value or "unknown"] += 1

    def count(self, issue_id: str, hour: datetime) -> int:
        bucket = self._hours.get(issue_id, {}).get(hour_of(hour))
        return bucket.count if bucket else 0

    def check(self, issue_id: str, now: datetime) -> list[Spike]:
        """Spikes of the previous and the current hour not alerted yet (oldest first).
        Call :meth:`alerted` once an alert is delivered."""
        since = self._watched_since.get(issue_id)
        if since is None:
            return []
        current = hour_of(now)
        spikes = []
        for window in (current - HOUR, current):
            if (issue_id, window) in self._alerted:
                continue
            if window - HOUR * self.rule.baseline_hours < since:
                continue  # warm-up: part of the baseline was not watched
            count = self.count(issue_id, window)
            baseline = [
                self.count(issue_id, window - HOUR * back)
                for back in range(1, self.rule.baseline_hours + 1)
            ]
            verdict = judge(count, baseline, self.rule)
            if not verdict.spike:
                continue
            bucket = self._hours[issue_id][window]
            spikes.append(
                Spike(
                    issue_id=issue_id,
                    window_start=window,
                    count=count,
                    verdict=verdict,
                    baseline_hours=self.rule.baseline_hours,
                    top_terms=_ranked(bucket.terms),
                    top_sources=_ranked(bucket.sources),
                    sentiment=_ranked(bucket.sentiment, None),
                )
            )
        return spikes

    def alerted(self, spike: Spike) -> None:
        self._alerted.add((spike.issue_id, spike.window_start))

    def prune(self, now: datetime) -> None:
        """Forgets hours no check can look at any more."""
        oldest = hour_of(now) - HOUR * (self.rule.baseline_hours + 1)
        for hours in self._hours.values():
            for hour in [hour for hour in hours if hour < oldest]:
                del hours[hour]
        self._alerted = {key for key in self._alerted if key[1] >= oldest}


def _counts(pairs: Sequence[tuple[str, int]]) -> list[listen_pb2.Alert.Count]:
    return [listen_pb2.Alert.Count(value=value, count=count) for value, count in pairs]


def build_alert(issue: listen_pb2.TrackedIssue, spike: Spike) -> listen_pb2.Alert:
    alert = listen_pb2.Alert(
        alert_id=spike.alert_id,
        issue_id=spike.issue_id,
        count=spike.count,
        baseline_mean=spike.verdict.mean,
        baseline_stddev=spike.verdict.stddev,
        baseline_hours=spike.baseline_hours,
        threshold=spike.verdict.threshold,
        top_terms=_counts(spike.top_terms),
        top_sources=_counts(spike.top_sources),
        sentiment=_counts(spike.sentiment),
        campaign_ids=list(issue.campaign_ids),
    )
    alert.window_start.FromDatetime(spike.window_start)
    alert.window_end.FromDatetime(spike.window_end)
    return alert


def alert_envelope(issue: listen_pb2.TrackedIssue, spike: Spike, now: datetime) -> Envelope:
    """The Alert event; its id is the alert id, ``occurred_at`` when the surge was seen."""
    alert = build_alert(issue, spike)
    return make_envelope(
        alert,
        event_id=alert.alert_id,
        source_service=SERVICE,
        occurred_at=now,
        campaign_id=issue.campaign_ids[0] if issue.campaign_ids else "",
        issue_id=issue.issue_id,
        observed_at=now,
    )
