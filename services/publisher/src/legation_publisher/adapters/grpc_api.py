"""The publisher's gRPC API: drafts, translations, review, scheduling, the calendar and
deliveries.

Every command reads top to bottom the same way: who is calling (the caller resolver) →
the domain function on the post's current state (which checks roles and input) → the new
state recorded on Kafka and acknowledged → the answer. The domain's errors are the shared
vocabulary (:mod:`legation_core.calls`), which the gRPC runtime maps to status codes:
InvalidPost → INVALID_ARGUMENT (the message starts with the field), AccessDenied →
PERMISSION_DENIED, Conflict → FAILED_PRECONDITION, an unknown post → NOT_FOUND, Kafka not
acknowledging → UNAVAILABLE (retry: commands are idempotent on request_id or on state).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import grpc
from prometheus_client import CollectorRegistry, Counter

from legation.events.v1 import publish_pb2
from legation.events.v1.publish_pb2 import PostState
from legation.publisher.v1 import publisher_service_pb2 as pb
from legation.publisher.v1 import publisher_service_pb2_grpc
from legation_core.auth import Caller
from legation_core.calls import CallError, InvalidArgument, status_of
from legation_core.codec import Envelope
from legation_core.consumer import TransientError
from legation_core.state import existing
from legation_core.topic_names import PUBLISH_PUBLICATIONS_V1
from legation_publisher.adapters.state import PostStore
from legation_publisher.domain import schedule as sched
from legation_publisher.domain import workflow
from legation_publisher.domain.content import ChannelProfile, channel_info
from legation_publisher.domain.csv_import import parse_csv
from legation_publisher.domain.delivery import publication_for
from legation_publisher.domain.posts import InvalidPost, post_id_for, publication_envelope
from legation_publisher.domain.workflow import WorkflowPolicy

log = logging.getLogger(__name__)
SERVICE_NAME = "legation.publisher.v1.PublisherService"

CallerResolver = Callable[[grpc.ServicerContext], Caller]


def _utc_now() -> datetime:
    return datetime.now(UTC)


# legation_publisher_commands_total's outcome label by the status a command's error has.
_OUTCOMES = {
    "INVALID_ARGUMENT": "invalid",
    "PERMISSION_DENIED": "denied",
    "FAILED_PRECONDITION": "conflict",
    "NOT_FOUND": "not_found",
    "UNAVAILABLE": "unavailable",
}


class _NamesPost(Protocol):
    """A command request: each names the post it changes."""

    @property
    def post_id(self) -> str: ...


R = TypeVar("R", bound=_NamesPost)
# A command's step: the new state of the post, from the servicer (policy, channels), the
# request, the post's current state, the caller and now.
Step = Callable[
    ["PublisherServicer", R, publish_pb2.PostState, Caller, datetime], publish_pb2.PostState
]
# A command RPC, the servicer's method. Its arguments go unchecked here: mypy compares a
# function assigned in the class body unbound against the bound method it overrides.
Rpc = Callable[..., pb.PostResponse]
ReviewStep = Callable[
    [publish_pb2.PostState, Sequence[str], str, Caller, WorkflowPolicy, datetime],
    publish_pb2.PostState,
]
DeliveryStep = Callable[
    [publish_pb2.PostState, str, Caller, WorkflowPolicy, datetime], publish_pb2.PostState
]


def _post_command(step: Step[R], name: str = "") -> Rpc:
    """The RPC that applies ``step`` to the current state of the post the request names and
    records the result, counted and logged as ``name`` (by default the step's own name,
    which is the RPC's when it decorates the method)."""
    command = name or step.__name__

    def rpc(self: PublisherServicer, request: R, context: grpc.ServicerContext) -> pb.PostResponse:
        with self._command(command):
            caller = self.caller_of(context)
            post = self.store.change(
                self._post_id(request.post_id),
                lambda current: step(self, request, current, caller, self.clock()),
            )
            log.info(
                "post changed",
                extra={
                    "command": command,
                    "post_id": post.post_id,
                    "user": caller.user,
                    "status": publish_pb2.PostStatus.Name(post.status),
                },
            )
            return pb.PostResponse(post=post)

    rpc.__name__ = rpc.__qualname__ = command
    rpc.__doc__ = step.__doc__
    return rpc


def _review(step: ReviewStep) -> Step[pb.ReviewRequest]:
    """A review command's step: ``step`` on the languages and comment the request names."""
    return lambda servicer, request, post, caller, now: step(
        post, request.languages, request.comment, caller, servicer.policy, now
    )


def _on_delivery(step: DeliveryStep) -> Step[pb.DeliveryRequest]:
    """A delivery command's step: ``step`` on the delivery the request names."""
    return lambda servicer, request, post, caller, now: step(
        post, request.delivery_id, caller, servicer.policy, now
    )


class PublisherServicer(publisher_service_pb2_grpc.PublisherServiceServicer):
    """Serves ``legation.publisher.v1.PublisherService`` over the post store."""

    def __init__(
        self,
        store: PostStore,
        policy: WorkflowPolicy,
        channels: Mapping[str, ChannelProfile],
        default_channels: Sequence[str],
        redirect_base: str,
        caller_of: CallerResolver,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.store = store
        self.policy = policy
        self.channels = channels
        self.default_channels = list(default_channels)
        self.redirect_base = redirect_base
        self.caller_of = caller_of
        self.clock = clock
        self.commands = Counter(
            "legation_publisher_commands_total",
            "Publisher API commands by command and outcome",
            ["command", "outcome"],
            registry=registry,
        )

    # ------------------------------------------------------------------------ plumbing

    @contextmanager
    def _command(self, name: str) -> Iterator[None]:
        """Counts the command's outcome by the status the shared table gives its error (the
        interceptor answers the error itself)."""
        try:
            yield
        except CallError as error:
            self._count(name, _OUTCOMES.get(status_of(error), "error"))
            raise
        except TransientError:
            self._count(name, "unavailable")
            raise
        self._count(name, "ok")

    def _count(self, command: str, outcome: str) -> None:
        self.commands.labels(command=command, outcome=outcome).inc()

    @staticmethod
    def _post_id(post_id: str) -> str:
        if not post_id.strip():
            raise InvalidPost("post_id", "is required")
        return post_id.strip()

    # ----------------------------------------------------------------------- commands

    def CreatePost(
        self, request: pb.CreatePostRequest, context: grpc.ServicerContext
    ) -> pb.PostResponse:
        """Creates a draft once per request_id."""
        with self._command("CreatePost"):
            caller = self.caller_of(context)
            now = self.clock()
            # Validate (and check roles) before looking: a retry with different content
            # is still checked, and a stranger learns nothing about existing posts.
            draft = workflow.create_post(
                request, caller, self.policy, self.channels, self.default_channels, now
            )
            post, created = self.store.create(post_id_for(request.request_id), lambda: draft)
            log.info(
                "post created" if created else "post already existed",
                extra={"post_id": post.post_id, "campaign_id": post.campaign_id},
            )
            return pb.PostResponse(post=post)

    @_post_command
    def UpdateVariant(
        self, request: pb.UpdateVariantRequest, post: PostState, caller: Caller, now: datetime
    ) -> PostState:
        return workflow.update_variant(
            post, request.language, request.content, caller, self.policy, self.channels, now
        )

    @_post_command
    def AddTranslation(
        self, request: pb.AddTranslationRequest, post: PostState, caller: Caller, now: datetime
    ) -> PostState:
        return workflow.add_translation(
            post,
            request.language.strip(),
            request.source_language,
            request.content,
            caller,
            self.policy,
            self.channels,
            now,
        )

    SubmitForReview = _post_command(_review(workflow.submit_for_review), "SubmitForReview")
    Approve = _post_command(_review(workflow.approve), "Approve")
    RequestChanges = _post_command(_review(workflow.request_changes), "RequestChanges")

    @_post_command
    def Comment(
        self, request: pb.CommentRequest, post: PostState, caller: Caller, now: datetime
    ) -> PostState:
        return workflow.add_comment(post, request.language, request.text, caller, self.policy, now)

    @_post_command
    def Schedule(
        self, request: pb.ScheduleRequest, post: PostState, caller: Caller, now: datetime
    ) -> PostState:
        plan = sched.parse_schedule(request.local_time, request.time_zone, request.rrule, now)
        return workflow.schedule_post(
            post, plan, caller, self.policy, self.channels, self.redirect_base, now
        )

    RetryDelivery = _post_command(_on_delivery(workflow.retry_delivery), "RetryDelivery")
    CancelDelivery = _post_command(_on_delivery(workflow.cancel_delivery), "CancelDelivery")

    def ConfirmDelivery(
        self, request: pb.ConfirmDeliveryRequest, context: grpc.ServicerContext
    ) -> pb.PostResponse:
        """A needs-check delivery a person found on its channel: published, and its
        Publication emitted in the same acknowledged batch as the change."""
        with self._command("ConfirmDelivery"):
            caller = self.caller_of(context)
            now = self.clock()

            def confirm(post: publish_pb2.PostState) -> publish_pb2.PostState:
                return workflow.confirm_delivery(
                    post,
                    request.delivery_id,
                    request.channel_item_id,
                    request.url,
                    caller,
                    self.policy,
                    now,
                )

            def publication(post: publish_pb2.PostState) -> list[tuple[str, str, Envelope]]:
                record = next(d for d in post.deliveries if d.delivery_id == request.delivery_id)
                event = publication_for(post, record)
                envelope = publication_envelope(event, post.campaign_id, post.issue_id)
                return [(PUBLISH_PUBLICATIONS_V1, post.post_id, envelope)]

            post = self.store.change(self._post_id(request.post_id), confirm, publication)
            log.info(
                "delivery confirmed",
                extra={
                    "post_id": post.post_id,
                    "delivery_id": request.delivery_id,
                    "user": caller.user,
                },
            )
            return pb.PostResponse(post=post)

    def ImportPosts(
        self, request: pb.ImportPostsRequest, context: grpc.ServicerContext
    ) -> pb.ImportPostsResponse:
        """Creates a draft per CSV row; nothing is created unless every row is valid."""
        with self._command("ImportPosts"):
            caller = self.caller_of(context)
            now = self.clock()
            drafts = parse_csv(
                request.csv, caller, self.policy, self.channels, self.default_channels, now
            )
            posts = [self._create(draft) for draft in drafts]
            return pb.ImportPostsResponse(posts=posts)

    def _create(self, draft: publish_pb2.PostState) -> publish_pb2.PostState:
        post, _ = self.store.create(draft.post_id, lambda: draft)
        return post

    # -------------------------------------------------------------------------- reads

    def GetPost(self, request: pb.GetPostRequest, context: grpc.ServicerContext) -> pb.PostResponse:
        post_id = self._post_id(request.post_id)
        return pb.PostResponse(post=existing(self.store.book.table, "post", "post_id", post_id))

    def ListPosts(
        self, request: pb.ListPostsRequest, context: grpc.ServicerContext
    ) -> pb.ListPostsResponse:
        """The calendar: posts with an occurrence in [from, to), filtered."""
        # "from" is a Python keyword, so the field is reached with getattr.
        start = (
            getattr(request, "from").ToDatetime(tzinfo=UTC) if request.HasField("from") else None
        )
        end = request.to.ToDatetime(tzinfo=UTC) if request.HasField("to") else None
        if start is not None and end is not None and end <= start:
            raise InvalidArgument("to must be after from")
        posts = [
            post
            for post in self.store.book.all()
            if (not request.campaign_id or post.campaign_id == request.campaign_id)
            and (not request.channel or request.channel in post.channels)
            and (not request.language or any(v.language == request.language for v in post.variants))
            and sched.in_range(post, start, end)
        ]
        return pb.ListPostsResponse(posts=posts)

    def ListPublications(
        self, request: pb.ListPublicationsRequest, context: grpc.ServicerContext
    ) -> pb.ListPublicationsResponse:
        """Every published delivery, newest first, with the channel's own id and URL."""
        publications = [
            publication_for(post, delivery)
            for post in self.store.book.all()
            for delivery in post.deliveries
            if delivery.status == sched.PUBLISHED
        ]
        publications.sort(key=lambda p: p.published_at.ToNanoseconds(), reverse=True)
        return pb.ListPublicationsResponse(publications=publications)

    def ListChannels(
        self, request: pb.ListChannelsRequest, context: grpc.ServicerContext
    ) -> pb.ListChannelsResponse:
        """The configured channels by name, with the limits their adapters enforce."""
        return pb.ListChannelsResponse(
            channels=[
                channel_info(self.channels[name], name in self.default_channels)
                for name in sorted(self.channels)
            ]
        )
