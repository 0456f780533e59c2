"""WordPress through its REST API, authenticated with an application password.

Publishes with ``POST /wp-json/wp/v2/posts``. The post's slug is derived from the
idempotency key, so a retry first looks for it (``GET /wp-json/wp/v2/posts?slug=``) and
finds what an interrupted attempt published: reconcile mode ``lookup``. (WordPress would
not refuse a second post with the same slug, it would rename it, hence look first.)
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import httpx

from legation_channels.adapters._http import (
    DEFAULT_TIMEOUT,
    json_body,
    key_digest,
    raise_for_response,
    unavailable,
)
from legation_channels.base import (
    ChannelLimits,
    ChannelUnavailable,
    Delivered,
    Outgoing,
    Reconcile,
)

# WordPress maps these REST parameters from our message fields.
_FIELDS = {"title": "title", "content": "text", "excerpt": "text", "slug": "idempotency_key"}


def slug_for(idempotency_key: str) -> str:
    """The post slug that marks what we published under ``idempotency_key``."""
    return f"lg-{key_digest(idempotency_key)}"


class WordPressChannel:
    """Posts to a WordPress site (``kind: wordpress``)."""

    kind = "wordpress"
    reconcile: Reconcile = "lookup"

    def __init__(
        self,
        name: str,
        base_url: str,
        username: str,
        application_password: str,
        *,
        status: str = "publish",
        categories: tuple[int, ...] = (),
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._name = name
        self._status = status
        self._categories = categories
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/wp-json/wp/v2",
            auth=httpx.BasicAuth(username, application_password),
            timeout=timeout,
            transport=transport,
        )
        self._limits = ChannelLimits(
            max_title_length=200,
            max_media=10,
            media_kinds=frozenset({"image", "video", "document"}),
            alt_text_required=True,
            supports_replies=False,
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
        try:
            response = self._client.get(
                "/posts", params={"slug": slug_for(idempotency_key), "_fields": "id,link,date_gmt"}
            )
        except httpx.HTTPError as error:
            raise ChannelUnavailable(f"WordPress lookup: {error}") from error
        if response.status_code != 200:
            raise_for_response("WordPress", response, _detail(response))
        posts = json_body(response)
        if not isinstance(posts, list) or not posts:
            return None
        return _delivered(posts[0], newly=False)

    def deliver(self, message: Outgoing) -> Delivered:
        existing = self.find(message.idempotency_key)
        if existing is not None:
            return existing
        body: dict[str, Any] = {
            "title": message.title or message.text.split("\n", 1)[0][:80],
            "content": render_content(message),
            "status": self._status,
            "slug": slug_for(message.idempotency_key),
        }
        if self._categories:
            body["categories"] = list(self._categories)
        try:
            response = self._client.post("/posts", json=body)
        except httpx.HTTPError as error:
            raise unavailable("WordPress", error) from error
        if response.status_code not in (200, 201):
            raise_for_response("WordPress", response, _detail(response), _field(response))
        post = json_body(response)
        if not isinstance(post, dict) or "id" not in post:
            raise ChannelUnavailable("WordPress answered without a post id", maybe_delivered=True)
        return _delivered(post, newly=True)


def render_content(message: Outgoing) -> str:
    """The post body as HTML: paragraphs of text, figures for media, the link last."""
    parts = [
        f"<p>{html.escape(paragraph)}</p>"
        for paragraph in message.text.split("\n\n")
        if paragraph.strip()
    ]
    for media in message.media:
        src, alt = html.escape(media.url), html.escape(media.alt_text)
        if media.kind == "image":
            parts.append(f'<figure><img src="{src}" alt="{alt}"/></figure>')
        elif media.kind == "video":
            parts.append(
                f'<figure><video controls src="{src}"></video><figcaption>{alt}'
                "</figcaption></figure>"
            )
        else:
            parts.append(f'<p><a href="{src}">{alt or src}</a></p>')
    if message.link:
        parts.append(
            f'<p><a href="{html.escape(message.link)}">{html.escape(message.link)}</a></p>'
        )
    return "\n".join(parts)


def _delivered(post: dict[str, Any], newly: bool) -> Delivered:
    published = post.get("date_gmt")
    when = (
        datetime.fromisoformat(published).replace(tzinfo=UTC)
        if isinstance(published, str) and published
        else datetime.now(UTC)
    )
    return Delivered(str(post["id"]), str(post.get("link", "")), when, newly)


def _detail(response: httpx.Response) -> str:
    body = json_body(response)
    if isinstance(body, dict):
        return str(body.get("message") or body.get("code") or response.reason_phrase)
    return response.reason_phrase


def _field(response: httpx.Response) -> str:
    """The message field behind WordPress's ``rest_invalid_param`` error, if any."""
    body = json_body(response)
    if not isinstance(body, dict):
        return ""
    data = body.get("data")
    params = data.get("params") if isinstance(data, dict) else None
    if isinstance(params, dict):
        for param in params:
            if param in _FIELDS:
                return _FIELDS[param]
    return ""
