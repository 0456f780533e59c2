"""Bluesky (or any AT Protocol PDS) through the ``atproto`` SDK.

A post is an ``app.bsky.feed.post`` record created with ``com.atproto.repo.createRecord``
under a record key (a TID, as the post lexicon requires) derived from the idempotency key.
The same message therefore always lands at the same ``at://`` URI: a retry conflicts
instead of duplicating, and after a crash ``getRecord`` tells whether it is there:
reconcile mode ``lookup``. Replies take the parent's ``at://`` URI in ``in_reply_to``;
the adapter resolves the parent's CID and the thread root.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
from atproto import AtUri, Client, Request, client_utils, models
from atproto_client.exceptions import (
    BadRequestError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_core.exceptions import AtProtocolError

from legation_channels.adapters._common import Adapter
from legation_channels.adapters._http import DEFAULT_TIMEOUT, fetch_media
from legation_channels.base import (
    ChannelLimits,
    ChannelRejected,
    ChannelUnavailable,
    Delivered,
    Outgoing,
    Reconcile,
)

MAX_GRAPHEMES = 300
MAX_IMAGES = 4
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
# Derived TIDs carry a timestamp in the ~100 days after this instant (microseconds).
_TID_EPOCH_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


def record_key_for(idempotency_key: str) -> str:
    """A valid TID (13 base32-sortable characters, top bit zero) derived from the key."""
    digest = int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:8], "big")
    micros = _TID_EPOCH_US + (digest >> 21)  # 43 bits of the digest
    clock_id = digest & 0x3FF
    value = (micros << 10) | clock_id
    value &= (1 << 63) - 1
    return "".join(_TID_ALPHABET[(value >> shift) & 0x1F] for shift in range(60, -1, -5))


class BlueskyChannel(Adapter):
    """Posts to one Bluesky account (``kind: bluesky``)."""

    kind = "bluesky"
    reconcile: Reconcile = "lookup"

    def __init__(
        self,
        name: str,
        handle: str,
        app_password: str,
        *,
        service_url: str = "https://bsky.social",
        web_url: str = "https://bsky.app",
        alt_text_required: bool = True,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._handle = handle
        self._password = app_password
        self._web_url = web_url.rstrip("/")
        self._client = Client(service_url, request=Request(timeout=timeout))
        self._http = httpx.Client(timeout=timeout, follow_redirects=True)
        self._did = ""
        self._login_lock = threading.Lock()
        super().__init__(
            name,
            ChannelLimits(
                max_text_length=MAX_GRAPHEMES,
                max_media=MAX_IMAGES,
                media_kinds=frozenset({"image"}),
                alt_text_required=alt_text_required,
                supports_replies=True,
                count_graphemes=True,
                link_in_text=True,
            ),
        )

    def close(self) -> None:
        self._http.close()

    def find(self, idempotency_key: str) -> Delivered | None:
        try:
            return self._get(record_key_for(idempotency_key))
        except AtProtocolError as error:
            raise _translate(error, "lookup") from error

    def deliver(self, message: Outgoing) -> Delivered:
        rkey = record_key_for(message.idempotency_key)
        try:
            repo = self._session()
            text = self._text(message)
            record = models.AppBskyFeedPost.Record(
                created_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                text=text.build_text(),
                facets=text.build_facets() or None,
                langs=[message.language] if message.language else None,
                reply=self._reply_ref(message.in_reply_to) if message.in_reply_to else None,
                embed=self._images(message) if message.media else None,
            )
            try:
                created = self._client.app.bsky.feed.post.create(repo, record, rkey=rkey)
            except RequestErrorBase as error:
                # The key is taken: an earlier attempt got through (a PDS answers 409
                # RecordAlreadyExists, older ones 500). Anything else is a real error.
                if error.response is None or error.response.status_code not in (409, 500):
                    raise
                existing = self._get(rkey)
                if existing is not None:
                    return existing
                raise
        except AtProtocolError as error:
            if isinstance(error, UnauthorizedError) or (
                isinstance(error, BadRequestError) and _xrpc_error(error) == "ExpiredToken"
            ):
                self._did = ""  # log in afresh on the next attempt
            raise _translate(error, "post") from error
        return Delivered(created.uri, self._web_link(rkey), datetime.now(UTC), True)

    def _session(self) -> str:
        with self._login_lock:
            if not self._did:
                # login() would also fetch the profile, an app.bsky call we do not need.
                session = self._client._get_and_set_session(self._handle, self._password)
                self._did = session.did
            return self._did

    def _get(self, rkey: str) -> Delivered | None:
        repo = self._session()
        try:
            record = self._client.app.bsky.feed.post.get(repo, rkey)
        except BadRequestError as error:
            if _xrpc_error(error) == "RecordNotFound":
                return None
            raise
        created = _attr(record.value, "created_at")
        when = _parse_time(created) if isinstance(created, str) else datetime.now(UTC)
        return Delivered(record.uri, self._web_link(rkey), when, False)

    def _web_link(self, rkey: str) -> str:
        return f"{self._web_url}/profile/{self._did}/post/{rkey}"

    @staticmethod
    def _text(message: Outgoing) -> client_utils.TextBuilder:
        builder = client_utils.TextBuilder().text(message.text)
        if message.link and message.link not in message.text:
            builder.text("\n\n" if message.text else "").link(message.link, message.link)
        return builder

    def _reply_ref(self, parent_uri: str) -> models.AppBskyFeedPost.ReplyRef:
        try:
            uri = AtUri.from_str(parent_uri)
        except Exception as error:
            raise ChannelRejected(
                f"in_reply_to {parent_uri!r} is not an at:// URI of a post", field="in_reply_to"
            ) from error
        try:
            parent = self._client.com.atproto.repo.get_record(
                {"repo": uri.host, "collection": uri.collection, "rkey": uri.rkey}
            )
        except BadRequestError as error:
            raise ChannelRejected(
                f"in_reply_to {parent_uri} was not found: {_xrpc_error(error)}",
                field="in_reply_to",
            ) from error
        parent_ref = models.ComAtprotoRepoStrongRef.Main(uri=parent.uri, cid=parent.cid or "")
        root = _attr(_attr(parent.value, "reply"), "root")
        root_ref = (
            models.ComAtprotoRepoStrongRef.Main(uri=_attr(root, "uri"), cid=_attr(root, "cid"))
            if root is not None
            else parent_ref
        )
        return models.AppBskyFeedPost.ReplyRef(root=root_ref, parent=parent_ref)

    def _images(self, message: Outgoing) -> models.AppBskyEmbedImages.Main:
        images = []
        for position, media in enumerate(message.media):
            data, _mime = fetch_media(self._http, media, position)
            uploaded = self._client.upload_blob(data)
            images.append(models.AppBskyEmbedImages.Image(alt=media.alt_text, image=uploaded.blob))
        return models.AppBskyEmbedImages.Main(images=images)


def _attr(value: Any, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        camel = "".join(part if i == 0 else part.title() for i, part in enumerate(name.split("_")))
        return value.get(name, value.get(camel))
    return getattr(value, name, None)


def _parse_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


def _xrpc_error(error: RequestErrorBase) -> str:
    content = error.response.content if error.response is not None else None
    return str(_attr(content, "error") or "")


def _xrpc_message(error: RequestErrorBase) -> str:
    content = error.response.content if error.response is not None else None
    return str(_attr(content, "message") or _attr(content, "error") or error)


def _translate(error: AtProtocolError, what: str) -> Exception:
    if isinstance(error, ChannelRejected | ChannelUnavailable):
        return error
    if isinstance(error, RateLimitExceededError):
        wait = error.retry_after
        if wait is None and error.reset_at is not None:
            wait = max(0.0, (error.reset_at - datetime.now(UTC)).total_seconds())
        return ChannelUnavailable(f"Bluesky {what}: rate limited (HTTP 429)", wait)
    if isinstance(error, UnauthorizedError):
        return ChannelRejected(
            f"Bluesky refused our credentials ({what}): {_xrpc_message(error)}",
            field="credentials",
        )
    if isinstance(error, RequestErrorBase) and error.response is None:
        cause = error.__cause__
        return ChannelUnavailable(
            f"Bluesky {what}: {type(cause).__name__ if cause else 'network error'}: {cause}",
            maybe_delivered=not isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout),
        )
    if isinstance(error, BadRequestError):
        name, text = _xrpc_error(error), _xrpc_message(error)
        if name == "ExpiredToken":
            return ChannelUnavailable(f"Bluesky {what}: session expired")
        field = "text" if "text" in text.lower() else ""
        if "image" in text.lower() or "blob" in text.lower():
            field = "media"
        return ChannelRejected(f"Bluesky rejected the {what}: {name}: {text}", field=field)
    if isinstance(error, NetworkError | RequestErrorBase):
        status = error.response.status_code if error.response is not None else 0
        return ChannelUnavailable(f"Bluesky {what}: HTTP {status}: {_xrpc_message(error)}")
    return ChannelRejected(f"Bluesky {what}: {error}")
