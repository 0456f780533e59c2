"""What the live page gets: every value with the text to show in its unit."""

from __future__ import annotations

import json
from typing import Any, cast

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_evaluator.adapters.campaign_data import CampaignData
from legation_evaluator.adapters.rebuild import IndexRebuilding
from legation_evaluator.adapters.web import ScorecardPage
from legation_evaluator.domain.live import scorecard_json

Status = evaluate_pb2.ObjectiveStatus


def test_durations_and_shares_come_as_text_in_their_unit() -> None:
    kpi = evaluate_pb2.Kpi(name="median_first_response_seconds", value=911347.75)
    kpi.baseline = 7200.0
    card = pb.Scorecard(
        campaign_id="c1",
        kpis=[kpi, evaluate_pb2.Kpi(name="share_of_voice", value=25.0)],
        objectives=[
            Status(
                objective_id="fast-answers",
                metric="median_response_seconds",  # an alias of the metric
                status=Status.STATUS_AT_RISK,
                value=911347.75,
                target=4 * 3600.0,
            )
        ],
    )
    shown = scorecard_json(card)
    first, share = shown["kpis"]
    assert (first["value"], first["value_shown"]) == (911347.75, "10.5 days")
    assert first["baseline_shown"] == "2 h"
    assert share["value_shown"] == "25 %" and share["baseline_shown"] is None
    objective = shown["objectives"][0]
    assert (objective["value_shown"], objective["target_shown"]) == ("10.5 days", "4 h")


def test_the_page_says_when_the_index_is_being_rebuilt() -> None:
    card = pb.Scorecard(campaign_id="c1", rebuilding=True)
    assert scorecard_json(card)["rebuilding"] is True
    assert scorecard_json(pb.Scorecard(campaign_id="c1"))["rebuilding"] is False

    class Rebuilding:
        def campaign(self, campaign_id: str) -> evaluate_pb2.Campaign | None:
            raise IndexRebuilding("the index is being rebuilt from Kafka")

    page = ScorecardPage(cast(CampaignData, Rebuilding()), 2.0)
    answered: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answered.append(status)
        return lambda data: None

    body = page({"REQUEST_METHOD": "GET", "PATH_INFO": "/api/campaigns/c1"}, start_response)
    assert answered == ["503 Service Unavailable"]
    assert json.loads(b"".join(body)) == {
        "error": "the index is being rebuilt from Kafka",
        "rebuilding": True,
    }
