"""Bluesky's ``app.bsky.feed.searchPosts`` as its API documentation gives it.

``GET /xrpc/app.bsky.feed.searchPosts?q=...`` answers ``{"posts": [PostView...],
"cursor"?}``, newest first (``sort=latest``; ``top`` is answered the same), ``limit`` 1-100
(default 25), an opaque ``cursor`` for the next page (absent on the last), ``since`` and
``until`` filtering on the post's sortAt (``since`` inclusive), ``lang`` and ``author``
filters. Every word of ``q`` must be in the text (case-insensitive).
``GET /xrpc/app.bsky.actor.getProfiles?actors=...`` (at most 25) answers the authors'
``ProfileViewDetailed`` with ``followersCount``. Errors as XRPC gives
them: ``{"error": "InvalidRequest", "message": ...}``; ``rate_limit_next`` answers 429
with ``Retry-After`` and ``RateLimit-*`` headers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from legation_devstack.channel_servers.base import Canned, Received, RecordingHttpServer, Response

SEARCH = "/xrpc/app.bsky.feed.searchPosts"
PROFILES = "/xrpc/app.bsky.actor.getProfiles"


@dataclass(frozen=True)
class _Entry:
    sort_at: str
    text: str
    lang: str
    author: str
    body: Any


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BlueskySearchServer(RecordingHttpServer):
    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._entries: list[_Entry] = []
        self._rkeys = itertools.count(1)
        self.profiles: dict[str, dict[str, Any]] = {}

    def post(
        self,
        text: str,
        *,
        handle: str = "alice.bsky.social",
        display_name: str = "Alice",
        langs: tuple[str, ...] = ("en",),
        reply_to: dict[str, Any] | None = None,
        created_at: datetime | None = None,
        followers: int = 10,
    ) -> dict[str, Any]:
        """Adds a post (``reply_to``: the PostView it answers); returns its PostView."""
        created = created_at or datetime.now(UTC)
        did = f"did:plc:{handle.split('.')[0]:x<24}"[:32]
        rkey = f"3l{next(self._rkeys):011d}"
        uri = f"at://{did}/app.bsky.feed.post/{rkey}"
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": _iso(created),
            "langs": list(langs),
        }
        if reply_to is not None:
            parent = {"uri": reply_to["uri"], "cid": reply_to["cid"]}
            root = reply_to["record"].get("reply", {}).get("root", parent)
            record["reply"] = {"root": root, "parent": parent}
        view = {
            "uri": uri,
            "cid": f"bafyrei{rkey}",
            "author": {"did": did, "handle": handle, "displayName": display_name},
            "record": record,
            "replyCount": 0,
            "repostCount": 0,
            "likeCount": 0,
            "indexedAt": _iso(created),
        }
        with self.lock:
            self.profiles[did] = {
                "did": did,
                "handle": handle,
                "displayName": display_name,
                "followersCount": followers,
                "followsCount": 1,
                "postsCount": 1,
            }
        self._add(_Entry(_iso(created), text, langs[0] if langs else "", handle, view))
        return view

    def add_raw(self, body: Any, text: str, *, at: datetime | None = None) -> None:
        """Adds a post answered exactly as ``body`` (malformed ones too) to searches whose
        words ``text`` contains."""
        self._add(_Entry(_iso(at or datetime.now(UTC)), text, "", "", body))

    def _add(self, entry: _Entry) -> None:
        with self.lock:
            self._entries.append(entry)

    def rate_limit_next(self, seconds: int = 1) -> None:
        """The next search gets 429 asking to wait ``seconds``."""
        self.fail_next(
            SEARCH,
            Canned(
                429,
                {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                {
                    "Retry-After": str(seconds),
                    "RateLimit-Limit": "3000",
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(int(datetime.now(UTC).timestamp()) + seconds),
                },
            ),
        )

    def handle(self, request: Received) -> Response:
        if request.method == "GET" and request.path == PROFILES:
            actors = request.query.get("actors", [])
            if not 1 <= len(actors) <= 25:
                return 400, {"error": "InvalidRequest", "message": "Error: actors 1-25"}, {}
            with self.lock:
                found = [self.profiles[a] for a in actors if a in self.profiles]
            return 200, {"profiles": found}, {}
        if request.method != "GET" or request.path != SEARCH:
            return 404, {"error": "MethodNotImplemented", "message": "Method Not Implemented"}, {}
        q = _arg(request, "q").strip()
        if not q:
            return (
                400,
                {"error": "InvalidRequest", "message": 'Error: Params must have the property "q"'},
                {},
            )
        try:
            limit = int(_arg(request, "limit") or 25)
            offset = int(_arg(request, "cursor") or 0)
        except ValueError:
            return 400, {"error": "InvalidRequest", "message": "Error: limit/cursor"}, {}
        if not 1 <= limit <= 100:
            return 400, {"error": "InvalidRequest", "message": "Error: limit must be <= 100"}, {}
        words = q.lower().split()
        since, until = _arg(request, "since"), _arg(request, "until")
        lang, author = _arg(request, "lang"), _arg(request, "author")
        with self.lock:
            entries = list(self._entries)
        hits = [
            e
            for e in entries
            if all(w in e.text.lower() for w in words)
            and (
                not since or e.sort_at >= _iso(datetime.fromisoformat(since.replace("Z", "+00:00")))
            )
            and (
                not until or e.sort_at < _iso(datetime.fromisoformat(until.replace("Z", "+00:00")))
            )
            and (not lang or e.lang == lang)
            and (not author or e.author == author)
        ]
        hits.sort(key=lambda e: e.sort_at, reverse=True)
        page = hits[offset : offset + limit]
        answer: dict[str, Any] = {"posts": [e.body for e in page], "hitsTotal": len(hits)}
        if offset + limit < len(hits):
            answer["cursor"] = str(offset + limit)
        return 200, answer, {}


def _arg(request: Received, name: str) -> str:
    return (request.query.get(name) or [""])[-1]
