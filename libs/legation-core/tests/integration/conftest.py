"""Fixtures for the runtime's tests against the session's Kafka stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from core_kafka_kit import Kit

from legation_core.config import CoreSettings
from legation_core.kafka import ensure_topics


@pytest.fixture
def kit(kafka_settings: CoreSettings, unique: str) -> Iterator[Kit]:
    made = Kit(kafka_settings, unique)
    created = ensure_topics(kafka_settings, made.catalog, replication_factor=1)
    assert sorted(created) == sorted(
        [made.in_topic, f"{made.in_topic}.dlq", made.out_topic, f"{made.out_topic}.dlq"]
    )
    try:
        yield made
    finally:
        made.close()
