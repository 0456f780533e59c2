"""Mastodon public and hashtag timelines, read with Mastodon.py.

Paging follows Mastodon's documented parameters: the first read takes the newest page
(``limit``), later reads ask for the statuses immediately newer than the last one handled
(``min_id``), oldest page first, so a page handled is never asked for again and a long
absence is caught up page by page. The cursor's ``position`` is the newest status id
handled.

Item fields: ``item_id`` is the status id on the instance, ``url`` the status page
(``url``, else ``uri``), ``author`` the display name (else the account), ``author_id`` the
account URL, ``in_reply_to`` ``in_reply_to_id``, ``thread_id`` the id of the thread's first
status: its own id for a root; for a reply, the first ancestor that
``GET /api/v1/statuses/:id/context`` gives (at most ``thread_lookups`` replies per page, and
roots already known are remembered; a lookup that fails leaves it empty), ``reach`` the
author's ``followers_count``. A reblog is read as the status it boosts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonNetworkError,
    MastodonRatelimitError,
    MastodonServerError,
)

from legation.events.v1 import listen_pb2
from legation_listener.adapters.connectors.base import (
    MAX_PAGE_BYTES,
    USER_AGENT,
    Backoff,
    Page,
    Retryable,
    SourceFailure,
    next_cursor,
    parse_time,
    remember,
    text_of,
    unseen,
    utc_now,
)
from legation_listener.adapters.netguard import guarded_session, refusal_in
from legation_listener.domain.addresses import AddressPolicy
from legation_listener.domain.items import FeedItem, make_feed_item
from legation_listener.domain.sources import MASTODON, Source

log = logging.getLogger(__name__)

# Mastodon's maximum for timelines.
MAX_PAGE = 40
# Thread roots remembered (status id → root id), so replies to known statuses need no lookup.
ROOTS_KEPT = 10_000


def _id_key(value: str) -> tuple[int, str]:
    # Mastodon ids are decimal strings that grow with time; compare them as numbers.
    return (int(value), value) if value.isdigit() else (-1, value)


def status_to_item(status: Mapping[str, Any], fetched_at: datetime) -> FeedItem:
    """A status as a :class:`FeedItem`; ValueError naming the field when it is malformed."""
    if not isinstance(status, Mapping):
        raise ValueError(f"a status is an object, got {type(status).__name__}")
    status_id = str(status.get("id") or "").strip()
    if not status_id:
        raise ValueError("'id' is missing")
    reblog = status.get("reblog")
    shown: Mapping[str, Any] = reblog if isinstance(reblog, Mapping) else status
    created = parse_time(shown.get("created_at"))
    if created is None:
        raise ValueError(f"status {status_id}: 'created_at' is not a time")
    account = shown.get("account")
    if not isinstance(account, Mapping):
        raise ValueError(f"status {status_id}: 'account' is missing")
    content = shown.get("content")
    if content is not None and not isinstance(content, str):
        raise ValueError(f"status {status_id}: 'content' is not a string")
    followers = account.get("followers_count")
    in_reply_to = str(shown.get("in_reply_to_id") or "")
    return make_feed_item(
        item_id=status_id,
        url=text_of(shown.get("url")) or text_of(shown.get("uri")),
        title=text_of(shown.get("spoiler_text")),
        body=content or "",
        author=text_of(account.get("display_name")) or text_of(account.get("acct")),
        published_at=created,
        declared_language=text_of(shown.get("language")),
        fetched_at=fetched_at,
        source=MASTODON,
        author_id=text_of(account.get("url")) or text_of(account.get("acct")),
        in_reply_to=in_reply_to,
        thread_id="" if in_reply_to else str(shown.get("id") or status_id),
        reach=followers if isinstance(followers, int) else 0,
    )


class MastodonConnector:
    """Reads Mastodon timelines; one Mastodon.py client per instance, connecting only to
    addresses ``policy`` permits (public ones by default) and reading at most
    :data:`~legation_listener.adapters.connectors.base.MAX_PAGE_BYTES` per answer."""

    kind = MASTODON

    def __init__(
        self,
        backoff: Backoff,
        *,
        timeout_seconds: float = 10.0,
        page_size: int = MAX_PAGE,
        access_token: str = "",
        token_instance: str = "",
        thread_lookups: int = 20,
        clock: Callable[[], datetime] = utc_now,
        policy: AddressPolicy | None = None,
    ) -> None:
        self.backoff = backoff
        self.policy = policy or AddressPolicy()
        self.thread_lookups = thread_lookups
        self._roots: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.timeout_seconds = timeout_seconds
        self.page_size = max(1, min(page_size, MAX_PAGE))
        self.access_token = access_token
        # The token goes to its own instance only; any other instance is read anonymously.
        self.token_instance = token_instance.rstrip("/")
        self.clock = clock
        self._clients: dict[str, Mastodon] = {}
        self._lock = threading.Lock()

    def _client(self, base_url: str) -> Mastodon:
        with self._lock:
            client = self._clients.get(base_url)
            if client is None:
                client = Mastodon(
                    api_base_url=base_url,
                    access_token=(
                        self.access_token or None
                        if base_url.rstrip("/") == self.token_instance
                        else None
                    ),
                    request_timeout=self.timeout_seconds,
                    # We wait (or give up) ourselves: Mastodon.py would sleep up to 5 min.
                    ratelimit_method="throw",
                    # No /api/v1/instance round trip before the first read.
                    version_check_mode="none",
                    user_agent=USER_AGENT,
                    session=guarded_session(self.policy, MAX_PAGE_BYTES),
                )
                self._clients[base_url] = client
            return client

    def _with_threads(
        self, client: Mastodon, instance: str, items: list[FeedItem]
    ) -> list[FeedItem]:
        """Fills the ``thread_id`` of replies: from remembered roots, else by asking for the
        status's context (bounded per page)."""
        lookups = self.thread_lookups
        completed: list[FeedItem] = []
        for item in items:
            if not item.in_reply_to:
                self._remember(instance, item.item_id, item.item_id)
                completed.append(item)
                continue
            root = self._roots.get((instance, item.in_reply_to), "")
            if not root and lookups > 0:
                lookups -= 1
                root = self._root_of(client, item.item_id)
            if root:
                self._remember(instance, item.item_id, root)
                item = replace(item, thread_id=root)
            completed.append(item)
        return completed

    def _root_of(self, client: Mastodon, status_id: str) -> str:
        try:
            context = client.status_context(status_id)
            ancestors = context.get("ancestors") if isinstance(context, Mapping) else None
            if isinstance(ancestors, list) and ancestors and isinstance(ancestors[0], Mapping):
                return str(ancestors[0].get("id") or "")
        except Exception as error:  # the thread stays unknown; the item is still good
            log.info("thread root not found", extra={"status": status_id, "problem": str(error)})
        return ""

    def _remember(self, instance: str, status_id: str, root: str) -> None:
        with self._lock:
            self._roots[(instance, status_id)] = root
            self._roots.move_to_end((instance, status_id))
            while len(self._roots) > ROOTS_KEPT:
                self._roots.popitem(last=False)

    def fetch(self, source: Source, cursor: listen_pb2.FeedCursor) -> Page:
        client = self._client(source.base_url)
        position = cursor.position
        params: dict[str, Any] = {"limit": self.page_size}
        if position:
            params["min_id"] = position

        def read() -> Any:
            try:
                if source.path.startswith("tags/"):
                    return client.timeline_hashtag(source.path.removeprefix("tags/"), **params)
                return client.timeline_public(local=source.path == "public/local", **params)
            except MastodonRatelimitError as error:
                reset = client.ratelimit_reset
                wait = max(0.0, reset - time.time()) if reset else None
                raise Retryable(f"HTTP 429 ({error})", wait) from None
            except (MastodonServerError, MastodonNetworkError) as error:
                refused = refusal_in(error)
                if refused is not None:  # no retry can change it
                    raise SourceFailure(f"{source.spec}: {refused}") from None
                raise Retryable(f"{type(error).__name__}: {error}") from None
            except MastodonAPIError as error:
                raise SourceFailure(f"{source.spec}: {type(error).__name__}: {error}") from None
            except ValueError as error:  # a body that is not JSON
                raise SourceFailure(f"{source.spec}: not a Mastodon answer: {error}") from None

        statuses = self.backoff.call(source.spec, read)
        if not isinstance(statuses, list):
            raise SourceFailure(f"{source.spec}: a timeline is a JSON array of statuses")
        fetched_at = self.clock()
        items: list[FeedItem] = []
        malformed: list[str] = []
        ids: list[str] = []
        for number, status in enumerate(statuses, start=1):
            if isinstance(status, Mapping) and str(status.get("id") or "").strip():
                ids.append(str(status["id"]).strip())
            try:
                items.append(status_to_item(status, fetched_at))
            except ValueError as error:
                malformed.append(f"status {number} of the page: {error}")
        # Oldest first, so mentions go out in the order they were posted.
        items.sort(key=lambda item: _id_key(item.item_id))
        items = self._with_threads(client, source.base_url, items)
        newest = max([position, *ids] if position else ids, key=_id_key, default="")
        new_items = unseen(cursor, items)
        return Page(
            items=items,
            new_items=new_items,
            next_cursor=next_cursor(
                cursor,
                position=newest,
                seen_item_ids=remember(cursor.seen_item_ids, [i.item_id for i in items]),
            ),
            more=bool(position) and len(statuses) >= self.page_size,
            malformed=malformed,
        )
