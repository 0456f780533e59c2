"""load_settings: LEGATION_* environment variables, and errors that name the variable."""

from __future__ import annotations

import os

import pydantic
import pytest

from legation_core.config import ENV_PREFIX, ConfigError, CoreSettings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def test_defaults_without_environment() -> None:
    settings = load_settings(CoreSettings)
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.kafka_sasl_mechanism is None
    assert settings.grpc_port == 50051
    assert settings.log_level == "INFO"


def test_reads_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATION_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("LEGATION_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LEGATION_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("LEGATION_KAFKA_SASL_USERNAME", "legation")
    monkeypatch.setenv("LEGATION_KAFKA_SASL_PASSWORD", "secret")
    monkeypatch.setenv("LEGATION_GRPC_PORT", "7001")
    monkeypatch.setenv("LEGATION_CONSUMER_MAX_BATCH", "42")
    monkeypatch.setenv("LEGATION_SHUTDOWN_GRACE_SECONDS", "2.5")
    monkeypatch.setenv("LEGATION_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("GRPC_PORT", "1")  # unprefixed: ignored
    settings = load_settings(CoreSettings)
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.grpc_port == 7001
    assert settings.consumer_max_batch == 42
    assert settings.shutdown_grace_seconds == 2.5
    assert settings.log_level == "DEBUG"


def test_settings_are_frozen() -> None:
    settings = load_settings(CoreSettings)
    with pytest.raises(pydantic.ValidationError):
        settings.grpc_port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEGATION_GRPC_PORT", "abc"),
        ("LEGATION_GRPC_PORT", "70000"),
        ("LEGATION_KAFKA_SECURITY_PROTOCOL", "FOO"),
        ("LEGATION_LOG_LEVEL", "LOUD"),
        ("LEGATION_CONSUMER_MAX_BATCH", "0"),
        ("LEGATION_KAFKA_BOOTSTRAP_SERVERS", ""),
        ("LEGATION_SHUTDOWN_GRACE_SECONDS", "-1"),
    ],
)
def test_bad_value_raises_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings(CoreSettings)
    message = str(raised.value)
    assert variable in message
    assert repr(value) in message


def test_every_bad_variable_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATION_GRPC_PORT", "abc")
    monkeypatch.setenv("LEGATION_METRICS_PORT", "xyz")
    with pytest.raises(ConfigError) as raised:
        load_settings(CoreSettings)
    assert "LEGATION_GRPC_PORT" in str(raised.value)
    assert "LEGATION_METRICS_PORT" in str(raised.value)


class _ServiceSettings(CoreSettings):
    feed_interval_seconds: float = pydantic.Field(..., gt=0)


def test_service_subclass_adds_its_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="LEGATION_FEED_INTERVAL_SECONDS"):
        load_settings(_ServiceSettings)
    monkeypatch.setenv("LEGATION_FEED_INTERVAL_SECONDS", "3")
    settings = load_settings(_ServiceSettings)
    assert settings.feed_interval_seconds == 3.0
    assert settings.grpc_port == 50051


def test_sasl_without_credentials_is_refused_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATION_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LEGATION_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    with pytest.raises(ConfigError, match="LEGATION_KAFKA_SASL_USERNAME"):
        load_settings(CoreSettings)


def test_a_sasl_mechanism_without_a_sasl_protocol_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATION_KAFKA_SASL_MECHANISM", "PLAIN")
    with pytest.raises(ConfigError, match="does not use SASL"):
        load_settings(CoreSettings)


def test_complete_sasl_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATION_KAFKA_BOOTSTRAP_SERVERS", " kafka-0:9093 , kafka-1:9093 ")
    monkeypatch.setenv("LEGATION_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LEGATION_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("LEGATION_KAFKA_SASL_USERNAME", "legation")
    monkeypatch.setenv("LEGATION_KAFKA_SASL_PASSWORD", "secret")
    settings = load_settings(CoreSettings)
    assert settings.bootstrap_servers() == ["kafka-0:9093", "kafka-1:9093"]
