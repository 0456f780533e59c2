"""Each connector against a local server that answers in its platform's documented shapes
(legation_devstack.source_servers): paging from a durable cursor, rate limits, error
pages, timeouts and malformed items. Nothing here reaches the internet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from legation.events.v1 import listen_pb2
from legation_core.http_server import HttpServer
from legation_devstack.channel_servers import Canned
from legation_devstack.source_servers import (
    BlueskySearchServer,
    FeedServer,
    MastodonTimelineServer,
    RedditApiServer,
)
from legation_listener import importer
from legation_listener.adapters.connectors.base import (
    Backoff,
    Connector,
    Page,
    RateLimited,
    SourceFailure,
    parse_time,
)
from legation_listener.adapters.connectors.bluesky import BlueskyConnector
from legation_listener.adapters.connectors.mastodon import MastodonConnector
from legation_listener.adapters.connectors.reddit import RedditConnector
from legation_listener.adapters.connectors.rss import RssConnector
from legation_listener.adapters.connectors.webhook import IngestResult, WebhookApp
from legation_listener.adapters.feeds import FeedFetcher
from legation_listener.domain.addresses import AddressPolicy
from legation_listener.domain.items import FeedItem
from legation_listener.domain.sources import parse_source

# The replay servers listen on loopback, which production connectors refuse.
LOOPBACK = AddressPolicy.from_setting("127.0.0.0/8,::1")


def backoff(retries: int = 0) -> Backoff:
    return Backoff(retries, backoff_seconds=0.01, max_backoff_seconds=5.0)


def read_all(
    connector: Connector, spec: str, cursor: listen_pb2.FeedCursor
) -> tuple[list[Page], listen_pb2.FeedCursor]:
    """Reads pages until the connector says there is no more (as one poll does)."""
    source = parse_source(spec)
    pages = []
    for _ in range(20):
        page = connector.fetch(source, cursor)
        pages.append(page)
        cursor = page.next_cursor
        if not page.more:
            break
    return pages, cursor


def new_ids(pages: list[Page]) -> list[str]:
    return [item.item_id for page in pages for item in page.new_items]


def empty(spec: str) -> listen_pb2.FeedCursor:
    return listen_pb2.FeedCursor(issue_id="i", feed=spec)


# ------------------------------------------------------------------------------ Mastodon


@pytest.fixture
def mastodon() -> Iterator[MastodonTimelineServer]:
    with MastodonTimelineServer() as server:
        yield server


def test_mastodon_pages_forward_from_the_cursor_and_fills_the_platform_fields(
    mastodon: MastodonTimelineServer,
) -> None:
    spec = f"mastodon:{mastodon.url}/tags/plastics"
    first = mastodon.post("Old news on the treaty", tags=("plastics",))
    mastodon.post("Unrelated", tags=("football",))
    connector = MastodonConnector(backoff(), policy=LOOPBACK, page_size=2)
    pages, cursor = read_all(connector, spec, empty(spec))
    assert new_ids(pages) == [first["id"]]
    assert cursor.position == first["id"]

    later = [
        mastodon.post(f"Treaty update {n}", tags=("plastics",), followers=5 + n) for n in range(5)
    ]
    reply = mastodon.post("Agreed on the treaty", tags=("plastics",), in_reply_to_id=later[0]["id"])
    pages, cursor = read_all(connector, spec, cursor)
    # A full page may have a next one: the fourth read finds nothing.
    assert [len(page.new_items) for page in pages] == [2, 2, 2, 0]
    assert new_ids(pages) == [s["id"] for s in [*later, reply]]  # oldest first, no repeat
    assert [
        r.query["min_id"] for r in mastodon.requests_to("GET", "/api/v1/timelines/tag/plastics")[1:]
    ] == [
        [first["id"]],
        [later[1]["id"]],
        [later[3]["id"]],
        [reply["id"]],
    ]
    item = pages[-2].new_items[-1]
    assert (item.source, item.author, item.author_id) == (
        "mastodon",
        "Alice",
        reply["account"]["url"],
    )
    assert (item.in_reply_to, item.thread_id) == (later[0]["id"], later[0]["id"])
    assert pages[0].new_items[0].thread_id == later[0]["id"]
    assert pages[0].new_items[1].reach == 6
    assert item.text.startswith("Agreed on the treaty") and item.language == "en"
    pages, cursor = read_all(connector, spec, cursor)
    assert new_ids(pages) == [] and cursor.position == reply["id"]


def test_mastodon_waits_for_a_rate_limit_then_reads(mastodon: MastodonTimelineServer) -> None:
    spec = f"mastodon:{mastodon.url}/public"
    status = mastodon.post("Treaty")
    mastodon.rate_limit_next(seconds=1)
    page = MastodonConnector(backoff(retries=1), policy=LOOPBACK).fetch(
        parse_source(spec), empty(spec)
    )
    assert [item.item_id for item in page.new_items] == [status["id"]]
    assert len(mastodon.requests_to("GET", "/api/v1/timelines/public")) == 2


def test_mastodon_rate_limit_longer_than_we_wait_fails_the_read_now(
    mastodon: MastodonTimelineServer,
) -> None:
    spec = f"mastodon:{mastodon.url}/public"
    mastodon.rate_limit_next(seconds=600)
    with pytest.raises(RateLimited, match="429"):
        MastodonConnector(backoff(retries=3), policy=LOOPBACK).fetch(
            parse_source(spec), empty(spec)
        )
    assert len(mastodon.requests_to("GET", "/api/v1/timelines/public")) == 1


def test_mastodon_error_page_and_timeout_fail_the_read(mastodon: MastodonTimelineServer) -> None:
    spec = f"mastodon:{mastodon.url}/public"
    mastodon.fail_next(
        "/api/v1/timelines",
        Canned(503, b"<html>Down for maintenance</html>", {"Content-Type": "text/html"}),
        times=2,
    )
    with pytest.raises(SourceFailure, match="after 2 attempts"):
        MastodonConnector(backoff(retries=1), policy=LOOPBACK).fetch(
            parse_source(spec), empty(spec)
        )
    connector = MastodonConnector(backoff(), policy=LOOPBACK, timeout_seconds=0.3)
    connector.fetch(parse_source(spec), empty(spec))  # Mastodon.py asks for the instance first
    mastodon.answer_late(2.0)
    with pytest.raises(SourceFailure, match=r"timed out|Timeout"):
        connector.fetch(parse_source(spec), empty(spec))


def test_mastodon_malformed_status_is_reported_and_the_rest_taken(
    mastodon: MastodonTimelineServer,
) -> None:
    spec = f"mastodon:{mastodon.url}/tags/plastics"
    connector = MastodonConnector(backoff(), policy=LOOPBACK)
    _, cursor = read_all(connector, spec, empty(spec))
    before = mastodon.post("Treaty one", tags=("plastics",))
    bad = mastodon.add_raw({"content": "<p>no account, no date</p>"})
    after = mastodon.post("Treaty two", tags=("plastics",))
    page = connector.fetch(parse_source(spec), cursor)
    assert [item.item_id for item in page.new_items] == [before["id"], after["id"]]
    assert page.malformed == [f"status 2 of the page: status {bad}: 'created_at' is not a time"]
    assert page.next_cursor.position == after["id"]


# ------------------------------------------------------------------------------- Bluesky


@pytest.fixture
def bluesky() -> Iterator[BlueskySearchServer]:
    with BlueskySearchServer() as server:
        yield server


def test_bluesky_search_walks_a_pass_down_to_the_watermark(bluesky: BlueskySearchServer) -> None:
    spec = f"bluesky:{bluesky.url}/search?q=treaty"
    start = datetime.now(UTC) - timedelta(minutes=30)
    first = bluesky.post("The plastics treaty", created_at=start)
    connector = BlueskyConnector(backoff(), policy=LOOPBACK, page_size=2)
    pages, cursor = read_all(connector, spec, empty(spec))
    assert new_ids(pages) == [first["uri"]]

    later = [
        bluesky.post(
            f"Treaty talk {n}",
            created_at=start + timedelta(minutes=n + 1),
            handle=f"u{n}.bsky.social",
        )
        for n in range(4)
    ]
    reply = bluesky.post(
        "Yes, the treaty", reply_to=later[0], created_at=start + timedelta(minutes=9), followers=77
    )
    pages, cursor = read_all(connector, spec, cursor)
    assert sorted(new_ids(pages)) == sorted(p["uri"] for p in [*later, reply])
    assert len(new_ids(pages)) == 5 and len(pages) == 3
    searches = bluesky.requests_to("GET", "/xrpc/app.bsky.feed.searchPosts")
    assert {parse_time(r.query["since"][0]) for r in searches[1:]} == {
        parse_time(first["indexedAt"])
    }
    assert parse_time(json.loads(cursor.position)["since"]) == parse_time(reply["indexedAt"])
    item = next(i for p in pages for i in p.new_items if i.item_id == reply["uri"])
    assert (item.source, item.author_id, item.in_reply_to, item.thread_id) == (
        "bluesky",
        reply["author"]["did"],
        later[0]["uri"],
        later[0]["uri"],
    )
    assert item.url.startswith("https://bsky.app/profile/alice.bsky.social/post/")
    assert item.reach == 77  # followersCount from app.bsky.actor.getProfiles
    pages, _ = read_all(connector, spec, cursor)
    assert new_ids(pages) == []  # the post on the watermark is read again, not re-emitted


def test_bluesky_rate_limit_then_malformed_post(bluesky: BlueskySearchServer) -> None:
    spec = f"bluesky:{bluesky.url}/search?q=treaty"
    good = bluesky.post("A treaty post")
    bluesky.add_raw({"uri": "at://did:plc:x/app.bsky.feed.post/bad", "record": "nope"}, "treaty")
    bluesky.rate_limit_next(seconds=1)
    page = BlueskyConnector(backoff(retries=1), policy=LOOPBACK).fetch(
        parse_source(spec), empty(spec)
    )
    assert [item.item_id for item in page.new_items] == [good["uri"]]
    [problem] = page.malformed
    assert problem.endswith(
        "of the page: at://did:plc:x/app.bsky.feed.post/bad: 'record' is missing"
    )


def test_bluesky_pass_restarts_when_the_page_cursor_is_refused(
    bluesky: BlueskySearchServer,
) -> None:
    spec = f"bluesky:{bluesky.url}/search?q=treaty"
    start = datetime.now(UTC) - timedelta(hours=1)
    bluesky.post("treaty seed", created_at=start)
    connector = BlueskyConnector(backoff(), policy=LOOPBACK, page_size=2)
    _, cursor = read_all(connector, spec, empty(spec))
    later = [
        bluesky.post(f"treaty {n}", created_at=start + timedelta(minutes=n + 1)) for n in range(5)
    ]
    source = parse_source(spec)
    page = connector.fetch(source, cursor)
    assert page.more
    bluesky.fail_next("/xrpc", Canned(400, {"error": "InvalidRequest", "message": "bad cursor"}))
    restarted = connector.fetch(source, page.next_cursor)
    assert (restarted.new_items, restarted.more) == ([], True)
    assert "cursor" not in json.loads(restarted.next_cursor.position)
    pages, _ = read_all(connector, spec, restarted.next_cursor)
    emitted = [*new_ids([page]), *new_ids(pages)]
    assert sorted(emitted) == sorted(p["uri"] for p in later)  # nothing skipped, no repeat


def test_bluesky_error_answer_fails_the_read(bluesky: BlueskySearchServer) -> None:
    spec = f"bluesky:{bluesky.url}/search?q=treaty"
    bluesky.fail_next(
        "/xrpc", Canned(400, {"error": "InvalidRequest", "message": "Error: bad query"})
    )
    with pytest.raises(SourceFailure, match=r"InvalidRequest|bad query|400"):
        BlueskyConnector(backoff(retries=2), policy=LOOPBACK).fetch(parse_source(spec), empty(spec))
    bluesky.fail_next("/xrpc", Canned(200, {"unexpected": True}))
    with pytest.raises(SourceFailure, match="'posts' array"):
        BlueskyConnector(backoff(), policy=LOOPBACK).fetch(parse_source(spec), empty(spec))


def test_a_long_pass_does_not_repeat_the_watermark_post(bluesky: BlueskySearchServer) -> None:
    # More posts than the cursor's recent ids (500): the post on the watermark comes back
    # at the end of the pass and must still be recognised.
    spec = f"bluesky:{bluesky.url}/search?q=treaty"
    start = datetime.now(UTC) - timedelta(hours=2)
    bluesky.post("treaty seed", created_at=start)
    connector = BlueskyConnector(backoff(), policy=LOOPBACK, page_size=100)
    _, cursor = read_all(connector, spec, empty(spec))
    for n in range(520):
        bluesky.post(f"treaty {n}", created_at=start + timedelta(seconds=n + 1))
    pages, cursor = read_all(connector, spec, cursor)
    assert len(new_ids(pages)) == len(set(new_ids(pages))) == 520


# -------------------------------------------------------------------------------- Reddit


@pytest.fixture
def reddit() -> Iterator[RedditApiServer]:
    with RedditApiServer() as server:
        yield server


def reddit_connector(
    server: RedditApiServer, retries: int = 0, page_size: int = 100
) -> RedditConnector:
    return RedditConnector(
        backoff(retries),
        client_id=server.client_id,
        client_secret=server.client_secret,
        token_url=server.url,
        api_url=server.url,
        page_size=page_size,
    )


def test_reddit_listing_with_app_only_oauth_and_paging(reddit: RedditApiServer) -> None:
    spec = f"reddit:{reddit.url}/r/worldnews/new"
    start = datetime.now(UTC) - timedelta(hours=1)
    first = reddit.submit("worldnews", "Plastics treaty opens", created_at=start)
    connector = reddit_connector(reddit, page_size=2)
    pages, cursor = read_all(connector, spec, empty(spec))
    assert new_ids(pages) == [first["data"]["name"]]
    token_requests = reddit.requests_to("POST", "/api/v1/access_token")
    assert len(token_requests) == 1 and "client_credentials" in token_requests[0].body.decode()

    later = [
        reddit.submit(
            "worldnews",
            f"Treaty day {n}",
            "text",
            created_at=start + timedelta(minutes=n + 1),
            subscribers=7,
        )
        for n in range(5)
    ]
    pages, cursor = read_all(connector, spec, cursor)
    assert sorted(new_ids(pages)) == sorted(c["data"]["name"] for c in later)
    assert len(new_ids(pages)) == 5
    item = pages[0].new_items[-1]
    assert (item.source, item.thread_id, item.in_reply_to, item.reach) == (
        "reddit",
        item.item_id,
        "",
        7,
    )
    assert item.url.startswith("https://www.reddit.com/r/worldnews/comments/")
    pages, _ = read_all(connector, spec, cursor)
    assert new_ids(pages) == []


def test_reddit_pass_restarts_when_its_anchor_is_removed(reddit: RedditApiServer) -> None:
    spec = f"reddit:{reddit.url}/r/worldnews/new"
    start = datetime.now(UTC) - timedelta(hours=1)
    reddit.submit("worldnews", "Treaty opens", created_at=start)
    connector = reddit_connector(reddit, page_size=2)
    _, cursor = read_all(connector, spec, empty(spec))
    later = [
        reddit.submit("worldnews", f"Treaty {n}", created_at=start + timedelta(minutes=n + 1))
        for n in range(5)
    ]
    source = parse_source(spec)
    page = connector.fetch(source, cursor)  # the two newest; `after` names the older one
    assert page.more
    reddit.remove(page.items[0].item_id)
    restarted = connector.fetch(source, page.next_cursor)
    assert (restarted.new_items, restarted.more) == ([], False)
    assert (
        json.loads(restarted.next_cursor.position)["watermark"]
        == json.loads(cursor.position)["watermark"]
    )
    pages, _ = read_all(connector, spec, restarted.next_cursor)
    emitted = [*new_ids([page]), *new_ids(pages)]
    assert sorted(emitted) == sorted(c["data"]["name"] for c in later)  # nothing skipped, no repeat


def test_reddit_long_pass_does_not_repeat_items_on_the_watermark(
    reddit: RedditApiServer,
) -> None:
    spec = f"reddit:{reddit.url}/r/news/new"
    start = datetime.now(UTC) - timedelta(hours=2)
    for n in range(3):  # three posts in the same second: the watermark holds all three
        reddit.submit("news", f"seed {n}", created_at=start)
    connector = reddit_connector(reddit)
    first, cursor = read_all(connector, spec, empty(spec))
    assert len(new_ids(first)) == 3
    for n in range(520):
        reddit.submit("news", f"treaty {n}", created_at=start + timedelta(seconds=n + 1))
    pages, _ = read_all(connector, spec, cursor)
    assert len(new_ids(pages)) == len(set(new_ids(pages))) == 520


def test_reddit_comments_carry_parent_and_thread(reddit: RedditApiServer) -> None:
    spec = f"reddit:{reddit.url}/r/worldnews/comments"
    post = reddit.submit("worldnews", "Treaty thread")
    top = reddit.comment(post, "First comment on the treaty")
    answer = reddit.comment(top, "Reply about the treaty", author="carol")
    page = reddit_connector(reddit).fetch(parse_source(spec), empty(spec))
    by_id = {item.item_id: item for item in page.new_items}
    item = by_id[answer["data"]["name"]]
    assert (item.in_reply_to, item.thread_id, item.author, item.title) == (
        top["data"]["name"],
        post["data"]["name"],
        "carol",
        "Treaty thread",
    )


def test_reddit_search_rate_limit_malformed_child_and_missing_credentials(
    reddit: RedditApiServer,
) -> None:
    spec = f"reddit:{reddit.url}/search?q=treaty"
    good = reddit.submit("news", "Treaty vote today")
    reddit.add_raw("news", {"kind": "t3", "data": {"name": "t3_zz", "title": "treaty"}}, "treaty")
    reddit.rate_limit_next(seconds=1, path="/search")
    page = reddit_connector(reddit, retries=1).fetch(parse_source(spec), empty(spec))
    assert [item.item_id for item in page.new_items] == [good["data"]["name"]]
    assert page.malformed == ["child 1 of the listing: t3_zz: 'created_utc' is not a number"]
    search = reddit.requests_to("GET", "/search")[-1]
    assert search.query["q"] == ["treaty"] and search.query["sort"] == ["new"]
    with pytest.raises(SourceFailure, match="LEGATION_LISTENER_REDDIT_CLIENT_ID"):
        RedditConnector(backoff()).fetch(parse_source(spec), empty(spec))


def test_reddit_wrong_secret_fails_the_read(reddit: RedditApiServer) -> None:
    spec = f"reddit:{reddit.url}/r/news/new"
    connector = RedditConnector(
        backoff(),
        client_id="reddit-app",
        client_secret="wrong",
        token_url=reddit.url,
        api_url=reddit.url,
    )
    with pytest.raises(SourceFailure):
        connector.fetch(parse_source(spec), empty(spec))


def test_reddit_token_never_goes_to_another_host(reddit: RedditApiServer) -> None:
    spec = "reddit:http://127.0.0.1:9/r/news/new"
    with pytest.raises(SourceFailure, match="LEGATION_LISTENER_REDDIT_API_URL"):
        reddit_connector(reddit).fetch(parse_source(spec), empty(spec))
    assert reddit.received == []


def test_mastodon_token_goes_to_its_own_instance_only(mastodon: MastodonTimelineServer) -> None:
    spec = f"mastodon:{mastodon.url}/public"
    elsewhere = MastodonConnector(
        backoff(), policy=LOOPBACK, access_token="t0k", token_instance="https://m.example"
    )
    elsewhere.fetch(parse_source(spec), empty(spec))
    own = MastodonConnector(
        backoff(), policy=LOOPBACK, access_token="t0k", token_instance=mastodon.url
    )
    own.fetch(parse_source(spec), empty(spec))
    reads = mastodon.requests_to("GET", "/api/v1/timelines/public")
    assert [r.headers.get("authorization") for r in reads] == [None, "Bearer t0k"]


# ----------------------------------------------------------------------------------- RSS


def test_rss_conditional_get_and_full_text_of_summary_only_items() -> None:
    article = (
        "Negotiators from 170 countries met in Busan to agree a treaty capping plastic "
        "production.\n\nThe draft text keeps a cap on primary polymers, which producers "
        "oppose, and a fund for waste collection in poorer countries.\n\nObservers expect "
        "a vote on Friday after two more days of talks in closed session."
    )
    with FeedServer() as server:
        link = server.publish("Treaty talks", "Talks resume.", article)
        fetcher = FeedFetcher(5.0, 0, policy=LOOPBACK)
        connector = RssConnector(fetcher, fetcher)
        spec = server.feed_url
        page = connector.fetch(parse_source(spec), empty(spec))
        [item] = page.new_items
        assert item.item_id == link
        assert "primary polymers" in item.text and "newsletter" not in item.text
        assert not item.summary_only
        again = connector.fetch(parse_source(spec), page.next_cursor)
        assert again.not_modified and again.next_cursor == page.next_cursor
        assert (
            server.requests_to("GET", "/feed.xml")[-1].headers["if-none-match"]
            == page.next_cursor.etag
        )

        server.publish("Second item", "Only a summary here.")  # its article is a 404
        page = connector.fetch(parse_source(spec), page.next_cursor)
        [item] = page.new_items
        assert item.text == "Only a summary here." and item.summary_only


# ------------------------------------------------------------------------ JSONL import


@dataclass
class FakeIngest:
    calls: list[tuple[str, list[FeedItem], list[str]]] = field(default_factory=list)

    def ingest(self, source: str, items: list[FeedItem], malformed: list[str]) -> IngestResult:
        self.calls.append((source, items, malformed))
        return IngestResult(
            items=len(items), mentions=len(items), issues=["i"], malformed=malformed
        )


def test_import_cli_sends_signed_batches_and_reports_lines_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest = FakeIngest()
    server = HttpServer(
        "webhook",
        0,
        WebhookApp(ingest, "s3cret", clock=lambda: datetime(2026, 11, 20, tzinfo=UTC)),
        "127.0.0.1",
    )
    server.start()
    try:
        lines = [
            json.dumps({"id": "a", "text": "Treaty"}),
            "not json",
            json.dumps({"id": "b", "text": "Treaty"}),
            json.dumps({"id": "c"}),
            json.dumps({"id": "d", "title": "Treaty"}),
        ]
        path = tmp_path / "items.jsonl"
        path.write_text("\n".join(lines) + "\n")
        url = f"http://127.0.0.1:{server.port}"
        monkeypatch.delenv("LEGATION_LISTENER_WEBHOOK_SECRET", raising=False)
        assert importer.main(["ngo", str(path), "--url", url]) == 2  # no secret
        monkeypatch.setenv("LEGATION_LISTENER_WEBHOOK_SECRET", "s3cret")
        capsys.readouterr()
        assert importer.main(["ngo", str(path), "--url", url, "--batch-lines", "2"]) == 1
        out, err = capsys.readouterr()
        assert json.loads(out) == {"items": 3, "mentions": 3, "malformed": 2}
        # (stderr is shared: other threads of the session may log there too)
        reported = [line.split(":")[0] for line in err.splitlines() if line.startswith("line ")]
        assert reported == ["line 2", "line 4"]
        assert [[i.item_id for i in items] for _, items, _ in ingest.calls] == [["a"], ["b"], ["d"]]
        monkeypatch.setenv("LEGATION_LISTENER_WEBHOOK_SECRET", "wrong")
        assert importer.main(["ngo", str(path), "--url", url]) == 1
        assert "HTTP 401" in capsys.readouterr().err
    finally:
        server.stop()
