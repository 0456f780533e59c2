"""Reddit's OAuth API as its documentation gives it, the parts a listener reads.

``POST /api/v1/access_token`` (HTTP Basic with the application's id and secret,
``grant_type=client_credentials``) gives an application-only bearer token; ``GET
/r/<sub>/new``, ``/r/<sub>/comments``, ``/search?q=`` and ``/r/<sub>/search?q=`` (with
``Authorization: bearer <token>``) answer a ``Listing``: ``{"kind": "Listing", "data":
{"after", "before", "dist", "children": [{"kind": "t3" | "t1", "data": {...}}]}}``, newest
first, ``limit`` up to 100 (default 25), ``after`` / ``before`` fullnames for paging. A
missing or unknown token gets 401; ``rate_limit_next`` answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import itertools
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from legation_devstack.channel_servers.base import Canned, Received, RecordingHttpServer, Response


@dataclass(frozen=True)
class _Entry:
    name: str
    created: float
    subreddit: str
    text: str
    body: Any


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


class RedditApiServer(RecordingHttpServer):
    def __init__(self, client_id: str = "reddit-app", client_secret: str = "reddit-secret") -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens: set[str] = set()
        self._entries: list[_Entry] = []
        self._ids = itertools.count(36**5)

    def submit(
        self,
        subreddit: str,
        title: str,
        selftext: str = "",
        *,
        author: str = "alice",
        subscribers: int = 1000,
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Adds a post (t3); returns its listing child."""
        post_id = _base36(next(self._ids))
        created = (created_at or datetime.now(UTC)).timestamp()
        permalink = f"/r/{subreddit}/comments/{post_id}/{title.lower().replace(' ', '_')[:40]}/"
        child = {
            "kind": "t3",
            "data": {
                "id": post_id,
                "name": f"t3_{post_id}",
                "subreddit": subreddit,
                "subreddit_name_prefixed": f"r/{subreddit}",
                "subreddit_subscribers": subscribers,
                "title": title,
                "selftext": selftext,
                "author": author,
                "author_fullname": f"t2_{author}",
                "created_utc": created,
                "permalink": permalink,
                "url": f"https://www.reddit.com{permalink}",
                "score": 1,
                "num_comments": 0,
                "over_18": False,
            },
        }
        self._add(_Entry(f"t3_{post_id}", created, subreddit, f"{title} {selftext}", child))
        return child

    def comment(
        self,
        parent: dict[str, Any],
        body: str,
        *,
        author: str = "bob",
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Adds a comment (t1) answering ``parent`` (a post or comment child)."""
        comment_id = _base36(next(self._ids))
        created = (created_at or datetime.now(UTC)).timestamp()
        data = parent["data"]
        link_id = data["name"] if parent["kind"] == "t3" else data["link_id"]
        link_title = data.get("title") or data.get("link_title", "")
        child = {
            "kind": "t1",
            "data": {
                "id": comment_id,
                "name": f"t1_{comment_id}",
                "subreddit": data["subreddit"],
                "subreddit_subscribers": data.get("subreddit_subscribers", 0),
                "body": body,
                "author": author,
                "author_fullname": f"t2_{author}",
                "created_utc": created,
                "parent_id": data["name"],
                "link_id": link_id,
                "link_title": link_title,
                "permalink": f"/r/{data['subreddit']}/comments/{link_id[3:]}/_/{comment_id}/",
            },
        }
        self._add(_Entry(f"t1_{comment_id}", created, data["subreddit"], body, child))
        return child

    def add_raw(self, subreddit: str, child: Any, text: str = "", kind: str = "t3") -> None:
        """Adds a child answered exactly as given (malformed ones too)."""
        name = f"{kind}_{_base36(next(self._ids))}"
        self._add(_Entry(name, datetime.now(UTC).timestamp(), subreddit, text, child))

    def remove(self, name: str) -> None:
        """Removes an item (a listing asked for ``after`` it then answers empty)."""
        with self.lock:
            self._entries = [e for e in self._entries if e.name != name]

    def _add(self, entry: _Entry) -> None:
        with self.lock:
            self._entries.append(entry)

    def rate_limit_next(self, seconds: int = 1, path: str = "/r/") -> None:
        self.fail_next(
            path,
            Canned(
                429,
                b"<html><body><h1>whoa there, pardner!</h1></body></html>",
                {"Retry-After": str(seconds), "Content-Type": "text/html"},
            ),
        )

    def handle(self, request: Received) -> Response:
        if request.path == "/api/v1/access_token" and request.method == "POST":
            return self._token(request)
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            return 401, {"message": "Unauthorized", "error": 401}, {}
        if request.method != "GET":
            return 404, {"message": "Not Found", "error": 404}, {}
        parts = request.path.strip("/").removesuffix(".json").split("/")
        q = _arg(request, "q").lower()
        with self.lock:
            entries = list(self._entries)
        if parts == ["search"] or (len(parts) == 3 and parts[0] == "r" and parts[2] == "search"):
            sub = parts[1] if len(parts) == 3 else ""
            chosen = [
                e
                for e in entries
                if e.name.startswith("t3_")
                and (not sub or e.subreddit == sub)
                and all(w in e.text.lower() for w in q.split())
            ]
        elif len(parts) == 3 and parts[0] == "r" and parts[2] in ("new", "comments"):
            prefix = "t3_" if parts[2] == "new" else "t1_"
            chosen = [e for e in entries if e.subreddit == parts[1] and e.name.startswith(prefix)]
        else:
            return 404, {"message": "Not Found", "error": 404}, {}
        return 200, self._listing(request, chosen), {}

    def _token(self, request: Received) -> Response:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization", "") != f"Basic {expected}":
            return 401, {"message": "Unauthorized", "error": 401}, {}
        if request.form().get("grant_type") != ["client_credentials"]:
            return 200, {"error": "unsupported_grant_type"}, {}
        token = secrets.token_hex(12)
        with self.lock:
            self.tokens.add(token)
        return (
            200,
            {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"},
            {},
        )

    @staticmethod
    def _listing(request: Received, chosen: list[_Entry]) -> dict[str, Any]:
        try:
            limit = max(1, min(int(_arg(request, "limit") or 25), 100))
        except ValueError:
            limit = 25
        ordered = sorted(chosen, key=lambda e: (e.created, e.name), reverse=True)
        names = [e.name for e in ordered]
        after, before = _arg(request, "after"), _arg(request, "before")
        if after:
            # An unknown fullname gives an empty listing, as on Reddit.
            ordered = ordered[names.index(after) + 1 :] if after in names else []
        elif before:
            ordered = ordered[: names.index(before)][-limit:] if before in names else []
        page = ordered[:limit]
        more = len(ordered) > limit
        return {
            "kind": "Listing",
            "data": {
                "after": page[-1].name if page and more else None,
                "before": None,
                "dist": len(page),
                "modhash": "",
                "geo_filter": "",
                "children": [e.body for e in page],
            },
        }


def _arg(request: Received, name: str) -> str:
    return (request.query.get(name) or [""])[-1]
