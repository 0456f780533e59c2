"""Reads for reviews, reports and the live page: the scorecard, feedback, the latest
review and the report's searches. One seam over the index and the scorecard domain, so
the review, the report and the web page share it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_core.codec import envelope_from_json
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.adapters.rebuild import IndexGuard, IndexRebuilding
from legation_evaluator.domain import report
from legation_evaluator.domain.scorecard import scorecard_from_response

MAX_FEEDBACK = 1000
REPORT_SEARCHES = 6
_EXTRAS = ("campaign_ids", "kafka")


class CampaignData:
    """Campaign reads over the event indices of one prefix; with the index ``guard``,
    scorecards say whether the index is being rebuilt, and a campaign missing meanwhile
    raises IndexRebuilding rather than passing for one that does not exist."""

    def __init__(self, index: EventIndex, guard: IndexGuard | None = None) -> None:
        self.index = index
        self.guard = guard

    def _pattern(self, payload: str) -> str:
        # A trailing wildcard: dated or rolled-over indices of one payload match too.
        return f"{self.index.prefix}-{payload}*"

    def _search(self, payload: str, body: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.index.client.search(
            index=self._pattern(payload), body=body, ignore_unavailable=True
        )
        return response

    def search(self, payload: str, body: dict[str, Any]) -> dict[str, Any]:
        """One search over the indices of ``payload`` (feedback, after_action_review …)."""
        return self._search(payload, body)

    def campaign(self, campaign_id: str) -> evaluate_pb2.Campaign | None:
        """The campaign, or None; raises IndexRebuilding when it is missing while the index
        is being rebuilt (it may be on its way back)."""
        found = self.index.campaign(campaign_id)
        if found is None and self.guard is not None and self.guard.confirm():
            raise IndexRebuilding(
                f"the index is being rebuilt from Kafka: campaign {campaign_id} is not back "
                "yet, try again shortly"
            )
        return found

    def require_complete(self, what: str) -> None:
        """Raises IndexRebuilding while the index is being rebuilt: ``what`` (a review, a
        report) would record or show counts that are still coming back."""
        if self.guard is not None and self.guard.confirm():
            raise IndexRebuilding(
                f"the index is being rebuilt from Kafka: {what} waits until it is complete, "
                "try again in a few minutes"
            )

    def campaigns(self) -> list[evaluate_pb2.Campaign]:
        found = [self.index.campaign(cid) for cid in self.index.campaign_ids()]
        return sorted((c for c in found if c is not None), key=lambda c: c.campaign_id)

    def scorecard(self, campaign: evaluate_pb2.Campaign, now: datetime) -> pb.Scorecard:
        """The campaign's scorecard at ``now``, marked ``rebuilding`` while the index is
        being rebuilt."""
        rebuilding = self.guard is not None and self.guard.rebuilding
        response = self.index.scorecard_response(campaign, rebuilding)
        card = scorecard_from_response(campaign, response, now)
        card.rebuilding = rebuilding
        return card

    def feedback(self, campaign_id: str) -> list[evaluate_pb2.Feedback]:
        """Every feedback on the campaign, oldest first."""
        response = self._search(
            "feedback",
            {
                "size": MAX_FEEDBACK,
                "query": {"term": {"campaign_ids": campaign_id}},
                "sort": [{"occurred_at": {"order": "asc"}}],
            },
        )
        return [_envelope(hit).feedback for hit in response["hits"]["hits"]]

    def latest_review(self, campaign_id: str) -> evaluate_pb2.AfterActionReview | None:
        response = self._search(
            "after_action_review",
            {
                "size": 1,
                "query": {"term": {"campaign_ids": campaign_id}},
                "sort": [{"occurred_at": {"order": "desc"}}],
            },
        )
        hits = response["hits"]["hits"]
        return _envelope(hits[0]).after_action_review if hits else None

    def report_model(
        self,
        campaign: evaluate_pb2.Campaign,
        now: datetime,
        progress: Callable[[str], None] = lambda step: None,
    ) -> report.ReportModel:
        """Everything the report shows, gathered with :data:`REPORT_SEARCHES` searches
        (``progress`` hears of each)."""
        campaign_id = campaign.campaign_id
        hits = self._search("publication", report.publications_query(campaign_id))
        markers = report.markers_from(hits["hits"]["hits"])
        progress("publications")
        pivot = report.pivot_for(campaign, markers)
        interval = report.interval_for(campaign, now)
        response: dict[str, Any] = self.index.client.search(
            index=f"{self.index.prefix}-*", body=report.report_query(campaign_id, interval, pivot)
        )
        progress("volume, attitude and voices")
        replies = self._search("interaction", report.replies_query(campaign_id))
        progress("response times")
        scorecard = self.scorecard(campaign, now)
        progress("scorecard")
        review = self.latest_review(campaign_id)
        progress("review")
        feedback = self.feedback(campaign_id)
        progress("feedback")
        return report.build_report(
            campaign=campaign,
            scorecard=scorecard,
            response=response,
            publications=markers,
            response_seconds=report.response_seconds_from(replies["hits"]["hits"]),
            review=review,
            feedback=feedback,
            interval=interval,
            pivot=pivot,
            now=now,
        )


def _envelope(hit: dict[str, Any]) -> Any:
    source = {k: v for k, v in hit["_source"].items() if k not in _EXTRAS}
    return envelope_from_json(source)
