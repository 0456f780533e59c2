"""The listener's gRPC API: track, update, pause, resume, delete and list issues; poll now;
preview a query; the state of every source."""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as pb
from legation.listener.v1 import listener_service_pb2_grpc as pb_grpc
from legation_core.auth import ANALYST, Caller, current_caller
from legation_core.calls import AccessDenied, InvalidArgument, NotFound
from legation_listener.adapters.poller import Poller
from legation_listener.adapters.preview_reads import PreviewReads, read_source_now
from legation_listener.adapters.state import ListenerState
from legation_listener.domain.issues import (
    QueryIssueError,
    check_feeds,
    tracked_issue_from_request,
    updated_issue,
)
from legation_listener.domain.preview import (
    MAX_ANSWER_BYTES,
    MAX_PREVIEW_FEEDS,
    feeds_beyond,
    preview,
)
from legation_listener.domain.query import QueryError, parse_query

log = logging.getLogger(__name__)

SERVICE_NAME = "legation.listener.v1.ListenerService"
# A preview answers this long before the caller's own deadline, so the answer reaches it.
PREVIEW_ANSWER_MARGIN_SECONDS = 0.5


class ListenerApi(pb_grpc.ListenerServiceServicer):
    """Commands the listener; a tracked issue is answered only once Kafka holds it.

    ``previews`` reads the feeds a PreviewQuery names, bounded in concurrency, time and
    items (by default with the poller's fetcher and connectors). ``local_feeds`` lets
    issues and previews name local files (development only). ``caller`` is the
    authenticated user of the call being served."""

    def __init__(
        self,
        state: ListenerState,
        poller: Poller,
        *,
        previews: PreviewReads | None = None,
        local_feeds: bool = False,
        caller: Callable[[], Caller] = current_caller,
    ) -> None:
        self.state = state
        self.poller = poller
        self.previews = previews or PreviewReads(
            lambda spec: read_source_now(spec, poller.fetcher, poller.connectors)
        )
        self.local_feeds = local_feeds
        self.caller = caller

    def TrackIssue(
        self, request: pb.TrackIssueRequest, context: grpc.ServicerContext
    ) -> listen_pb2.TrackedIssue:
        """Creates or replaces a tracked issue (same issue_id replaces)."""
        issue = tracked_issue_from_request(request, local_files=self.local_feeds)
        self._save(issue)
        log.info("tracking issue", extra={"issue_id": issue.issue_id, "feeds": list(issue.feeds)})
        return issue

    def UpdateIssue(
        self, request: pb.UpdateIssueRequest, context: grpc.ServicerContext
    ) -> listen_pb2.TrackedIssue:
        """Replaces the fields in the update mask (or the non-empty fields given)."""
        current = self._existing(request.issue_id)
        issue = updated_issue(current, request, local_files=self.local_feeds)
        self._save(issue)
        log.info("issue updated", extra={"issue_id": issue.issue_id})
        return issue

    def SetIssueActive(
        self, request: pb.SetIssueActiveRequest, context: grpc.ServicerContext
    ) -> listen_pb2.TrackedIssue:
        """Pauses or resumes an issue; a paused issue's feeds are not polled, and its spike
        baseline starts again when it resumes."""
        current = self._existing(request.issue_id)
        issue = listen_pb2.TrackedIssue()
        issue.CopyFrom(current)
        issue.active = request.active
        if issue != current:
            self._save(issue)
            if not issue.active:
                self.poller.forget_spikes(issue.issue_id)
        log.info("issue active", extra={"issue_id": issue.issue_id, "active": issue.active})
        return issue

    def DeleteIssue(
        self, request: pb.DeleteIssueRequest, context: grpc.ServicerContext
    ) -> pb.DeleteIssueResponse:
        """Stops tracking an issue: writes it with deleted = true, then forgets it."""
        current = self._existing(request.issue_id)
        deleted = self.state.delete_issue(current)
        self.poller.forget_spikes(current.issue_id)
        log.info("issue deleted", extra={"issue_id": current.issue_id})
        return pb.DeleteIssueResponse(issue=deleted)

    def ListIssues(
        self, request: pb.ListIssuesRequest, context: grpc.ServicerContext
    ) -> pb.ListIssuesResponse:
        """Every tracked issue, ordered by id."""
        return pb.ListIssuesResponse(issues=self.state.issues())

    def PollNow(
        self, request: pb.PollNowRequest, context: grpc.ServicerContext
    ) -> pb.PollNowResponse:
        """Polls one issue's feeds (or every active issue's) and reports what it did."""
        issue_ids: list[str] | None = None
        if request.issue_id:
            issue = self.state.issue(request.issue_id)
            if issue is None:
                raise NotFound(f"issue_id {request.issue_id} is not tracked")
            if not issue.active:
                raise InvalidArgument(f"issue_id {request.issue_id} is not active")
            issue_ids = [request.issue_id]
        result = self.poller.poll(issue_ids)
        return pb.PollNowResponse(
            mentions_emitted=result.mentions_emitted,
            failed_feeds=result.failed_feeds,
            alerts_emitted=result.alerts_emitted,
        )

    def PreviewQuery(
        self, request: pb.PreviewQueryRequest, context: grpc.ServicerContext
    ) -> pb.PreviewQueryResponse:
        """Runs a query over the recent items (and the feeds given, read now); saves
        nothing. A viewer may name only sources of tracked issues; every feed read is
        bounded (see :class:`PreviewReads`), and any feed not read is reported with the same
        words whatever the reason (the reason is logged)."""
        if not request.query.strip():
            raise InvalidArgument("query is required", "query")
        try:
            query = parse_query(request.query)
        except QueryError as error:
            raise QueryIssueError(error) from error
        feeds = (
            check_feeds(request.feeds, MAX_PREVIEW_FEEDS, local_files=self.local_feeds)
            if request.feeds
            else []
        )
        if feeds and not self.caller().has_any([ANALYST]):
            tracked = {source for issue in self.state.issues() for source in issue.feeds}
            if feeds_beyond(feeds, tracked):
                raise AccessDenied(
                    "feeds: a viewer may preview only the sources of tracked issues;"
                    " reading other feeds needs the role analyst"
                )
        time_left = context.time_remaining()
        if time_left is not None:
            time_left -= PREVIEW_ANSWER_MARGIN_SECONDS
        reading = self.previews.read(feeds, time_left)
        result = preview(query, [*reading.items, *self.poller.recent.snapshot()], request.limit)
        response = pb.PreviewQueryResponse(
            items_examined=result.examined,
            total_matches=result.total,
            failed_feeds=reading.failed,
        )
        size = 0
        for hit in result.hits:
            match = response.matches.add(
                source_url=hit.feed,
                item_id=hit.item.item_id,
                url=hit.item.url,
                author=hit.item.author,
                title=hit.item.title,
                text=hit.item.text,
                language=hit.item.language,
                matched_terms=hit.matched_terms,
            )
            match.published_at.FromDatetime(hit.item.published_at)
            size += match.ByteSize()
            if size > MAX_ANSWER_BYTES:
                del response.matches[-1]
                break
        return response

    def ListSources(
        self, request: pb.ListSourcesRequest, context: grpc.ServicerContext
    ) -> pb.ListSourcesResponse:
        """The state of each source of each tracked issue (or of one issue), ordered by issue
        then as the issue lists them."""
        issues = [self._existing(request.issue_id)] if request.issue_id else self.state.issues()
        pairs = [(issue.issue_id, source) for issue in issues for source in issue.feeds]
        response = pb.ListSourcesResponse()
        for state in self.poller.statuses.states(pairs):
            status = response.sources.add(
                issue_id=state.issue_id,
                source=state.source,
                kind=state.kind,
                state=state.state,
                last_error=state.last_error,
                consecutive_failures=state.consecutive_failures,
                items_read=state.items_read,
                malformed_items=state.malformed_items,
                malformed=state.malformed,
            )
            if state.last_attempt_at is not None:
                status.last_attempt_at.FromDatetime(state.last_attempt_at)
            if state.last_success_at is not None:
                status.last_success_at.FromDatetime(state.last_success_at)
            if state.not_before is not None:
                status.not_before.FromDatetime(state.not_before)
        return response

    def _existing(self, issue_id: str) -> listen_pb2.TrackedIssue:
        if not issue_id.strip():
            raise InvalidArgument("issue_id is required", "issue_id")
        issue = self.state.issue(issue_id.strip())
        if issue is None:
            raise NotFound(f"issue_id {issue_id} is not tracked")
        return issue

    def _save(self, issue: listen_pb2.TrackedIssue) -> None:
        """Records ``issue``; a caller gone, Kafka not acknowledging: nothing changed, and
        the interceptor answers (the same request saves the same issue on a retry)."""
        self.state.save_issue(issue)
