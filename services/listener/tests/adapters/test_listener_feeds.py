"""Reading feeds: RSS 2.0 and Atom files, and HTTP with conditional GET and retries against
a real local HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser
import pytest
from feedparser import FeedParserDict

from legation_core.retry_after import retry_after_seconds
from legation_listener.adapters.feeds import FeedError, FeedFetcher, parse_feed_document
from legation_listener.domain.addresses import AddressPolicy

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

LOOPBACK = AddressPolicy.from_setting("127.0.0.0/8,::1")
FETCHED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>News</title><link>https://news.example.org/</link><description>d</description>
  <language>en-us</language>
  <item>
    <title>Plastics treaty talks resume</title>
    <link>https://news.example.org/2026/11/treaty-talks</link>
    <guid isPermaLink="false">tag:news.example.org,2026:1</guid>
    <author>a.reporter@example.org (A. Reporter)</author>
    <pubDate>Fri, 20 Nov 2026 10:15:00 +0100</pubDate>
    <description>&lt;p&gt;Will the &lt;b&gt;plastics treaty&lt;/b&gt;
      cap production?&lt;/p&gt;</description>
  </item>
  <item>
    <title>No guid, no date</title>
    <link>https://news.example.org/2026/11/other</link>
    <description>Plain text</description>
  </item>
</channel>
</rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr">
  <title>Actualités</title><id>urn:uuid:feed</id><updated>2026-11-20T09:15:00Z</updated>
  <entry>
    <title type="html">Le &lt;em&gt;traité&lt;/em&gt; sur les plastiques</title>
    <id>urn:uuid:entry-1</id>
    <link href="https://actu.example.org/traite"/>
    <updated>2026-11-20T09:15:00Z</updated>
    <author><name>Ana Autora</name></author>
    <content type="html">&lt;p&gt;Les négociations reprennent à Nairobi.&lt;/p&gt;</content>
  </entry>
  <entry xml:lang="es">
    <title>El tratado</title>
    <id>urn:uuid:entry-2</id>
    <published>2026-11-19T08:00:00Z</published>
    <summary>Las negociaciones se reanudan.</summary>
  </entry>
</feed>
""".encode()


class Fetchers:
    """Builds fetchers with test-sized backoff and closes them after the test."""

    def __init__(self) -> None:
        self.made: list[FeedFetcher] = []

    def __call__(self, retries: int = 3, max_backoff: float = 1.0) -> FeedFetcher:
        made = FeedFetcher(
            timeout_seconds=5.0,
            retries=retries,
            backoff_seconds=0.01,
            max_backoff_seconds=max_backoff,
            clock=lambda: FETCHED,
            # The test servers listen on loopback, which a production fetcher refuses.
            policy=LOOPBACK,
            allow_local_files=True,
        )
        self.made.append(made)
        return made


@pytest.fixture
def fetcher() -> Iterator[Fetchers]:
    fetchers = Fetchers()
    yield fetchers
    for made in fetchers.made:
        made.close()


def test_rss_file(tmp_path: Path, fetcher: Fetchers) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(RSS)
    result = fetcher().fetch(str(path))
    assert not result.not_modified
    first, second = result.items
    assert first.item_id == "tag:news.example.org,2026:1"
    assert first.url == "https://news.example.org/2026/11/treaty-talks"
    assert first.title == "Plastics treaty talks resume"
    assert first.text == "Will the plastics treaty cap production?"
    assert first.author == "a.reporter@example.org (A. Reporter)"
    assert first.published_at == datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    assert first.language == "en-US"
    # Without a guid the link identifies the item; without a date the fetch time stands in.
    assert second.item_id == "https://news.example.org/2026/11/other"
    assert second.published_at == FETCHED
    assert second.text == "Plain text"


def test_atom_file_url(tmp_path: Path, fetcher: Fetchers) -> None:
    path = tmp_path / "atom.xml"
    path.write_bytes(ATOM)
    first, second = fetcher().fetch(path.as_uri()).items
    assert first.item_id == "urn:uuid:entry-1"
    assert first.url == "https://actu.example.org/traite"
    assert first.title == "Le traité sur les plastiques"
    assert first.text == "Les négociations reprennent à Nairobi."
    assert first.author == "Ana Autora"
    assert first.language == "fr"
    assert first.published_at == datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    assert second.language == "es"
    assert second.url == ""
    assert second.published_at == datetime(2026, 11, 19, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not XML <<<", "not a readable feed"),
        (b"<html><body><p>Not a feed</p></body></html>", "no RSS or Atom document"),
    ],
)
def test_non_feeds_raise_feed_error(
    tmp_path: Path, fetcher: Fetchers, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.xml"
    path.write_bytes(content)
    with pytest.raises(FeedError, match=message):
        fetcher().fetch(str(path))


@pytest.mark.parametrize("content", [b"", b"   \n", b"\x00", b"<?xml version='1.0'?>"])
def test_an_empty_document_is_a_feed_error(content: bytes) -> None:
    # feedparser gives an empty document no "version" key: reading it as an attribute was
    # an AttributeError, which the poller did not expect.
    with pytest.raises(FeedError, match="is not a readable feed"):
        parse_feed_document(content, "https://example.org/feed", NOW)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'<?xml version="1.0" encoding="\x00ig5"?><rss></rss>', None),
        (b"<rss></rss>", "text/xml; charset=big\x005"),
        (b"<title>\n<width>80</width>\n</image></channel></rss>", None),
    ],
    ids=["nul-in-declared-encoding", "nul-in-http-charset", "width-outside-image"],
)
def test_a_document_feedparser_raises_on_is_a_feed_error(
    content: bytes, content_type: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by the fuzz suite: feedparser raised from inside (ValueError "embedded null
    # character" from a declared encoding, TypeError from <width> outside an <image>),
    # which escaped the poller's handling of FeedError.
    with pytest.raises(FeedError, match="is not a readable feed: the feed parser failed on it"):
        parse_feed_document(content, "https://example.org/feed", NOW, content_type)
    assert "feedparser failed on https://example.org/feed" in caplog.text


@pytest.mark.parametrize(
    "shape",
    [{}, {"entries": None, "feed": {}}, {"entries": [], "feed": "x"}, {"feed": {}}],
    ids=["nothing", "entries-none", "feed-text", "no-entries"],
)
def test_any_parse_result_without_the_feed_shape_is_a_feed_error(
    monkeypatch: pytest.MonkeyPatch, shape: dict[str, Any]
) -> None:
    # Whatever feedparser leaves out, the result is read as a mapping whose shape is checked.
    monkeypatch.setattr(feedparser, "parse", lambda *a, **k: FeedParserDict(shape))
    with pytest.raises(FeedError, match="is not a readable feed"):
        parse_feed_document(b"<rss/>", "https://example.org/feed", NOW)


def test_an_entry_that_is_not_a_mapping_is_reported_and_the_others_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = FeedParserDict({"id": "a", "title": "Treaty", "link": "https://example.org/a"})
    parsed = FeedParserDict({"version": "rss20", "feed": {}, "entries": ["junk", good]})
    monkeypatch.setattr(feedparser, "parse", lambda *a, **k: parsed)
    result = parse_feed_document(b"<rss/>", "https://example.org/feed", NOW)
    assert [item.item_id for item in result.items] == ["a"]
    assert result.malformed == ["entry 1: not an entry"]


def test_missing_file_raises_feed_error(tmp_path: Path, fetcher: Fetchers) -> None:
    with pytest.raises(FeedError, match="cannot be read"):
        fetcher().fetch(str(tmp_path / "missing.xml"))


def test_retry_after_values() -> None:
    now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Fri, 20 Nov 2026 10:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Fri, 20 Nov 2026 09:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


class FeedServer:
    """A scripted feed server: each request takes the next planned status (then 200)."""

    def __init__(self) -> None:
        self.plan: list[tuple[int, dict[str, str]]] = []
        self.requests: list[dict[str, str]] = []
        self.etag = '"v1"'
        self.last_modified = "Fri, 20 Nov 2026 09:00:00 GMT"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append({k.lower(): v for k, v in self.headers.items()})
                status, headers = server.plan.pop(0) if server.plan else (200, {})
                if status == 200 and (
                    self.headers.get("If-None-Match") == server.etag
                    or self.headers.get("If-Modified-Since") == server.last_modified
                ):
                    status = 304
                body = RSS if status == 200 else b""
                self.send_response(status)
                if status in (200, 304):
                    self.send_header("ETag", server.etag)
                    self.send_header("Last-Modified", server.last_modified)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/feed.xml"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


def test_conditional_get_with_etag(server: FeedServer, fetcher: Fetchers) -> None:
    reader = fetcher()
    first = reader.fetch(server.url)
    assert len(first.items) == 2
    assert (first.etag, first.last_modified) == (server.etag, server.last_modified)
    assert "if-none-match" not in server.requests[0]

    second = reader.fetch(server.url, etag=first.etag)
    assert second.not_modified
    assert second.items == []
    assert second.etag == first.etag
    assert server.requests[1]["if-none-match"] == '"v1"'

    server.etag = '"v2"'
    third = reader.fetch(server.url, etag=first.etag)
    assert not third.not_modified
    assert third.etag == '"v2"'
    assert len(third.items) == 2


def test_conditional_get_with_last_modified(server: FeedServer, fetcher: Fetchers) -> None:
    result = fetcher().fetch(server.url, last_modified=server.last_modified)
    assert result.not_modified
    assert server.requests[0]["if-modified-since"] == server.last_modified


def test_503_then_200_is_retried(server: FeedServer, fetcher: Fetchers) -> None:
    server.plan = [(503, {"Retry-After": "0"})]
    result = fetcher(retries=2).fetch(server.url)
    assert len(server.requests) == 2
    assert [item.item_id for item in result.items] == [
        "tag:news.example.org,2026:1",
        "https://news.example.org/2026/11/other",
    ]


def test_429_and_500_are_retried_until_the_retries_run_out(
    server: FeedServer, fetcher: Fetchers
) -> None:
    server.plan = [(429, {}), (500, {}), (502, {}), (200, {})]
    with pytest.raises(FeedError, match=r"HTTP 502 \(after 3 attempts\)"):
        fetcher(retries=2).fetch(server.url)
    assert len(server.requests) == 3


def test_client_errors_are_not_retried(server: FeedServer, fetcher: Fetchers) -> None:
    server.plan = [(404, {})]
    with pytest.raises(FeedError, match="HTTP 404"):
        fetcher().fetch(server.url)
    assert len(server.requests) == 1


def test_a_retry_after_beyond_the_backoff_ceiling_fails_now(
    server: FeedServer, fetcher: Fetchers
) -> None:
    server.plan = [(503, {"Retry-After": "3600"})]
    with pytest.raises(FeedError, match="retry asked after 3600s"):
        fetcher(max_backoff=1.0).fetch(server.url)
    assert len(server.requests) == 1


def test_connection_errors_are_retried_then_reported(fetcher: Fetchers) -> None:
    # A port that was just free: nothing listens there.
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()
    with pytest.raises(FeedError, match=r"ConnectError.*after 2 attempts"):
        fetcher(retries=1).fetch(f"http://127.0.0.1:{port}/feed.xml")
