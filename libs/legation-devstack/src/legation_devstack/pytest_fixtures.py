"""Pytest fixtures for tests that need the stand-in servers (loaded by the root conftest).

One Kafka stand-in and one OpenSearch stand-in per test session, on free ports with their
data in the session's temporary folder, stopped by process id at the end. Tests isolate
themselves with their own topics and groups (``unique``) rather than with new servers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from legation_core.catalog import default_catalog
from legation_core.config import CoreSettings
from legation_core.kafka import ensure_topics
from legation_devstack.standins import (
    KafkaStandIn,
    OpenSearchStandIn,
    start_kafka,
    start_opensearch,
)
from legation_devstack.users import UsersFile, write_users_file


@pytest.fixture(scope="session")
def kafka_stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaStandIn]:
    base: Path = tmp_path_factory.mktemp("kafka")
    stand_in = start_kafka(base / "data", base / "logs")
    try:
        yield stand_in
    finally:
        stand_in.process.stop()


@pytest.fixture(scope="session")
def opensearch_stand_in(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OpenSearchStandIn]:
    stand_in = start_opensearch(tmp_path_factory.mktemp("opensearch"))
    try:
        yield stand_in
    finally:
        stand_in.process.stop()


@pytest.fixture(scope="session")
def kafka_settings(kafka_stand_in: KafkaStandIn, auth_users: UsersFile) -> CoreSettings:
    """Core settings pointing at the session's Kafka stand-in, with every catalogued topic
    and DLQ created, and the session's users file for gRPC authentication."""
    settings = CoreSettings(
        kafka_bootstrap_servers=kafka_stand_in.bootstrap_servers,
        auth_users_file=auth_users.path,
        consumer_poll_timeout_ms=100,
        consumer_idle_wait_ms=20,
    )
    ensure_topics(settings, default_catalog(), replication_factor=1)
    return settings


@pytest.fixture
def unique() -> str:
    """A short random suffix for a test's own topic and group names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def auth_users(tmp_path_factory: pytest.TempPathFactory) -> UsersFile:
    """A users file with one user per role (named after the role) plus ``campaign-owner``
    who holds every working role; ``auth_users.token(name)`` is the user's bearer token."""
    return write_users_file(tmp_path_factory.mktemp("auth") / "users.yaml")
