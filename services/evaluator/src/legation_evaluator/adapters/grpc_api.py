"""The evaluator's gRPC API: campaigns, feedback and scorecards."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
from opensearchpy.exceptions import ConnectionError as IndexConnectionError

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as pb_grpc
from legation.events.v1 import evaluate_pb2
from legation_core.calls import InvalidArgument, ResourceExhausted, treat_as_unavailable
from legation_core.codec import Envelope, make_envelope, message_of
from legation_core.ids import stable_id
from legation_core.kafka import EventProducer
from legation_core.state import acknowledged
from legation_core.topic_names import EVALUATE_CAMPAIGNS_V1, EVALUATE_FEEDBACK_V1
from legation_evaluator.adapters.campaign_data import CampaignData
from legation_evaluator.adapters.changes import ChangeFeed
from legation_evaluator.adapters.grpc_listen import ListenReadsApi
from legation_evaluator.adapters.grpc_reports import ReviewReportApi
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.adapters.rebuild import IndexGuard
from legation_evaluator.domain import metrics
from legation_evaluator.domain.campaigns import normalised, validate_campaign
from legation_evaluator.domain.feedback import validate_feedback, with_subject

# The index not answering ends a call with UNAVAILABLE and a generic message (its error
# names the index's host and port).
treat_as_unavailable(IndexConnectionError)

SERVICE = "evaluator"
# Watch streams each hold a server thread (the pool has 8): leave room for unary calls.
MAX_WATCHERS = 4
# A watched scorecard is recomputed at least this often even without new events (the
# objectives' status moves with time, and documents become searchable after a refresh).
RECHECK_SECONDS = 2.0
MAX_CAMPAIGNS = 1000


def _metric_message(metric: metrics.Metric) -> pb.Metric:
    return message_of(
        pb.Metric, metric, typical_level=metric.level, filters=list(metrics.FILTER_FIELDS)
    )


def _version_id(campaign: evaluate_pb2.Campaign) -> str:
    """The same campaign submitted twice is one event; each different version its own."""
    digest = hashlib.sha256(campaign.SerializeToString(deterministic=True)).hexdigest()
    return stable_id("campaign", campaign.campaign_id, digest)


class EvaluatorApi(ListenReadsApi, ReviewReportApi, pb_grpc.EvaluatorServiceServicer):
    """The evaluator's gRPC service. With the index ``guard``, scorecards say whether the
    index is being rebuilt from Kafka, and a campaign missing meanwhile is UNAVAILABLE (try
    again) rather than NOT_FOUND."""

    def __init__(
        self,
        index: EventIndex,
        producer: EventProducer,
        changes: ChangeFeed | None = None,
        stopping: threading.Event | None = None,
        guard: IndexGuard | None = None,
    ) -> None:
        self.index = index
        self.data = CampaignData(index, guard)
        self.producer = producer
        self.changes = changes or ChangeFeed()
        self.stopping = stopping or threading.Event()
        self._watchers = threading.BoundedSemaphore(MAX_WATCHERS)

    def CreateCampaign(
        self, request: evaluate_pb2.Campaign, context: grpc.ServicerContext
    ) -> evaluate_pb2.Campaign:
        validate_campaign(request)
        campaign = normalised(request)
        envelope = make_envelope(
            campaign,
            event_id=_version_id(campaign),
            source_service=SERVICE,
            occurred_at=datetime.now(UTC),
            campaign_id=campaign.campaign_id,
        )
        self._produce(context, EVALUATE_CAMPAIGNS_V1, campaign.campaign_id, envelope)
        return campaign

    def GetCampaign(
        self, request: pb.GetCampaignRequest, context: grpc.ServicerContext
    ) -> evaluate_pb2.Campaign:
        return self._known_campaign(request.campaign_id, context)

    def ListCampaigns(
        self, request: pb.ListCampaignsRequest, context: grpc.ServicerContext
    ) -> pb.ListCampaignsResponse:
        found = (self.index.campaign(cid) for cid in self.index.campaign_ids()[:MAX_CAMPAIGNS])
        campaigns = sorted((c for c in found if c is not None), key=lambda c: c.campaign_id)
        return pb.ListCampaignsResponse(campaigns=campaigns)

    def ListMetrics(
        self, request: pb.ListMetricsRequest, context: grpc.ServicerContext
    ) -> pb.ListMetricsResponse:
        return pb.ListMetricsResponse(metrics=[_metric_message(m) for m in metrics.CATALOGUE])

    def WatchCampaignScorecard(
        self, request: pb.WatchCampaignScorecardRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.Scorecard]:
        campaign = self._known_campaign(request.campaign_id, context)
        if request.min_interval_seconds < 0:
            raise InvalidArgument("min_interval_seconds must not be negative")
        interval = max(0.2, request.min_interval_seconds or 1.0)
        if not self._watchers.acquire(blocking=False):
            raise ResourceExhausted(
                f"{MAX_WATCHERS} scorecards are watched already; poll GetCampaignScorecard"
            )
        try:
            last: bytes | None = None
            seen = self.changes.version(campaign.campaign_id)
            while context.is_active() and not self.stopping.is_set():
                campaign = self.index.campaign(campaign.campaign_id) or campaign
                card = self.data.scorecard(campaign, datetime.now(UTC))
                unchanged = pb.Scorecard()
                unchanged.CopyFrom(card)
                unchanged.ClearField("computed_at")
                key = unchanged.SerializeToString(deterministic=True)
                if key != last:
                    last = key
                    yield card
                # Wake when the campaign's events are indexed (or to recheck), then leave
                # the index its refresh and the caller its minimum interval.
                waited = 0.0
                while waited < RECHECK_SECONDS and context.is_active():
                    before = seen
                    seen = self.changes.wait(campaign.campaign_id, seen, 0.5)
                    waited += 0.5
                    if seen != before or self.stopping.is_set():
                        break
                self.stopping.wait(interval)
        finally:
            self._watchers.release()

    def _known_campaign(
        self, campaign_id: str, context: grpc.ServicerContext
    ) -> evaluate_pb2.Campaign:
        if not campaign_id:
            raise InvalidArgument("campaign_id is required")
        return self._campaign(context, campaign_id)

    def SubmitFeedback(
        self, request: pb.SubmitFeedbackRequest, context: grpc.ServicerContext
    ) -> evaluate_pb2.Feedback:
        if not request.campaign_id:
            raise InvalidArgument("campaign_id is required")
        feedback = with_subject(request.feedback, request.campaign_id)
        validate_feedback(feedback)
        self._campaign(context, request.campaign_id)
        feedback.feedback_id = stable_id(
            "feedback", request.campaign_id, request.request_id or str(uuid.uuid4())
        )
        envelope = make_envelope(
            feedback,
            event_id=feedback.feedback_id,
            source_service=SERVICE,
            occurred_at=datetime.now(UTC),
            campaign_id=request.campaign_id,
        )
        self._produce(context, EVALUATE_FEEDBACK_V1, request.campaign_id, envelope)
        return feedback

    def GetCampaignScorecard(
        self, request: pb.GetCampaignScorecardRequest, context: grpc.ServicerContext
    ) -> pb.Scorecard:
        campaign = self._known_campaign(request.campaign_id, context)
        return self.data.scorecard(campaign, datetime.now(UTC))

    def _produce(
        self, context: grpc.ServicerContext, topic: str, key: str, envelope: Envelope
    ) -> None:
        acknowledged(self.producer, [(topic, key, envelope)])
