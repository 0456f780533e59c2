"""KPI snapshots: one campaign's failure or size never stops the others' snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from kafka.errors import MessageSizeTooLargeError

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_core.codec import Envelope, EventCodec
from legation_core.kafka import EventProducer, Pending
from legation_core.testing import Acknowledgement
from legation_core.topic_names import EVALUATE_KPI_SNAPSHOTS_V1, EVALUATE_OBJECTIVE_STATUS_V1
from legation_evaluator.adapters import snapshots
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.adapters.snapshots import SnapshotJob
from legation_evaluator.domain.objective_changes import status_changes
from legation_evaluator.domain.snapshots import part_id, split_snapshot

Status = evaluate_pb2.ObjectiveStatus
# kafka-python refuses a record over its max_request_size (1 MiB by default) at send.
PRODUCER_LIMIT = 1024 * 1024


def statuses(
    count: int, reason: str = "mentions at 3 of 10 with 50% of the time gone"
) -> list[Status]:
    return [
        Status(
            objective_id=f"objective-{number:05d}",
            metric="mentions",
            status=Status.STATUS_ON_TRACK,
            value=3,
            target=10,
            reason=reason,
        )
        for number in range(count)
    ]


def snapshot(objectives: list[Status]) -> evaluate_pb2.KpiSnapshot:
    result = evaluate_pb2.KpiSnapshot(
        snapshot_id="snap-1",
        campaign_id="big",
        kpis=[evaluate_pb2.Kpi(name="volume", value=5)],
        objectives=objectives,
    )
    result.computed_at.FromSeconds(1_800_000_000)
    return result


def test_a_snapshot_that_fits_is_one_record() -> None:
    small = snapshot(statuses(3))
    assert split_snapshot(small, 64 * 1024).parts == [small]


def test_a_snapshot_of_20000_objectives_is_split_into_parts_that_each_fit() -> None:
    whole = snapshot(statuses(20_000))
    assert whole.ByteSize() > PRODUCER_LIMIT
    split = split_snapshot(whole, 256 * 1024)
    assert split.too_large == []
    assert len(split.parts) > 4
    assert all(part.ByteSize() <= 256 * 1024 for part in split.parts)
    # Every objective exactly once, in order; the KPIs once, in the first part.
    ids = [o.objective_id for part in split.parts for o in part.objectives]
    assert ids == [o.objective_id for o in whole.objectives]
    assert list(split.parts[0].kpis) == list(whole.kpis)
    assert all(not part.kpis for part in split.parts[1:])
    assert [part.snapshot_id for part in split.parts] == [
        part_id("snap-1", number) for number in range(len(split.parts))
    ]
    assert split.parts[0].snapshot_id == "snap-1"
    assert len({part.snapshot_id for part in split.parts}) == len(split.parts)
    assert {part.computed_at.seconds for part in split.parts} == {1_800_000_000}
    assert {part.campaign_id for part in split.parts} == {"big"}


def test_an_objective_larger_than_a_record_is_handed_back_and_the_rest_still_fit() -> None:
    huge = statuses(1, reason="x" * 300_000)[0]
    huge.objective_id = "huge"
    split = split_snapshot(snapshot([*statuses(10), huge, *statuses(5)]), 64 * 1024)
    assert [o.objective_id for o in split.too_large] == ["huge"]
    kept = [o.objective_id for part in split.parts for o in part.objectives]
    assert len(kept) == 15 and "huge" not in kept


class FakeIndex:
    """Campaigns by id; ``broken`` campaigns fail their scorecard search."""

    def __init__(self, campaigns: dict[str, int], broken: set[str]) -> None:
        self.campaigns = campaigns
        self.broken = broken

    def campaign_ids(self) -> list[str]:
        return list(self.campaigns)

    def campaign(self, campaign_id: str) -> evaluate_pb2.Campaign:
        return evaluate_pb2.Campaign(campaign_id=campaign_id)

    def scorecard_response(self, campaign: evaluate_pb2.Campaign) -> dict[str, Any]:
        if campaign.campaign_id in self.broken:
            raise RuntimeError("search failed")
        return {"objectives": self.campaigns[campaign.campaign_id]}


class SizeLimitedProducer:
    """Refuses records over the limit as kafka-python does (at send); ``refused``
    campaigns' records fail at the acknowledgement instead."""

    max_request_bytes = PRODUCER_LIMIT

    def __init__(self, refused: set[str]) -> None:
        self.refused = refused
        self.acknowledged: list[Envelope] = []

    def send(self, topic: str, key: str, envelope: Envelope) -> Pending:
        assert topic == EVALUATE_KPI_SNAPSHOTS_V1
        size = len(EventCodec.encode(envelope))
        if size > PRODUCER_LIMIT:
            raise MessageSizeTooLargeError(f"The message is {size} bytes when serialized")
        if key in self.refused:
            return Pending(topic, Acknowledgement(RuntimeError("broker refused")))
        self.acknowledged.append(envelope)
        return Pending(topic, Acknowledgement(None))

    def wait(self, pending: list[Pending], timeout: float = 30.0) -> None:
        for item in pending:
            item.future.get(timeout)


@pytest.fixture(autouse=True)
def cards(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scorecard of as many objectives as the fake index says."""

    def card(campaign: evaluate_pb2.Campaign, response: dict[str, Any], now: datetime) -> Any:
        return pb.Scorecard(
            campaign_id=campaign.campaign_id,
            kpis=[evaluate_pb2.Kpi(name="volume", value=1)],
            objectives=statuses(response["objectives"]),
        )

    monkeypatch.setattr(snapshots, "scorecard_from_response", card)


def job(index: FakeIndex, producer: SizeLimitedProducer, **options: Any) -> SnapshotJob:
    return SnapshotJob(cast(EventIndex, index), cast(EventProducer, producer), 60.0, **options)


def test_one_campaigns_snapshot_failing_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    index = FakeIndex(
        {"first": 2, "huge": 20_000, "broken": 1, "refused": 1, "last": 3},
        broken={"broken"},
    )
    producer = SizeLimitedProducer(refused={"refused"})
    job(index, producer)()
    by_campaign: dict[str, list[evaluate_pb2.KpiSnapshot]] = {}
    for envelope in producer.acknowledged:
        by_campaign.setdefault(envelope.campaign_id, []).append(envelope.kpi_snapshot)
    assert sorted(by_campaign) == ["first", "huge", "last"]
    assert [len(part.objectives) for part in by_campaign["first"]] == [2]
    assert [len(part.objectives) for part in by_campaign["last"]] == [3]
    huge = by_campaign["huge"]
    assert len(huge) > 1
    assert sum(len(part.objectives) for part in huge) == 20_000
    assert all(len(EventCodec.encode(e)) <= PRODUCER_LIMIT for e in producer.acknowledged)
    failures = [r for r in caplog.records if r.getMessage().startswith("kpi snapshot")]
    assert {getattr(r, "campaign_id", None) for r in failures if r.levelname == "ERROR"} == {
        "broken",
        "refused",
    }


def test_no_snapshot_while_the_index_is_being_rebuilt() -> None:
    producer = SizeLimitedProducer(refused=set())
    job(FakeIndex({"first": 2}, broken=set()), producer, rebuilding=lambda: True)()
    assert producer.acknowledged == []


def test_a_run_skipped_while_rebuilding_is_made_up_once_the_rebuild_ends() -> None:
    producer = SizeLimitedProducer(refused=set())
    rebuilding = [True]
    snapshot_job = job(
        FakeIndex({"first": 2}, broken=set()), producer, rebuilding=lambda: rebuilding[0]
    )
    snapshot_job()
    assert producer.acknowledged == []
    rebuilding[0] = False
    snapshot_job()  # the next tick: the interval's snapshot is still due
    assert [e.campaign_id for e in producer.acknowledged] == ["first"]
    snapshot_job()  # the same interval again: nothing more
    assert len(producer.acknowledged) == 1


def test_objective_status_changes_are_reported_once_each() -> None:
    campaign = evaluate_pb2.Campaign(
        campaign_id="c1",
        name="Treaty",
        objectives=[evaluate_pb2.Objective(objective_id="fast", description="Answer fast")],
    )
    now = datetime(2026, 11, 20, 9, tzinfo=UTC)
    at_risk = Status(objective_id="fast", metric="m", status=Status.STATUS_AT_RISK, value=5)
    on_track = Status(objective_id="fast", metric="m", status=Status.STATUS_ON_TRACK)
    first_sight = status_changes(campaign, [on_track], {}, "s1", now)
    assert first_sight == []  # on track since start-up: nothing to say
    changes = status_changes(campaign, [at_risk], {"fast": Status.STATUS_ON_TRACK}, "s2", now)
    assert [(c.from_status, c.to_status) for c in changes] == [
        (Status.STATUS_ON_TRACK, Status.STATUS_AT_RISK)
    ]
    assert changes[0].description == "Answer fast" and changes[0].campaign_name == "Treaty"
    assert status_changes(campaign, [at_risk], {"fast": Status.STATUS_AT_RISK}, "s3", now) == []
    unseen = status_changes(campaign, [at_risk], {}, "s4", now)
    assert [c.from_status for c in unseen] == [Status.STATUS_UNSPECIFIED]
    again = status_changes(campaign, [at_risk], {"fast": Status.STATUS_ON_TRACK}, "s2", now)
    assert again[0].change_id == changes[0].change_id  # a repeat carries the same id


class RecordingProducer(SizeLimitedProducer):
    """Accepts both topics; keeps (topic, envelope)."""

    def __init__(self) -> None:
        super().__init__(refused=set())
        self.sent: list[tuple[str, Envelope]] = []

    def send(self, topic: str, key: str, envelope: Envelope) -> Pending:
        self.sent.append((topic, envelope))
        return Pending(topic, Acknowledgement(None))


def test_the_job_sends_a_change_when_an_objective_turns_at_risk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status = [Status.STATUS_ON_TRACK]

    def card(campaign: evaluate_pb2.Campaign, response: dict[str, Any], now: datetime) -> Any:
        return pb.Scorecard(
            campaign_id=campaign.campaign_id,
            objectives=[Status(objective_id="fast", metric="m", status=status[0])],
        )

    monkeypatch.setattr(snapshots, "scorecard_from_response", card)
    producer = RecordingProducer()
    snapshot_job = job(FakeIndex({"c1": 1}, broken=set()), producer)
    snapshot_job()
    assert [topic for topic, _ in producer.sent] == [EVALUATE_KPI_SNAPSHOTS_V1]
    status[0] = Status.STATUS_AT_RISK
    snapshot_job._done_slot = None  # the next interval
    snapshot_job()
    changes = [
        e.objective_status_change for t, e in producer.sent if t == EVALUATE_OBJECTIVE_STATUS_V1
    ]
    assert [(c.from_status, c.to_status) for c in changes] == [
        (Status.STATUS_ON_TRACK, Status.STATUS_AT_RISK)
    ]
    snapshot_job._done_slot = None
    snapshot_job()  # still at risk: no second change
    assert len([t for t, _ in producer.sent if t == EVALUATE_OBJECTIVE_STATUS_V1]) == 1
