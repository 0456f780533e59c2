"""The evaluator API's after-action review, report, feedback and review list calls, mixed into
:class:`~legation_evaluator.adapters.grpc_api.EvaluatorApi` (kept apart so the campaign and
scorecard calls stay small)."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import grpc

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_core.calls import InvalidArgument, NotFound
from legation_core.codec import Envelope, make_envelope
from legation_core.ids import stable_id
from legation_core.topic_names import EVALUATE_REVIEWS_V1
from legation_evaluator.adapters import report_plots, report_render
from legation_evaluator.adapters.campaign_data import REPORT_SEARCHES, CampaignData
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.domain import listings
from legation_evaluator.domain.review import (
    build_review,
    require_finished,
    validate_review_request,
)

_FORMATS = {
    pb.GetCampaignReportRequest.FORMAT_HTML: ("html", report_render.HTML),
    pb.GetCampaignReportRequest.FORMAT_PDF: ("pdf", report_render.PDF),
}
# The steps BuildCampaignReport reports: the searches, each plot, the rendering.
REPORT_STEPS = REPORT_SEARCHES + len(report_plots.PLOTS) + 1
# How often the stream looks whether the report is done when no step was reported.
_POLL_SECONDS = 0.2


class ReviewReportApi:
    """ReviewCampaign, the report calls and the feedback and review lists over the shared
    index and producer."""

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
        self._produce(context, EVALUATE_REVIEWS_V1, request.campaign_id, envelope)
        return review

    def _report_of(
        self, request: pb.GetCampaignReportRequest, context: grpc.ServicerContext
    ) -> tuple[evaluate_pb2.Campaign, str, str]:
        """The campaign, format and content type a report request asks for (or the error)."""
        if not request.campaign_id:
            raise InvalidArgument("campaign_id is required")
        if request.format not in _FORMATS:
            raise InvalidArgument("format is required: FORMAT_HTML or FORMAT_PDF")
        fmt, content_type = _FORMATS[request.format]
        campaign = self._campaign(context, request.campaign_id)
        self._complete_index(context, "the report")
        return campaign, fmt, content_type

    def _report(
        self,
        campaign: evaluate_pb2.Campaign,
        fmt: str,
        content_type: str,
        progress: Callable[[str], None] = lambda step: None,
    ) -> pb.CampaignReport:
        model = self.data.report_model(campaign, datetime.now(UTC), progress)
        content = report_render.render(model, fmt, progress)
        progress(fmt)
        return pb.CampaignReport(
            campaign_id=campaign.campaign_id,
            content_type=content_type,
            content=content,
            file_name=f"{campaign.campaign_id}-report.{fmt}",
        )

    def GetCampaignReport(
        self, request: pb.GetCampaignReportRequest, context: grpc.ServicerContext
    ) -> pb.CampaignReport:
        return self._report(*self._report_of(request, context))

    def BuildCampaignReport(
        self, request: pb.GetCampaignReportRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.CampaignReportProgress]:
        campaign, fmt, content_type = self._report_of(request, context)
        steps: queue.SimpleQueue[str] = queue.SimpleQueue()
        done = 0
        # The report is built on a worker thread so that each step it hears of can be sent
        # while it goes on; its errors come back through result(). The pool is shut down
        # without waiting: a caller that leaves closes this generator, possibly from a garbage
        # collection on the worker thread itself, which cannot join itself (the bounded work
        # then finishes on its own).
        worker = ThreadPoolExecutor(1, thread_name_prefix="report")
        try:
            built = worker.submit(self._report, campaign, fmt, content_type, steps.put)
            while True:
                try:
                    step = steps.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    if built.done():
                        break
                    continue
                done += 1
                if done < REPORT_STEPS and context.is_active():
                    yield pb.CampaignReportProgress(step=step, done=done, total=REPORT_STEPS)
            report = built.result()
        finally:
            worker.shutdown(wait=False)
        yield pb.CampaignReportProgress(
            step=fmt, done=REPORT_STEPS, total=REPORT_STEPS, report=report
        )

    def ListFeedback(
        self, request: pb.ListFeedbackRequest, context: grpc.ServicerContext
    ) -> pb.ListFeedbackResponse:
        listings.validate_feedback_list(request)
        found = self.data.search("feedback", listings.feedback_query(request))
        return listings.feedback_response(found, request.page_size)

    def ListAfterActionReviews(
        self, request: pb.ListAfterActionReviewsRequest, context: grpc.ServicerContext
    ) -> pb.ListAfterActionReviewsResponse:
        listings.validate_reviews_list(request)
        found = self.data.search("after_action_review", listings.reviews_query(request))
        return listings.reviews_response(found, request.page_size)
