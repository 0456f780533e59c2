"""An outgoing webhook: the message as JSON, POSTed to a receiver we configure.

Every request carries ``Idempotency-Key`` (the message's key) and a signature,
``X-Legation-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the shared
secret>``, so the receiver can check it came from us and is fresh. The receiver promises to
deduplicate on the key: reconcile mode ``idempotency-key``. It answers 2xx, optionally with
``{"id": ..., "url": ...}``; ``"duplicate": true`` in the answer tells us it already had
the message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from legation_channels.adapters._common import Adapter
from legation_channels.adapters._http import (
    DEFAULT_TIMEOUT,
    json_body,
    raise_for_response,
    unavailable,
)
from legation_channels.base import ChannelLimits, Delivered, Outgoing, Reconcile

SIGNATURE_HEADER = "X-Legation-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    """What a receiver does: the signature matches and is at most ``tolerance`` s old."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    # As bytes: compare_digest refuses str with characters beyond ASCII (a TypeError).
    expected = sign(secret, timestamp, body).encode()
    return hmac.compare_digest(expected, header.encode("utf-8", "surrogatepass"))


def payload(message: Outgoing) -> dict[str, Any]:
    """The JSON document a receiver gets."""
    return {
        "idempotency_key": message.idempotency_key,
        "title": message.title,
        "text": message.text,
        "language": message.language,
        "link": message.link,
        "media": [
            {"url": m.url, "kind": m.kind, "alt_text": m.alt_text, "mime_type": m.mime_type}
            for m in message.media
        ],
        "in_reply_to": message.in_reply_to,
        "author": message.author,
    }


class WebhookChannel(Adapter):
    """POSTs each message to one URL (``kind: webhook``)."""

    kind = "webhook"
    reconcile: Reconcile = "idempotency-key"

    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        *,
        max_text_length: int | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._url = url
        self._secret = secret
        self._client = httpx.Client(timeout=timeout)
        super().__init__(
            name,
            ChannelLimits(
                max_text_length=max_text_length,
                max_media=20,
                media_kinds=frozenset({"image", "video", "document"}),
                supports_replies=True,
            ),
        )

    def close(self) -> None:
        self._client.close()

    def deliver(self, message: Outgoing) -> Delivered:
        body = json.dumps(payload(message), ensure_ascii=False, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.idempotency_key,
            SIGNATURE_HEADER: sign(self._secret, int(time.time()), body),
        }
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise unavailable("webhook", error) from error
        answer = json_body(response)
        if not 200 <= response.status_code < 300:
            detail = answer.get("error", "") if isinstance(answer, dict) else ""
            field = answer.get("field", "") if isinstance(answer, dict) else ""
            raise_for_response(
                "webhook", response, str(detail or response.reason_phrase), str(field or "")
            )
        answer = answer if isinstance(answer, dict) else {}
        duplicate = bool(answer.get("duplicate"))
        return Delivered(
            str(answer.get("id") or message.idempotency_key),
            str(answer.get("url") or ""),
            datetime.now(UTC),
            not duplicate,
        )
