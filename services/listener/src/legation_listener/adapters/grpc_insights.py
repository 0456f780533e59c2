"""The listener's gRPC API with the analyses: :class:`ListenerApi`'s methods plus
``DiscoverCommunities``, ``AcceptSourceSuggestion`` and ``MapArguments``.

Every request field is checked against its limit before any work (the message names the
field); the reports come from :class:`~legation_listener.adapters.insights.Insights`, and an
accepted suggestion is saved exactly as ``UpdateIssue`` saves a new list of feeds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as pb
from legation_core.auth import Caller, current_caller
from legation_core.calls import InvalidArgument
from legation_listener.adapters.grpc_api import ListenerApi
from legation_listener.adapters.insights import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_THEMES,
    DEFAULT_WINDOW_HOURS,
    MAX_LIMIT,
    MAX_MIN_MENTIONS,
    MAX_THEMES,
    MAX_WINDOW_HOURS,
    Insights,
)
from legation_listener.adapters.poller import Poller
from legation_listener.adapters.preview_reads import PreviewReads
from legation_listener.adapters.state import ListenerState
from legation_listener.domain.discovery import DEFAULT_MIN_MENTIONS
from legation_listener.domain.issues import IssueError, check_feeds, updated_issue

log = logging.getLogger(__name__)

MAX_ISSUE_ID_CHARS = 200
MAX_SOURCE_CHARS = 2000


def _bounded(name: str, value: int, maximum: int) -> None:
    if value > maximum:
        raise InvalidArgument(f"{name} must be at most {maximum} (got {value})")


class ListenerServicer(ListenerApi):
    """The whole ``legation.listener.v1.ListenerService``."""

    def __init__(
        self,
        state: ListenerState,
        poller: Poller,
        insights: Insights,
        *,
        previews: PreviewReads | None = None,
        local_feeds: bool = False,
        caller: Callable[[], Caller] = current_caller,
    ) -> None:
        super().__init__(state, poller, previews=previews, local_feeds=local_feeds, caller=caller)
        self.insights = insights

    def DiscoverCommunities(
        self, request: pb.DiscoverCommunitiesRequest, context: grpc.ServicerContext
    ) -> listen_pb2.CommunityReport:
        """The issue's communities, voices (with tone) and sources to add."""
        self._check_issue_id(request.issue_id)
        _bounded("window_hours", request.window_hours, MAX_WINDOW_HOURS)
        _bounded("limit", request.limit, MAX_LIMIT)
        _bounded("min_mentions", request.min_mentions, MAX_MIN_MENTIONS)
        issue = self._existing(request.issue_id)
        return self.insights.community_report(
            issue,
            window_hours=request.window_hours or DEFAULT_WINDOW_HOURS,
            limit=request.limit or DEFAULT_LIMIT,
            autodiscover=request.autodiscover,
            min_mentions=request.min_mentions or DEFAULT_MIN_MENTIONS,
        )

    def AcceptSourceSuggestion(
        self, request: pb.AcceptSourceSuggestionRequest, context: grpc.ServicerContext
    ) -> listen_pb2.TrackedIssue:
        """Adds the source to the issue's feeds (as UpdateIssue with the feeds in its mask);
        an issue that has it already is answered as it is."""
        self._check_issue_id(request.issue_id)
        if not request.source.strip():
            raise InvalidArgument("source is required")
        _bounded("source characters", len(request.source), MAX_SOURCE_CHARS)
        try:
            (source,) = check_feeds([request.source], local_files=self.local_feeds)
        except IssueError as error:
            # The request's field is source: the issue's feeds are not what the caller sent.
            raise InvalidArgument("source" + str(error).removeprefix("feeds"), "source") from error
        current = self._existing(request.issue_id)
        if source in current.feeds:
            return current
        update = pb.UpdateIssueRequest(
            issue_id=current.issue_id,
            feeds=[*current.feeds, source],
            update_mask=FieldMask(paths=["feeds"]),
        )
        issue = updated_issue(current, update, local_files=self.local_feeds)
        self._save(issue)
        log.info("source suggestion accepted", extra={"issue_id": issue.issue_id, "source": source})
        return issue

    def MapArguments(
        self, request: pb.MapArgumentsRequest, context: grpc.ServicerContext
    ) -> listen_pb2.ThemeReport:
        """The issue's themes and the angles they offer, against our publications."""
        self._check_issue_id(request.issue_id)
        _bounded("window_hours", request.window_hours, MAX_WINDOW_HOURS)
        _bounded("max_themes", request.max_themes, MAX_THEMES)
        if request.max_themes == 1:
            raise InvalidArgument("max_themes must be at least 2 (0: the default)")
        issue = self._existing(request.issue_id)
        return self.insights.theme_report(
            issue,
            window_hours=request.window_hours or DEFAULT_WINDOW_HOURS,
            max_themes=request.max_themes or DEFAULT_MAX_THEMES,
        )

    @staticmethod
    def _check_issue_id(issue_id: str) -> None:
        if not issue_id.strip():
            raise InvalidArgument("issue_id is required", "issue_id")
        _bounded("issue_id characters", len(issue_id), MAX_ISSUE_ID_CHARS)
