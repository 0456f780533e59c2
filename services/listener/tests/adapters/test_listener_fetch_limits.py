"""Reads the listener must refuse or cut short (issue 11): local files that are not regular
files, addresses off the public internet, documents over the limit, servers that trickle,
items over the limit. Local servers on loopback and files under ``tmp_path`` only."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from legation.events.v1 import listen_pb2
from legation_devstack.source_servers import BlueskySearchServer, MastodonTimelineServer
from legation_listener.adapters.connectors.base import Backoff, SourceFailure
from legation_listener.adapters.connectors.bluesky import BlueskyConnector
from legation_listener.adapters.connectors.mastodon import MastodonConnector
from legation_listener.adapters.connectors.rss import RssConnector
from legation_listener.adapters.feeds import MAX_FEED_BYTES, FeedError, FeedFetcher
from legation_listener.adapters.netguard import AddressRefused, checked_addresses
from legation_listener.domain.addresses import AddressPolicy
from legation_listener.domain.items import MAX_ITEM_BYTES, MAX_ITEM_MARKUP_CHARS
from legation_listener.domain.sources import parse_source

LOOPBACK = AddressPolicy.from_setting("127.0.0.0/8,::1")


class Handler(BaseHTTPRequestHandler):
    """``/big``: Content-Length over the limit; ``/endless``: zeros without a length;
    ``/trickle``: a byte every 0.2 s; anything else a small feed. Counts requests."""

    requests: list[str] = []

    def do_GET(self) -> None:
        Handler.requests.append(self.path)
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(MAX_FEED_BYTES + 1))
            self.end_headers()
            self.wfile.write(b"<rss" + b" " * 1000)
        elif self.path == "/endless":
            self.send_response(200)
            self.end_headers()  # no length: the body ends when the connection closes
            try:
                for _ in range(100_000):
                    self.wfile.write(b"\0" * 65536)
            except OSError:
                pass
        elif self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
        else:
            body = rss(("a", "Treaty"))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def rss(*items: tuple[str, str]) -> bytes:
    entries = "".join(
        f"<item><guid>{guid}</guid><title>t</title><description>{text}</description></item>"
        for guid, text in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>f</title>{entries}'
        "</channel></rss>"
    ).encode()


@pytest.fixture
def server() -> Iterator[str]:
    Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def fetcher(**options: Any) -> FeedFetcher:
    return FeedFetcher(5.0, options.pop("retries", 2), backoff_seconds=0.01, **options)


# -------------------------------------------------------------------------- local files


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "feed.xml"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(FeedError, match="is not a regular file"):
        fetcher(allow_local_files=True).fetch(str(fifo))
    assert time.monotonic() - started < 1  # no writer ever opens it: reading would block


def test_a_device_is_refused() -> None:
    with pytest.raises(FeedError, match="is not a regular file"):
        fetcher(allow_local_files=True).fetch("/dev/zero")


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(rss(("a", "x")) + b" " * 2000)
    with pytest.raises(FeedError, match="larger than the limit of 1000 bytes per document"):
        fetcher(allow_local_files=True, max_bytes=1000).fetch(str(path))


def test_local_files_are_read_only_when_enabled(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(rss(("a", "x")))
    with pytest.raises(FeedError, match="LEGATION_LISTENER_ALLOW_LOCAL_FEEDS"):
        fetcher().fetch(str(path))
    assert [i.item_id for i in fetcher(allow_local_files=True).fetch(path.as_uri()).items] == ["a"]


# ---------------------------------------------------------------------------- addresses


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254"])
def test_non_public_hosts_are_refused_without_a_request_or_a_retry(host: str) -> None:
    with pytest.raises(FeedError, match="is not a public address") as raised:
        fetcher(retries=3).fetch(f"http://{host}:9/feed.xml")
    assert "after" not in str(raised.value)  # not retried


def test_loopback_is_read_when_allowed(server: str) -> None:
    with pytest.raises(FeedError):
        fetcher().fetch(f"{server}/feed.xml")
    assert Handler.requests == []
    assert [i.item_id for i in fetcher(policy=LOOPBACK).fetch(f"{server}/feed").items] == ["a"]


def test_a_redirect_to_loopback_is_refused(server: str) -> None:
    # The first hop is allowed here; the second names another loopback address, which the
    # narrower policy refuses at connect time like any other.
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", server.replace("127.0.0.1", "127.0.0.2") + "/feed")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        only_first = AddressPolicy.from_setting("127.0.0.1/32")
        with pytest.raises(FeedError, match=r"127\.0\.0\.2 is not a public address"):
            fetcher(policy=only_first).fetch(f"http://127.0.0.1:{httpd.server_port}/")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert Handler.requests == []


def test_a_name_with_any_non_public_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A rebinding name answers a public address and a private one: neither is used.
    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(AddressRefused, match=r"rebind\.example is not a public address"):
        checked_addresses("rebind.example", 443, AddressPolicy())


def test_connectors_refuse_non_public_instances_without_retrying() -> None:
    with MastodonTimelineServer() as mastodon, BlueskySearchServer() as bluesky:
        for connector, spec, replay in (
            (MastodonConnector(Backoff(3)), f"mastodon:{mastodon.url}/public", mastodon),
            (BlueskyConnector(Backoff(3)), f"bluesky:{bluesky.url}/search?q=x", bluesky),
        ):
            cursor = listen_pb2.FeedCursor(issue_id="t", feed=spec)
            with pytest.raises(SourceFailure, match="is not a public address"):
                connector.fetch(parse_source(spec), cursor)
            assert replay.received == []


# ------------------------------------------------------------------------ document sizes


def test_a_declared_length_over_the_limit_is_refused_once(server: str) -> None:
    with pytest.raises(FeedError, match=f"larger than the limit of {MAX_FEED_BYTES} bytes"):
        fetcher(policy=LOOPBACK, retries=3).fetch(f"{server}/big")
    assert Handler.requests == ["/big"]  # not retried


def test_an_endless_body_is_cut_at_the_limit(server: str) -> None:
    started = time.monotonic()
    with pytest.raises(FeedError, match="larger than the limit of 1000000 bytes"):
        fetcher(policy=LOOPBACK, max_bytes=1_000_000).fetch(f"{server}/endless")
    assert time.monotonic() - started < 5


def test_a_trickling_server_cannot_hold_a_read(server: str) -> None:
    started = time.monotonic()
    with pytest.raises(FeedError, match=r"out of time \(1 s per read\)"):
        fetcher(policy=LOOPBACK, max_read_seconds=1.0).fetch(f"{server}/trickle")
    assert time.monotonic() - started < 2


# ---------------------------------------------------------------------------- item sizes


def test_oversized_items_are_skipped_the_rest_of_the_feed_goes_on(tmp_path: Path) -> None:
    # As reported: a 5.4 MB item, and two small items after it that were never emitted.
    path = tmp_path / "feed.xml"
    path.write_bytes(
        rss(
            ("first", "Treaty talks"),
            ("huge", "x" * 5_400_000),
            ("long", "word " * (MAX_ITEM_BYTES // 5 + 10)),
            ("second", "Treaty vote"),
            ("third", "Treaty signed"),
        )
    )
    spec = str(path)
    connector = RssConnector(fetcher(allow_local_files=True))
    cursor = listen_pb2.FeedCursor(issue_id="t", feed=spec)
    page = connector.fetch(parse_source(spec), cursor)
    assert [i.item_id for i in page.new_items] == ["first", "second", "third"]
    huge, long = page.malformed
    assert huge.startswith("entry 2: the item is 5400")
    assert huge.endswith(f"above the limit of {MAX_ITEM_MARKUP_CHARS} per item")
    assert long.startswith("entry 3: the item is")
    assert long.endswith(f"bytes of text, above the limit of {MAX_ITEM_BYTES} per item")
    # The cursor moves past them, and they are not reported again.
    again = connector.fetch(parse_source(spec), page.next_cursor)
    assert again.new_items == [] and again.malformed == []
