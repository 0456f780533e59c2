"""Spike alerts: the rule, the hourly counts, warm-up, and the Alert event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from legation.events.v1 import listen_pb2
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec
from legation_listener.domain.spikes import (
    HOUR,
    SpikeDetector,
    SpikeRule,
    alert_envelope,
    alert_id_for,
    hour_of,
    judge,
)

START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
RULE = SpikeRule(baseline_hours=12, stddevs=3.0, min_count=10)


def mention(
    n: int,
    published: datetime,
    term: str = "treaty",
    sentiment: str = "neutral",
    feed: str = "https://a.example/feed",
) -> listen_pb2.Mention:
    m = listen_pb2.Mention(
        mention_id=f"m{n}",
        source_url=feed,
        matched_keywords=[term],
        sentiment=listen_pb2.Label(value=sentiment),
    )
    m.published_at.FromDatetime(published)
    return m


@pytest.mark.parametrize(
    ("count", "baseline", "spike"),
    [
        (10, [0] * 12, True),  # a quiet issue that suddenly gets min_count mentions
        (9, [0] * 12, False),  # below the minimum count
        (20, [5] * 12, True),  # flat baseline: stddev 0, any excess over the mean
        (5, [5] * 12, False),  # equal to the threshold is not above it
        (12, [2, 4] * 6, True),  # mean 3, stddev 1, threshold 6
        (6, [2, 4] * 6, False),
        (30, [0, 20] * 6, False),  # noisy baseline: mean 10, stddev 10, threshold 40
        (41, [0, 20] * 6, True),
    ],
)
def test_rule(count: int, baseline: list[int], spike: bool) -> None:
    assert judge(count, baseline, RULE).spike is spike


def test_rule_statistics() -> None:
    verdict = judge(12, [2, 4] * 6, RULE)
    assert (verdict.mean, verdict.stddev, verdict.threshold) == (3.0, 1.0, 6.0)


def test_rule_validates() -> None:
    with pytest.raises(ValueError, match="baseline_hours"):
        SpikeRule(baseline_hours=0)
    with pytest.raises(ValueError, match="min_count"):
        SpikeRule(min_count=0)


def warmed_up(detector: SpikeDetector, issue: str = "i") -> datetime:
    """Watches the issue from START with 2 mentions an hour for 12 hours; returns 'now'."""
    detector.watch(issue, START)
    n = 0
    for hour in range(12):
        for minute in (10, 40):
            n += 1
            detector.record(
                issue,
                [mention(n, START + timedelta(hours=hour, minutes=minute))],
                START + timedelta(hours=hour, minutes=minute),
            )
    return START + timedelta(hours=12, minutes=5)


def test_a_surge_alerts_once_per_window_with_its_make_up() -> None:
    detector = SpikeDetector(RULE)
    now = warmed_up(detector)
    assert detector.check("i", now) == []
    surge = [
        mention(
            100 + k,
            now + timedelta(minutes=k),
            term="cap" if k % 3 else "treaty",
            sentiment="negative" if k % 2 else "positive",
            feed="https://b.example/feed" if k < 8 else "https://a.example/feed",
        )
        for k in range(12)
    ]
    detector.record("i", surge, now + timedelta(minutes=20))
    # A mention counted twice (re-emitted after a crash) counts once.
    detector.record("i", surge[:3], now + timedelta(minutes=21))
    [spike] = detector.check("i", now + timedelta(minutes=21))
    assert spike.window_start == START + timedelta(hours=12)
    assert spike.window_end == START + timedelta(hours=13)
    assert spike.count == 12
    assert spike.verdict.mean == 2.0 and spike.verdict.stddev == 0.0
    assert spike.top_terms == [("cap", 8), ("treaty", 4)]
    assert spike.top_sources == [("https://b.example/feed", 8), ("https://a.example/feed", 4)]
    assert spike.sentiment == [("negative", 6), ("positive", 6)]
    assert spike.alert_id == alert_id_for("i", START + timedelta(hours=12, minutes=59))
    detector.alerted(spike)
    detector.record("i", [mention(500, now + timedelta(minutes=30))], now)
    assert detector.check("i", now + timedelta(minutes=40)) == []
    # The next hour the window is the previous hour: still alerted, still silent.
    assert detector.check("i", now + timedelta(hours=1)) == []


def test_the_previous_hour_is_checked_for_late_items() -> None:
    detector = SpikeDetector(RULE)
    now = warmed_up(detector) + timedelta(hours=1)  # 13:05
    late = [mention(200 + k, START + timedelta(hours=12, minutes=50)) for k in range(15)]
    detector.record("i", late, now)
    [spike] = detector.check("i", now)
    assert spike.window_start == START + timedelta(hours=12)


def test_no_alert_during_warm_up() -> None:
    detector = SpikeDetector(RULE)
    detector.watch("i", START)
    burst = [mention(k, START + timedelta(minutes=30)) for k in range(50)]
    detector.record("i", burst, START + timedelta(minutes=31))
    assert detector.count("i", START) == 50
    assert detector.check("i", START + timedelta(minutes=31)) == []
    # Twelve quiet hours later the baseline is known, and a new burst alerts.
    later = START + timedelta(hours=14, minutes=1)
    detector.record("i", [mention(100 + k, later) for k in range(10)], later)
    [spike] = detector.check("i", later)
    assert spike.window_start == START + timedelta(hours=14)
    # An issue never watched does not alert.
    assert detector.check("other", later) == []


def test_old_and_future_mentions_are_not_counted_and_old_hours_are_pruned() -> None:
    detector = SpikeDetector(RULE)
    now = START + timedelta(days=3)
    detector.record(
        "i",
        [
            mention(1, now - timedelta(days=2)),
            mention(2, now + timedelta(hours=3)),
            mention(3, now - timedelta(hours=13)),
            mention(4, now),
        ],
        now,
    )
    assert detector.count("i", now - timedelta(days=2)) == 0
    assert detector.count("i", now + timedelta(hours=3)) == 0
    assert detector.count("i", now - timedelta(hours=13)) == 1
    detector.prune(now + timedelta(hours=1))
    assert detector.count("i", now - timedelta(hours=13)) == 0
    assert detector.count("i", now) == 1
    detector.forget("i")
    assert detector.count("i", now) == 0


def test_alert_envelope_is_valid_and_deterministic() -> None:
    detector = SpikeDetector(RULE)
    now = warmed_up(detector)
    detector.record("i", [mention(100 + k, now) for k in range(11)], now)
    [spike] = detector.check("i", now)
    issue = listen_pb2.TrackedIssue(issue_id="i", campaign_ids=["c1", "c2"])
    envelope = alert_envelope(issue, spike, now)
    catalog = default_catalog()
    decoded = EventCodec(catalog).decode("legation.listen.alerts.v1", envelope.SerializeToString())
    alert = decoded.alert
    assert decoded.event_id == alert.alert_id == alert_id_for("i", hour_of(now))
    assert decoded.campaign_id == "c1" and list(alert.campaign_ids) == ["c1", "c2"]
    assert alert.count == 11 and alert.baseline_hours == 12
    assert alert.window_start.ToDatetime(tzinfo=UTC) == hour_of(now)
    assert alert.window_end.ToDatetime(tzinfo=UTC) == hour_of(now) + HOUR
    assert [(c.value, c.count) for c in alert.top_terms] == [("treaty", 11)]
    assert alert_envelope(issue, spike, now + HOUR).event_id == envelope.event_id
