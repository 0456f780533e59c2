"""Mastodon's REST API, the parts a publisher uses.

``POST /api/v1/statuses`` (form or JSON, Bearer token) with Mastodon's Idempotency-Key
behaviour: the same key from the same account returns the status it created, no second
one. ``POST /api/v2/media`` takes the multipart upload with its ``description`` (alt text).
Errors as Mastodon gives them: 401 ``{"error": "The access token is invalid"}``, 422
``Validation failed: Text character limit of 500 exceeded``, 404 ``Record not found`` for
an unknown ``in_reply_to_id``, 429 with ``X-RateLimit-Reset``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from legation_devstack.channel_servers.base import Canned, Received, RecordingHttpServer, Response


def rate_limited(seconds: int, *, retry_after: bool = False) -> Canned:
    """Mastodon's 429: its rate-limit headers with the reset ``seconds`` from now (and a
    Retry-After, which some proxies in front of an instance add)."""
    headers = {
        "X-RateLimit-Limit": "300",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(),
    }
    if retry_after:
        headers["Retry-After"] = str(seconds)
    return Canned(429, {"error": "Too many requests"}, headers)


class MastodonServer(RecordingHttpServer):
    def __init__(self, access_token: str = "mastodon-token", max_characters: int = 500) -> None:
        super().__init__()
        self.access_token = access_token
        self.max_characters = max_characters
        self.statuses: list[dict[str, Any]] = []
        self.media: dict[str, dict[str, Any]] = {}
        self._by_key: dict[str, dict[str, Any]] = {}

    def rate_limit_next(self, seconds: int = 2) -> None:
        """The next status post is refused with 429 until ``seconds`` from now."""
        self.fail_next("/api/v1/statuses", rate_limited(seconds))

    def handle(self, request: Received) -> Response:
        # Rails routes ignore a trailing slash (Mastodon.py asks for /api/v1/instance/).
        request = replace(request, path=request.path.rstrip("/"))
        if request.method == "GET" and request.path in ("/api/v1/instance", "/api/v2/instance"):
            return (
                200,
                {
                    "uri": "social.example.org",
                    "domain": "social.example.org",
                    "title": "Example",
                    "version": "4.3.0",
                    "api_versions": {"mastodon": 2},
                    "configuration": {"statuses": {"max_characters": self.max_characters}},
                },
                {},
            )
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return 401, {"error": "The access token is invalid"}, {}
        if request.method == "POST" and request.path == "/api/v1/statuses":
            return self._post_status(request)
        if request.method == "POST" and request.path in ("/api/v2/media", "/api/v1/media"):
            return self._post_media(request)
        return 404, {"error": "Record not found"}, {}

    def _headers(self) -> dict[str, str]:
        reset = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        return {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "299",
            "X-RateLimit-Reset": reset,
        }

    def _post_media(self, request: Received) -> Response:
        form = request.form()
        if "file" not in form:
            return 422, {"error": "Validation failed: File can't be blank"}, {}
        media_id = str(1000 + len(self.media) + 1)
        description = (form.get("description") or [""])[0]
        self.media[media_id] = {
            "id": media_id,
            "type": "image",
            "description": description,
            "size": len(form["file"][0]),
            "url": f"https://files.example.org/{media_id}.png",
        }
        return 200, self.media[media_id], self._headers()

    def _post_status(self, request: Received) -> Response:
        key = request.headers.get("idempotency-key")
        if key and key in self._by_key:
            return 200, self._by_key[key], self._headers()
        form = request.form()
        text = (form.get("status") or [""])[0]
        media_ids = form.get("media_ids[]") or form.get("media_ids") or []
        if not text.strip() and not media_ids:
            return 422, {"error": "Validation failed: Text can't be blank"}, {}
        if len(_counted(text)) > self.max_characters:
            return (
                422,
                {
                    "error": f"Validation failed: Text character limit of "
                    f"{self.max_characters} exceeded"
                },
                {},
            )
        unknown = [m for m in media_ids if m not in self.media]
        if unknown:
            return 422, {"error": "Validation failed: Media attachments are invalid"}, {}
        reply_to = (form.get("in_reply_to_id") or [""])[0]
        if reply_to and not any(s["id"] == reply_to for s in self.statuses):
            return 404, {"error": "Record not found"}, {}
        status_id = str(110_000_000_000 + len(self.statuses) + 1)
        status = {
            "id": status_id,
            "uri": f"https://social.example.org/users/embassy/statuses/{status_id}",
            "url": f"https://social.example.org/@embassy/{status_id}",
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "content": f"<p>{text}</p>",
            "text": text,
            "visibility": (form.get("visibility") or ["public"])[0],
            "language": (form.get("language") or [""])[0] or None,
            "in_reply_to_id": reply_to or None,
            "media_attachments": [self.media[m] for m in media_ids],
            "account": {"id": "1", "username": "embassy", "acct": "embassy"},
        }
        self.statuses.append(status)
        if key:
            self._by_key[key] = status
        return 200, status, self._headers()


def _counted(text: str) -> str:
    # Mastodon counts every URL as 23 characters.
    import re

    return re.sub(r"https?://\S+", "x" * 23, text)
