"""The four services in this process, wired as their ``__main__`` wires them, behind the real
gRPC server, interceptor and access policy, and their HTTP surfaces on real sockets. Only
Kafka is a stand-in (:class:`FakeKafka`, which refuses records over the producer's size
limit as kafka-python does); the evaluator's index is the session's OpenSearch stand-in.

Each ``start_*`` seeds a few valid entities through the API itself and returns a
:class:`GrpcTarget` whose ``hints`` hold their ids, so generated requests often name
something that exists. Everything listens on 127.0.0.1 with a port picked by the system and
is stopped by :meth:`GrpcTarget.stop` / :meth:`HttpTarget.stop`.
"""

from __future__ import annotations

import base64
import queue
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any
from unittest import mock
from wsgiref.types import WSGIApplication

import grpc
from google.protobuf import field_mask_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st
from kafka.errors import MessageSizeTooLargeError
from prometheus_client import CollectorRegistry

from legation.engager.v1 import engager_service_pb2 as engager_pb
from legation.engager.v1.engager_service_pb2_grpc import add_EngagerServiceServicer_to_server
from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.evaluator.v1.evaluator_service_pb2_grpc import add_EvaluatorServiceServicer_to_server
from legation.events.v1 import engage_pb2, evaluate_pb2, listen_pb2, publish_pb2
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation.listener.v1.listener_service_pb2_grpc import add_ListenerServiceServicer_to_server
from legation.publisher.v1 import publisher_service_pb2 as publisher_pb
from legation.publisher.v1.publisher_service_pb2_grpc import add_PublisherServiceServicer_to_server
from legation_channels.adapters.site_atom import LIMITS
from legation_channels.base import ChannelLimits
from legation_core import grpc_server
from legation_core.auth import (
    AuthInterceptor,
    Caller,
    Policy,
    current_caller,
    load_users,
    token_metadata,
)
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec, InvalidEvent, make_envelope
from legation_core.config import CoreSettings
from legation_core.consumer import Incoming
from legation_core.http_server import Authenticated, HttpServer
from legation_core.kafka import EventProducer
from legation_core.metrics import Metrics
from legation_core.topic_names import EVALUATE_CAMPAIGNS_V1
from legation_devstack.users import UsersFile
from legation_engager.adapters.events import MentionHandler
from legation_engager.adapters.form import QuestionsForm
from legation_engager.adapters.grpc_api import EngagerApi
from legation_engager.adapters.policy import POLICY as ENGAGER_POLICY
from legation_engager.adapters.store import EngagerState
from legation_engager.domain.rules import Rules, parse_rules
from legation_evaluator.adapters.campaign_data import CampaignData
from legation_evaluator.adapters.events import IndexingHandler
from legation_evaluator.adapters.grpc_api import EvaluatorApi
from legation_evaluator.adapters.index import EventIndex, connect
from legation_evaluator.adapters.policy import POLICY as EVALUATOR_POLICY
from legation_evaluator.adapters.policy import SCORECARD_READERS
from legation_evaluator.adapters.web import ScorecardPage
from legation_evaluator.config import EvaluatorSettings
from legation_listener.__main__ import address_policy, connectors, preview_reads
from legation_listener.adapters.connectors.base import Backoff
from legation_listener.adapters.connectors.webhook import WebhookApp
from legation_listener.adapters.feeds import FeedFetcher
from legation_listener.adapters.grpc_labels import TeachingServicer
from legation_listener.adapters.insights import Autodiscovery, Insights
from legation_listener.adapters.policy import POLICY as LISTENER_POLICY
from legation_listener.adapters.poller import Poller
from legation_listener.adapters.publications import PublicationStore
from legation_listener.adapters.state import ListenerState
from legation_listener.adapters.teaching import LabelBook, ModelTrainer, Rescorer
from legation_listener.config import ListenerSettings
from legation_listener.domain.enrichment import load_models
from legation_listener.domain.observed import DEFAULT_MAX_AGE, MentionWindow
from legation_listener.domain.recent import RecentItems
from legation_listener.domain.spikes import SpikeDetector, SpikeRule
from legation_listener.models.issue import shared_issue_models
from legation_publisher.adapters.grpc_api import SERVICE_NAME as PUBLISHER_SERVICE
from legation_publisher.adapters.grpc_api import PublisherServicer
from legation_publisher.adapters.policy import policy_for as publisher_policy
from legation_publisher.adapters.redirect import ShortLinks
from legation_publisher.adapters.state import PostBook, PostStore, post_envelope
from legation_publisher.config import PublisherSettings
from legation_publisher.domain.clicks import ClickGate, ClickPolicy
from legation_publisher.domain.content import ChannelProfile
from legation_publisher.domain.workflow import WorkflowPolicy

# Users of the session's users file: one who holds every working role, and the lowest.
OWNER, VIEWER = "campaign-owner", "viewer"
FEED_FIXTURE = str(files("legation_devstack").joinpath("fixtures/world-news.rss"))
# A feed on a public name (not resolvable here: a read fails at once).
PUBLIC_FEED = "https://news.example.org/feed.xml"
WEBHOOK_SECRET = "fuzz-webhook-secret"
WEBHOOK_ITEM = b'{"id": "i-1", "text": "A plastic treaty", "published_at": "2026-11-20T09:00:00Z"}'
# kafka-python's default max_request_size: a larger record fails in send().
MAX_REQUEST_SIZE = 1_048_576


class _Future:
    def __init__(self, value: Any = None) -> None:
        self.value = value

    def get(self, timeout: float | None = None) -> Any:
        return self.value

    def add_callback(self, callback: Callable[[Any], None]) -> _Future:
        callback(self.value)
        return self

    def add_errback(self, callback: Callable[[Exception], None]) -> _Future:
        return self


@dataclass
class FakeKafka:
    """kafka-python's KafkaProducer as far as EventProducer uses it: counts the records,
    hands each to ``deliver`` (the evaluator's indexer), refuses one over the size limit."""

    deliver: Callable[[str, bytes], None] | None = None
    records: int = 0

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None
    ) -> _Future:
        size = len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers or [])
        if size > MAX_REQUEST_SIZE:
            raise MessageSizeTooLargeError(
                f"The message is {size} bytes when serialized which is larger than the "
                "maximum request size you have configured with the max_request_size "
                "configuration"
            )
        self.records += 1
        if self.deliver is not None:
            self.deliver(topic, value or b"")
        return _Future()

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


def producer_for(service: str, kafka: FakeKafka) -> EventProducer:
    """The service's real EventProducer (catalog checks, encoding) over ``kafka``."""
    return EventProducer(
        CoreSettings(),
        service,
        default_catalog(),
        Metrics(),
        producer=kafka,
    )


@dataclass
class GrpcTarget:
    """A service's gRPC API served in this process."""

    name: str
    service: ServiceDescriptor
    channel: grpc.Channel
    users: UsersFile
    hints: dict[str, st.SearchStrategy[Any]]
    stop: Callable[[], None]
    # Problems found outside the answer (an accepted event the indexer refuses), in order.
    problems: list[str] = field(default_factory=list)
    # Requests the service accepted, by method: the seeds of mutated requests.
    examples: dict[str, list[Message]] = field(default_factory=dict)

    def example(self, method: str, request: Message) -> None:
        """Keeps ``request`` as a valid example of ``method``."""
        kept = type(request)()
        kept.CopyFrom(request)
        self.examples.setdefault(method, []).append(kept)

    def metadata(self, user: str) -> tuple[tuple[str, str]]:
        return token_metadata(self.users.token(user))

    def call(self, method: str, request: Message, user: str = OWNER) -> Any:
        """A plain unary call (for seeding), kept as an example; raises grpc.RpcError."""
        descriptor = self.service.methods_by_name[method]
        callable_ = self.channel.unary_unary(
            f"/{self.service.full_name}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=GetMessageClass(descriptor.output_type).FromString,
        )
        response = callable_(request, timeout=30, metadata=self.metadata(user))
        self.example(method, request)
        return response


class DaemonExecutor(futures.Executor):
    """A fixed pool of daemon threads for the gRPC server under test. The standard pool's
    threads are joined when Python exits, so one handler stuck in slow work (what the
    fuzzer is there to find) would hold the whole test run for minutes after its test."""

    def __init__(self, max_workers: int) -> None:
        self._work: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._workers = [
            threading.Thread(target=self._run, name=f"fuzz-grpc-{n}", daemon=True)
            for n in range(max_workers)
        ]
        for worker in self._workers:
            worker.start()

    def _run(self) -> None:
        while (task := self._work.get()) is not None:
            task()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        future: futures.Future[Any] = futures.Future()

        def task() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as error:
                    future.set_exception(error)

        self._work.put(task)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self._workers:
            self._work.put(None)


def _serve(
    name: str,
    service: ServiceDescriptor,
    register: Callable[[grpc.Server], None],
    policy: Policy,
    users: UsersFile,
    cleanup: Iterable[Callable[[], None]] = (),
) -> GrpcTarget:
    # build_server as the services call it, its pool on daemon threads (DaemonExecutor;
    # build_server takes concurrent.futures.ThreadPoolExecutor at call time).
    with mock.patch.object(futures, "ThreadPoolExecutor", DaemonExecutor):
        server, _health, port = grpc_server.build_server(
            0,
            [register],
            [policy.service],
            host="127.0.0.1",
            auth=AuthInterceptor(load_users(users.path), [policy]),
        )
    server.start()
    channel = grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    )
    after = list(cleanup)

    def stop() -> None:
        channel.close()
        server.stop(None).wait()
        for step in after:
            step()

    return GrpcTarget(name, service, channel, users, {}, stop)


def add_hints(target: GrpcTarget, found: Mapping[str, Iterable[str]]) -> None:
    """Adds ids that exist (by field name) to the target's hints."""
    for name, values in found.items():
        known = sorted({v for v in values if v})
        if known:
            target.hints[name] = st.sampled_from(known)


def ids_in(message: Message, found: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Every ``*_id`` string field's values in ``message``, by field name."""
    found = {} if found is None else found
    for descriptor, value in message.ListFields():
        values = value if descriptor.is_repeated else [value]
        for item in values:
            if isinstance(item, Message):
                ids_in(item, found)
            elif isinstance(item, str) and descriptor.name.endswith(("_id", "_ids")):
                found.setdefault(descriptor.name.removesuffix("s"), set()).add(item)
    return found


# ---------------------------------------------------------------------------- listener


class SilentServer:
    """A TCP port that accepts connections and never answers (a hung feed server)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.listen(64)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/feed.xml"

    def close(self) -> None:
        self.socket.close()


@dataclass
class Listener:
    api: TeachingServicer
    poller: Poller
    stop: threading.Event


def build_listener(settings: ListenerSettings) -> Listener:
    """The listener as ``legation_listener.__main__.wire`` builds it (production defaults
    but for Kafka: ``settings`` points at the stand-in the re-scoring reads), with its state
    in memory and its producer faked; nothing is rebuilt from topics."""
    load_models()  # as wire() does: the first mention must not wait for them
    producer = producer_for("listener", FakeKafka())
    stop = threading.Event()
    state = ListenerState(producer)
    window = MentionWindow(settings.listener_insights_mentions, DEFAULT_MAX_AGE)
    fetcher = FeedFetcher(
        settings.listener_fetch_timeout_seconds,
        settings.listener_fetch_retries,
        stop=stop,
        policy=address_policy(settings),
        allow_local_files=settings.listener_allow_local_feeds,
    )
    backoff = Backoff(settings.listener_fetch_retries, stop=stop)
    rule = SpikeRule(
        baseline_hours=settings.listener_spike_baseline_hours,
        stddevs=settings.listener_spike_stddevs,
        min_count=settings.listener_spike_min_count,
    )
    poller = Poller(
        state,
        fetcher,
        producer,
        CollectorRegistry(),
        stop=stop,
        recent=RecentItems(settings.listener_preview_buffer_items),
        spikes=SpikeDetector(rule),
        connectors=connectors(settings, fetcher, backoff),
        max_pages=settings.listener_max_pages_per_poll,
        on_mentions=window.add_mentions,
    )
    insights = Insights(
        state,
        window,
        PublicationStore(),
        Autodiscovery(fetcher),
        producer,
        reddit_api=settings.listener_reddit_api_url,
    )
    book = LabelBook(producer)
    trainer = ModelTrainer(book, shared_issue_models())
    rescorer = Rescorer(
        settings,
        EventCodec(default_catalog()),
        state,
        producer,
        shared_issue_models(),
        on_mentions=window.add_mentions,
    )
    api = TeachingServicer(
        state,
        poller,
        insights,
        book=book,
        trainer=trainer,
        rescorer=rescorer,
        previews=preview_reads(settings, stop),
        local_feeds=settings.listener_allow_local_feeds,
    )
    return Listener(api, poller, stop)


def start_listener(users: UsersFile, settings: ListenerSettings) -> GrpcTarget:
    listener = build_listener(settings)
    silent = SilentServer()
    target = _serve(
        "listener",
        listener_pb.DESCRIPTOR.services_by_name["ListenerService"],
        lambda server: add_ListenerServiceServicer_to_server(listener.api, server),
        LISTENER_POLICY,
        users,
        [listener.stop.set, silent.close],
    )
    issue = target.call(
        "TrackIssue",
        listener_pb.TrackIssueRequest(
            issue_id="plastics",
            name="Plastics treaty",
            keywords=["plastic", "treaty"],
            feeds=["webhook:fuzz", PUBLIC_FEED],
            campaign_ids=["plastics-2026"],
        ),
    )
    target.call(
        "UpdateIssue",
        listener_pb.UpdateIssueRequest(
            issue_id="plastics",
            query='"plastic treaty"~3 OR plastics lang:en',
            update_mask=field_mask_pb2.FieldMask(paths=["query"]),
        ),
    )
    target.call(
        "SetIssueActive", listener_pb.SetIssueActiveRequest(issue_id="plastics", active=True)
    )
    target.call("ListSources", listener_pb.ListSourcesRequest(issue_id="plastics"))
    target.call("PollNow", listener_pb.PollNowRequest(issue_id="plastics"))
    target.call(
        "PreviewQuery",
        listener_pb.PreviewQueryRequest(query="plastic", feeds=["webhook:fuzz"], limit=5),
    )
    target.call(
        "TrackIssue",
        listener_pb.TrackIssueRequest(
            issue_id="gone", name="Gone", keywords=["x"], feeds=["webhook:gone"]
        ),
    )
    target.call("DeleteIssue", listener_pb.DeleteIssueRequest(issue_id="gone"))
    target.hints.update(
        feed=st.sampled_from([FEED_FIXTURE, "webhook:fuzz", PUBLIC_FEED, silent.url]),
        query=st.sampled_from(["plastic OR treaty", '"plastic treaty"~3 lang:en', "NOT x y*"]),
    )
    add_hints(target, ids_in(issue))
    return target


# ---------------------------------------------------------------------------- publisher


def start_publisher(users: UsersFile) -> GrpcTarget:
    kafka = FakeKafka()
    store = PostStore(PostBook(), producer_for("publisher", kafka))
    workflow = WorkflowPolicy()

    def caller_of(context: grpc.ServicerContext) -> Caller:
        return current_caller()

    servicer = PublisherServicer(
        store,
        workflow,
        {"site-atom": ChannelProfile("site-atom", "site-atom", LIMITS)},
        ["site-atom"],
        "https://go.ministry.example/",
        caller_of,
        CollectorRegistry(),
    )
    target = _serve(
        "publisher",
        publisher_pb.DESCRIPTOR.services_by_name["PublisherService"],
        lambda server: add_PublisherServiceServicer_to_server(servicer, server),
        publisher_policy(workflow),
        users,
    )
    assert target.service.full_name == PUBLISHER_SERVICE
    content = publisher_pb.VariantContent(
        title="Our position", body="We support a binding cap. https://ministry.example/p"
    )
    found: dict[str, set[str]] = {}
    for request_id in ("seed-1", "seed-2"):
        post = target.call(
            "CreatePost",
            publisher_pb.CreatePostRequest(
                request_id=request_id, campaign_id="plastics-2026", content=content
            ),
        )
        ids_in(post, found)
    post_id, other = sorted(found["post_id"])
    target.call(
        "AddTranslation",
        publisher_pb.AddTranslationRequest(post_id=post_id, language="fr", content=content),
    )
    target.call(
        "UpdateVariant",
        publisher_pb.UpdateVariantRequest(post_id=post_id, language="fr", content=content),
    )
    target.call("Comment", publisher_pb.CommentRequest(post_id=post_id, text="Shorter, please."))
    target.call("SubmitForReview", publisher_pb.ReviewRequest(post_id=post_id))
    target.call("RequestChanges", publisher_pb.ReviewRequest(post_id=post_id, comment="Tone"))
    target.call("SubmitForReview", publisher_pb.ReviewRequest(post_id=other))
    target.call("Approve", publisher_pb.ReviewRequest(post_id=other), user="approver")
    target.call("Approve", publisher_pb.ReviewRequest(post_id=other))
    target.call(
        "Schedule",
        publisher_pb.ScheduleRequest(
            post_id=other, local_time="2030-12-01T09:00", time_zone="Africa/Nairobi"
        ),
    )
    target.call("GetPost", publisher_pb.GetPostRequest(post_id=other))
    target.call("ListPosts", publisher_pb.ListPostsRequest(campaign_id="plastics-2026"))
    target.call(
        "ImportPosts",
        publisher_pb.ImportPostsRequest(
            csv="request_id,campaign_id,title,body,language\nimp-1,plastics-2026,T,B,en\n"
        ),
    )
    for method in ("RetryDelivery", "CancelDelivery"):
        target.example(method, publisher_pb.DeliveryRequest(post_id=other, delivery_id="d-1"))
    target.example(
        "ConfirmDelivery",
        publisher_pb.ConfirmDeliveryRequest(
            post_id=other, delivery_id="d-1", channel_item_id="42", url="https://x.example/42"
        ),
    )
    add_hints(target, found)
    target.hints["language"] = st.sampled_from(["en", "fr", "es"])
    target.hints["channel"] = st.sampled_from(["site-atom"])
    return target


# ---------------------------------------------------------------------------- engager

ENGAGER_RULES = {
    "open": {"our_accounts": ["@embassy"], "min_influence": 0.8},
    "saved_replies": [
        {"id": "visa-info", "title": "Visas", "variants": {"en": "Dear {author}, see {link}."}}
    ],
}


def mention_incoming(mention_id: str, text: str, offset: int) -> Incoming:
    """A mention as the engager's consumer hands it over."""
    now = datetime.now(UTC)
    mention = listen_pb2.Mention(
        mention_id=mention_id,
        source="mastodon",
        source_url="https://social.example/@citizen",
        item_id=f"item-{mention_id}",
        url=f"https://social.example/posts/{mention_id}",
        thread_id=f"item-{mention_id}",
        author="@citizen",
        text=text,
        language="en",
    )
    mention.published_at.FromDatetime(now - timedelta(minutes=5))
    envelope = make_envelope(
        mention,
        event_id=mention_id,
        source_service="listener",
        occurred_at=now,
        campaign_id="plastics-2026",
        issue_id="plastics",
    )
    return Incoming("legation.listen.mentions.v1", 0, offset, None, envelope)


def build_engager() -> tuple[EngagerApi, Rules]:
    state = EngagerState(producer_for("engager", FakeKafka()), CollectorRegistry())
    rules = parse_rules(ENGAGER_RULES)
    texts = ["@embassy when does the consulate open?", "@embassy is the treaty binding?"]
    result = MentionHandler(state, rules)(
        [mention_incoming(f"m-{n}", text, n) for n, text in enumerate(texts)]
    )
    assert not result.rejected, result.rejected
    limits = {"mastodon": ChannelLimits(max_text_length=500, supports_replies=True)}
    return EngagerApi(state, rules, limits, form_path=lambda qid: f"/questions/{qid}"), rules


def start_engager(users: UsersFile) -> GrpcTarget:
    api, _rules = build_engager()
    target = _serve(
        "engager",
        engager_pb.DESCRIPTOR.services_by_name["EngagerService"],
        lambda server: add_EngagerServiceServicer_to_server(api, server),
        ENGAGER_POLICY,
        users,
    )
    found: dict[str, set[str]] = {}
    ids_in(target.call("ListConversations", engager_pb.ListConversationsRequest()), found)
    questions = target.call(
        "CreateQuestionsCampaign",
        engager_pb.CreateQuestionsCampaignRequest(
            request_id="seed", campaign_id="plastics-2026", issue_id="plastics", title="Ask us"
        ),
    )
    ids_in(questions, found)
    qid = questions.questions_campaign.questions_id
    ids_in(
        target.call(
            "SubmitQuestion",
            engager_pb.SubmitQuestionRequest(
                questions_id=qid, request_id="seed", author="ana", text="Is it binding?"
            ),
        ),
        found,
    )
    ids_in(
        target.call(
            "RegisterPartner",
            engager_pb.RegisterPartnerRequest(
                partner_id="ocean-ngo",
                name="Ocean NGO",
                kind=engage_pb2.PARTNER_KIND_NGO,
                stage=engage_pb2.RELATIONSHIP_STAGE_IDENTIFIED,
            ),
        ),
        found,
    )
    conversation = sorted(found["conversation_id"])[0]
    reply = target.call(
        "ReplyToConversation",
        engager_pb.ReplyToConversationRequest(
            request_id="seed",
            conversation_id=conversation,
            saved_reply_id="visa-info",
            variables={"link": "https://visa.example"},
        ),
    )
    ids_in(reply, found)
    target.call("GetConversation", engager_pb.GetConversationRequest(conversation_id=conversation))
    target.call(
        "AssignConversation",
        engager_pb.AssignConversationRequest(conversation_id=conversation, officer="claire"),
    )
    target.call(
        "LabelConversation",
        engager_pb.LabelConversationRequest(conversation_id=conversation, add=["press"]),
    )
    target.call(
        "PrioritizeConversation",
        engager_pb.PrioritizeConversationRequest(
            conversation_id=conversation, priority=engage_pb2.PRIORITY_HIGH, comment="press"
        ),
    )
    replies = found.get("reply_id", set())
    for reply_id in sorted(replies)[:1]:
        target.example(
            "ReviewReply",
            engager_pb.ReviewReplyRequest(
                conversation_id=conversation, reply_id=reply_id, approve=True
            ),
        )
        target.example(
            "ResolveReplyDelivery",
            engager_pb.ResolveReplyDeliveryRequest(
                conversation_id=conversation,
                reply_id=reply_id,
                action=engager_pb.ResolveReplyDeliveryRequest.ACTION_CONFIRM_DELIVERED,
                channel_item_id="42",
                url="https://social.example/42",
            ),
        )
    question = sorted(found.get("question_id", {"q"}))[0]
    target.call(
        "ModerateQuestion",
        engager_pb.ModerateQuestionRequest(questions_id=qid, question_id=question, approve=True),
    )
    target.call(
        "AnswerQuestion",
        engager_pb.AnswerQuestionRequest(questions_id=qid, question_id=question, text="Yes."),
    )
    target.call("GetQuestionsCampaign", engager_pb.GetQuestionsCampaignRequest(questions_id=qid))
    target.example(
        "CloseQuestionsCampaign", engager_pb.CloseQuestionsCampaignRequest(questions_id=qid)
    )
    target.call("GetPartner", engager_pb.GetPartnerRequest(partner_id="ocean-ngo"))
    target.call("ListPartners", engager_pb.ListPartnersRequest(issue_id="plastics"))
    activity = engager_pb.RecordPartnerActivityRequest(
        partner_id="ocean-ngo",
        request_id="seed",
        kind=engage_pb2.PartnerActivity.KIND_ENDORSEMENT,
        title="Shared our post",
        url="https://ngo.example/post",
        issue_ids=["plastics"],
    )
    activity.occurred_at.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    target.call("RecordPartnerActivity", activity)
    target.call(
        "SetConversationStatus",
        engager_pb.SetConversationStatusRequest(
            conversation_id=conversation, status=engage_pb2.CONVERSATION_STATUS_CLOSED
        ),
    )
    add_hints(target, found)
    target.hints["saved_reply_id"] = st.just("visa-info")
    return target


# ---------------------------------------------------------------------------- evaluator


@dataclass
class Evaluator:
    api: EvaluatorApi
    index: EventIndex
    producer: EventProducer
    problems: list[str]


def build_evaluator(opensearch_url: str, prefix: str) -> Evaluator:
    """The evaluator over a fresh index prefix; what it produces is indexed at once by
    its own indexing handler, and a record the handler refuses is kept in ``problems``."""
    index = EventIndex(connect(EvaluatorSettings(opensearch_url=opensearch_url)), prefix)
    index.ensure_template()
    handler = IndexingHandler(index)
    codec = EventCodec(default_catalog())
    codec_topics = {spec.name for spec in default_catalog().consumed_by("evaluator")}
    problems: list[str] = []
    offsets = [0]

    def deliver(topic: str, value: bytes) -> None:
        if topic not in codec_topics:
            return
        try:
            envelope = codec.decode(topic, value)
        except InvalidEvent as error:
            problems.append(f"{topic}: the consumer dead-letters it: {error}"[:500])
            return
        offsets[0] += 1
        try:
            result = handler([Incoming(topic, 0, offsets[0], None, envelope)])
            index.client.indices.refresh(index=f"{prefix}-*")
        except Exception as error:
            problems.append(f"{topic}: the indexer failed: {error!r}"[:500])
            return
        problems.extend(f"{topic}: the indexer refused: {r.reason}"[:500] for r in result.rejected)

    producer = producer_for("evaluator", FakeKafka(deliver))
    return Evaluator(EvaluatorApi(index, producer), index, producer, problems)


def seed_campaign(campaign_id: str = "plastics-2026") -> evaluate_pb2.Campaign:
    now = datetime.now(UTC).replace(microsecond=0)
    campaign = evaluate_pb2.Campaign(
        campaign_id=campaign_id,
        name="Plastics treaty",
        issue_ids=["plastics"],
        objectives=[
            evaluate_pb2.Objective(
                objective_id="conversation",
                metric="mentions",
                comparison=evaluate_pb2.Objective.COMPARISON_AT_LEAST,
                target=10,
                level=evaluate_pb2.Objective.LEVEL_OUTPUT,
            )
        ],
    )
    campaign.starts_at.FromDatetime(now - timedelta(days=3))
    campaign.ends_at.FromDatetime(now + timedelta(days=3))
    campaign.objectives[0].deadline.FromDatetime(now + timedelta(days=3))
    return campaign


def start_evaluator(users: UsersFile, opensearch_url: str, prefix: str) -> GrpcTarget:
    evaluator = build_evaluator(opensearch_url, prefix)
    target = _serve(
        "evaluator",
        evaluator_pb.DESCRIPTOR.services_by_name["EvaluatorService"],
        lambda server: add_EvaluatorServiceServicer_to_server(evaluator.api, server),
        EVALUATOR_POLICY,
        users,
    )
    target.problems = evaluator.problems
    found = ids_in(target.call("CreateCampaign", seed_campaign()))
    ended = seed_campaign("plastics-2025")
    ended.starts_at.FromDatetime(datetime.now(UTC) - timedelta(days=30))
    ended.ends_at.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    ended.objectives[0].deadline.CopyFrom(ended.ends_at)
    ids_in(target.call("CreateCampaign", ended), found)
    feedback = evaluator_pb.SubmitFeedbackRequest(
        campaign_id="plastics-2026",
        request_id="seed",
        feedback=evaluate_pb2.Feedback(
            from_role=evaluate_pb2.Feedback.FROM_ROLE_COLLEAGUE,
            rating=3,
            text="Answer faster next time.",
        ),
    )
    ids_in(target.call("SubmitFeedback", feedback), found)
    target.call("GetCampaign", evaluator_pb.GetCampaignRequest(campaign_id="plastics-2026"))
    target.call(
        "GetCampaignScorecard",
        evaluator_pb.GetCampaignScorecardRequest(campaign_id="plastics-2026"),
    )
    target.example(
        "WatchCampaignScorecard",
        evaluator_pb.WatchCampaignScorecardRequest(
            campaign_id="plastics-2026", min_interval_seconds=1
        ),
    )
    target.example(
        "ReviewCampaign",
        evaluator_pb.ReviewCampaignRequest(
            campaign_id="plastics-2025",
            request_id="seed",
            author="lead",
            lessons=[evaluate_pb2.Lesson(kind=evaluate_pb2.Lesson.KIND_NEXT_TIME, text="Faster")],
        ),
    )
    target.example(
        "GetCampaignReport",
        evaluator_pb.GetCampaignReportRequest(
            campaign_id="plastics-2025", format=evaluator_pb.GetCampaignReportRequest.FORMAT_HTML
        ),
    )
    add_hints(target, found)
    target.hints["metric"] = st.sampled_from(["mentions", "replies", "share_of_voice"])
    assert not evaluator.problems, evaluator.problems
    return target


# ---------------------------------------------------------------------------- HTTP


@dataclass
class HttpTarget:
    """An HTTP surface served in this process."""

    name: str
    port: int
    # Paths worth requesting, and the (header name, value) pairs that authorise a request.
    paths: list[str]
    credentials: list[tuple[str, str]]
    # The shared secret that signs bodies (the webhook's HMAC), or None.
    secret: str | None
    # A request it accepts: method, path, content type, body.
    valid: tuple[str, str, str, bytes]
    stop: Callable[[], None]
    # The most bytes of body it may read (its documented limit).
    max_body: int
    problems: list[str] = field(default_factory=list)


def _wsgi(name: str, app: WSGIApplication) -> tuple[int, Callable[[], None]]:
    server = HttpServer(name, 0, app, host="127.0.0.1")
    server.start()
    return server.port, server.stop


def start_webhook(settings: ListenerSettings) -> HttpTarget:
    from legation_listener.adapters.connectors.webhook import MAX_BODY_BYTES

    listener = build_listener(settings)
    listener.api.state.save_issue(
        listen_pb2.TrackedIssue(
            issue_id="plastics",
            name="Plastics",
            keywords=["plastic"],
            feeds=["webhook:fuzz"],
            active=True,
        )
    )
    port, stop = _wsgi("webhook", WebhookApp(listener.poller, WEBHOOK_SECRET))

    def stop_all() -> None:
        stop()
        listener.stop.set()

    return HttpTarget(
        "webhook",
        port,
        ["/webhooks/fuzz", "/webhooks/unknown", "/healthz", "/webhooks/"],
        [],
        WEBHOOK_SECRET,
        ("POST", "/webhooks/fuzz", "application/json", WEBHOOK_ITEM),
        stop_all,
        MAX_BODY_BYTES,
    )


def start_form() -> HttpTarget:
    from legation_engager.adapters.form import MAX_BODY
    from legation_engager.domain import questions

    api, _rules = build_engager()
    campaign = questions.create(
        "seed", "plastics-2026", "plastics", "Ask us", "", "", set(), "ana", datetime.now(UTC)
    )
    with api.state.questions.transaction() as transaction:
        transaction.put(campaign)
    # The production limit is a few questions a minute per address; every request here
    # comes from 127.0.0.1, so the limit is lifted to reach the body handling.
    port, stop = _wsgi("questions-form", QuestionsForm(api, per_minute=10**9))
    return HttpTarget(
        "questions-form",
        port,
        [f"/questions/{campaign.questions_id}", "/questions/unknown", "/questions/", "/"],
        [],
        None,
        (
            "POST",
            f"/questions/{campaign.questions_id}",
            "application/x-www-form-urlencoded",
            b"text=Is+the+treaty+binding%3F&author=ana&language=en",
        ),
        stop,
        MAX_BODY,
    )


def start_redirects() -> HttpTarget:
    book = PostBook()
    post = publish_pb2.PostState(
        post_id="p1",
        campaign_id="plastics-2026",
        version=1,
        links=[
            publish_pb2.TrackedLink(
                code="Abc_123-xyz",
                target_url="https://ministry.example/plastics",
                tracked_url="https://ministry.example/plastics?utm_source=site-atom",
                short_url="https://go.example/r/Abc_123-xyz",
                language="fr",
                channel="site-atom",
            )
        ],
    )
    post.transition.at.FromDatetime(datetime.now(UTC))
    book.apply(post_envelope(post))
    settings = PublisherSettings()
    gate = ClickGate(
        b"fuzz-click-secret",
        ClickPolicy(
            window_seconds=settings.publisher_click_window_seconds,
            per_address=settings.publisher_clicks_per_address_per_hour,
            per_address_period_seconds=3600.0,
        ),
    )
    links = ShortLinks(book, producer_for("publisher", FakeKafka()), gate, CollectorRegistry())
    port, stop = _wsgi("short-links", links)
    return HttpTarget(
        "short-links",
        port,
        ["/r/Abc_123-xyz", "/r/unknown", "/r/", "/"],
        [],
        None,
        ("GET", "/r/Abc_123-xyz", "", b""),
        stop,
        0,
    )


def start_page(users: UsersFile, opensearch_url: str, prefix: str) -> HttpTarget:
    evaluator = build_evaluator(opensearch_url, prefix)
    campaign = seed_campaign()
    envelope = make_envelope(
        campaign,
        event_id="seed-campaign",
        source_service="evaluator",
        occurred_at=datetime.now(UTC),
        campaign_id=campaign.campaign_id,
    )
    evaluator.producer.send_and_wait([(EVALUATE_CAMPAIGNS_V1, campaign.campaign_id, envelope)])
    page = ScorecardPage(CampaignData(evaluator.index), 1.0)
    app = Authenticated(page, load_users(users.path), SCORECARD_READERS)
    port, stop = _wsgi("scorecard-page", app)
    token = users.token(VIEWER)
    return HttpTarget(
        "scorecard-page",
        port,
        ["/", "/api/campaigns", "/api/campaigns/plastics-2026", "/static/live.js", "/healthz"],
        [
            ("Authorization", f"Bearer {token}"),
            ("Authorization", "Basic " + base64.b64encode(f"x:{token}".encode()).decode()),
        ],
        None,
        ("GET", "/api/campaigns/plastics-2026", "", b""),
        stop,
        0,
        evaluator.problems,
    )
