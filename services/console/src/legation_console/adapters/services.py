"""Typed clients of the four services' gRPC APIs, calling on behalf of the signed-in person.

Every call carries the console's own identity (its bearer token, or its client certificate
over mutual TLS) plus ``x-on-behalf-of`` metadata naming the person, their roles and units
(:func:`legation_core.auth.on_behalf_of` on the service side): the service trusts that only
from a delegate, checks its access policy against the *person's* roles and audits the person
"via console". A page never reaches a service any other way.

To add a call: a method on the service's client that builds the request, awaits
:meth:`_Client._call` with the stub's RPC (``self.stub.Name``; its name labels errors and
metrics) and returns the response message (or a field of it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc import aio

from legation.engager.v1 import engager_service_pb2 as engager_pb
from legation.engager.v1 import engager_service_pb2_grpc as engager_grpc
from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as evaluator_grpc
from legation.events.v1 import engage_pb2, evaluate_pb2, listen_pb2, notify_pb2, publish_pb2
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation.listener.v1 import listener_service_pb2_grpc as listener_grpc
from legation.notifier.v1 import notifier_service_pb2 as notifier_pb
from legation.notifier.v1 import notifier_service_pb2_grpc as notifier_grpc
from legation.publisher.v1 import publisher_service_pb2 as publisher_pb
from legation.publisher.v1 import publisher_service_pb2_grpc as publisher_grpc
from legation_console.adapters.metrics import ConsoleMetrics
from legation_console.domain.people import Person
from legation_core.auth import (
    ON_BEHALF_OF_METADATA,
    ON_BEHALF_OF_ROLES_METADATA,
    ON_BEHALF_OF_UNITS_METADATA,
    TRACE_METADATA,
)
from legation_core.ids import new_trace_id

Response = TypeVar("Response")
# A report streams its progress while it is drawn: a longer deadline than a page's call.
REPORT_TIMEOUT_SECONDS = 300.0


class ServiceError(Exception):
    """A service refused or failed a call; ``code`` and ``detail`` are the gRPC status."""

    def __init__(self, service: str, method: str, code: grpc.StatusCode, detail: str) -> None:
        super().__init__(f"{service}.{method}: {code.name}: {detail}")
        self.service = service
        self.method = method
        self.code = code
        self.detail = detail

    @property
    def invalid(self) -> bool:
        """The request was wrong (the detail names the field)."""
        return self.code == grpc.StatusCode.INVALID_ARGUMENT

    @property
    def denied(self) -> bool:
        """The person may not do this (the service's policy refused it)."""
        return self.code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


@dataclass(frozen=True)
class ConsoleIdentity:
    """How the console proves who it is to the services: a bearer token, or a client
    certificate (mutual TLS), or both."""

    token: str | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def channel(self, address: str) -> aio.Channel:
        """A channel to ``address`` over TLS when a CA is given, else plaintext."""
        options = [("grpc.keepalive_time_ms", 60_000)]
        if self.tls_ca is None:
            return aio.insecure_channel(address, options=options)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.tls_ca.read_bytes(),
            private_key=self.tls_key.read_bytes() if self.tls_key else None,
            certificate_chain=self.tls_cert.read_bytes() if self.tls_cert else None,
        )
        return aio.secure_channel(address, credentials, options=options)


def person_metadata(
    person: Person, token: str | None, trace_id: str | None = None
) -> tuple[tuple[str, str], ...]:
    """The metadata of one call on behalf of ``person``."""
    metadata = [
        (ON_BEHALF_OF_METADATA, person.username),
        (ON_BEHALF_OF_ROLES_METADATA, ",".join(sorted(person.roles))),
        (ON_BEHALF_OF_UNITS_METADATA, ",".join(sorted(person.units))),
        (TRACE_METADATA, trace_id or new_trace_id()),
    ]
    if token is not None:
        metadata.append(("authorization", f"Bearer {token}"))
    return tuple(metadata)


class _Client:
    """What every service's client shares: the person's metadata, the deadline, error
    mapping and timing."""

    service = ""
    stub: object  # the service's generated stub: each client sets and types its own

    def __init__(
        self,
        channel: aio.Channel,
        identity: ConsoleIdentity,
        metrics: ConsoleMetrics,
        timeout: float,
    ) -> None:
        self.channel = channel
        self.identity = identity
        self.metrics = metrics
        self.timeout = timeout

    def _method(self, call: object) -> str:
        """The name of the RPC ``call`` makes (for errors and metrics): the stub's attribute
        holding it, as a generated stub holds one callable per RPC."""
        for name, value in vars(self.stub).items():
            if value is call:
                return name
        raise ValueError(f"{call!r} is no RPC of the {self.service} stub")

    async def _call(
        self, call: Callable[..., Awaitable[Response]], request: Any, person: Person
    ) -> Response:
        """``call`` (one of ``self.stub``'s RPCs) with ``request`` on behalf of ``person``;
        a refusal or failure raises :class:`ServiceError`."""
        method = self._method(call)
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            return await call(
                request,
                metadata=person_metadata(person, self.identity.token),
                timeout=self.timeout,
            )
        except aio.AioRpcError as error:
            code = error.code()
            raise ServiceError(self.service, method, code, error.details() or "") from None
        finally:
            self.metrics.grpc_seconds.labels(self.service, method, code.name).observe(
                time.perf_counter() - started
            )

    async def _stream(
        self,
        call: Callable[..., Any],
        request: Any,
        person: Person,
        timeout: float | None = None,
    ) -> AsyncIterator[Any]:
        """The responses of a server-streaming call, until the service ends it (or
        ``timeout`` seconds pass)."""
        method = self._method(call)
        stream = call(
            request, metadata=person_metadata(person, self.identity.token), timeout=timeout
        )
        try:
            async for response in stream:
                yield response
        except aio.AioRpcError as error:
            raise ServiceError(self.service, method, error.code(), error.details() or "") from None
        finally:
            stream.cancel()


class ListenerClient(_Client):
    """``legation.listener.v1.ListenerService``."""

    service = "listener"
    stub: listener_grpc.ListenerServiceAsyncStub

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stub = listener_grpc.ListenerServiceStub(self.channel)

    async def list_issues(self, person: Person) -> list[listen_pb2.TrackedIssue]:
        response = await self._call(self.stub.ListIssues, listener_pb.ListIssuesRequest(), person)
        return list(response.issues)

    async def preview_query(
        self, person: Person, query: str, feeds: list[str] | None = None, limit: int = 20
    ) -> listener_pb.PreviewQueryResponse:
        request = listener_pb.PreviewQueryRequest(query=query, feeds=feeds or [], limit=limit)
        return await self._call(self.stub.PreviewQuery, request, person)

    async def track_issue(
        self, person: Person, request: listener_pb.TrackIssueRequest
    ) -> listen_pb2.TrackedIssue:
        return await self._call(self.stub.TrackIssue, request, person)

    async def list_sources(self, person: Person) -> list[listener_pb.SourceStatus]:
        response = await self._call(self.stub.ListSources, listener_pb.ListSourcesRequest(), person)
        return list(response.sources)


class PublisherClient(_Client):
    """``legation.publisher.v1.PublisherService``."""

    service = "publisher"
    stub: publisher_grpc.PublisherServiceAsyncStub

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stub = publisher_grpc.PublisherServiceStub(self.channel)

    async def _post(
        self,
        call: Callable[..., Awaitable[publisher_pb.PostResponse]],
        request: Any,
        person: Person,
    ) -> publish_pb2.PostState:
        """An RPC that answers with the post as it now stands."""
        response = await self._call(call, request, person)
        return response.post

    async def list_posts(
        self,
        person: Person,
        start: datetime,
        end: datetime,
        *,
        campaign_id: str = "",
        channel: str = "",
        language: str = "",
    ) -> list[publish_pb2.PostState]:
        """The posts with an occurrence (or, unscheduled, a creation time) in [start, end),
        of that campaign, on that channel, in that language when given."""
        request = publisher_pb.ListPostsRequest(
            campaign_id=campaign_id, channel=channel, language=language
        )
        request.to.FromDatetime(end)
        getattr(request, "from").FromDatetime(start)  # "from" is a Python keyword
        response = await self._call(self.stub.ListPosts, request, person)
        return list(response.posts)

    async def get_post(self, person: Person, post_id: str) -> publish_pb2.PostState:
        request = publisher_pb.GetPostRequest(post_id=post_id)
        return await self._post(self.stub.GetPost, request, person)

    async def list_channels(self, person: Person) -> list[publisher_pb.ChannelInfo]:
        """The configured channels with their adapters' limits, by name."""
        request = publisher_pb.ListChannelsRequest()
        response = await self._call(self.stub.ListChannels, request, person)
        return list(response.channels)

    async def create_post(
        self, person: Person, request: publisher_pb.CreatePostRequest
    ) -> publish_pb2.PostState:
        return await self._post(self.stub.CreatePost, request, person)

    async def add_translation(
        self, person: Person, request: publisher_pb.AddTranslationRequest
    ) -> publish_pb2.PostState:
        return await self._post(self.stub.AddTranslation, request, person)

    async def submit(self, person: Person, post_id: str) -> publish_pb2.PostState:
        request = publisher_pb.ReviewRequest(post_id=post_id)
        return await self._post(self.stub.SubmitForReview, request, person)

    async def approve(self, person: Person, post_id: str) -> publish_pb2.PostState:
        request = publisher_pb.ReviewRequest(post_id=post_id)
        return await self._post(self.stub.Approve, request, person)

    async def request_changes(
        self, person: Person, post_id: str, reason: str
    ) -> publish_pb2.PostState:
        """Sends the post's variants in review (or approved) back to their author, with
        the reason as the comment the author sees."""
        request = publisher_pb.ReviewRequest(post_id=post_id, comment=reason)
        return await self._post(self.stub.RequestChanges, request, person)

    async def schedule_now(self, person: Person, post_id: str) -> publish_pb2.PostState:
        """Schedules the post for as soon as possible."""
        request = publisher_pb.ScheduleRequest(post_id=post_id)
        return await self._post(self.stub.Schedule, request, person)

    async def retry_delivery(
        self, person: Person, post_id: str, delivery_id: str
    ) -> publish_pb2.PostState:
        """Sends a failed, cancelled or needs-check delivery again."""
        request = publisher_pb.DeliveryRequest(post_id=post_id, delivery_id=delivery_id)
        return await self._post(self.stub.RetryDelivery, request, person)

    async def cancel_delivery(
        self, person: Person, post_id: str, delivery_id: str
    ) -> publish_pb2.PostState:
        """Stops a delivery that has not gone out."""
        request = publisher_pb.DeliveryRequest(post_id=post_id, delivery_id=delivery_id)
        return await self._post(self.stub.CancelDelivery, request, person)

    async def confirm_delivery(
        self, person: Person, request: publisher_pb.ConfirmDeliveryRequest
    ) -> publish_pb2.PostState:
        """A needs-check delivery a person found on its channel: published."""
        return await self._post(self.stub.ConfirmDelivery, request, person)


_ANY_STATUS = engage_pb2.CONVERSATION_STATUS_UNSPECIFIED


class EngagerClient(_Client):
    """``legation.engager.v1.EngagerService``."""

    service = "engager"
    stub: engager_grpc.EngagerServiceAsyncStub

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stub = engager_grpc.EngagerServiceStub(self.channel)

    async def list_conversations(
        self,
        person: Person,
        assignee: str = "",
        page_size: int = 200,
        status: engage_pb2.ConversationStatus.ValueType = _ANY_STATUS,
        label: str = "",
    ) -> list[engager_pb.Conversation]:
        """The inbox (highest priority first), optionally one officer's conversations, one
        state's or one label's."""
        request = engager_pb.ListConversationsRequest(
            assignee=assignee, page_size=page_size, status=status, label=label
        )
        response = await self._call(self.stub.ListConversations, request, person)
        return list(response.conversations)

    async def get_conversation(
        self, person: Person, conversation_id: str
    ) -> engager_pb.Conversation:
        request = engager_pb.GetConversationRequest(conversation_id=conversation_id)
        return await self._call(self.stub.GetConversation, request, person)

    async def list_saved_replies(self, person: Person) -> list[engager_pb.SavedReply]:
        response = await self._call(
            self.stub.ListSavedReplies,
            engager_pb.ListSavedRepliesRequest(),
            person,
        )
        return list(response.saved_replies)

    async def assign(
        self, person: Person, conversation_id: str, officer: str
    ) -> engager_pb.Conversation:
        request = engager_pb.AssignConversationRequest(
            conversation_id=conversation_id, officer=officer
        )
        return await self._call(self.stub.AssignConversation, request, person)

    async def set_status(
        self,
        person: Person,
        conversation_id: str,
        status: engage_pb2.ConversationStatus.ValueType,
    ) -> engager_pb.Conversation:
        request = engager_pb.SetConversationStatusRequest(
            conversation_id=conversation_id, status=status
        )
        return await self._call(self.stub.SetConversationStatus, request, person)

    async def reply(
        self, person: Person, request: engager_pb.ReplyToConversationRequest
    ) -> engager_pb.Conversation:
        return await self._call(self.stub.ReplyToConversation, request, person)

    async def label(
        self, person: Person, conversation_id: str, add: Sequence[str], remove: Sequence[str]
    ) -> engager_pb.Conversation:
        request = engager_pb.LabelConversationRequest(
            conversation_id=conversation_id, add=list(add), remove=list(remove)
        )
        return await self._call(self.stub.LabelConversation, request, person)

    async def prioritize(
        self, person: Person, conversation_id: str, priority: engage_pb2.Priority.ValueType
    ) -> engager_pb.Conversation:
        request = engager_pb.PrioritizeConversationRequest(
            conversation_id=conversation_id, priority=priority
        )
        return await self._call(self.stub.PrioritizeConversation, request, person)

    async def review_reply(
        self, person: Person, conversation_id: str, reply_id: str, approve: bool, comment: str
    ) -> engager_pb.Conversation:
        request = engager_pb.ReviewReplyRequest(
            conversation_id=conversation_id, reply_id=reply_id, approve=approve, comment=comment
        )
        return await self._call(self.stub.ReviewReply, request, person)

    async def create_questions_campaign(
        self, person: Person, request: engager_pb.CreateQuestionsCampaignRequest
    ) -> engager_pb.QuestionsCampaignResponse:
        return await self._call(self.stub.CreateQuestionsCampaign, request, person)

    async def list_questions_campaigns(
        self, person: Person, open_only: bool = False, page_size: int = 50, page_token: str = ""
    ) -> engager_pb.ListQuestionsCampaignsResponse:
        """One page of questions campaigns, most recently changed first, with their counts."""
        request = engager_pb.ListQuestionsCampaignsRequest(
            open_only=open_only, page_size=page_size, page_token=page_token
        )
        return await self._call(self.stub.ListQuestionsCampaigns, request, person)

    async def get_questions_campaign(
        self, person: Person, questions_id: str
    ) -> engager_pb.QuestionsCampaignResponse:
        request = engager_pb.GetQuestionsCampaignRequest(questions_id=questions_id)
        return await self._call(self.stub.GetQuestionsCampaign, request, person)

    async def moderate_question(
        self, person: Person, questions_id: str, question_id: str, approve: bool, note: str
    ) -> engager_pb.QuestionsCampaignResponse:
        request = engager_pb.ModerateQuestionRequest(
            questions_id=questions_id, question_id=question_id, approve=approve, note=note
        )
        return await self._call(self.stub.ModerateQuestion, request, person)

    async def answer_question(
        self, person: Person, questions_id: str, question_id: str, text: str
    ) -> engager_pb.QuestionsCampaignResponse:
        request = engager_pb.AnswerQuestionRequest(
            questions_id=questions_id, question_id=question_id, text=text
        )
        return await self._call(self.stub.AnswerQuestion, request, person)

    async def list_partners(self, person: Person) -> list[engage_pb2.PartnerState]:
        response = await self._call(
            self.stub.ListPartners, engager_pb.ListPartnersRequest(), person
        )
        return list(response.partners)

    async def get_partner(self, person: Person, partner_id: str) -> engage_pb2.PartnerState:
        request = engager_pb.GetPartnerRequest(partner_id=partner_id)
        response = await self._call(self.stub.GetPartner, request, person)
        return response.partner

    async def register_partner(
        self, person: Person, request: engager_pb.RegisterPartnerRequest
    ) -> engage_pb2.PartnerState:
        response = await self._call(self.stub.RegisterPartner, request, person)
        return response.partner

    async def record_partner_activity(
        self, person: Person, request: engager_pb.RecordPartnerActivityRequest
    ) -> engage_pb2.PartnerState:
        response = await self._call(self.stub.RecordPartnerActivity, request, person)
        return response.partner


class EvaluatorClient(_Client):
    """``legation.evaluator.v1.EvaluatorService``."""

    service = "evaluator"
    stub: evaluator_grpc.EvaluatorServiceAsyncStub

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stub = evaluator_grpc.EvaluatorServiceStub(self.channel)
        self._metrics: list[evaluator_pb.Metric] | None = None

    async def list_campaigns(self, person: Person) -> list[evaluate_pb2.Campaign]:
        response = await self._call(
            self.stub.ListCampaigns, evaluator_pb.ListCampaignsRequest(), person
        )
        return list(response.campaigns)

    async def search_mentions(
        self, person: Person, request: evaluator_pb.SearchMentionsRequest
    ) -> evaluator_pb.SearchMentionsResponse:
        """One page of indexed mentions matching the request's filters, newest first."""
        response: evaluator_pb.SearchMentionsResponse = await self._call(
            self.stub.SearchMentions, request, person
        )
        return response

    async def list_alerts(
        self, person: Person, issue_ids: Sequence[str] = ()
    ) -> list[listen_pb2.Alert]:
        """The newest alerts (of the issues given, or of every issue)."""
        response = await self._call(
            self.stub.ListAlerts,
            evaluator_pb.ListAlertsRequest(issue_ids=list(issue_ids)),
            person,
        )
        return list(response.alerts)

    async def create_campaign(
        self, person: Person, campaign: evaluate_pb2.Campaign, readable_within: float = 10.0
    ) -> evaluate_pb2.Campaign:
        """Creates the campaign, then waits (at most ``readable_within`` seconds) until the
        evaluator can read it back: it stores campaigns from its Kafka topic, so the page
        shown next would otherwise be NOT_FOUND for a moment."""
        created = await self._call(self.stub.CreateCampaign, campaign, person)
        deadline = time.monotonic() + readable_within
        request = evaluator_pb.GetCampaignRequest(campaign_id=created.campaign_id)
        while True:
            try:
                await self._call(self.stub.GetCampaign, request, person)
                return created
            except ServiceError as error:
                if error.code != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                    return created
            await asyncio.sleep(0.2)

    async def list_metrics(self, person: Person) -> list[evaluator_pb.Metric]:
        """The metric catalogue (names, units); it changes only with the evaluator's code,
        so the first answer is kept."""
        if self._metrics is None:
            response = await self._call(
                self.stub.ListMetrics, evaluator_pb.ListMetricsRequest(), person
            )
            self._metrics = list(response.metrics)
        return self._metrics

    async def get_scorecard(self, person: Person, campaign_id: str) -> evaluator_pb.Scorecard:
        request = evaluator_pb.GetCampaignScorecardRequest(campaign_id=campaign_id)
        return await self._call(self.stub.GetCampaignScorecard, request, person)

    async def get_campaign(self, person: Person, campaign_id: str) -> evaluate_pb2.Campaign:
        request = evaluator_pb.GetCampaignRequest(campaign_id=campaign_id)
        return await self._call(self.stub.GetCampaign, request, person)

    async def submit_feedback(
        self, person: Person, request: evaluator_pb.SubmitFeedbackRequest
    ) -> evaluate_pb2.Feedback:
        return await self._call(self.stub.SubmitFeedback, request, person)

    async def review_campaign(
        self, person: Person, request: evaluator_pb.ReviewCampaignRequest
    ) -> evaluate_pb2.AfterActionReview:
        return await self._call(self.stub.ReviewCampaign, request, person)

    async def get_report(
        self, person: Person, campaign_id: str, format: int
    ) -> evaluator_pb.CampaignReport:
        """The report's bytes (HTML or PDF); a report takes seconds to draw."""
        request = evaluator_pb.GetCampaignReportRequest(
            campaign_id=campaign_id,
            format=format,  # type: ignore[arg-type]
        )
        return await self._call(self.stub.GetCampaignReport, request, person)

    def build_report(
        self, person: Person, campaign_id: str, format: int
    ) -> AsyncIterator[evaluator_pb.CampaignReportProgress]:
        """The report's progress step by step, the last message carrying the report."""
        request = evaluator_pb.GetCampaignReportRequest(
            campaign_id=campaign_id,
            format=format,  # type: ignore[arg-type]
        )
        return self._stream(
            self.stub.BuildCampaignReport,
            request,
            person,
            timeout=REPORT_TIMEOUT_SECONDS,
        )

    async def list_feedback(
        self, person: Person, request: evaluator_pb.ListFeedbackRequest
    ) -> evaluator_pb.ListFeedbackResponse:
        return await self._call(self.stub.ListFeedback, request, person)

    async def list_reviews(
        self, person: Person, request: evaluator_pb.ListAfterActionReviewsRequest
    ) -> evaluator_pb.ListAfterActionReviewsResponse:
        return await self._call(self.stub.ListAfterActionReviews, request, person)

    def watch_scorecard(
        self, person: Person, campaign_id: str, min_interval_seconds: float
    ) -> AsyncIterator[evaluator_pb.Scorecard]:
        """The scorecard now, then again whenever it changes (a server stream)."""
        request = evaluator_pb.WatchCampaignScorecardRequest(
            campaign_id=campaign_id, min_interval_seconds=min_interval_seconds
        )
        return self._stream(self.stub.WatchCampaignScorecard, request, person)


class NotifierClient(_Client):
    """``legation.notifier.v1.NotifierService``: the person's inbox, and the messages the
    notifier could not finish."""

    service = "notifier"
    stub: notifier_grpc.NotifierServiceAsyncStub

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stub = notifier_grpc.NotifierServiceStub(self.channel)

    async def list_my_notifications(
        self, person: Person, *, limit: int = 0, page_token: str = "", unread_only: bool = False
    ) -> notifier_pb.ListMyNotificationsResponse:
        request = notifier_pb.ListMyNotificationsRequest(
            limit=limit, page_token=page_token, unread_only=unread_only
        )
        return await self._call(self.stub.ListMyNotifications, request, person)

    async def mark_read(
        self, person: Person, message_ids: Sequence[str] = (), *, everything: bool = False
    ) -> notifier_pb.MarkNotificationsReadResponse:
        request = notifier_pb.MarkNotificationsReadRequest(
            message_ids=list(message_ids), all=everything
        )
        return await self._call(self.stub.MarkNotificationsRead, request, person)

    async def my_preferences(self, person: Person) -> notifier_pb.GetMyPreferencesResponse:
        return await self._call(
            self.stub.GetMyPreferences,
            notifier_pb.GetMyPreferencesRequest(),
            person,
        )

    async def list_messages(
        self, person: Person, statuses: Sequence[int], limit: int = 100
    ) -> list[notify_pb2.NotificationMessage]:
        request = notifier_pb.ListMessagesRequest(statuses=list(statuses), limit=limit)  # type: ignore[arg-type]
        response = await self._call(self.stub.ListMessages, request, person)
        return list(response.messages)

    async def change_message(
        self, person: Person, operation: str, message_id: str
    ) -> notify_pb2.NotificationMessage:
        """``operation``: retry, cancel or confirm."""
        method = {"retry": "RetryMessage", "cancel": "CancelMessage", "confirm": "ConfirmMessage"}[
            operation
        ]
        request = notifier_pb.MessageRequest(message_id=message_id)
        response: notifier_pb.MessageResponse = await self._call(
            getattr(self.stub, method), request, person
        )
        return response.message


@dataclass
class Services:
    """The five clients, on channels opened once and closed at shutdown."""

    listener: ListenerClient
    publisher: PublisherClient
    engager: EngagerClient
    evaluator: EvaluatorClient
    notifier: NotifierClient | None = None

    @classmethod
    def connect(
        cls,
        addresses: dict[str, str],
        identity: ConsoleIdentity,
        metrics: ConsoleMetrics,
        timeout: float,
    ) -> Services:
        """Clients for the services at ``addresses`` (listener, publisher, engager,
        evaluator → host:port)."""

        def client(kind: type[_Client]) -> Any:
            return kind(identity.channel(addresses[kind.service]), identity, metrics, timeout)

        return cls(
            listener=client(ListenerClient),
            publisher=client(PublisherClient),
            engager=client(EngagerClient),
            evaluator=client(EvaluatorClient),
            notifier=client(NotifierClient),
        )

    async def close(self) -> None:
        for client in (
            self.listener,
            self.publisher,
            self.engager,
            self.evaluator,
            self.notifier,
        ):
            if client is not None:
                await client.channel.close(grace=None)
