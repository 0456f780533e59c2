"""Periodic KPI snapshots: every campaign's scorecard as a KpiSnapshot event."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from legation.events.v1 import evaluate_pb2
from legation_core.codec import make_envelope
from legation_core.ids import stable_id
from legation_core.kafka import EventProducer
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.domain.scorecard import scorecard_from_response

log = logging.getLogger(__name__)
KPI_SNAPSHOTS = "legation.evaluate.kpi-snapshots.v1"


class SnapshotJob:
    def __init__(self, index: EventIndex, producer: EventProducer, interval_seconds: float) -> None:
        self.index = index
        self.producer = producer
        self.interval_seconds = interval_seconds

    def __call__(self) -> None:
        now = datetime.now(UTC)
        # One snapshot per campaign per interval, whatever the retries.
        slot = str(int(now.timestamp() // self.interval_seconds))
        events = []
        for campaign_id in self.index.campaign_ids():
            campaign = self.index.campaign(campaign_id)
            if campaign is None:
                continue
            card = scorecard_from_response(campaign, self.index.scorecard_response(campaign), now)
            snapshot = evaluate_pb2.KpiSnapshot(
                snapshot_id=stable_id("kpi-snapshot", campaign_id, slot),
                campaign_id=campaign_id,
                kpis=card.kpis,
                objectives=card.objectives,
            )
            snapshot.computed_at.FromDatetime(now)
            envelope = make_envelope(
                snapshot,
                event_id=snapshot.snapshot_id,
                source_service="evaluator",
                occurred_at=now,
                campaign_id=campaign_id,
            )
            events.append((KPI_SNAPSHOTS, campaign_id, envelope))
        self.producer.send_and_wait(events)
        if events:
            log.info("kpi snapshots emitted", extra={"campaigns": len(events)})
