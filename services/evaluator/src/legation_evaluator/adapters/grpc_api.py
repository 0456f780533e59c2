"""The evaluator's gRPC API: campaigns, feedback and scorecards."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as pb_grpc
from legation.events.v1 import evaluate_pb2
from legation_core.codec import Envelope, make_envelope
from legation_core.grpc_server import invalid_argument, not_found
from legation_core.ids import stable_id
from legation_core.kafka import EventProducer
from legation_evaluator.adapters.grpc_reports import ReviewReportApi
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.domain.campaigns import InvalidRequest, validate_campaign
from legation_evaluator.domain.feedback import validate_feedback, with_subject
from legation_evaluator.domain.scorecard import scorecard_from_response

SERVICE = "evaluator"
CAMPAIGNS = "legation.evaluate.campaigns.v1"
FEEDBACK = "legation.evaluate.feedback.v1"


class EvaluatorApi(ReviewReportApi, pb_grpc.EvaluatorServiceServicer):
    def __init__(self, index: EventIndex, producer: EventProducer) -> None:
        self.index = index
        self.producer = producer

    def CreateCampaign(
        self, request: evaluate_pb2.Campaign, context: grpc.ServicerContext
    ) -> evaluate_pb2.Campaign:
        try:
            validate_campaign(request)
        except InvalidRequest as error:
            invalid_argument(context, str(error))
        now = datetime.now(UTC)
        envelope = make_envelope(
            request,
            # A new id per version: each version of a campaign is its own event.
            event_id=str(uuid.uuid4()),
            source_service=SERVICE,
            occurred_at=now,
            campaign_id=request.campaign_id,
        )
        self._produce(context, CAMPAIGNS, request.campaign_id, envelope)
        return request

    def SubmitFeedback(
        self, request: pb.SubmitFeedbackRequest, context: grpc.ServicerContext
    ) -> evaluate_pb2.Feedback:
        if not request.campaign_id:
            invalid_argument(context, "campaign_id is required")
        feedback = with_subject(request.feedback, request.campaign_id)
        try:
            validate_feedback(feedback)
        except InvalidRequest as error:
            invalid_argument(context, str(error))
        if self.index.campaign(request.campaign_id) is None:
            not_found(context, f"campaign {request.campaign_id} does not exist")
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
        self._produce(context, FEEDBACK, request.campaign_id, envelope)
        return feedback

    def GetCampaignScorecard(
        self, request: pb.GetCampaignScorecardRequest, context: grpc.ServicerContext
    ) -> pb.Scorecard:
        if not request.campaign_id:
            invalid_argument(context, "campaign_id is required")
        campaign = self.index.campaign(request.campaign_id)
        if campaign is None:
            not_found(
                context, f"campaign {request.campaign_id} does not exist (or is not indexed yet)"
            )
        response = self.index.scorecard_response(request.campaign_id)
        return scorecard_from_response(campaign, response, datetime.now(UTC))

    def _produce(
        self, context: grpc.ServicerContext, topic: str, key: str, envelope: Envelope
    ) -> None:
        try:
            self.producer.send_and_wait([(topic, key, envelope)])
        except Exception as error:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"could not publish the event: {error}")
