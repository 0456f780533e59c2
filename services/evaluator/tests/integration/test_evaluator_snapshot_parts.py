"""A campaign of 20,000 objectives against the Kafka stand-in with the real producer: its
snapshot goes out in parts the broker accepts, and the other campaigns' snapshots too."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import pytest

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec
from legation_core.config import CoreSettings
from legation_core.kafka import EventProducer, read_topic
from legation_core.metrics import Metrics
from legation_core.topic_names import EVALUATE_KPI_SNAPSHOTS_V1
from legation_evaluator.adapters import snapshots
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.adapters.snapshots import SnapshotJob

pytestmark = pytest.mark.integration
Status = evaluate_pb2.ObjectiveStatus


class Campaigns:
    """The index's side: campaign ids and, per campaign, how many objectives it has."""

    def __init__(self, objectives: dict[str, int]) -> None:
        self.objectives = objectives

    def campaign_ids(self) -> list[str]:
        return list(self.objectives)

    def campaign(self, campaign_id: str) -> evaluate_pb2.Campaign:
        return evaluate_pb2.Campaign(campaign_id=campaign_id)

    def scorecard_response(self, campaign: evaluate_pb2.Campaign) -> dict[str, Any]:
        return {"objectives": self.objectives[campaign.campaign_id]}


def test_a_huge_snapshot_is_produced_in_parts_beside_the_others(
    kafka_settings: CoreSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def card(campaign: evaluate_pb2.Campaign, response: dict[str, Any], now: datetime) -> Any:
        return pb.Scorecard(
            campaign_id=campaign.campaign_id,
            objectives=[
                Status(
                    objective_id=f"o-{number:05d}",
                    metric="mentions",
                    status=Status.STATUS_AT_RISK,
                    reason="mentions at 3 of 10 with 50% of the time gone",
                )
                for number in range(response["objectives"])
            ],
        )

    monkeypatch.setattr(snapshots, "scorecard_from_response", card)
    huge, small = f"huge-{unique}", f"small-{unique}"
    producer = EventProducer(kafka_settings, "evaluator", default_catalog(), Metrics())
    try:
        index = Campaigns({huge: 20_000, small: 2})
        SnapshotJob(cast(EventIndex, index), producer, 60.0)()
    finally:
        producer.close()
    codec = EventCodec(default_catalog())
    parts: dict[str, list[evaluate_pb2.KpiSnapshot]] = {}
    for envelope in read_topic(kafka_settings, "evaluator", codec, EVALUATE_KPI_SNAPSHOTS_V1):
        if envelope.campaign_id in (huge, small):
            parts.setdefault(envelope.campaign_id, []).append(envelope.kpi_snapshot)
    assert len(parts[small]) == 1 and len(parts[small][0].objectives) == 2
    assert len(parts[huge]) > 1
    ids = [o.objective_id for part in parts[huge] for o in part.objectives]
    assert ids == [f"o-{number:05d}" for number in range(20_000)]
