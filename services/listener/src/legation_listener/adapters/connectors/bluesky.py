"""Bluesky search (``app.bsky.feed.searchPosts``), called through atproto's XRPC client.

searchPosts pages from the newest post backwards (``sort=latest``, an opaque ``cursor``)
and filters by time with an inclusive ``since``. A read therefore walks one *pass*: from
the newest post down to the watermark of the previous pass, one page per read, with the
page cursor stored durably between reads; when the pass ends, its newest post time becomes
the watermark. Posts on the watermark itself are read again and recognised by their URIs
(kept in the position, however long the pass). The very first read takes the newest page only.

``position`` is JSON: ``{"since": watermark, "since_ids": URIs of the posts on it,
"cursor": page cursor of the pass in progress, "newest": newest post time of that pass,
"newest_ids": URIs at that time}``. Times are each post's ``sortAt``
(the earlier of ``indexedAt`` and the record's ``createdAt``), what ``since`` filters on.

Item fields: ``item_id`` the post's ``at://`` URI, ``url`` its bsky.app page, ``author``
the display name (else the handle), ``author_id`` the DID, ``in_reply_to`` and
``thread_id`` the record's ``reply.parent.uri`` and ``reply.root.uri`` (a root is its own
thread), the language the record's first ``langs``, ``reach`` the author's ``followersCount`` (one
``app.bsky.actor.getProfiles`` call per 25 authors of a page; 0 when it fails).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from atproto import Client
from atproto_client import models
from atproto_client.exceptions import (
    BadRequestError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    RequestException,
    UnauthorizedError,
)
from atproto_client.request import Request

from legation.events.v1 import listen_pb2
from legation_core.retry_after import retry_after_seconds
from legation_listener.adapters.connectors.base import (
    MAX_PAGE_BYTES,
    Backoff,
    Page,
    Retryable,
    SourceFailure,
    moved_watermark,
    newest_of,
    next_cursor,
    parse_time,
    past_watermark,
    remember,
    text_of,
    unseen,
    utc_now,
)
from legation_listener.adapters.netguard import FetchRefused, guarded_transport
from legation_listener.domain.addresses import AddressPolicy
from legation_listener.domain.items import FeedItem, make_feed_item
from legation_listener.domain.sources import BLUESKY, Source

log = logging.getLogger(__name__)

MAX_PAGE = 100
# app.bsky.actor.getProfiles takes at most 25 actors.
PROFILES_PER_CALL = 25


def _iso(moment: datetime) -> str:
    # One fixed width, so the strings compare as the times do.
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _CursorRefused(SourceFailure):
    """searchPosts answered 400 to a request with the pass's page cursor."""


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def post_to_item(post: Mapping[str, Any], fetched_at: datetime) -> tuple[FeedItem, datetime]:
    """A ``PostView`` as a :class:`FeedItem` and its sort time; ValueError naming the field
    when it is malformed."""
    if not isinstance(post, Mapping):
        raise ValueError(f"a post is an object, got {type(post).__name__}")
    uri = text_of(post.get("uri"))
    if not uri.startswith("at://"):
        raise ValueError("'uri' is missing or not an at:// URI")
    record = post.get("record")
    if not isinstance(record, Mapping):
        raise ValueError(f"{uri}: 'record' is missing")
    text = record.get("text")
    if not isinstance(text, str):
        raise ValueError(f"{uri}: 'record.text' is missing")
    created = parse_time(record.get("createdAt"))
    indexed = parse_time(post.get("indexedAt"))
    if created is None and indexed is None:
        raise ValueError(f"{uri}: neither 'record.createdAt' nor 'indexedAt' is a time")
    times = [moment for moment in (created, indexed) if moment is not None]
    sort_at = min(times)
    author = post.get("author")
    if not isinstance(author, Mapping) or not text_of(author.get("did")):
        raise ValueError(f"{uri}: 'author.did' is missing")
    handle = text_of(author.get("handle"))
    rkey = uri.rsplit("/", 1)[-1]
    reply = _mapping(record.get("reply"))
    parent, root = _mapping(reply.get("parent")), _mapping(reply.get("root"))
    langs = record.get("langs")
    language = langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else ""
    item = make_feed_item(
        item_id=uri,
        url=f"https://bsky.app/profile/{handle or author['did']}/post/{rkey}",
        title="",
        body=text,
        author=text_of(author.get("displayName")) or handle,
        published_at=created or indexed,
        declared_language=language,
        fetched_at=fetched_at,
        source=BLUESKY,
        author_id=text_of(author.get("did")),
        in_reply_to=text_of(parent.get("uri")),
        thread_id=text_of(root.get("uri")) or uri,
    )
    return item, sort_at


class BlueskyConnector:
    """Reads Bluesky searches; one atproto client per AppView. Without credentials it reads
    anonymously (a public AppView); with a handle and app password it logs in first, for
    sources on ``login_service`` only (the password never goes to another host). It
    connects only to addresses ``policy`` permits (public ones by default) and reads at
    most :data:`~legation_listener.adapters.connectors.base.MAX_PAGE_BYTES` per answer."""

    kind = BLUESKY

    def __init__(
        self,
        backoff: Backoff,
        *,
        timeout_seconds: float = 10.0,
        page_size: int = 50,
        handle: str = "",
        app_password: str = "",
        login_service: str = "https://bsky.social",
        clock: Callable[[], datetime] = utc_now,
        policy: AddressPolicy | None = None,
    ) -> None:
        self.backoff = backoff
        self.policy = policy or AddressPolicy()
        self.timeout_seconds = timeout_seconds
        self.page_size = max(1, min(page_size, MAX_PAGE))
        self.handle = handle
        self.app_password = app_password
        # The login goes to its own service only; any other host is read anonymously.
        self.login_service = login_service.rstrip("/")
        self.clock = clock
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()

    def _client(self, base_url: str) -> Client:
        with self._lock:
            client = self._clients.get(base_url)
            if client is None:
                request = Request(
                    timeout=self.timeout_seconds,
                    transport=guarded_transport(self.policy, MAX_PAGE_BYTES),
                )
                client = Client(base_url=base_url, request=request)
                if self.handle and self.app_password and base_url == self.login_service:
                    client.login(self.handle, self.app_password)
                self._clients[base_url] = client
            return client

    def fetch(self, source: Source, cursor: listen_pb2.FeedCursor) -> Page:
        state = _state(cursor.position)
        since, page_cursor, newest = state["since"], state["cursor"], state["newest"]
        assert isinstance(since, str) and isinstance(page_cursor, str) and isinstance(newest, str)
        params: dict[str, Any] = {"q": source.param("q"), "sort": "latest", "limit": self.page_size}
        for name in ("lang", "author", "domain"):
            if source.param(name):
                params[name] = source.param(name)
        if since:
            params["since"] = since
        if page_cursor:
            params["cursor"] = page_cursor

        def read() -> Any:
            try:
                client = self._client(source.base_url)
                response = client.invoke_query(
                    "app.bsky.feed.searchPosts",
                    params=models.AppBskyFeedSearchPosts.Params(**params),
                )
            except FetchRefused as error:  # no retry can change it
                raise SourceFailure(f"{source.spec}: {error}") from None
            except RateLimitExceededError as error:
                headers = error.response.headers if error.response else {}
                wait = retry_after_seconds(headers.get("retry-after"))
                raise Retryable("HTTP 429", wait) from None
            except NetworkError as error:
                raise Retryable(f"{type(error).__name__}: {error}") from None
            except RequestException as error:
                status = error.response.status_code if error.response else 0
                if status >= 500:
                    raise Retryable(f"HTTP {status}") from None
                raise SourceFailure(f"{source.spec}: HTTP {status}: {error}") from None
            except BadRequestError as error:
                if page_cursor:
                    raise _CursorRefused(f"{source.spec}: {error}") from None
                raise SourceFailure(f"{source.spec}: {type(error).__name__}: {error}") from None
            except (UnauthorizedError, RequestErrorBase) as error:
                raise SourceFailure(f"{source.spec}: {type(error).__name__}: {error}") from None
            except ValueError as error:  # a body that claims JSON and is not
                raise SourceFailure(f"{source.spec}: not a searchPosts answer: {error}") from None
            return response.content

        try:
            content = self.backoff.call(source.spec, read)
        except _CursorRefused:
            # The AppView no longer knows the page cursor of the pass in progress: start
            # the pass again from the newest post (the watermark and its ids stay, so
            # nothing is skipped; the recent ids keep repeats out).
            log.info("search cursor refused, pass restarted", extra={"source": source.spec})
            restarted = {"since": since, "since_ids": state["since_ids"]}
            return Page(
                items=[],
                new_items=[],
                next_cursor=next_cursor(
                    cursor,
                    position=json.dumps(restarted, sort_keys=True),
                    seen_item_ids=list(cursor.seen_item_ids),
                ),
                more=True,
            )
        if not isinstance(content, Mapping) or not isinstance(content.get("posts"), list):
            raise SourceFailure(f"{source.spec}: a searchPosts answer has a 'posts' array")
        fetched_at = self.clock()
        parsed: list[tuple[FeedItem, str]] = []
        malformed: list[str] = []
        for number, post in enumerate(content["posts"], start=1):
            try:
                item, sort_at = post_to_item(post, fetched_at)
            except ValueError as error:
                malformed.append(f"post {number} of the page: {error}")
                continue
            parsed.append((item, _iso(sort_at)))
        parsed.reverse()  # oldest first
        fresh = {i.item_id for i in past_watermark(parsed, since, state["since_ids"])}
        newest, newest_ids = newest_of(parsed, newest, state["newest_ids"])
        following = text_of(content.get("cursor"))
        position: dict[str, Any]
        if since and following and content["posts"]:
            more = True
            position = {**state, "cursor": following, "newest": newest, "newest_ids": newest_ids}
        else:  # the pass is over (or this was the very first read): move the watermark
            more = False
            since, since_ids = moved_watermark(since, state["since_ids"], newest, newest_ids)
            position = {"since": since, "since_ids": since_ids}
        items = self._with_reach(source, [item for item, _ in parsed])
        return Page(
            items=items,
            new_items=[i for i in unseen(cursor, items) if i.item_id in fresh],
            next_cursor=next_cursor(
                cursor,
                position=json.dumps(position, sort_keys=True),
                seen_item_ids=remember(cursor.seen_item_ids, [i.item_id for i in items]),
            ),
            more=more,
            malformed=malformed,
        )

    def _with_reach(self, source: Source, items: list[FeedItem]) -> list[FeedItem]:
        """The items with their authors' follower counts (0 when the profiles cannot be
        read now: reach is a nice-to-have, the posts are not lost for it)."""
        authors = sorted({item.author_id for item in items if item.author_id})
        followers: dict[str, int] = {}
        for start in range(0, len(authors), PROFILES_PER_CALL):
            actors = authors[start : start + PROFILES_PER_CALL]
            try:
                response = self._client(source.base_url).invoke_query(
                    "app.bsky.actor.getProfiles",
                    params=models.AppBskyActorGetProfiles.Params(actors=actors),
                )
                content = response.content
                profiles = content.get("profiles") if isinstance(content, Mapping) else None
            except Exception as error:
                log.info("profiles not read", extra={"source": source.spec, "problem": str(error)})
                continue
            for profile in profiles if isinstance(profiles, list) else []:
                if isinstance(profile, Mapping) and isinstance(profile.get("followersCount"), int):
                    followers[str(profile.get("did"))] = profile["followersCount"]
        return [replace(item, reach=followers.get(item.author_id, 0)) for item in items]


def _state(position: str) -> dict[str, Any]:
    """The stored position: watermark and the ids on it, the page cursor of the pass in
    progress and the newest time it reached with the ids at it."""
    state: dict[str, Any] = {
        "since": "", "since_ids": [], "cursor": "", "newest": "", "newest_ids": []
    }  # fmt: skip
    try:
        stored = json.loads(position) if position else {}
    except ValueError:
        stored = {}
    if isinstance(stored, dict):
        for key in ("since", "cursor", "newest"):
            if isinstance(stored.get(key), str):
                state[key] = stored[key]
        for key in ("since_ids", "newest_ids"):
            if isinstance(stored.get(key), list):
                state[key] = [str(value) for value in stored[key]]
    return state
