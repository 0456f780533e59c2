"""The listener's gRPC API: track an issue, list the tracked issues, poll now."""

from __future__ import annotations

import logging

import grpc

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as pb
from legation.listener.v1 import listener_service_pb2_grpc as pb_grpc
from legation_core.grpc_server import invalid_argument, not_found
from legation_listener.adapters.poller import Poller
from legation_listener.adapters.state import ListenerState, StateStore
from legation_listener.domain.issues import IssueError, tracked_issue_from_request

log = logging.getLogger(__name__)

SERVICE_NAME = "legation.listener.v1.ListenerService"


class ListenerApi(pb_grpc.ListenerServiceServicer):
    """Commands the listener; a tracked issue is answered only once Kafka holds it."""

    def __init__(self, state: ListenerState, store: StateStore, poller: Poller) -> None:
        self.state = state
        self.store = store
        self.poller = poller

    def TrackIssue(
        self, request: pb.TrackIssueRequest, context: grpc.ServicerContext
    ) -> listen_pb2.TrackedIssue:
        """Creates or replaces a tracked issue (same issue_id replaces)."""
        try:
            issue = tracked_issue_from_request(request)
        except IssueError as error:
            invalid_argument(context, str(error))
        try:
            self.store.save_issue(issue)
        except Exception as error:  # the caller may retry: the same request saves the same issue
            log.exception("could not record a tracked issue", extra={"issue_id": issue.issue_id})
            context.abort(grpc.StatusCode.UNAVAILABLE, f"could not record the issue: {error}")
        log.info("tracking issue", extra={"issue_id": issue.issue_id, "feeds": list(issue.feeds)})
        return issue

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
            mentions_emitted=result.mentions_emitted, failed_feeds=result.failed_feeds
        )
