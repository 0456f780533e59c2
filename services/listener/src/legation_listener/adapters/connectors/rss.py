"""RSS and Atom feeds behind the connector interface.

A read is conditional (the cursor keeps the ETag and Last-Modified of the previous read; a
304 is a page with nothing new). New items whose feed carries only a summary get the full
text of the linked article, extracted with trafilatura, when the article can be read now
(else they keep the summary): at most ``full_text_limit`` articles per read.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Protocol

from legation.events.v1 import listen_pb2
from legation_listener.adapters.connectors.base import Page, RateLimited
from legation_listener.adapters.feeds import FeedError, FetchResult
from legation_listener.domain.cursor import advance
from legation_listener.domain.items import (
    FeedItem,
    ItemTooLarge,
    check_item_size,
    choose_language,
    normalise_whitespace,
)
from legation_listener.domain.sources import RSS, Source

log = logging.getLogger(__name__)


class FeedReader(Protocol):
    """Reads a feed (:class:`~legation_listener.adapters.feeds.FeedFetcher`)."""

    def fetch(self, feed: str, etag: str = "", last_modified: str = "") -> FetchResult: ...


class ArticleReader(Protocol):
    """Reads a web page: its body and content type."""

    def fetch_article(self, url: str) -> tuple[bytes, str]: ...


def extract_article_text(html: bytes | str, url: str = "") -> str:
    """The main text of an article page (trafilatura, no comments or tables), whitespace
    normalised; empty when it finds none."""
    import trafilatura  # imported on first use: it loads a lot, and feeds may never need it

    extracted = trafilatura.extract(
        html,
        url=url or None,
        include_comments=False,
        include_tables=False,
        favor_precision=True,
    )
    return normalise_whitespace(extracted or "")


class RssConnector:
    """Feeds: one read is one page (a feed is a sliding window, no paging)."""

    kind = RSS

    def __init__(
        self,
        feeds: FeedReader,
        articles: ArticleReader | None = None,
        *,
        full_text_limit: int = 20,
    ) -> None:
        self.feeds = feeds
        self.articles = articles
        self.full_text_limit = full_text_limit

    def fetch(self, source: Source, cursor: listen_pb2.FeedCursor) -> Page:
        try:
            fetched = self.feeds.fetch(source.url, cursor.etag, cursor.last_modified)
        except FeedError as error:
            if error.retry_after is not None:
                raise RateLimited(str(error), error.retry_after) from None
            raise
        if fetched.not_modified:
            return Page(items=[], new_items=[], next_cursor=cursor, not_modified=True)
        # An entry skipped as malformed without a known id is reported at every read.
        ids = [*fetched.malformed_ids, *[""] * len(fetched.malformed)]
        step = advance(
            cursor,
            fetched.items,
            fetched.etag,
            fetched.last_modified,
            skipped=list(zip(ids, fetched.malformed, strict=False)),
        )
        return Page(
            items=fetched.items,
            new_items=self._with_full_text(step.new_items),
            next_cursor=step.next_cursor,
            malformed=step.malformed,
        )

    def _with_full_text(self, items: list[FeedItem]) -> list[FeedItem]:
        if self.articles is None or self.full_text_limit <= 0:
            return items
        budget = self.full_text_limit
        completed: list[FeedItem] = []
        for item in items:
            if item.summary_only and item.url and budget > 0:
                budget -= 1
                item = self._full_text(item)
            completed.append(item)
        return completed

    def _full_text(self, item: FeedItem) -> FeedItem:
        assert self.articles is not None
        try:
            body, _ = self.articles.fetch_article(item.url)
            text = extract_article_text(body, item.url)
        except Exception as error:  # the summary is still a good item
            log.info("article not read", extra={"url": item.url, "problem": str(error)})
            return item
        if len(text) <= len(item.text):
            return item
        try:
            completed = check_item_size(replace(item, text=text, summary_only=False))
        except ItemTooLarge as error:  # the summary is still a good item
            log.info("article too large", extra={"url": item.url, "problem": str(error)})
            return item
        language = choose_language(f"{item.title}. {text}", feed_default=item.language)
        return replace(completed, language=language)
