"""Delivery records in events map to and from the outbox's Delivery without loss."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from legation.events.v1 import publish_pb2
from legation_channels import outbox
from legation_channels.records import from_outbox, to_outbox

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("state", outbox.DELIVERY_STATES)
def test_every_state_round_trips(state: outbox.DeliveryState) -> None:
    delivery = outbox.Delivery(
        "key-1",
        "mastodon",
        state,
        attempts=2,
        next_attempt_at=NOW + timedelta(seconds=30),
        reason="slow",
        reason_field="text",
        channel_item_id="42",
        url="https://social.example/42",
        published_at=NOW,
    )
    record = from_outbox(delivery, "fr", NOW)
    assert record.language == "fr"
    assert record.due_at.ToDatetime(tzinfo=UTC) == NOW
    assert to_outbox(record) == delivery


def test_a_new_delivery_has_no_times() -> None:
    record = from_outbox(outbox.new_delivery("k", "blog", NOW), "en", NOW)
    assert record.status == publish_pb2.DELIVERY_STATUS_PENDING
    assert not record.HasField("next_attempt_at") and not record.HasField("published_at")
    assert to_outbox(record).is_due(NOW)
