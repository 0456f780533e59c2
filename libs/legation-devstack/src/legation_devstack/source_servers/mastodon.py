"""Mastodon's timelines as its API documentation gives them.

``GET /api/v1/timelines/tag/:hashtag`` and ``GET /api/v1/timelines/public`` (``local``)
answer statuses newest first. ``max_id`` (older than), ``since_id`` (newer than, the
newest ones) and ``min_id`` (newer than, the ones immediately after it) page through them;
``limit`` defaults to 20, at most 40. A ``Link`` header gives ``next`` and ``prev``.
``GET /api/v1/statuses/:id/context`` gives a status's ancestors (oldest first) and replies.
``rate_limit_next`` answers 429 with ``X-RateLimit-Reset`` and ``Retry-After``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from legation_devstack.channel_servers.base import Received, RecordingHttpServer, Response
from legation_devstack.channel_servers.mastodon import rate_limited

DOMAIN = "social.example.org"


@dataclass(frozen=True)
class _Entry:
    """One status of the timelines: its id, its hashtags (None: in every tag timeline), and
    the body answered (a malformed one is answered as given)."""

    id: int
    tags: frozenset[str] | None
    local: bool
    body: Any


class MastodonTimelineServer(RecordingHttpServer):
    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._entries: list[_Entry] = []
        # Snowflake-like ids: they grow with time and have many digits.
        self._ids = itertools.count(110_000_000_000_000_001)

    def post(
        self,
        text: str,
        *,
        tags: tuple[str, ...] = (),
        username: str = "alice",
        display_name: str = "Alice",
        followers: int = 10,
        language: str | None = "en",
        in_reply_to_id: str | None = None,
        created_at: datetime | None = None,
        local: bool = True,
    ) -> dict[str, Any]:
        """Adds a status (its hashtags are ``tags``); returns it."""
        status_id = next(self._ids)
        created = created_at or datetime.now(UTC)
        hashtags = " ".join(f'<a href="https://{DOMAIN}/tags/{t}">#{t}</a>' for t in tags)
        status = {
            "id": str(status_id),
            "uri": f"https://{DOMAIN}/users/{username}/statuses/{status_id}",
            "url": f"https://{DOMAIN}/@{username}/{status_id}",
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "content": f"<p>{text} {hashtags}</p>",
            "spoiler_text": "",
            "visibility": "public",
            "sensitive": False,
            "language": language,
            "in_reply_to_id": in_reply_to_id,
            "in_reply_to_account_id": None,
            "reblog": None,
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "tags": [{"name": t.lower(), "url": f"https://{DOMAIN}/tags/{t}"} for t in tags],
            "mentions": [],
            "media_attachments": [],
            "emojis": [],
            "account": {
                "id": str(sum(map(ord, username))),
                "username": username,
                "acct": username if local else f"{username}@elsewhere.example",
                "display_name": display_name,
                "url": f"https://{DOMAIN}/@{username}",
                "followers_count": followers,
                "following_count": 1,
                "statuses_count": 1,
                "created_at": "2024-01-01T00:00:00.000Z",
                "note": "",
                "avatar": "",
                "header": "",
                "locked": False,
                "bot": False,
                "emojis": [],
                "fields": [],
            },
        }
        with self.lock:
            self._entries.append(
                _Entry(status_id, frozenset(t.lower() for t in tags), local, status)
            )
        return status

    def add_raw(self, body: Any) -> str:
        """Adds a status answered exactly as ``body`` (malformed ones too) in every
        timeline; an object without an ``id`` gets the next one. Returns its id."""
        status_id = next(self._ids)
        if isinstance(body, dict) and "id" not in body:
            body = {**body, "id": str(status_id)}
        with self.lock:
            self._entries.append(_Entry(status_id, None, True, body))
        return str(status_id)

    def rate_limit_next(self, seconds: int = 1) -> None:
        """The next timeline read gets 429 with the reset in ``seconds``."""
        self.fail_next("/api/v1/timelines", rate_limited(seconds, retry_after=True))

    def handle(self, request: Received) -> Response:
        path = request.path.rstrip("/")
        if request.method != "GET":
            return 404, {"error": "Record not found"}, {}
        if path in ("/api/v1/instance", "/api/v2/instance"):
            # Mastodon.py asks which version it talks to.
            return (
                200,
                {"uri": DOMAIN, "domain": DOMAIN, "title": "Example", "version": "4.3.0"},
                {},
            )
        with self.lock:
            entries = list(self._entries)
        if path.startswith("/api/v1/statuses/") and path.endswith("/context"):
            return self._context(path.split("/")[4], entries)
        if path.startswith("/api/v1/timelines/tag/"):
            tag = path.removeprefix("/api/v1/timelines/tag/").lower()
            chosen = [e for e in entries if e.tags is None or tag in e.tags]
        elif path == "/api/v1/timelines/public":
            local = _arg(request, "local").lower() in ("1", "true")
            chosen = [e for e in entries if e.local or not local]
        else:
            return 404, {"error": "Record not found"}, {}
        return self._page(request, path, chosen)

    @staticmethod
    def _context(status_id: str, entries: list[_Entry]) -> Response:
        """``{"ancestors": [...], "descendants": [...]}``, ancestors oldest first."""
        by_id = {str(e.id): e.body for e in entries if isinstance(e.body, dict)}
        if status_id not in by_id:
            return 404, {"error": "Record not found"}, {}
        ancestors: list[dict[str, Any]] = []
        parent = by_id[status_id].get("in_reply_to_id")
        while parent and parent in by_id:
            ancestors.insert(0, by_id[parent])
            parent = by_id[parent].get("in_reply_to_id")
        descendants = [b for b in by_id.values() if b.get("in_reply_to_id") == status_id]
        return 200, {"ancestors": ancestors, "descendants": descendants}, {}

    def _page(self, request: Received, path: str, chosen: list[_Entry]) -> Response:
        try:
            limit = min(int(_arg(request, "limit") or 20), 40)
            max_id, since_id, min_id = (
                int(_arg(request, name) or 0) for name in ("max_id", "since_id", "min_id")
            )
        except ValueError:
            return 422, {"error": "Validation failed: ids and limit are numbers"}, {}
        ordered = sorted(chosen, key=lambda e: e.id, reverse=True)  # newest first
        if max_id:
            ordered = [e for e in ordered if e.id < max_id]
        if since_id:
            ordered = [e for e in ordered if e.id > since_id]
        if min_id:
            # The statuses immediately newer than min_id, still newest first.
            ordered = [e for e in ordered if e.id > min_id][-limit:]
        page = ordered[:limit]
        headers: dict[str, str] = {}
        if page:
            base = f"{self.url}{path}"
            headers["Link"] = (
                f'<{base}?max_id={page[-1].id}>; rel="next", '
                f'<{base}?min_id={page[0].id}>; rel="prev"'
            )
        return 200, [e.body for e in page], headers


def _arg(request: Received, name: str) -> str:
    values = request.query.get(name) or [""]
    return values[-1]
