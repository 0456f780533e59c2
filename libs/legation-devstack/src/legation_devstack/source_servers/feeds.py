"""An RSS 2.0 feed with conditional GET, and the article pages its items link to.

``GET /feed.xml`` answers the items added so far (newest first) with an ``ETag`` and a
``Last-Modified``; ``If-None-Match`` / ``If-Modified-Since`` matching them get 304. Items
carry only a summary (``<description>``); ``/articles/<slug>`` serves each full article as
an HTML page with navigation and a footer around it, for full-text extraction. ``GET /`` is
the site's home page, which announces the feed (``<link rel="alternate"
type="application/rss+xml">``, RSS autodiscovery).
"""

from __future__ import annotations

import hashlib
import html
import itertools
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from legation_devstack.channel_servers.base import Received, RecordingHttpServer, Response

FEED = "/feed.xml"


class FeedServer(RecordingHttpServer):
    def __init__(self, title: str = "Example news", port: int = 0) -> None:
        super().__init__(port)
        self.title = title
        self.items: list[dict[str, Any]] = []
        self.articles: dict[str, str] = {}
        self._numbers = itertools.count(1)

    @property
    def feed_url(self) -> str:
        return self.url + FEED

    def publish(
        self,
        title: str,
        summary: str,
        article: str = "",
        *,
        published_at: datetime | None = None,
        author: str = "Desk",
    ) -> str:
        """Adds an item (its full ``article``, when given, at its link); returns its link."""
        number = next(self._numbers)
        slug = f"{number}-{'-'.join(title.lower().split())[:40]}"
        link = f"{self.url}/articles/{slug}"
        with self.lock:
            self.items.append(
                {
                    "title": title,
                    "summary": summary,
                    "link": link,
                    "published": published_at or datetime.now(UTC),
                    "author": author,
                }
            )
            if article:
                self.articles[f"/articles/{slug}"] = _article_page(title, article)
        return link

    def document(self) -> bytes:
        with self.lock:
            items = list(reversed(self.items))
        entries = "".join(
            "<item>"
            f"<title>{html.escape(i['title'])}</title><link>{i['link']}</link>"
            f"<guid>{i['link']}</guid><author>{html.escape(i['author'])}</author>"
            f"<pubDate>{format_datetime(i['published'])}</pubDate>"
            f"<description>{html.escape(i['summary'])}</description>"
            "</item>"
            for i in items
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{html.escape(self.title)}</title><link>{self.url}/</link>"
            f"<description>news</description><language>en</language>{entries}"
            "</channel></rss>"
        ).encode()

    def handle(self, request: Received) -> Response:
        if request.method != "GET":
            return 405, b"", {"Content-Type": "text/plain"}
        if request.path == FEED:
            body = self.document()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            with self.lock:
                newest = max(
                    (i["published"] for i in self.items), default=datetime(2026, 1, 1, tzinfo=UTC)
                )
            modified = format_datetime(newest.astimezone(UTC), usegmt=True)
            if request.headers.get("if-none-match") == etag or (
                "if-none-match" not in request.headers
                and request.headers.get("if-modified-since") == modified
            ):
                return 304, b"", {"ETag": etag, "Last-Modified": modified}
            return (
                200,
                body,
                {
                    "Content-Type": "application/rss+xml; charset=utf-8",
                    "ETag": etag,
                    "Last-Modified": modified,
                },
            )
        if request.path == "/":
            home = (
                "<!doctype html><html><head><meta charset='utf-8'>"
                f"<title>{html.escape(self.title)}</title>"
                "<link rel='alternate' type='application/rss+xml'"
                f" title='{html.escape(self.title)}' href='{FEED}'>"
                f"</head><body><h1>{html.escape(self.title)}</h1></body></html>"
            )
            return 200, home.encode(), {"Content-Type": "text/html; charset=utf-8"}
        with self.lock:
            page = self.articles.get(request.path)
        if page is None:
            return 404, b"<html><body>Not found</body></html>", {"Content-Type": "text/html"}
        return 200, page.encode(), {"Content-Type": "text/html; charset=utf-8"}


def _article_page(title: str, article: str) -> str:
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in article.split("\n\n") if p.strip())
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/world'>World</a> | <a href='/about'>About</a>"
        "</nav>"
        f"<main><article><h1>{html.escape(title)}</h1>{paragraphs}</article></main>"
        "<footer>Copyright Example news. All rights reserved. Subscribe to our newsletter.</footer>"
        "</body></html>"
    )
