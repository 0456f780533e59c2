"""Source health: a source that keeps failing is reported once, and once when it recovers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from legation.events.v1 import listen_pb2
from legation_listener.adapters.feeds import FetchResult
from legation_listener.domain.status import SourceStatusBook, health_change

H = listen_pb2.SourceHealth
T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)
FEED = "https://news.example.org/feed.xml"


def test_failing_is_reported_once_at_the_threshold_and_recovered_once() -> None:
    book = SourceStatusBook()
    events = []
    for minute in range(6):  # six failed polls: one FAILING, at the third
        before, after = book.failed("treaty", FEED, T0 + timedelta(minutes=minute), "HTTP 503")
        events.append(health_change(before, after, 3))
    reported = [event for event in events if event is not None]
    assert [(e.state, e.consecutive_failures) for e in reported] == [(H.STATE_FAILING, 3)]
    assert reported[0].first_failed_at.ToDatetime(tzinfo=UTC) == T0
    assert reported[0].last_error == "HTTP 503"
    before, after = book.succeeded("treaty", FEED, T0 + timedelta(minutes=7), 4)
    recovered = health_change(before, after, 3)
    assert recovered is not None
    assert (recovered.state, recovered.consecutive_failures) == (H.STATE_RECOVERED, 6)
    assert recovered.first_failed_at == reported[0].first_failed_at
    before, after = book.succeeded("treaty", FEED, T0 + timedelta(minutes=8), 1)
    assert health_change(before, after, 3) is None  # already healthy


def test_a_source_that_fails_less_often_than_the_threshold_is_never_reported() -> None:
    book = SourceStatusBook()
    for minute in range(0, 20, 2):  # fail, recover, fail, recover...
        before, after = book.failed("treaty", FEED, T0 + timedelta(minutes=minute), "timeout")
        assert health_change(before, after, 2) is None
        before, after = book.succeeded("treaty", FEED, T0 + timedelta(minutes=minute + 1), 1)
        assert health_change(before, after, 2) is None


def test_a_new_run_of_failures_is_a_new_episode_with_its_own_id() -> None:
    book = SourceStatusBook()
    ids = []
    for start in (0, 10):
        for minute in range(2):
            before, after = book.failed("treaty", FEED, T0 + timedelta(minutes=start + minute), "x")
            change = health_change(before, after, 2)
            if change is not None:
                ids.append(change.health_id)
        book.succeeded("treaty", FEED, T0 + timedelta(minutes=start + 5), 1)
    assert len(ids) == 2 and ids[0] != ids[1]


def test_the_poller_reports_a_source_failing_once_then_recovered_on_its_topic() -> None:
    from listener_fakes import BAD, make_listener, track

    from legation_core.topic_names import LISTEN_SOURCE_HEALTH_V1

    listener = make_listener({})
    track(listener, "treaty", [BAD], ["treaty"])
    for _ in range(5):  # five failed polls (the threshold is 3): one FAILING record
        listener.poller.poll()
    [(key, failing)] = listener.kafka.on(LISTEN_SOURCE_HEALTH_V1)
    assert key == "treaty"
    assert failing.source_health.state == H.STATE_FAILING
    assert failing.source_health.source == BAD and "HTTP 500" in failing.source_health.last_error
    listener.fetcher.feeds[BAD] = []
    listener.fetcher.fetch = lambda feed, etag="", last_modified="": FetchResult(items=[])  # type: ignore[method-assign]
    listener.poller.poll()
    states = [e.source_health.state for _, e in listener.kafka.on(LISTEN_SOURCE_HEALTH_V1)]
    assert states == [H.STATE_FAILING, H.STATE_RECOVERED]
