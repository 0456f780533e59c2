"""The poller and the gRPC API over fake feeds and a fake Kafka producer (no I/O)."""

from __future__ import annotations

import grpc
import pytest
from listener_fakes import BAD, GOOD, NOW, item, make_listener, track
from prometheus_client import generate_latest

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as pb
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec
from legation_core.testing import Aborted, FakeContext, call
from legation_core.topic_names import (
    LISTEN_FEED_CURSORS_V1,
    LISTEN_MENTIONS_V1,
    LISTEN_TRACKED_ISSUES_V1,
)
from legation_listener.adapters.state import ListenerState
from legation_listener.domain.items import FeedItem
from legation_listener.domain.mentions import mention_id_for


def test_poll_emits_matching_mentions_then_stores_the_cursor() -> None:
    listener = make_listener({GOOD: [item("a", "Treaty talks"), item("b", "Football")]})
    track(listener, "treaty", [GOOD], ["treaty"])
    result = listener.poller.poll()
    assert result.mentions_emitted == 1
    assert result.failed_feeds == []
    topics = [topic for topic, _, _ in listener.kafka.records]
    assert topics == [LISTEN_TRACKED_ISSUES_V1, LISTEN_MENTIONS_V1, LISTEN_FEED_CURSORS_V1]
    [(key, mention)] = listener.kafka.on(LISTEN_MENTIONS_V1)
    assert key == mention.event_id == mention_id_for("treaty", "a")
    [(cursor_key, cursor)] = listener.kafka.on(LISTEN_FEED_CURSORS_V1)
    assert cursor_key == f"treaty {GOOD}"
    # The non-matching item counts as seen too: it is never examined again.
    assert list(cursor.feed_cursor.seen_item_ids) == ["a", "b"]
    assert cursor.feed_cursor.etag == '"v1"'


def test_second_poll_emits_only_new_items_and_sends_validators() -> None:
    listener = make_listener({GOOD: [item("a", "Treaty talks")]})
    track(listener, "treaty", [GOOD], ["treaty"])
    listener.poller.poll()
    listener.fetcher.feeds[GOOD] = [item("c", "New treaty draft"), item("a", "Treaty talks")]
    assert listener.poller.poll().mentions_emitted == 1
    assert [k for k, _ in listener.kafka.on(LISTEN_MENTIONS_V1)] == [
        mention_id_for("treaty", "a"),
        mention_id_for("treaty", "c"),
    ]
    assert listener.fetcher.calls[-1] == (GOOD, '"v1"', "")
    # Nothing changed: no mention, and no needless cursor write.
    cursor_writes = len(listener.kafka.on(LISTEN_FEED_CURSORS_V1))
    assert listener.poller.poll().mentions_emitted == 0
    assert len(listener.kafka.on(LISTEN_FEED_CURSORS_V1)) == cursor_writes


def test_not_modified_keeps_the_cursor() -> None:
    listener = make_listener({GOOD: [item("a", "Treaty talks")]})
    track(listener, "treaty", [GOOD], ["treaty"])
    listener.poller.poll()
    listener.fetcher.not_modified.add(GOOD)
    writes = len(listener.kafka.records)
    assert listener.poller.poll().mentions_emitted == 0
    assert len(listener.kafka.records) == writes
    assert list(listener.state.cursor("treaty", GOOD).seen_item_ids) == ["a"]


def test_a_failing_feed_is_reported_and_counted_without_stopping_the_others() -> None:
    listener = make_listener({GOOD: [item("a", "Treaty talks")]})
    track(listener, "treaty", [BAD, GOOD], ["treaty"])
    result = listener.poller.poll()
    assert result.mentions_emitted == 1
    assert result.failed_feeds == [f"{BAD}: HTTP 500 (after 4 attempts)"]
    # Labelled by the feed's host: a URL (which may carry a token) is never a label value.
    counted = listener.registry.get_sample_value(
        "legation_listener_source_failures_total", {"kind": "rss", "source": "bad.example.org"}
    )
    assert counted == 1.0


def test_undelivered_mentions_leave_the_cursor_unchanged() -> None:
    listener = make_listener({GOOD: [item("a", "Treaty talks")]})
    track(listener, "treaty", [GOOD], ["treaty"])
    listener.kafka.failing_topics.add(LISTEN_MENTIONS_V1)
    result = listener.poller.poll()
    assert result.mentions_emitted == 0
    assert result.failed_feeds == [f"{GOOD}: {LISTEN_MENTIONS_V1} unavailable"]
    assert listener.kafka.on(LISTEN_FEED_CURSORS_V1) == []
    assert list(listener.state.cursor("treaty", GOOD).seen_item_ids) == []
    # Kafka is back: the same item is emitted with the same id.
    listener.kafka.failing_topics.clear()
    assert listener.poller.poll().mentions_emitted == 1
    assert [k for k, _ in listener.kafka.on(LISTEN_MENTIONS_V1)] == [mention_id_for("treaty", "a")]


def test_poll_can_be_limited_to_issues_and_skips_inactive_ones() -> None:
    listener = make_listener({GOOD: [item("a", "Treaty talks")]})
    track(listener, "one", [GOOD], ["treaty"])
    track(listener, "two", [GOOD], ["treaty"])
    listener.state.save_issue(
        listen_pb2.TrackedIssue(issue_id="off", keywords=["treaty"], feeds=[GOOD], active=False)
    )
    assert listener.poller.poll(["two"]).mentions_emitted == 1
    assert listener.poller.poll().mentions_emitted == 1  # "one" now; "two" has seen it
    assert {e.issue_id for _, e in listener.kafka.on(LISTEN_MENTIONS_V1)} == {"one", "two"}


def test_state_folds_events_latest_wins() -> None:
    listener = make_listener({})
    track(listener, "treaty", [GOOD], ["treaty"])
    track(listener, "treaty", [GOOD], ["accord"])
    rebuilt = ListenerState()
    for _, _, envelope in listener.kafka.records:
        rebuilt.apply(envelope)
    [issue] = rebuilt.issues()
    assert list(issue.keywords) == ["accord"]


def test_track_issue_persists_before_answering() -> None:
    listener = make_listener({})
    context = FakeContext()
    issue = context.run(
        listener.api.TrackIssue,
        pb.TrackIssueRequest(name="Plastics treaty", keywords=["treaty"], feeds=[GOOD]),
    )
    assert issue.issue_id == "plastics-treaty"
    [(key, envelope)] = listener.kafka.on(LISTEN_TRACKED_ISSUES_V1)
    assert key == "plastics-treaty"
    assert envelope.tracked_issue == issue
    EventCodec.validate(default_catalog().topic(LISTEN_TRACKED_ISSUES_V1), envelope)
    listed = context.run(listener.api.ListIssues, pb.ListIssuesRequest())
    assert list(listed.issues) == [issue]


def test_track_issue_rejects_invalid_requests_naming_the_field() -> None:
    listener = make_listener({})
    context = FakeContext()
    with pytest.raises(Aborted):
        context.run(
            listener.api.TrackIssue, pb.TrackIssueRequest(name="x", keywords=[], feeds=[GOOD])
        )
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details.startswith("keywords")
    assert listener.kafka.records == []


def test_track_issue_is_unavailable_when_kafka_does_not_ack() -> None:
    listener = make_listener({})
    listener.kafka.failing_topics.add(LISTEN_TRACKED_ISSUES_V1)
    context = FakeContext()
    with pytest.raises(Aborted):
        context.run(
            listener.api.TrackIssue,
            pb.TrackIssueRequest(name="x", keywords=["treaty"], feeds=[GOOD]),
        )
    assert context.code == grpc.StatusCode.UNAVAILABLE
    assert listener.state.issues() == []


def test_poll_now_reports_and_rejects_unknown_issues() -> None:
    listener = make_listener({GOOD: [item("a", "Treaty talks")]})
    track(listener, "treaty", [GOOD, BAD], ["treaty"])
    context = FakeContext()
    response = context.run(listener.api.PollNow, pb.PollNowRequest(issue_id="treaty"))
    assert response.mentions_emitted == 1
    assert list(response.failed_feeds) == [f"{BAD}: HTTP 500 (after 4 attempts)"]
    with pytest.raises(Aborted):
        context.run(listener.api.PollNow, pb.PollNowRequest(issue_id="nope"))
    assert context.code == grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------- issue management


def test_track_issue_with_a_query_matches_by_the_query() -> None:
    listener = make_listener(
        {GOOD: [item("a", "Treaty talks in Nairobi"), item("b", "Treaty talks in Geneva")]}
    )
    issue, _ = call(
        listener.api.TrackIssue,
        pb.TrackIssueRequest(name="T", query="treat* AND NOT geneva", feeds=[GOOD]),
    )
    assert issue.query == "treat* AND NOT geneva"
    assert listener.poller.poll().mentions_emitted == 1
    [(_, envelope)] = listener.kafka.on(LISTEN_MENTIONS_V1)
    assert envelope.mention.item_id == "a"
    assert list(envelope.mention.matched_keywords) == ["treat*"]


def test_a_malformed_query_is_invalid_argument_pointing_at_the_position() -> None:
    listener = make_listener({})
    _, context = call(
        listener.api.TrackIssue,
        pb.TrackIssueRequest(name="T", query="(treaty OR pact) AND NOT cop)", feeds=[GOOD]),
    )
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details == "query: unexpected ')' at position 28"
    assert listener.kafka.records == []


def test_update_issue_with_and_without_a_mask() -> None:
    listener = make_listener({})
    track(listener, "t", [GOOD], ["treaty"])
    issue, _ = call(listener.api.UpdateIssue, pb.UpdateIssueRequest(issue_id="t", name="Renamed"))
    assert (issue.name, list(issue.keywords), list(issue.feeds)) == ("Renamed", ["treaty"], [GOOD])
    request = pb.UpdateIssueRequest(issue_id="t", query='"plastics treaty"~2')
    request.update_mask.paths.extend(["query", "keywords"])
    issue, _ = call(listener.api.UpdateIssue, request)
    assert issue.query == '"plastics treaty"~2' and list(issue.keywords) == []
    assert listener.state.issue("t") == issue
    # Clearing the query too would leave nothing to match.
    request = pb.UpdateIssueRequest(issue_id="t")
    request.update_mask.paths.append("query")
    _, context = call(listener.api.UpdateIssue, request)
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details.startswith("keywords")
    request = pb.UpdateIssueRequest(issue_id="t")
    request.update_mask.paths.append("active")
    _, context = call(listener.api.UpdateIssue, request)
    assert context.details.startswith("update_mask")
    _, context = call(listener.api.UpdateIssue, pb.UpdateIssueRequest(issue_id="t"))
    assert context.details.startswith("update_mask")
    _, context = call(listener.api.UpdateIssue, pb.UpdateIssueRequest(issue_id="t", query="a)"))
    assert context.details == "query: unexpected ')' at position 1"
    _, context = call(listener.api.UpdateIssue, pb.UpdateIssueRequest(issue_id="no", name="x"))
    assert context.code == grpc.StatusCode.NOT_FOUND


def test_pause_resume_and_delete() -> None:
    listener = make_listener({GOOD: [item("a", "Treaty talks")]})
    track(listener, "t", [GOOD], ["treaty"])
    paused, _ = call(listener.api.SetIssueActive, pb.SetIssueActiveRequest(issue_id="t"))
    assert paused.active is False
    assert listener.poller.poll().mentions_emitted == 0
    resumed, _ = call(
        listener.api.SetIssueActive, pb.SetIssueActiveRequest(issue_id="t", active=True)
    )
    assert resumed.active is True
    assert listener.poller.poll().mentions_emitted == 1
    response, _ = call(listener.api.DeleteIssue, pb.DeleteIssueRequest(issue_id="t"))
    assert response.issue.deleted is True and response.issue.active is False
    key, record = listener.kafka.on(LISTEN_TRACKED_ISSUES_V1)[-1]
    assert key == "t" and record.tracked_issue.deleted
    EventCodec.validate(default_catalog().topic(LISTEN_TRACKED_ISSUES_V1), record)
    listed, _ = call(listener.api.ListIssues, pb.ListIssuesRequest())
    assert list(listed.issues) == []
    _, context = call(listener.api.DeleteIssue, pb.DeleteIssueRequest(issue_id="t"))
    assert context.code == grpc.StatusCode.NOT_FOUND
    _, context = call(listener.api.SetIssueActive, pb.SetIssueActiveRequest(issue_id=""))
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    # The deletion survives a rebuild from the topic; tracking the id again works.
    rebuilt = ListenerState()
    for _, _, envelope in listener.kafka.records:
        rebuilt.apply(envelope)
    assert rebuilt.issues() == []
    track(listener, "t", [GOOD], ["treaty"])
    assert [i.issue_id for i in listener.state.issues()] == ["t"]


# ---------------------------------------------------------------- preview


def test_preview_runs_over_recent_items_and_given_feeds_without_saving() -> None:
    other = "https://other.example.org/feed.xml"
    listener = make_listener(
        {
            GOOD: [item("a", "Treaty talks"), item("b", "Football")],
            other: [item("c", "New treaty draft"), item("d", "Treaty")],
        }
    )
    track(listener, "t", [GOOD], ["football"])
    listener.poller.poll()
    assert len(listener.poller.recent) == 2
    writes = len(listener.kafka.records)
    response, context = call(
        listener.api.PreviewQuery,
        pb.PreviewQueryRequest(query="treaty NOT draft", feeds=[other, BAD]),
    )
    assert context.code is None
    assert response.items_examined == 4
    assert response.total_matches == 2
    assert sorted((m.source_url, m.item_id) for m in response.matches) == [
        (GOOD, "a"),
        (other, "d"),
    ]
    assert all(list(m.matched_terms) == ["treaty"] for m in response.matches)
    # Whatever went wrong (HTTP 500 here), the caller reads the same words.
    assert list(response.failed_feeds) == [f"{BAD}: could not read the feed"]
    assert len(listener.kafka.records) == writes
    assert len(listener.poller.recent) == 2
    limited, _ = call(
        listener.api.PreviewQuery, pb.PreviewQueryRequest(query="treaty", feeds=[other], limit=1)
    )
    assert len(limited.matches) == 1 and limited.total_matches == 3


@pytest.mark.parametrize(
    ("request_", "details"),
    [
        (pb.PreviewQueryRequest(query=""), "query is required"),
        (pb.PreviewQueryRequest(query="treaty AND"), "query: expected a word"),
        (pb.PreviewQueryRequest(query="x", feeds=["ftp://x/y"]), "feeds has an unsupported"),
    ],
)
def test_preview_rejects_bad_requests(request_: pb.PreviewQueryRequest, details: str) -> None:
    listener = make_listener({})
    _, context = call(listener.api.PreviewQuery, request_)
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details.startswith(details)


def test_recent_items_are_bounded_and_deduplicated() -> None:
    from legation_listener.domain.recent import RecentItems

    recent = RecentItems(3)
    recent.add(GOOD, [item("a", "A"), item("b", "B")])
    recent.add(GOOD, [item("a", "A2"), item("c", "C"), item("d", "D")])
    assert [(f, i.item_id, i.title) for f, i in recent.snapshot()] == [
        (GOOD, "a", "A2"),
        (GOOD, "c", "C"),
        (GOOD, "d", "D"),
    ]


# ---------------------------------------------------------------- spike alerts


def test_a_surge_emits_one_alert_and_restart_safe_ids() -> None:
    from datetime import timedelta

    from legation_core.topic_names import LISTEN_ALERTS_V1
    from legation_listener.domain.spikes import alert_id_for, hour_of

    clock = [NOW]
    listener = make_listener({GOOD: []})
    listener.poller.clock = lambda: clock[0]
    track(listener, "t", [GOOD], ["treaty"])
    for hour in range(13):  # one mention an hour: the baseline
        clock[0] = NOW + timedelta(hours=hour)
        listener.fetcher.feeds[GOOD] = [
            FeedItem(f"base{hour}", "", "Treaty", "", "", clock[0], "en")
        ]
        assert listener.poller.poll().alerts_emitted == 0
    clock[0] = NOW + timedelta(hours=13)
    listener.fetcher.feeds[GOOD] = [
        FeedItem(f"s{k}", "", "Treaty", "", "", clock[0], "en") for k in range(12)
    ]
    listener.kafka.failing_topics.add(LISTEN_ALERTS_V1)
    result = listener.poller.poll()
    assert (result.mentions_emitted, result.alerts_emitted) == (12, 0)
    listener.kafka.failing_topics.clear()
    # The undelivered alert goes out at the next poll, once.
    response, _ = call(listener.api.PollNow, pb.PollNowRequest(issue_id="t"))
    assert response.alerts_emitted == 1
    assert listener.poller.poll().alerts_emitted == 0
    [(key, envelope)] = listener.kafka.on(LISTEN_ALERTS_V1)
    assert key == "t"
    assert envelope.event_id == alert_id_for("t", hour_of(clock[0]))
    assert envelope.alert.count == 12
    assert envelope.alert.baseline_mean == 1.0
    EventCodec.validate(default_catalog().topic(LISTEN_ALERTS_V1), envelope)


def test_metric_labels_stay_bounded_and_carry_no_url() -> None:
    tokened = "https://feeds.example.org/private.xml?token=s3cr3t-token"
    listener = make_listener({tokened: [item("a", "Treaty talks")]})
    for number in range(60):
        track(listener, f"issue-{number}", [tokened], ["treaty"])
    listener.poller.poll()
    exposition = generate_latest(listener.registry).decode()
    assert "s3cr3t-token" not in exposition and "private.xml" not in exposition
    seen = [
        line
        for line in exposition.splitlines()
        if line.startswith("legation_listener_items_seen_total{")
    ]
    assert len(seen) == 51  # the first 50 issues, then one "other" series
    assert 'legation_listener_items_seen_total{issue_id="other"} 10.0' in seen
    last_read = listener.registry.get_sample_value(
        "legation_listener_source_last_success_timestamp_seconds",
        {"kind": "rss", "source": "feeds.example.org"},
    )
    assert last_read == NOW.timestamp()
