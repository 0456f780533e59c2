"""Feed items as the listener sees them, whatever the feed format."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from datetime import datetime
from html.parser import HTMLParser

from legation_listener.domain.enrichment import (
    UNDETERMINED,
    detect_language,
    normalise_language_tag,
    primary_language,
)

_WHITESPACE = re.compile(r"\s+")
# Elements whose end starts a new line of text, so words of adjacent blocks do not merge.
# fmt: off
_BLOCKS = frozenset((
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p",
    "pre", "section", "table", "td", "th", "tr", "ul",
))
# fmt: on
_INVISIBLE = frozenset(("script", "style", "template", "noscript"))

MAX_ITEM_MARKUP_CHARS = 2 * 1024 * 1024
"""Most characters of an item as its source sends it (title, body with its HTML, author,
link and ids together), checked before the HTML is read: a larger item is skipped as
malformed."""
MAX_ITEM_BYTES = 128 * 1024
"""Most bytes (UTF-8) of an item once its HTML is stripped (title, text, author, link and
ids together), about 20,000 words of English: a larger item is skipped as malformed. With
the lists enrichment derives from the text (hashtags, links, accounts) a mention stays well
under Kafka's 1 MiB record limit (``tests/unit/test_listener_limits.py`` checks the worst
case), and enriching it takes about a second (the models read the whole text)."""


class ItemTooLarge(ValueError):
    """An item over :data:`MAX_ITEM_MARKUP_CHARS` or :data:`MAX_ITEM_BYTES`; it is skipped
    and reported like any malformed item (the rest of its page goes on)."""


@dataclass(frozen=True)
class FeedItem:
    """One entry of a feed (or a post of a connector's source), as plain text.

    The fields after ``language`` come from platforms that have them: the source kind,
    the author's stable id (account URL, DID, Reddit user name), the id of the item this
    one replies to, the id of its thread's first item, the author's audience size (0:
    unknown), and whether ``text`` is only the feed's summary of a linked article."""

    item_id: str
    url: str
    title: str
    text: str
    author: str
    published_at: datetime
    language: str
    source: str = "rss"
    author_id: str = ""
    in_reply_to: str = ""
    thread_id: str = ""
    reach: int = 0
    summary_only: bool = False


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self._hidden += 1
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def item_bytes(item: FeedItem) -> int:
    """The UTF-8 size of an item's text fields together (what :data:`MAX_ITEM_BYTES`
    bounds)."""
    fields = (
        item.item_id,
        item.url,
        item.title,
        item.text,
        item.author,
        item.author_id,
        item.in_reply_to,
        item.thread_id,
    )
    return sum(len(value.encode("utf-8", errors="replace")) for value in fields)


def check_item_size(item: FeedItem) -> FeedItem:
    """``item``, or :class:`ItemTooLarge` when it is over :data:`MAX_ITEM_BYTES`."""
    size = item_bytes(item)
    if size > MAX_ITEM_BYTES:
        raise ItemTooLarge(
            f"the item is {size} bytes of text, above the limit of {MAX_ITEM_BYTES} per item"
        )
    return item


def normalise_whitespace(text: str) -> str:
    """Collapses every run of whitespace to one space and trims the ends."""
    return _WHITESPACE.sub(" ", text).strip()


def html_to_text(markup: str) -> str:
    """The visible text of an HTML fragment, entities decoded, whitespace normalised.
    Plain text passes through unchanged apart from whitespace."""
    if "<" not in markup:
        return normalise_whitespace(html.unescape(markup))
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return normalise_whitespace("".join(extractor.parts))


def choose_language(text: str, declared: str = "", feed_default: str = "") -> str:
    """The item's language. A language the entry itself declares wins. Otherwise the text
    decides, because one feed often carries several languages whatever it declares; the
    feed's declared language is kept when it agrees (it may carry a region, "en-GB") and
    used when the text cannot tell."""
    own = normalise_language_tag(declared)
    if own != UNDETERMINED:
        return own
    default = normalise_language_tag(feed_default)
    detected = detect_language(text)
    if detected == UNDETERMINED:
        return default
    if default != UNDETERMINED and primary_language(default) == primary_language(detected):
        return default
    return detected


def make_feed_item(
    *,
    item_id: str,
    url: str,
    title: str,
    body: str,
    author: str,
    published_at: datetime | None,
    declared_language: str = "",
    feed_language: str = "",
    fetched_at: datetime,
    source: str = "rss",
    author_id: str = "",
    in_reply_to: str = "",
    thread_id: str = "",
    reach: int = 0,
    summary_only: bool = False,
) -> FeedItem:
    """Builds a :class:`FeedItem` from raw entry fields: ``title`` and ``body`` may hold
    HTML; a missing publication time becomes ``fetched_at``; the language comes from
    :func:`choose_language` (``declared_language`` is the entry's own, ``feed_language``
    the feed's); the platform fields pass through. :class:`ItemTooLarge` for an item over
    the size limits (checked before the HTML is read)."""
    if not item_id:
        raise ValueError("item_id is required")
    markup = sum(
        len(value)
        for value in (
            item_id,
            url,
            title,
            body,
            author,
            author_id,
            in_reply_to,
            thread_id,
            declared_language,
            feed_language,
        )
    )
    if markup > MAX_ITEM_MARKUP_CHARS:
        raise ItemTooLarge(
            f"the item is {markup} characters as sent, above the limit of"
            f" {MAX_ITEM_MARKUP_CHARS} per item"
        )
    if fetched_at.tzinfo is None:
        raise ValueError("fetched_at must be timezone-aware")
    published = published_at if published_at is not None else fetched_at
    if published.tzinfo is None:
        raise ValueError("published_at must be timezone-aware")
    plain_title = html_to_text(title)
    plain_text = html_to_text(body)
    item = check_item_size(
        FeedItem(
            item_id=item_id,
            url=url,
            title=plain_title,
            text=plain_text,
            author=normalise_whitespace(author),
            published_at=published,
            language="",
            source=source,
            author_id=author_id,
            in_reply_to=in_reply_to,
            thread_id=thread_id,
            reach=max(0, reach),
            summary_only=summary_only,
        )
    )
    # The language last: detecting it is the costly part, not worth it for a refused item.
    language = choose_language(f"{plain_title}. {plain_text}", declared_language, feed_language)
    return replace(item, language=language)
