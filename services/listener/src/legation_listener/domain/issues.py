"""Tracked issues: what a TrackIssue request must contain, and the issue it becomes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2

FEED_SCHEMES = ("http", "https", "file")
_NOT_SLUG = re.compile(r"[\W_]+")


class IssueError(ValueError):
    """A TrackIssue request that cannot become a tracked issue; ``field`` names the culprit
    and the message starts with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


def slugify(name: str) -> str:
    """A stable id from a name: lower case, runs of anything but letters and digits become
    one hyphen ("Global plastics treaty" → "global-plastics-treaty")."""
    return _NOT_SLUG.sub("-", name.lower()).strip("-")


def _clean(values: Iterable[str]) -> list[str]:
    """Values trimmed, in order, without duplicates."""
    cleaned: list[str] = []
    for value in values:
        value = value.strip()
        if value not in cleaned:
            cleaned.append(value)
    return cleaned


def _check_feed(feed: str) -> None:
    if not feed:
        raise IssueError("feeds", "cannot contain a blank feed")
    scheme = urlsplit(feed).scheme.lower()
    if "://" in feed and scheme not in FEED_SCHEMES:
        raise IssueError("feeds", f"has an unsupported scheme {scheme!r} in {feed!r}")


def tracked_issue_from_request(
    request: listener_service_pb2.TrackIssueRequest,
) -> listen_pb2.TrackedIssue:
    """The active TrackedIssue a request describes, or :class:`IssueError`."""
    name = request.name.strip()
    if not name:
        raise IssueError("name", "is required")
    if not request.keywords:
        raise IssueError("keywords", "needs at least one keyword")
    if any(not keyword.strip() for keyword in request.keywords):
        raise IssueError("keywords", "cannot contain a blank keyword")
    if not request.feeds:
        raise IssueError("feeds", "needs at least one feed")
    feeds = _clean(request.feeds)
    for feed in feeds:
        _check_feed(feed)
    issue_id = request.issue_id.strip() or slugify(name)
    if not issue_id:
        raise IssueError("issue_id", f"cannot be derived from name {name!r}; give one")
    if any(character.isspace() for character in issue_id):
        # The cursor topic's key is "<issue_id> <feed>".
        raise IssueError("issue_id", "cannot contain whitespace")
    return listen_pb2.TrackedIssue(
        issue_id=issue_id,
        name=name,
        keywords=_clean(" ".join(keyword.split()) for keyword in request.keywords),
        feeds=feeds,
        campaign_ids=[c for c in _clean(request.campaign_ids) if c],
        languages=[lang for lang in _clean(request.languages) if lang],
        active=True,
    )
