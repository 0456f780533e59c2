"""The environment a test or the local stack gives the service processes it starts: none of
the shell's LEGATION_* settings but the Kafka client a test run chose."""

from __future__ import annotations

import pytest

from legation_devstack.processes import child_env


def test_only_the_kafka_client_is_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATION_KAFKA_CLIENT", "confluent")
    monkeypatch.setenv("LEGATION_GRPC_PORT", "1")
    monkeypatch.setenv("PATH_FOR_THE_CHILD", "kept")
    env = child_env()
    assert env["LEGATION_KAFKA_CLIENT"] == "confluent"
    assert env["PATH_FOR_THE_CHILD"] == "kept"
    assert not [
        name for name in env if name.startswith("LEGATION_") and name != "LEGATION_KAFKA_CLIENT"
    ]
