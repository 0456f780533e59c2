"""Sources in the poller (no I/O): source specs, pages read from a durable cursor, source
status and ListSources, malformed items, rate limits, and pushed items (webhook, JSONL)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from listener_fakes import GOOD, NOW, FakeIngest, call_webhook, make_listener, track

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as pb
from legation_core.testing import Acknowledgement, FakeContext, RecordingKafka
from legation_core.topic_names import LISTEN_FEED_CURSORS_V1, LISTEN_MENTIONS_V1
from legation_listener.adapters.connectors.base import (
    Backoff,
    Page,
    RateLimited,
    Retryable,
    SourceFailure,
    next_cursor,
    unseen,
)
from legation_listener.adapters.connectors.webhook import (
    WebhookApp,
    parse_items,
    sign,
    signature_ok,
)
from legation_listener.domain.issues import IssueError, check_feeds
from legation_listener.domain.items import FeedItem
from legation_listener.domain.mentions import mention_id_for
from legation_listener.domain.sources import Source, SourceError, parse_source

MASTO = "mastodon:https://social.example.org/tags/plastics"


def post(n: int, text: str = "Plastics treaty news") -> FeedItem:
    return FeedItem(
        str(n), f"https://social.example.org/@a/{n}", "", text, "Alice", NOW, "en",
        source="mastodon", author_id="https://social.example.org/@a", in_reply_to="",
        thread_id=str(n), reach=12,
    )  # fmt: skip


@dataclass
class FakeTimeline:
    """A connector over a list of posts, ``page_size`` at a time, position = last index."""

    posts: list[FeedItem]
    page_size: int = 2
    kind: str = "mastodon"
    failure: Exception | None = None
    malformed: dict[int, str] = field(default_factory=dict)
    reads: int = 0

    def fetch(self, source: Source, cursor: listen_pb2.FeedCursor) -> Page:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        start = int(cursor.position or 0)
        chunk = self.posts[start : start + self.page_size]
        end = start + len(chunk)
        return Page(
            items=chunk,
            new_items=unseen(cursor, chunk),
            next_cursor=next_cursor(cursor, position=str(end), seen_item_ids=[]),
            more=end < len(self.posts),
            malformed=[self.malformed[end]] if end in self.malformed else [],
        )


def test_source_specs_parse_and_bad_ones_name_the_problem() -> None:
    tag = parse_source("mastodon:https://social.example.org/tags/Plastics")
    assert (tag.kind, tag.base_url, tag.path) == (
        "mastodon",
        "https://social.example.org",
        "tags/Plastics",
    )
    assert parse_source("mastodon:https://m.example/public/local").path == "public/local"
    sky = parse_source("bluesky:https://public.api.bsky.app/search?q=plastics+treaty&lang=en")
    assert (sky.base_url, sky.param("q"), sky.param("lang")) == (
        "https://public.api.bsky.app", "plastics treaty", "en",
    )  # fmt: skip
    assert parse_source("reddit:https://oauth.reddit.com/r/worldnews/new").path == "r/worldnews/new"
    assert parse_source("reddit:https://oauth.reddit.com/search?q=treaty").param("q") == "treaty"
    assert parse_source("webhook:ngo-monitor").path == "ngo-monitor"
    assert parse_source("https://news.example.org/feed.xml").kind == "rss"
    for bad, problem in [
        ("mastodon:https://m.example/home", "ends in /tags/<hashtag>"),
        ("mastodon:ftp://m.example/public", "needs an http"),
        ("bluesky:https://b.example/search", "needs search words"),
        ("bluesky:https://b.example/search?q=x&sort=top", "unsupported parameters"),
        ("reddit:https://r.example/r/x y/new", "Reddit source is"),
        ("webhook:", "webhook name"),
    ]:
        with pytest.raises(SourceError, match=re.escape(problem)):
            parse_source(bad)
    with pytest.raises(IssueError, match=r"^feeds has a source no connector reads"):
        check_feeds(["bluesky:https://b.example/search"])


def test_pages_are_read_until_done_and_each_cursor_stored_after_its_mentions() -> None:
    listener = make_listener({})
    timeline = FakeTimeline([post(n) for n in range(5)])
    listener.poller.connectors["mastodon"] = timeline
    track(listener, "treaty", [MASTO], ["treaty"])
    assert listener.poller.poll().mentions_emitted == 5
    assert timeline.reads == 3
    kinds = [topic for topic, _, _ in listener.kafka.records[1:]]
    assert kinds == [LISTEN_MENTIONS_V1, LISTEN_MENTIONS_V1, LISTEN_FEED_CURSORS_V1] * 2 + [
        LISTEN_MENTIONS_V1,
        LISTEN_FEED_CURSORS_V1,
    ]
    [_, (_, first)] = listener.kafka.on(LISTEN_MENTIONS_V1)[:2]
    mention = first.mention
    assert (mention.source, mention.author_id, mention.thread_id, mention.reach) == (
        "mastodon", "https://social.example.org/@a", "1", 12,
    )  # fmt: skip
    assert listener.state.cursor("treaty", MASTO).position == "5"
    timeline.posts.append(post(5))
    assert listener.poller.poll().mentions_emitted == 1  # from the stored position


def test_max_pages_per_poll_leaves_the_rest_for_the_next_poll() -> None:
    listener = make_listener({})
    listener.poller.max_pages = 2
    listener.poller.connectors["mastodon"] = FakeTimeline([post(n) for n in range(5)])
    track(listener, "treaty", [MASTO], ["treaty"])
    assert listener.poller.poll().mentions_emitted == 4
    assert listener.poller.poll().mentions_emitted == 1


def test_source_status_failing_rate_limited_malformed_and_list_sources() -> None:
    listener = make_listener({GOOD: []})
    timeline = FakeTimeline([post(1), post(2)], malformed={2: "status 3: 'id' is missing"})
    listener.poller.connectors["mastodon"] = timeline
    sky = "bluesky:https://bsky.example/search?q=treaty"
    reddit = "reddit:https://oauth.reddit.example/r/news/new"
    listener.poller.connectors["bluesky"] = FakeTimeline(
        [], kind="bluesky", failure=SourceFailure(f"{sky}: HTTP 502 (after 4 attempts)")
    )
    listener.poller.connectors["reddit"] = FakeTimeline(
        [], kind="reddit", failure=RateLimited(f"{reddit}: HTTP 429, retry asked after 600s")
    )
    track(listener, "treaty", [MASTO, sky, reddit, GOOD, "webhook:ngo"], ["treaty"])
    result = listener.poller.poll()
    assert result.mentions_emitted == 2
    assert result.failed_feeds == [
        f"{sky}: HTTP 502 (after 4 attempts)",
        f"{reddit}: HTTP 429, retry asked after 600s",
    ]
    response = listener.api.ListSources(pb.ListSourcesRequest(issue_id="treaty"), FakeContext())  # type: ignore[arg-type]
    states = {s.source: s for s in response.sources}
    assert [s.source for s in response.sources] == [MASTO, sky, reddit, GOOD, "webhook:ngo"]
    assert (states[MASTO].state, states[MASTO].items_read, states[MASTO].malformed_items) == (
        "ok",
        2,
        1,
    )
    assert list(states[MASTO].malformed) == ["status 3: 'id' is missing"]
    assert (states[sky].state, states[sky].consecutive_failures, states[sky].kind) == (
        "failing",
        1,
        "bluesky",
    )
    assert states[sky].last_error == f"{sky}: HTTP 502 (after 4 attempts)"
    assert not states[sky].HasField("last_success_at") and states[sky].HasField("last_attempt_at")
    assert states[reddit].state == "rate_limited"
    assert states["webhook:ngo"].state == "unread"
    registry = listener.registry
    assert (
        registry.get_sample_value(
            "legation_listener_source_failures_total", {"kind": "bluesky", "source": "bsky.example"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "legation_listener_malformed_items_total",
            {"kind": "mastodon", "source": "social.example.org"},
        )
        == 1
    )
    last_read = registry.get_sample_value(
        "legation_listener_source_last_success_timestamp_seconds",
        {"kind": "mastodon", "source": "social.example.org"},
    )
    assert last_read == NOW.timestamp()
    # The failing source recovers: its state says so.
    listener.poller.connectors["bluesky"] = FakeTimeline([], kind="bluesky")
    listener.poller.poll()
    again = listener.api.ListSources(pb.ListSourcesRequest(), FakeContext())  # type: ignore[arg-type]
    assert {s.source: s.state for s in again.sources}[sky] == "ok"


def test_a_source_that_asks_to_wait_is_not_read_before_then() -> None:
    listener = make_listener({})
    sky = "bluesky:https://bsky.example/search?q=treaty"
    other = "bluesky:https://bsky.example/search?q=plastics"  # same host, same limit
    limited = FakeTimeline(
        [], kind="bluesky", failure=RateLimited(f"{sky}: HTTP 429, retry asked after 600s", 600)
    )
    listener.poller.connectors["bluesky"] = limited
    track(listener, "treaty", [sky, other], ["treaty"])
    first = listener.poller.poll()
    assert first.failed_feeds[0] == f"{sky}: HTTP 429, retry asked after 600s"
    assert first.failed_feeds[1].startswith(
        f"{other}: rate limited, not read before 2026-11-20T09:26"
    )
    assert limited.reads == 1
    listener.poller.poll()
    assert limited.reads == 1  # still inside the wait: not asked again
    [status] = listener.poller.statuses.states([("treaty", sky)])
    assert (status.state, status.not_before) == ("rate_limited", NOW + timedelta(seconds=600))
    assert status.consecutive_failures == 1  # skipped polls are not failed reads
    limited.failure = None
    listener.poller.clock = lambda: NOW + timedelta(seconds=601)
    assert listener.poller.poll().failed_feeds == []
    assert limited.reads == 3
    [status] = listener.poller.statuses.states([("treaty", sky)])
    assert (status.state, status.not_before) == ("ok", None)


def test_backoff_honours_retry_after_and_gives_up_on_long_waits() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Retryable("HTTP 429", 0.01)
        return "ok"

    assert Backoff(3, backoff_seconds=0.01).call("s", flaky) == "ok"
    with pytest.raises(RateLimited, match="retry asked after 99s"):
        Backoff(3, max_backoff_seconds=5).call(
            "s", lambda: (_ for _ in ()).throw(Retryable("HTTP 429", 99))
        )
    with pytest.raises(SourceFailure, match="s: HTTP 503 \\(after 2 attempts\\)"):
        Backoff(1, backoff_seconds=0.01).call(
            "s", lambda: (_ for _ in ()).throw(Retryable("HTTP 503"))
        )


# ------------------------------------------------------------------------ pushed items


def test_pushed_items_parse_from_json_array_and_jsonl_with_numbered_problems() -> None:
    items, problems = parse_items(
        json.dumps([{"id": "a", "text": "Treaty"}, {"id": "b"}, "x"]).encode(), NOW
    )
    assert [i.item_id for i in items] == ["a"]
    assert problems == [
        "item 2: b: 'text' or 'title' is required",
        "item 3: an item is a JSON object, got str",
    ]
    body = "\n".join(
        [
            json.dumps(
                {
                    "id": "1",
                    "text": "Plastics treaty vote",
                    "published_at": "2026-11-20T08:00:00Z",
                    "author_id": "u1",
                    "in_reply_to": "0",
                    "thread_id": "0",
                    "reach": 40,
                }
            ),
            "{not json",
            json.dumps({"id": "2", "text": "x", "published_at": "yesterday"}),
            "",
            json.dumps({"id": "3", "title": "Treaty", "reach": -1}),
        ]
    ).encode()
    items, problems = parse_items(body, NOW)
    [one] = items
    assert (one.source, one.author_id, one.in_reply_to, one.thread_id, one.reach) == (
        "webhook",
        "u1",
        "0",
        "0",
        40,
    )
    assert one.published_at == datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 5"]
    assert "'published_at' is not an ISO 8601 time" in problems[1]


def test_ingest_emits_for_watching_issues_once_and_refuses_unwatched_sources() -> None:
    listener = make_listener({})
    track(listener, "treaty", ["webhook:ngo"], ["treaty"])
    items, _ = parse_items(
        b'{"id": "n1", "text": "The treaty vote"}\n{"id": "n2", "text": "Football"}', NOW
    )
    result = listener.poller.ingest("webhook:ngo", items, ["line 3: not JSON"])
    assert (result.items, result.mentions, result.issues) == (2, 1, ["treaty"])
    assert [k for k, _ in listener.kafka.on(LISTEN_MENTIONS_V1)] == [mention_id_for("treaty", "n1")]
    assert listener.poller.ingest("webhook:ngo", items, []).mentions == 0  # pushed again
    with pytest.raises(LookupError, match="no active tracked issue watches webhook:other"):
        listener.poller.ingest("webhook:other", items, [])
    [status] = listener.poller.statuses.states([("treaty", "webhook:ngo")])
    assert (status.state, status.items_read, status.malformed) == ("ok", 4, ("line 3: not JSON",))


@dataclass
class HeldKafka(RecordingKafka):
    """Holds the send of the record keyed ``hold`` (once) until ``release`` is set;
    ``held`` is set while it waits."""

    hold: str = ""
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def send(self, topic: str, key: bytes, value: bytes, headers: Any) -> Acknowledgement:
        if key.decode() == self.hold:
            self.hold = ""
            self.held.set()
            self.release.wait(60)  # bounded: a failing test must not leave the thread behind
        return super().send(topic, key, value, headers)


def pushed(*ids: str) -> list[FeedItem]:
    items, problems = parse_items(
        "\n".join(json.dumps({"id": n, "text": f"Treaty {n}"}) for n in ids).encode(), NOW
    )
    assert problems == []
    return items


def pushing(listener: Any, source: str, items: list[FeedItem]) -> threading.Thread:
    """A push in a thread of its own, as the webhook's server runs each request."""
    thread = threading.Thread(target=listener.poller.ingest, args=(source, items, []))
    thread.start()
    return thread


def mention_keys(listener: Any) -> list[str]:
    return [key for key, _ in listener.kafka.on(LISTEN_MENTIONS_V1)]


def test_a_push_to_one_source_does_not_wait_for_a_push_to_another() -> None:
    kafka = HeldKafka(hold=mention_id_for("treaty", "slow-1"))
    listener = make_listener({}, kafka=kafka)
    track(listener, "treaty", ["webhook:slow", "webhook:fast"], ["treaty"])
    try:
        slow = pushing(listener, "webhook:slow", pushed("slow-1"))
        assert kafka.held.wait(30)  # the slow push is inside Kafka's send
        fast = pushing(listener, "webhook:fast", pushed("fast-1"))
        fast.join(30)
        assert not fast.is_alive()  # done while the other push still waits for Kafka
        assert slow.is_alive()
        assert mention_keys(listener) == [mention_id_for("treaty", "fast-1")]
        assert list(listener.state.cursor("treaty", "webhook:fast").seen_item_ids) == ["fast-1"]
        assert list(listener.state.cursor("treaty", "webhook:slow").seen_item_ids) == []
    finally:
        kafka.release.set()
    slow.join(30)
    assert not slow.is_alive()
    assert list(listener.state.cursor("treaty", "webhook:slow").seen_item_ids) == ["slow-1"]
    assert sorted(mention_keys(listener)) == sorted(
        mention_id_for("treaty", n) for n in ("fast-1", "slow-1")
    )


def test_pushes_to_one_source_wait_for_each_other_and_keep_every_id_once() -> None:
    kafka = HeldKafka(hold=mention_id_for("treaty", "a"))
    listener = make_listener({}, kafka=kafka)
    track(listener, "treaty", ["webhook:ngo"], ["treaty"])
    try:
        first = pushing(listener, "webhook:ngo", pushed("a", "b"))
        assert kafka.held.wait(30)  # the first push read the cursor and is inside the send
        second = pushing(listener, "webhook:ngo", pushed("b", "c"))
        # The second push is given a moment to go wrong: without one lock per source it
        # would read the same empty cursor, send "b" again, and one cursor would overwrite
        # the other. With it, it waits for the first whatever the moment.
        second.join(0.5)
        assert second.is_alive()
        assert mention_keys(listener) == []
    finally:
        kafka.release.set()
    for push in (first, second):
        push.join(30)
        assert not push.is_alive()
    # "b" came twice but went out once; the cursor keeps every id pushed.
    assert mention_keys(listener) == [mention_id_for("treaty", n) for n in ("a", "b", "c")]
    assert list(listener.state.cursor("treaty", "webhook:ngo").seen_item_ids) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "signature",
    [
        # WSGI hands header bytes over as Latin-1 text: a UTF-8 "é" arrives as "Ã©".
        "sha256=" + "é".encode().decode("latin-1") * 32,
        "sha256=\xff" + "0" * 63,
        "ÿ" * 71,
    ],
    ids=["utf-8-bytes", "latin-1", "no-ascii"],
)
def test_a_signature_with_characters_beyond_ascii_is_401_like_any_wrong_one(
    signature: str,
) -> None:
    # hmac.compare_digest raises TypeError on str beyond ASCII: it was an HTTP 500.
    ingest = FakeIngest()
    app = WebhookApp(ingest, "s3cret", clock=lambda: NOW)
    body = b'{"id": "1", "text": "Treaty"}'
    status, answer = call_webhook(app, "/webhooks/ngo", body, signature)
    assert status == "401 Unauthorized"
    assert "does not sign the body" in answer["error"]
    assert ingest.calls == []
    assert not signature_ok("s3cret", body, signature)
    assert signature_ok("s3cret", body, " " + sign("s3cret", body) + " ")


def test_webhook_checks_the_signature_and_reports_malformed_items() -> None:
    ingest = FakeIngest()
    app = WebhookApp(ingest, "s3cret", clock=lambda: NOW)
    body = b'{"id": "1", "text": "Treaty"}\n{"id": 2}'
    assert call_webhook(app, "/webhooks/ngo", body, None)[0] == "401 Unauthorized"
    assert call_webhook(app, "/webhooks/ngo", body, sign("wrong", body))[0] == "401 Unauthorized"
    status, answer = call_webhook(app, "/webhooks/ngo", body, sign("s3cret", body))
    assert status == "200 OK"
    assert answer == {
        "items": 1,
        "mentions": 1,
        "issues": ["treaty"],
        "malformed": ["line 2: 'id' is not a string"],
    }
    assert ingest.calls[0][0] == "webhook:ngo"
    bad = b"{nope"
    assert call_webhook(app, "/webhooks/ngo", bad, sign("s3cret", bad))[0] == "400 Bad Request"
    assert call_webhook(app, "/elsewhere", body, sign("s3cret", body))[0] == "404 Not Found"
    assert (
        call_webhook(app, "/webhooks/ngo", b"", None, method="GET")[0] == "405 Method Not Allowed"
    )
    ingest.error = LookupError("no active tracked issue watches webhook:ngo")
    assert call_webhook(app, "/webhooks/ngo", body, sign("s3cret", body))[0] == "404 Not Found"
    ingest.error = RuntimeError("Kafka down")
    assert (
        call_webhook(app, "/webhooks/ngo", body, sign("s3cret", body))[0]
        == "503 Service Unavailable"
    )
