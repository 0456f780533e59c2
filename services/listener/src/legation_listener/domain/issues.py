"""Tracked issues: what a TrackIssue or UpdateIssue request must contain, and the issue it
becomes.

Limits (the constants below), checked before any other work on a request: at most
:data:`MAX_KEYWORDS` keywords of at most :data:`MAX_KEYWORD_LENGTH` characters, at most
:data:`MAX_FEEDS` sources of at most :data:`MAX_FEED_LENGTH` characters; the query's own
limits are in :mod:`legation_listener.domain.query`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2
from legation_core.calls import InvalidArgument
from legation_listener.domain.query import QueryError, parse_query
from legation_listener.domain.sources import (
    RSS,
    SourceError,
    is_local_feed,
    parse_source,
    source_kind,
)

FEED_SCHEMES = ("http", "https", "file")
MAX_KEYWORDS = 500
"""Most keywords of an issue (every item is searched for each of them)."""
MAX_KEYWORD_LENGTH = 200
"""Most characters in one keyword."""
MAX_FEEDS = 50
"""Most sources of an issue (one poll reads them one after another)."""
MAX_FEED_LENGTH = 2000
"""Most characters in one source (a URL)."""
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
MAX_SLUG = 128


class IssueError(InvalidArgument):
    """A TrackIssue request that cannot become a tracked issue; ``field`` names the culprit
    and the message starts with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}", field)


class QueryIssueError(IssueError):
    """A malformed query: the message is ``query: <problem> at position <n>``."""

    def __init__(self, error: QueryError) -> None:
        super().__init__("query", str(error))
        self.args = (f"query: {error}",)
        self.position = error.position


UPDATABLE_FIELDS = ("name", "keywords", "feeds", "campaign_ids", "languages", "query")


def slugify(name: str) -> str:
    """A stable id from a name, within the id character set of the API
    (``legation_core.limits.ID_PATTERN``): ASCII letters (accents dropped) and digits in
    lower case, runs of anything else as one hyphen ("Traité de l'Antarctique" →
    "traite-de-l-antarctique"), at most 128 characters. A name with letters or digits but
    none in ASCII ("معاهدة") gets ``issue-`` and a hash of the name; a name with neither
    gets "" (the caller must give an id)."""
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_only.lower()).strip("-")[:MAX_SLUG].strip("-")
    if not slug and any(character.isalnum() for character in name):
        slug = "issue-" + hashlib.sha256(name.strip().encode()).hexdigest()[:16]
    return slug


def _clean(values: Iterable[str]) -> list[str]:
    """Values trimmed, in order, without duplicates (linear: a dict keeps the order)."""
    return list(dict.fromkeys(value.strip() for value in values))


def check_counts(field: str, values: Sequence[str], most: int, longest: int) -> None:
    """:class:`IssueError` naming ``field`` when it has more than ``most`` values or one
    longer than ``longest`` characters."""
    if len(values) > most:
        raise IssueError(field, f"has {len(values)} entries, above the limit of {most}")
    for number, value in enumerate(values, start=1):
        if len(value) > longest:
            raise IssueError(
                field, f"entry {number} is longer than the limit of {longest} characters"
            )


def _check_feed(feed: str, local_files: bool) -> None:
    if not feed:
        raise IssueError("feeds", "cannot contain a blank feed")
    if source_kind(feed) == RSS:
        scheme = urlsplit(feed).scheme.lower()
        if "://" in feed and scheme not in FEED_SCHEMES:
            raise IssueError("feeds", f"has an unsupported scheme {scheme!r} in {feed!r}")
        if not local_files and is_local_feed(feed):
            # Refused before the file system is looked at: the answer tells nothing of it.
            raise IssueError(
                "feeds",
                "cannot name a local file: feeds are http(s) URLs (local files are a"
                " development setting, LEGATION_LISTENER_ALLOW_LOCAL_FEEDS)",
            )
    try:
        parse_source(feed)
    except SourceError as error:
        raise IssueError("feeds", f"has a source no connector reads: {error}") from None


def check_feeds(
    feeds: Sequence[str], most: int = MAX_FEEDS, *, local_files: bool = False
) -> list[str]:
    """The feeds trimmed and without duplicates, at least one and at most ``most``, each
    readable by the listener (local files only with ``local_files``); :class:`IssueError`
    naming ``feeds`` otherwise."""
    check_counts("feeds", feeds, most, MAX_FEED_LENGTH)
    cleaned = _clean(feeds)
    if not cleaned:
        raise IssueError("feeds", "needs at least one feed")
    for feed in cleaned:
        _check_feed(feed, local_files)
    return cleaned


def check_query(query: str) -> str:
    """``query`` trimmed, once it parses (positions in errors count from the query as
    sent); :class:`QueryIssueError` otherwise."""
    if not query.strip():
        return ""
    try:
        parse_query(query)
    except QueryError as error:
        raise QueryIssueError(error) from None
    return query.strip()


def validated_issue(
    *,
    issue_id: str,
    name: str,
    keywords: Iterable[str],
    feeds: Iterable[str],
    campaign_ids: Iterable[str],
    languages: Iterable[str],
    query: str,
    active: bool = True,
    local_files: bool = False,
) -> listen_pb2.TrackedIssue:
    """The TrackedIssue these fields describe, or :class:`IssueError` naming the field
    (feeds may be local files only with ``local_files``)."""
    keywords = list(keywords)
    feeds = list(feeds)
    check_counts("keywords", keywords, MAX_KEYWORDS, MAX_KEYWORD_LENGTH)
    check_counts("feeds", feeds, MAX_FEEDS, MAX_FEED_LENGTH)
    name = name.strip()
    if not name:
        raise IssueError("name", "is required")
    query = check_query(query)
    if not keywords and not query:
        raise IssueError("keywords", "needs at least one keyword (or give a query)")
    if any(not keyword.strip() for keyword in keywords):
        raise IssueError("keywords", "cannot contain a blank keyword")
    feeds = check_feeds(feeds, local_files=local_files)
    issue_id = issue_id.strip() or slugify(name)
    if not issue_id:
        raise IssueError("issue_id", f"cannot be derived from name {name!r}; give one")
    if any(character.isspace() for character in issue_id):
        # The cursor topic's key is "<issue_id> <feed>".
        raise IssueError("issue_id", "cannot contain whitespace")
    return listen_pb2.TrackedIssue(
        issue_id=issue_id,
        name=name,
        keywords=_clean(" ".join(keyword.split()) for keyword in keywords),
        feeds=feeds,
        campaign_ids=[c for c in _clean(campaign_ids) if c],
        languages=[lang for lang in _clean(languages) if lang],
        active=active,
        query=query,
    )


def tracked_issue_from_request(
    request: listener_service_pb2.TrackIssueRequest, *, local_files: bool = False
) -> listen_pb2.TrackedIssue:
    """The active TrackedIssue a request describes, or :class:`IssueError`."""
    return validated_issue(
        local_files=local_files,
        issue_id=request.issue_id,
        name=request.name,
        keywords=request.keywords,
        feeds=request.feeds,
        campaign_ids=request.campaign_ids,
        languages=request.languages,
        query=request.query,
    )


def updated_issue(
    current: listen_pb2.TrackedIssue,
    request: listener_service_pb2.UpdateIssueRequest,
    *,
    local_files: bool = False,
) -> listen_pb2.TrackedIssue:
    """``current`` with the fields the request replaces: those in its ``update_mask`` (an
    empty value clears the field), or without a mask every non-empty field it gives. The
    result is validated like a new issue; its id and active flag are kept."""
    paths = list(request.update_mask.paths)
    unknown = [path for path in paths if path not in UPDATABLE_FIELDS]
    if unknown:
        raise IssueError(
            "update_mask",
            f"names unknown fields {unknown} (updatable: {', '.join(UPDATABLE_FIELDS)})",
        )
    if not paths:
        paths = [name for name in UPDATABLE_FIELDS if _given(request, name)]
        if not paths:
            raise IssueError("update_mask", "is empty and the request changes no field")
    values: dict[str, object] = {name: getattr(current, name) for name in UPDATABLE_FIELDS}
    for path in paths:
        values[path] = getattr(request, path)
    return validated_issue(
        issue_id=current.issue_id,
        name=str(values["name"]),
        keywords=_strings(values["keywords"]),
        feeds=_strings(values["feeds"]),
        campaign_ids=_strings(values["campaign_ids"]),
        languages=_strings(values["languages"]),
        query=str(values["query"]),
        active=current.active,
        local_files=local_files,
    )


def _given(request: listener_service_pb2.UpdateIssueRequest, name: str) -> bool:
    return bool(getattr(request, name))


def _strings(value: object) -> list[str]:
    assert isinstance(value, Iterable)
    return [str(item) for item in value]
