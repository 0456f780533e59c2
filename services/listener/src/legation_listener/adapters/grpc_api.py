"""The listener's gRPC API: track, update, pause, resume, delete and list issues; poll now;
preview a query; the state of every source."""

from __future__ import annotations

import logging

import grpc

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as pb
from legation.listener.v1 import listener_service_pb2_grpc as pb_grpc
from legation_core.calls import CallError
from legation_core.grpc_server import invalid_argument, not_found
from legation_listener.adapters.poller import Fetcher, Poller
from legation_listener.adapters.state import ListenerState, StateStore
from legation_listener.domain.cursor import empty_cursor
from legation_listener.domain.issues import (
    IssueError,
    QueryIssueError,
    check_feeds,
    tracked_issue_from_request,
    updated_issue,
)
from legation_listener.domain.items import FeedItem
from legation_listener.domain.preview import preview
from legation_listener.domain.query import QueryError, parse_query
from legation_listener.domain.sources import RSS, WEBHOOK, parse_source

log = logging.getLogger(__name__)

SERVICE_NAME = "legation.listener.v1.ListenerService"


class ListenerApi(pb_grpc.ListenerServiceServicer):
    """Commands the listener; a tracked issue is answered only once Kafka holds it."""

    def __init__(
        self,
        state: ListenerState,
        store: StateStore,
        poller: Poller,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.state = state
        self.store = store
        self.poller = poller
        # Reads the feeds a PreviewQuery names (the poller's fetcher by default).
        self.fetcher = fetcher if fetcher is not None else poller.fetcher

    def TrackIssue(
        self, request: pb.TrackIssueRequest, context: grpc.ServicerContext
    ) -> listen_pb2.TrackedIssue:
        """Creates or replaces a tracked issue (same issue_id replaces)."""
        try:
            issue = tracked_issue_from_request(request)
        except IssueError as error:
            invalid_argument(context, str(error))
        self._save(issue, context)
        log.info("tracking issue", extra={"issue_id": issue.issue_id, "feeds": list(issue.feeds)})
        return issue

    def UpdateIssue(
        self, request: pb.UpdateIssueRequest, context: grpc.ServicerContext
    ) -> listen_pb2.TrackedIssue:
        """Replaces the fields in the update mask (or the non-empty fields given)."""
        current = self._existing(request.issue_id, context)
        try:
            issue = updated_issue(current, request)
        except IssueError as error:
            invalid_argument(context, str(error))
        self._save(issue, context)
        log.info("issue updated", extra={"issue_id": issue.issue_id})
        return issue

    def SetIssueActive(
        self, request: pb.SetIssueActiveRequest, context: grpc.ServicerContext
    ) -> listen_pb2.TrackedIssue:
        """Pauses or resumes an issue; a paused issue's feeds are not polled, and its spike
        baseline starts again when it resumes."""
        current = self._existing(request.issue_id, context)
        issue = listen_pb2.TrackedIssue()
        issue.CopyFrom(current)
        issue.active = request.active
        if issue != current:
            self._save(issue, context)
            if not issue.active:
                self.poller.forget_spikes(issue.issue_id)
        log.info("issue active", extra={"issue_id": issue.issue_id, "active": issue.active})
        return issue

    def DeleteIssue(
        self, request: pb.DeleteIssueRequest, context: grpc.ServicerContext
    ) -> pb.DeleteIssueResponse:
        """Stops tracking an issue: writes it with deleted = true, then forgets it."""
        current = self._existing(request.issue_id, context)
        try:
            deleted = self.store.delete_issue(current)
        except CallError:
            raise  # a caller gone, a record too large: the interceptor answers
        except Exception:  # the caller may retry
            log.exception("could not delete an issue", extra={"issue_id": current.issue_id})
            context.abort(grpc.StatusCode.UNAVAILABLE, "could not record the deletion; retry")
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
                not_found(context, f"issue_id {request.issue_id} is not tracked")
            if not issue.active:
                invalid_argument(context, f"issue_id {request.issue_id} is not active")
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
        nothing."""
        if not request.query.strip():
            invalid_argument(context, "query is required")
        try:
            query = parse_query(request.query)
        except QueryError as error:
            invalid_argument(context, str(QueryIssueError(error)))
        try:
            feeds = check_feeds(request.feeds) if request.feeds else []
        except IssueError as error:
            invalid_argument(context, str(error))
        fetched: list[tuple[str, FeedItem]] = []
        failed: list[str] = []
        for feed in feeds:
            try:
                fetched.extend((feed, item) for item in self._read_now(feed))
            except Exception as error:  # report it; the other feeds and the buffer go on
                reason = str(error) or type(error).__name__
                failed.append(reason if reason.startswith(feed) else f"{feed}: {reason}")
        result = preview(query, [*fetched, *self.poller.recent.snapshot()], request.limit)
        response = pb.PreviewQueryResponse(
            items_examined=result.examined, total_matches=result.total, failed_feeds=failed
        )
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
        return response

    def ListSources(
        self, request: pb.ListSourcesRequest, context: grpc.ServicerContext
    ) -> pb.ListSourcesResponse:
        """The state of each source of each tracked issue (or of one issue), ordered by issue
        then as the issue lists them."""
        if request.issue_id:
            issues = [self._existing(request.issue_id, context)]
        else:
            issues = self.state.issues()
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

    def _read_now(self, spec: str) -> list[FeedItem]:
        """The items a source gives now, without a cursor: a feed read unconditionally, a
        connector's newest page; a pushed source has nothing to read."""
        source = parse_source(spec)
        if source.kind == RSS:
            return self.fetcher.fetch(spec).items
        if source.kind == WEBHOOK:
            raise LookupError(f"{spec}: items are pushed; preview sees them in the recent items")
        connector = self.poller.connectors.get(source.kind)
        if connector is None:
            raise LookupError(f"{spec}: the {source.kind} connector is not configured")
        return connector.fetch(source, empty_cursor("preview", spec)).items

    def _existing(self, issue_id: str, context: grpc.ServicerContext) -> listen_pb2.TrackedIssue:
        if not issue_id.strip():
            invalid_argument(context, "issue_id is required")
        issue = self.state.issue(issue_id.strip())
        if issue is None:
            not_found(context, f"issue_id {issue_id} is not tracked")
        return issue

    def _save(self, issue: listen_pb2.TrackedIssue, context: grpc.ServicerContext) -> None:
        try:
            self.store.save_issue(issue)
        except CallError:
            raise  # a caller gone, a record too large: the interceptor answers
        except Exception:  # the caller may retry: the same request saves the same issue
            log.exception("could not record a tracked issue", extra={"issue_id": issue.issue_id})
            context.abort(grpc.StatusCode.UNAVAILABLE, "could not record the issue; retry")
