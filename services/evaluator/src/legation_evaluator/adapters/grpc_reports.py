"""The evaluator API's after-action review and report calls, mixed into
:class:`~legation_evaluator.adapters.grpc_api.EvaluatorApi` (kept apart so the campaign and
scorecard calls stay small)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_core.calls import InvalidArgument, NotFound
from legation_core.codec import Envelope, make_envelope
from legation_core.ids import stable_id
from legation_evaluator.adapters import report_render
from legation_evaluator.adapters.campaign_data import CampaignData
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.domain.review import (
    build_review,
    require_finished,
    validate_review_request,
)

REVIEWS = "legation.evaluate.reviews.v1"
_FORMATS = {
    pb.GetCampaignReportRequest.FORMAT_HTML: ("html", report_render.HTML),
    pb.GetCampaignReportRequest.FORMAT_PDF: ("pdf", report_render.PDF),
}


class ReviewReportApi:
    """ReviewCampaign and GetCampaignReport over the shared index and producer."""

    index: EventIndex
    data: CampaignData

    def _produce(
        self, context: grpc.ServicerContext, topic: str, key: str, envelope: Envelope
    ) -> None:
        raise NotImplementedError  # EvaluatorApi provides it

    def _campaign(self, context: grpc.ServicerContext, campaign_id: str) -> evaluate_pb2.Campaign:
        """The campaign; NOT_FOUND when there is none, UNAVAILABLE when it is missing
        while the index is being rebuilt (it may be on its way back)."""
        campaign = self.data.campaign(campaign_id)  # IndexRebuilding: UNAVAILABLE
        if campaign is None:
            raise NotFound(f"campaign {campaign_id} does not exist (or is not indexed yet)")
        return campaign

    def _complete_index(self, context: grpc.ServicerContext, what: str) -> None:
        """UNAVAILABLE while the index is being rebuilt: ``what`` would be built from counts
        that are still coming back."""
        self.data.require_complete(what)

    def ReviewCampaign(
        self, request: pb.ReviewCampaignRequest, context: grpc.ServicerContext
    ) -> evaluate_pb2.AfterActionReview:
        validate_review_request(request)
        campaign = self._campaign(context, request.campaign_id)
        now = datetime.now(UTC)
        require_finished(campaign, now)
        self._complete_index(context, "the after-action review")
        data = self.data
        review = build_review(
            review_id=stable_id(
                "review", request.campaign_id, request.request_id or str(uuid.uuid4())
            ),
            campaign=campaign,
            scorecard=data.scorecard(campaign, now),
            feedback=data.feedback(request.campaign_id),
            request=request,
            now=now,
        )
        envelope = make_envelope(
            review,
            event_id=review.review_id,
            source_service="evaluator",
            occurred_at=now,
            campaign_id=request.campaign_id,
        )
        self._produce(context, REVIEWS, request.campaign_id, envelope)
        return review

    def GetCampaignReport(
        self, request: pb.GetCampaignReportRequest, context: grpc.ServicerContext
    ) -> pb.CampaignReport:
        if not request.campaign_id:
            raise InvalidArgument("campaign_id is required")
        if request.format not in _FORMATS:
            raise InvalidArgument("format is required: FORMAT_HTML or FORMAT_PDF")
        fmt, content_type = _FORMATS[request.format]
        campaign = self._campaign(context, request.campaign_id)
        self._complete_index(context, "the report")
        model = self.data.report_model(campaign, datetime.now(UTC))
        return pb.CampaignReport(
            campaign_id=campaign.campaign_id,
            content_type=content_type,
            content=report_render.render(model, fmt),
            file_name=f"{campaign.campaign_id}-report.{fmt}",
        )
