"""A Telegram channel through the Bot API, over plain HTTPS.

``sendMessage`` for text, ``sendPhoto`` / ``sendVideo`` / ``sendDocument`` (media by URL,
Telegram fetches it; the text becomes the caption). The Bot API has no idempotency key and
no way to look a message up, so reconcile mode is ``none``: the outbox asks a person to
check rather than risk a second post. (python-telegram-bot is asyncio-only and brings a
framework for bots that converse; one JSON call per delivery does not need it.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from legation_channels.adapters._http import DEFAULT_TIMEOUT, json_body, unavailable
from legation_channels.base import (
    ChannelLimits,
    ChannelRejected,
    ChannelUnavailable,
    Delivered,
    Outgoing,
    Reconcile,
    text_with_link,
)

# From the Bot API documentation: message text 1-4096 characters, captions 0-1024.
MAX_TEXT = 4096
MAX_CAPTION = 1024
_SEND_MEDIA = {
    "image": ("sendPhoto", "photo"),
    "video": ("sendVideo", "video"),
    "document": ("sendDocument", "document"),
}


class TelegramChannel:
    """Posts to one Telegram channel or group as a bot (``kind: telegram``)."""

    kind = "telegram"
    reconcile: Reconcile = "none"

    def __init__(
        self,
        name: str,
        bot_token: str,
        chat_id: str,
        *,
        api_url: str = "https://api.telegram.org",
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._name = name
        self._chat_id = chat_id
        self._client = httpx.Client(
            base_url=f"{api_url.rstrip('/')}/bot{bot_token}", timeout=timeout
        )
        self._limits = ChannelLimits(
            max_text_length=MAX_TEXT,
            max_caption_length=MAX_CAPTION,
            max_media=1,
            media_kinds=frozenset({"image", "video", "document"}),
            supports_replies=True,
            link_in_text=True,
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def limits(self) -> ChannelLimits:
        return self._limits

    def close(self) -> None:
        self._client.close()

    def find(self, idempotency_key: str) -> Delivered | None:
        return None

    def deliver(self, message: Outgoing) -> Delivered:
        body: dict[str, Any] = {"chat_id": self._chat_id}
        text = text_with_link(message)
        if message.media:
            media = message.media[0]
            method, field = _SEND_MEDIA[media.kind]
            body[field] = media.url
            if text:
                body["caption"] = text
        else:
            method = "sendMessage"
            body["text"] = text
        if message.in_reply_to:
            if not message.in_reply_to.isdigit():
                raise ChannelRejected(
                    f"in_reply_to {message.in_reply_to!r} is not a Telegram message id",
                    field="in_reply_to",
                )
            body["reply_parameters"] = {"message_id": int(message.in_reply_to)}
        try:
            response = self._client.post(f"/{method}", json=body)
        except httpx.HTTPError as error:
            raise unavailable("Telegram", error) from error
        return self._result(response, message)

    def _result(self, response: httpx.Response, message: Outgoing) -> Delivered:
        answer = json_body(response)
        if not isinstance(answer, dict):
            raise ChannelUnavailable(
                f"Telegram answered HTTP {response.status_code} without JSON",
                maybe_delivered=response.status_code < 400,
            )
        if answer.get("ok") is True:
            sent = answer["result"]
            chat = sent.get("chat", {})
            return Delivered(
                str(sent["message_id"]),
                _message_url(chat, sent["message_id"]),
                datetime.fromtimestamp(int(sent.get("date", 0)), UTC),
                True,
            )
        code = int(answer.get("error_code", response.status_code))
        description = str(answer.get("description", response.reason_phrase))
        if code == 429:
            parameters = answer.get("parameters") or {}
            raise ChannelUnavailable(f"Telegram: {description}", parameters.get("retry_after"))
        if code >= 500:
            raise ChannelUnavailable(f"Telegram: HTTP {code}: {description}")
        if code in (401, 403):
            raise ChannelRejected(
                f"Telegram refused the bot's credentials or rights (HTTP {code}): {description}",
                field="credentials",
            )
        raise ChannelRejected(
            f"Telegram rejected the message: {description}", field=_field(description, message)
        )


def _message_url(chat: dict[str, Any], message_id: int) -> str:
    """A public link where one exists: t.me/<username>/<id> for public channels and
    t.me/c/<id>/<id> for private ones (readable by members)."""
    if chat.get("username"):
        return f"https://t.me/{chat['username']}/{message_id}"
    chat_id = str(chat.get("id", ""))
    if chat_id.startswith("-100"):
        return f"https://t.me/c/{chat_id[4:]}/{message_id}"
    return ""


def _field(description: str, message: Outgoing) -> str:
    lowered = description.lower()
    if "caption" in lowered or "message is too long" in lowered or "text" in lowered:
        return "text"
    if "chat not found" in lowered:
        return "chat_id"
    if "reply" in lowered:
        return "in_reply_to"
    if any(word in lowered for word in ("photo", "video", "document", "wrong file", "url")):
        return "media[0].url" if message.media else ""
    return ""
