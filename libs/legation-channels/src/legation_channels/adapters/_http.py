"""What the HTTP adapters share: error classification, Retry-After, fetching media."""

from __future__ import annotations

import hashlib
from typing import Any, NoReturn

import httpx

from legation_channels.base import ChannelRejected, ChannelUnavailable, Media
from legation_core.retry_after import retry_after_seconds

# Connect quickly or give up; leave the platform time to answer a write.
DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
# Media are fetched by reference and uploaded; refuse anything unreasonably large.
MAX_MEDIA_BYTES = 50 * 1024 * 1024


def key_digest(idempotency_key: str, length: int = 24) -> str:
    """A short, stable, URL-safe digest of an idempotency key (slugs, Message-IDs)."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:length]


def unavailable(what: str, error: httpx.HTTPError) -> ChannelUnavailable:
    """A transport failure. Only a failure to connect proves the request never arrived."""
    arrived_maybe = not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
    return ChannelUnavailable(
        f"{what}: {type(error).__name__}: {error}", maybe_delivered=arrived_maybe
    )


def raise_for_response(
    what: str, response: httpx.Response, detail: str, field: str = ""
) -> NoReturn:
    """Raises the contract's error for a non-2xx ``response``: 401/403 → credentials,
    429 and 5xx → unavailable (with Retry-After), other 4xx → rejected naming ``field``."""
    status = response.status_code
    if status in (401, 403):
        raise ChannelRejected(
            f"{what} refused our credentials (HTTP {status}): {detail}", field="credentials"
        )
    if status == 429 or status >= 500:
        raise ChannelUnavailable(
            f"{what}: HTTP {status}: {detail}",
            retry_after_seconds(response.headers.get("Retry-After")),
            # A gateway timeout may hide a request the platform went on to process.
            maybe_delivered=status == 504,
        )
    raise ChannelRejected(f"{what} rejected the message (HTTP {status}): {detail}", field=field)


def json_body(response: httpx.Response) -> Any:
    """The response's JSON, or None when it has none."""
    try:
        return response.json()
    except ValueError:
        return None


def fetch_media(client: httpx.Client, media: Media, position: int) -> tuple[bytes, str]:
    """Downloads an attachment the message refers to; returns its bytes and MIME type."""
    field = f"media[{position}].url"
    try:
        response = client.get(media.url)
    except httpx.HTTPError as error:
        # Fetching is a read: it never publishes anything.
        raise ChannelUnavailable(f"fetching {field}: {error}") from error
    if response.status_code >= 500 or response.status_code == 429:
        raise ChannelUnavailable(
            f"fetching {field}: HTTP {response.status_code}",
            retry_after_seconds(response.headers.get("Retry-After")),
        )
    if response.status_code >= 400:
        raise ChannelRejected(
            f"{field} could not be fetched (HTTP {response.status_code})", field=field
        )
    if len(response.content) > MAX_MEDIA_BYTES:
        raise ChannelRejected(f"{field} is larger than {MAX_MEDIA_BYTES} bytes", field=field)
    mime = media.mime_type or response.headers.get("Content-Type", "").split(";")[0].strip()
    if not mime:
        raise ChannelRejected(f"{field} has no MIME type; set media.mime_type", field=field)
    return response.content, mime
