"""Mastodon through Mastodon.py.

Statuses go out with ``status_post(..., idempotency_key=...)``, which Mastodon.py sends as
the ``Idempotency-Key`` header: Mastodon returns the original status for a key it has seen
(it keeps keys for one hour), so retries and resends after a crash never double-post:
reconcile mode ``idempotency-key``. Replies use ``in_reply_to_id``; media are fetched from
their URL and uploaded with ``media_post`` with the alt text as description.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import requests
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonIllegalArgumentError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from legation_channels.adapters._common import Adapter
from legation_channels.adapters._http import DEFAULT_TIMEOUT, fetch_media
from legation_channels.base import (
    ChannelLimits,
    ChannelRejected,
    ChannelUnavailable,
    Delivered,
    Outgoing,
    Reconcile,
    text_with_link,
)

# Mastodon's defaults (instances may raise the character limit: option max_characters).
MAX_CHARACTERS = 500
MAX_MEDIA = 4
URL_LENGTH = 23


class MastodonChannel(Adapter):
    """Posts statuses to one Mastodon account (``kind: mastodon``)."""

    kind = "mastodon"
    reconcile: Reconcile = "idempotency-key"

    def __init__(
        self,
        name: str,
        base_url: str,
        access_token: str,
        *,
        visibility: str = "public",
        max_characters: int = MAX_CHARACTERS,
        alt_text_required: bool = True,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        mastodon_version: str = "4.3.0",
    ) -> None:
        self._visibility = visibility
        # "throw": we handle rate limits ourselves (the outbox's backoff), never sleep here.
        self._api = Mastodon(
            access_token=access_token,
            api_base_url=base_url,
            ratelimit_method="throw",
            # Mastodon.py hands its timeout to requests as it is, and requests takes a
            # (connect, read) pair: a refused connection fails fast, so it is known not to
            # have posted (requests.ConnectTimeout, see _translate). Its annotation says
            # float only.
            request_timeout=(timeout.connect, timeout.read),  # type: ignore[arg-type]
            # The API level we speak; stating it spares a version probe of /api/v1/instance
            # on first media upload (which Mastodon.py retries recursively when it fails).
            mastodon_version=mastodon_version,
            version_check_mode="none",
        )
        self._http = httpx.Client(timeout=timeout, follow_redirects=True)
        super().__init__(
            name,
            ChannelLimits(
                max_text_length=max_characters,
                max_media=MAX_MEDIA,
                media_kinds=frozenset({"image", "video"}),
                alt_text_required=alt_text_required,
                supports_replies=True,
                link_in_text=True,
                url_length=URL_LENGTH,
            ),
        )

    def close(self) -> None:
        self._http.close()
        self._api.session.close()

    def deliver(self, message: Outgoing) -> Delivered:
        try:
            media_ids = [
                self._upload(position, media) for position, media in enumerate(message.media)
            ]
            status: Any = self._api.status_post(
                text_with_link(message),
                in_reply_to_id=message.in_reply_to or None,
                media_ids=media_ids or None,
                visibility=self._visibility,
                language=message.language or None,
                idempotency_key=message.idempotency_key,
            )
        except MastodonError as error:
            raise self._translate(error, message) from error
        created = status["created_at"]
        if not isinstance(created, datetime):
            created = datetime.now(UTC)
        return Delivered(str(status["id"]), str(status["url"] or status["uri"]), created, True)

    def _upload(self, position: int, media: Any) -> Any:
        data, mime = fetch_media(self._http, media, position)
        try:
            return self._api.media_post(
                data,
                mime_type=mime,
                description=media.alt_text or None,
                file_name=f"media{position}",
            )
        except MastodonAPIError as error:
            if _status(error) == 422:
                raise ChannelRejected(
                    f"Mastodon refused media[{position}]: {_message(error)}",
                    field=f"media[{position}]",
                ) from error
            raise

    def _translate(self, error: MastodonError, message: Outgoing) -> Exception:
        if isinstance(error, MastodonRatelimitError):
            reset = self._api.ratelimit_reset
            wait = max(0.0, float(reset) - time.time()) if reset else None
            return ChannelUnavailable("Mastodon rate limit reached (HTTP 429)", wait)
        if isinstance(error, MastodonNetworkError):
            cause = error.__context__
            return ChannelUnavailable(
                f"Mastodon: {error}",
                maybe_delivered=not isinstance(cause, requests.ConnectTimeout),
            )
        if isinstance(error, MastodonUnauthorizedError) or _status(error) == 403:
            return ChannelRejected(
                f"Mastodon refused our credentials: {_message(error)}", field="credentials"
            )
        if isinstance(error, MastodonServerError):
            return ChannelUnavailable(f"Mastodon: HTTP {_status(error)}: {_message(error)}")
        if isinstance(error, MastodonNotFoundError) and message.in_reply_to:
            return ChannelRejected(
                f"Mastodon has no status {message.in_reply_to} to reply to", field="in_reply_to"
            )
        if isinstance(error, MastodonIllegalArgumentError):
            return ChannelRejected(f"Mastodon: {error}")
        text = _message(error)
        return ChannelRejected(f"Mastodon rejected the status: {text}", field=_field(text))


def _status(error: MastodonError) -> int | None:
    # Mastodon.py raises API errors as (message, status code, reason, error text).
    args = error.args
    return args[1] if len(args) > 1 and isinstance(args[1], int) else None


def _message(error: MastodonError) -> str:
    args = error.args
    return str(args[3]) if len(args) > 3 and args[3] else str(error)


def _field(text: str) -> str:
    lowered = text.lower()
    if "text" in lowered or "character limit" in lowered:
        return "text"
    if "media" in lowered:
        return "media"
    if "reply" in lowered:
        return "in_reply_to"
    if "language" in lowered:
        return "language"
    return ""
