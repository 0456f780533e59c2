"""Chat rooms: Slack and Microsoft Teams incoming webhooks, and a Matrix room.

* **Slack** (``kind: slack``): ``POST`` to the incoming-webhook URL with ``{"text",
  "blocks"}`` (mrkdwn); Slack answers ``200 ok``, ``400 invalid_payload``, ``403``/``404``
  for a revoked hook, ``429`` with Retry-After. An incoming webhook cannot deduplicate or
  be asked what it holds: reconcile mode ``none``.
* **Microsoft Teams** (``kind: teams``): ``POST`` to the workflow's (or legacy connector's)
  webhook URL with a message carrying an Adaptive Card (``type: message``, one attachment
  ``application/vnd.microsoft.card.adaptive``); 200 or 202 on success; reconcile ``none``.
* **Matrix** (``kind: matrix``): the client-server API, ``PUT
  /_matrix/client/v3/rooms/{room}/send/m.room.message/{txnId}`` with the access token;
  the homeserver treats a repeated transaction id of the same device as the same event and
  answers with its ``event_id``, so a resend after a crash is safe: reconcile
  ``idempotency-key`` (the transaction id derives from our key).

The webhook URLs of Slack and Teams carry their secret: they come from the environment,
never from a file, and never appear in an error message.
"""

from __future__ import annotations

import html
import json
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from legation_channels.adapters._common import Adapter
from legation_channels.adapters._http import (
    DEFAULT_TIMEOUT,
    json_body,
    key_digest,
    raise_for_response,
    unavailable,
)
from legation_channels.base import ChannelLimits, Delivered, Outgoing, Reconcile

# Slack's section text takes 3,000 characters; Teams cards about 28 KB in all.
MAX_CHAT_TEXT = 3000


def _lines(message: Outgoing) -> tuple[str, str]:
    title = message.title or message.text.split("\n", 1)[0][:150]
    return title, message.text


def slack_payload(message: Outgoing) -> dict[str, Any]:
    """The incoming-webhook body for ``message`` (``text`` is the notification fallback)."""
    title, text = _lines(message)
    link = f"\n<{message.link}|Open in Legation>" if message.link else ""
    return {
        "text": f"{title}\n{text}"[:MAX_CHAT_TEXT],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": (text + link)[:MAX_CHAT_TEXT]}},
        ],
    }


def teams_payload(message: Outgoing) -> dict[str, Any]:
    """A Teams webhook message with one Adaptive Card (schema 1.4)."""
    title, text = _lines(message)
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "TextBlock", "text": text[:MAX_CHAT_TEXT], "wrap": True},
        ],
    }
    if message.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open", "url": message.link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def matrix_payload(message: Outgoing) -> dict[str, Any]:
    """An ``m.room.message`` event: plain body and the same as HTML."""
    title, text = _lines(message)
    body = f"{title}\n\n{text}" + (f"\n\n{message.link}" if message.link else "")
    formatted = f"<h4>{html.escape(title)}</h4>" + "".join(
        f"<p>{html.escape(part)}</p>" for part in text.split("\n") if part.strip()
    )
    if message.link:
        link = html.escape(message.link)
        formatted += f'<p><a href="{link}">Open in Legation</a></p>'
    return {
        "msgtype": "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted,
    }


class _WebhookChat(Adapter, ABC):
    """A chat webhook: one POST of a JSON body; the URL is a secret."""

    reconcile: Reconcile = "none"
    label = "chat webhook"

    def __init__(self, name: str, url: str, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError("url: expected an http(s) URL")
        self._url = url
        self._client = httpx.Client(timeout=timeout)
        super().__init__(name, ChannelLimits(max_text_length=MAX_CHAT_TEXT))

    def close(self) -> None:
        self._client.close()

    @abstractmethod
    def body(self, message: Outgoing) -> dict[str, Any]:
        """The JSON body in the chat's own format (Slack, Teams, Matrix)."""

    def deliver(self, message: Outgoing) -> Delivered:
        content = json.dumps(self.body(message), ensure_ascii=False).encode()
        try:
            response = self._client.post(
                self._url, content=content, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as error:
            # Never the URL (it holds the hook's secret): the error's type and text only.
            raise unavailable(self.label, _without_url(error, self._url)) from None
        if not 200 <= response.status_code < 300:
            raise_for_response(self.label, response, response.text[:200], "text")
        return Delivered(key_digest(message.idempotency_key), "", datetime.now(UTC), True)


class SlackChannel(_WebhookChat):
    """A Slack incoming webhook (``kind: slack``)."""

    kind = "slack"
    label = "Slack webhook"

    def body(self, message: Outgoing) -> dict[str, Any]:
        return slack_payload(message)


class TeamsChannel(_WebhookChat):
    """A Microsoft Teams webhook (``kind: teams``)."""

    kind = "teams"
    label = "Teams webhook"

    def body(self, message: Outgoing) -> dict[str, Any]:
        return teams_payload(message)


class MatrixChannel(Adapter):
    """A Matrix room, through the client-server API (``kind: matrix``)."""

    kind = "matrix"
    reconcile: Reconcile = "idempotency-key"

    def __init__(
        self,
        name: str,
        homeserver: str,
        room_id: str,
        access_token: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        if not homeserver.startswith(("https://", "http://")):
            raise ValueError("homeserver: expected an http(s) URL")
        if not room_id.startswith("!") or ":" not in room_id:
            raise ValueError("room_id: expected a room id like !abc:example.org")
        self._base = homeserver.rstrip("/")
        self._room = room_id
        self._client = httpx.Client(
            timeout=timeout, headers={"Authorization": f"Bearer {access_token}"}
        )
        super().__init__(name, ChannelLimits(max_text_length=20_000))

    def close(self) -> None:
        self._client.close()

    def transaction_id(self, idempotency_key: str) -> str:
        """The Matrix transaction id of a message: stable for its key."""
        return "lg-" + key_digest(idempotency_key, 32)

    def deliver(self, message: Outgoing) -> Delivered:
        url = (
            f"{self._base}/_matrix/client/v3/rooms/{quote(self._room, safe='')}/send/"
            f"m.room.message/{self.transaction_id(message.idempotency_key)}"
        )
        try:
            response = self._client.put(url, json=matrix_payload(message))
        except httpx.HTTPError as error:
            raise unavailable("Matrix", error) from error
        answer = json_body(response)
        if not 200 <= response.status_code < 300:
            detail = answer.get("error", "") if isinstance(answer, dict) else ""
            raise_for_response("Matrix", response, str(detail or response.reason_phrase), "text")
        event_id = str(answer.get("event_id", "")) if isinstance(answer, dict) else ""
        return Delivered(
            event_id, f"https://matrix.to/#/{self._room}/{event_id}", datetime.now(UTC), True
        )


def _without_url(error: httpx.HTTPError, url: str) -> httpx.HTTPError:
    """``error`` with the secret URL taken out of its message."""
    text = str(error).replace(url, "<webhook url>")
    return type(error)(text) if isinstance(error, httpx.TransportError) else error
