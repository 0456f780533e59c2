"""Reddit subreddit listings and searches, read with PRAW (OAuth, application-only).

PRAW fetches the application-only token (client credentials grant) from ``reddit_url`` and
calls the OAuth API at the source's base URL; we read the raw listing JSON
(``Reddit.request``), so one malformed child does not spoil the page. Listings page from
the newest item backwards (``after``). A read walks one *pass* from the newest item down
to the watermark (the newest ``created_utc`` of the previous pass), one page per read, the
``after`` of the pass in progress stored durably between reads; items on the watermark
itself are recognised by their fullnames (kept in the position). The very first read takes
the newest page only.

``position`` is JSON: ``{"watermark": created_utc, "watermark_ids": the fullnames on it,
"after": fullname, "newest": created_utc of the pass in progress, "newest_ids"}``.

Item fields: ``item_id`` the fullname (``t3_...`` a post, ``t1_...`` a comment), ``url``
the permalink, ``author`` and ``author_id`` the user name and ``author_fullname``,
``in_reply_to`` a comment's ``parent_id``, ``thread_id`` a comment's ``link_id`` or a
post's own fullname, ``reach`` the subreddit's ``subreddit_subscribers`` (the audience of
the place it was said).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import praw
import prawcore

from legation.events.v1 import listen_pb2
from legation_core.retry_after import retry_after_seconds
from legation_listener.adapters.connectors.base import (
    USER_AGENT,
    Backoff,
    Page,
    Retryable,
    SourceFailure,
    moved_watermark,
    newest_of,
    next_cursor,
    past_watermark,
    remember,
    text_of,
    unseen,
    utc_now,
)
from legation_listener.domain.items import FeedItem, make_feed_item
from legation_listener.domain.sources import REDDIT, Source

MAX_PAGE = 100
WEB_URL = "https://www.reddit.com"


def child_to_item(child: Mapping[str, Any], fetched_at: datetime) -> tuple[FeedItem, float]:
    """A listing child (``{"kind": "t3" | "t1", "data": {...}}``) as a :class:`FeedItem`
    and its ``created_utc``; ValueError naming the field when it is malformed."""
    if not isinstance(child, Mapping) or not isinstance(child.get("data"), Mapping):
        raise ValueError("a child is an object with 'kind' and 'data'")
    kind = child.get("kind")
    data = child["data"]
    if kind not in ("t1", "t3"):
        raise ValueError(f"kind {kind!r} is neither a post (t3) nor a comment (t1)")
    name = text_of(data.get("name"))
    if not name.startswith(f"{kind}_"):
        raise ValueError(f"'name' {name!r} is not a {kind} fullname")
    created = data.get("created_utc")
    if not isinstance(created, int | float) or isinstance(created, bool):
        raise ValueError(f"{name}: 'created_utc' is not a number")
    try:
        published = datetime.fromtimestamp(float(created), UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{name}: 'created_utc' is out of range") from None
    permalink = text_of(data.get("permalink"))
    subscribers = data.get("subreddit_subscribers")
    if kind == "t3":
        title, body = text_of(data.get("title")), text_of(data.get("selftext"))
        in_reply_to, thread_id = "", name
    else:
        title, body = text_of(data.get("link_title")), text_of(data.get("body"))
        in_reply_to, thread_id = text_of(data.get("parent_id")), text_of(data.get("link_id"))
    item = make_feed_item(
        item_id=name,
        url=f"{WEB_URL}{permalink}" if permalink.startswith("/") else permalink,
        title=title,
        body=body,
        author=text_of(data.get("author")),
        published_at=published,
        fetched_at=fetched_at,
        source=REDDIT,
        author_id=text_of(data.get("author_fullname")) or text_of(data.get("author")),
        in_reply_to=in_reply_to,
        thread_id=thread_id,
        reach=subscribers if isinstance(subscribers, int) else 0,
    )
    return item, float(created)


class RedditConnector:
    """Reads Reddit listings with one PRAW client per API base URL."""

    kind = REDDIT

    def __init__(
        self,
        backoff: Backoff,
        *,
        client_id: str = "",
        client_secret: str = "",
        token_url: str = WEB_URL,
        api_url: str = "https://oauth.reddit.com",
        user_agent: str = USER_AGENT,
        timeout_seconds: float = 10.0,
        page_size: int = MAX_PAGE,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.backoff = backoff
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_url = token_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.user_agent = user_agent
        self.timeout_seconds = timeout_seconds
        self.page_size = max(1, min(page_size, MAX_PAGE))
        self.clock = clock
        self._clients: dict[str, praw.Reddit] = {}
        self._lock = threading.Lock()

    def _client(self, source: Source) -> praw.Reddit:
        if not self.client_id or not self.client_secret:
            raise SourceFailure(
                f"{source.spec}: Reddit needs LEGATION_LISTENER_REDDIT_CLIENT_ID and"
                " LEGATION_LISTENER_REDDIT_CLIENT_SECRET"
            )
        if source.base_url.rstrip("/") != self.api_url:
            # The OAuth token goes with every request: only to Reddit's own API host.
            raise SourceFailure(
                f"{source.spec}: Reddit sources are read from {self.api_url}"
                " (LEGATION_LISTENER_REDDIT_API_URL)"
            )
        with self._lock:
            client = self._clients.get(source.base_url)
            if client is None:
                client = praw.Reddit(
                    client_id=self.client_id,
                    client_secret=self.client_secret,
                    user_agent=self.user_agent,
                    oauth_url=source.base_url,
                    reddit_url=self.token_url,
                    timeout=max(1, round(self.timeout_seconds)),
                    check_for_updates=False,
                    check_for_async=False,
                )
                self._clients[source.base_url] = client
            return client

    def fetch(self, source: Source, cursor: listen_pb2.FeedCursor) -> Page:
        client = self._client(source)
        state = _state(cursor.position)
        watermark, after, newest = state["watermark"], str(state["after"]), state["newest"]
        params: dict[str, str | int] = {"limit": self.page_size, "raw_json": 1}
        params.update(dict(source.params))
        if source.path.endswith("search"):
            params["sort"] = "new"
        if after:
            params["after"] = after

        def read() -> Any:
            try:
                return client.request(method="GET", path=source.path, params=params)
            except prawcore.exceptions.TooManyRequests as error:
                raise Retryable("HTTP 429", retry_after_seconds(error.retry_after)) from None
            except prawcore.exceptions.ServerError as error:
                raise Retryable(f"HTTP {error.response.status_code}") from None
            except prawcore.exceptions.RequestException as error:
                raise Retryable(f"{type(error.original_exception).__name__}: {error}") from None
            except prawcore.exceptions.ResponseException as error:
                status = error.response.status_code
                raise SourceFailure(f"{source.spec}: HTTP {status}") from None
            except prawcore.exceptions.PrawcoreException as error:
                raise SourceFailure(f"{source.spec}: {type(error).__name__}: {error}") from None
            except praw.exceptions.PRAWException as error:
                raise SourceFailure(f"{source.spec}: {type(error).__name__}: {error}") from None
            except ValueError as error:
                raise SourceFailure(f"{source.spec}: not a Reddit listing: {error}") from None

        listing = self.backoff.call(source.spec, read)
        data = listing.get("data") if isinstance(listing, Mapping) else None
        if (
            not isinstance(listing, Mapping)
            or listing.get("kind") != "Listing"
            or not isinstance(data, Mapping)
            or not isinstance(data.get("children"), list)
        ):
            raise SourceFailure(
                f"{source.spec}: a listing is {{kind: Listing, data: {{children}}}}"
            )
        fetched_at = self.clock()
        parsed: list[tuple[FeedItem, float]] = []
        malformed: list[str] = []
        for number, child in enumerate(data["children"], start=1):
            try:
                parsed.append(child_to_item(child, fetched_at))
            except ValueError as error:
                malformed.append(f"child {number} of the listing: {error}")
        parsed.reverse()  # oldest first
        oldest = min((created for _, created in parsed), default=float("inf"))
        since_ids = state["watermark_ids"]
        fresh = past_watermark(parsed, watermark, since_ids)
        newest, newest_ids = newest_of(parsed, newest, state["newest_ids"])
        following = text_of(data.get("after"))
        position: dict[str, Any]
        if after and not data["children"]:
            # Reddit answers an empty listing when the item ``after`` names was removed:
            # start the pass again from the newest item, the watermark where it was (the
            # seen ids keep repeats out), rather than skip what lay beyond it.
            more = False
            position = {"watermark": watermark, "watermark_ids": since_ids}
        elif watermark and following and data["children"] and oldest >= watermark:
            more = True
            position = {
                **state,
                "after": following,
                "newest": newest,
                "newest_ids": newest_ids,
            }
        else:  # the pass reached the watermark (or this was the very first read)
            more = False
            watermark, since_ids = moved_watermark(watermark, since_ids, newest, newest_ids)
            position = {"watermark": watermark, "watermark_ids": since_ids}
        return Page(
            items=fresh,
            new_items=unseen(cursor, fresh),
            next_cursor=next_cursor(
                cursor,
                position=json.dumps(position, sort_keys=True),
                seen_item_ids=remember(cursor.seen_item_ids, [i.item_id for i in fresh]),
            ),
            more=more,
            malformed=malformed,
        )


def _state(position: str) -> dict[str, Any]:
    """The stored position: watermark and the ids on it, the ``after`` of the pass in
    progress and the newest time it reached with the ids at it."""
    state: dict[str, Any] = {
        "watermark": 0.0, "watermark_ids": [], "after": "", "newest": 0.0, "newest_ids": []
    }  # fmt: skip
    try:
        stored = json.loads(position) if position else {}
    except ValueError:
        stored = {}
    if isinstance(stored, dict):
        for key in ("watermark", "newest"):
            if isinstance(stored.get(key), int | float):
                state[key] = float(stored[key])
        if isinstance(stored.get("after"), str):
            state["after"] = stored["after"]
        for key in ("watermark_ids", "newest_ids"):
            if isinstance(stored.get(key), list):
                state[key] = [str(value) for value in stored[key]]
    return state
