"""WordPress's REST API (``/wp-json/wp/v2/posts``) with application-password Basic auth.

Replays WordPress's behaviour that matters for delivery: 401 ``incorrect_password`` /
``rest_cannot_create``, 400 ``rest_invalid_param`` naming the parameter, 400
``empty_content``, and a slug that is already taken being silently renamed (``-2``),
which is why the adapter looks a slug up before posting.
"""

from __future__ import annotations

import base64
import html
import re
from datetime import UTC, datetime
from typing import Any

from legation_devstack.channel_servers.base import Received, RecordingHttpServer, Response

_API = "/wp-json/wp/v2"


class WordPressServer(RecordingHttpServer):
    def __init__(
        self, username: str = "editor", application_password: str = "abcd efgh ijkl"
    ) -> None:
        super().__init__()
        self.username = username
        self.application_password = application_password
        self.posts: list[dict[str, Any]] = []

    def handle(self, request: Received) -> Response:
        if request.path != f"{_API}/posts":
            return _error(
                404, "rest_no_route", "No route was found matching the URL and request method."
            )
        if request.method == "GET":
            return self._list(request)
        if request.method == "POST":
            return self._create(request)
        return _error(
            404, "rest_no_route", "No route was found matching the URL and request method."
        )

    def _authorised(self, request: Received) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return _error(
                401,
                "rest_cannot_create",
                "Sorry, you are not allowed to create posts as this user.",
            )
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        if user != self.username:
            return _error(
                401, "invalid_username", "Unknown username. Check again or try your email address."
            )
        # WordPress ignores the spaces it shows in application passwords.
        if password.replace(" ", "") != self.application_password.replace(" ", ""):
            return _error(
                401,
                "incorrect_password",
                "The provided password is an invalid application password.",
            )
        return None

    def _list(self, request: Received) -> Response:
        slug = (request.query.get("slug") or [""])[0]
        found = [p for p in self.posts if not slug or p["slug"] == slug]
        return 200, [_view(p) for p in found], {"X-WP-Total": str(len(found))}

    def _create(self, request: Received) -> Response:
        refused = self._authorised(request)
        if refused:
            return refused
        data = request.json() if request.body else {}
        if not isinstance(data, dict):
            return _error(400, "rest_invalid_json", "Invalid JSON body passed.")
        for name in ("title", "content", "slug", "status"):
            if name in data and not isinstance(data[name], str):
                return _error(
                    400,
                    "rest_invalid_param",
                    f"Invalid parameter(s): {name}",
                    params={name: f"{name} is not of type string."},
                )
        if data.get("status", "draft") not in ("publish", "future", "draft", "pending", "private"):
            return _error(
                400,
                "rest_invalid_param",
                "Invalid parameter(s): status",
                params={"status": "status is not one of publish, future, draft, pending, private."},
            )
        if not any(str(data.get(k, "")).strip() for k in ("title", "content", "excerpt")):
            return _error(400, "empty_content", "Content, title, and excerpt are empty.")
        slug = _sanitize(data.get("slug") or data.get("title", "post"))
        taken = {p["slug"] for p in self.posts}
        unique, n = slug, 2
        while unique in taken:
            unique, n = f"{slug}-{n}", n + 1
        post = {
            "id": 100 + len(self.posts) + 1,
            "slug": unique,
            "status": data.get("status", "draft"),
            "title": data.get("title", ""),
            "content": data.get("content", ""),
            "date_gmt": datetime.now(UTC).replace(microsecond=0, tzinfo=None).isoformat(),
        }
        self.posts.append(post)
        return 201, _view(post), {"Location": f"{self.url}{_API}/posts/{post['id']}"}

    def published(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.posts)


def _view(post: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": post["id"],
        "date_gmt": post["date_gmt"],
        "slug": post["slug"],
        "status": post["status"],
        "link": f"https://blog.example.org/{post['slug']}/",
        "title": {"rendered": html.escape(post["title"])},
        "content": {"rendered": post["content"], "protected": False},
    }


def _sanitize(value: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-") or "post"


def _error(status: int, code: str, message: str, params: dict[str, str] | None = None) -> Response:
    data: dict[str, Any] = {"status": status}
    if params:
        data["params"] = params
    return status, {"code": code, "message": message, "data": data}, {}
