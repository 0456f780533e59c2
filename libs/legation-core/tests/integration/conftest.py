"""Fixtures for the runtime's tests against the session's Kafka stand-in.

``kit`` runs on the default client unless a test asks for each client of ``LEGATION_KAFKA_CLIENT``
with ``core_kafka_kit.EVERY_CLIENT`` (the contract tests of the producer and the consume loop
do)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from core_kafka_kit import Kit

from legation_core.config import CoreSettings
from legation_core.kafka import ensure_topics


@pytest.fixture
def kafka_client() -> str:
    """The client of the event producer and the consume loops under test: the default."""
    client: str = CoreSettings.model_fields["kafka_client"].default
    return client


@pytest.fixture
def kit(kafka_settings: CoreSettings, unique: str, kafka_client: str) -> Iterator[Kit]:
    settings = kafka_settings.model_copy(update={"kafka_client": kafka_client})
    made = Kit(settings, unique)
    created = ensure_topics(settings, made.catalog, replication_factor=1)
    assert sorted(created) == sorted(
        [made.in_topic, f"{made.in_topic}.dlq", made.out_topic, f"{made.out_topic}.dlq"]
    )
    try:
        yield made
    finally:
        made.close()
