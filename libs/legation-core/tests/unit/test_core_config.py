"""load_settings: LEGATION_* environment variables, and errors that name the variable;
read_config_file: the files settings name, and errors that name the file; ConfigModel and
validate_document: a file's document checked, every problem named at its field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import pydantic
import pytest
from pydantic import Field

from legation_core.config import (
    ENV_PREFIX,
    ConfigError,
    ConfigFileError,
    ConfigModel,
    CoreSettings,
    DocumentError,
    expect,
    load_settings,
    read_config_file,
    validate_document,
)


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


# --- read_config_file: the one reader of the files settings name ----------------------------


def test_a_config_file_that_is_not_utf8_is_refused_naming_the_file_and_offset(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(b"sla:\n  high: 3600 # caf\xe9\n")
    with pytest.raises(ConfigFileError) as refused:
        read_config_file(path)
    assert str(refused.value) == (
        f"{path}: not UTF-8 text: byte 0xe9 at offset 23 (invalid continuation byte)"
    )
    assert refused.value.path == str(path)
    assert isinstance(refused.value, ConfigError)  # a clean exit at start-up
    utf16 = tmp_path / "users.yaml"
    utf16.write_bytes("users: []\n".encode("utf-16"))
    with pytest.raises(ConfigFileError, match=r"byte 0xff at offset 0"):
        read_config_file(utf16)


def test_a_config_file_that_cannot_be_read_or_parsed_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigFileError, match=r"missing\.yaml: cannot read the users file: No "):
        read_config_file(missing, "the users file")
    broken = tmp_path / "broken.yaml"
    broken.write_text("users: [\n")
    with pytest.raises(ConfigFileError, match=r"(?s)broken\.yaml: not valid YAML: .*line 2"):
        read_config_file(broken)
    broken_json = tmp_path / "channels.json"
    broken_json.write_text('{"channels": [}')
    with pytest.raises(ConfigFileError, match=r"channels\.json: not valid JSON: .*column 15"):
        read_config_file(broken_json)
    for name in ("deep.yaml", "deep.json"):
        deep = tmp_path / name
        deep.write_text("[" * 50_000 + "]" * 50_000)
        # libyaml: "exceeded maximum nesting depth"; the Python parsers: "nested too deeply".
        with pytest.raises(ConfigFileError, match=rf"(?s){name}: .*(nesting depth|too deeply)"):
            read_config_file(deep)


def test_a_config_file_gives_its_document(tmp_path: Path) -> None:
    yaml_file = tmp_path / "rules.yaml"
    yaml_file.write_text("sla: {high: 3600}\nname: café\n", encoding="utf-8")
    assert read_config_file(yaml_file) == {"sla": {"high": 3600}, "name": "café"}
    json_file = tmp_path / "channels.json"
    json_file.write_text('{"channels": []}')
    assert read_config_file(json_file) == {"channels": []}
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert read_config_file(empty) is None


# --- configuration files as models: ConfigModel, validate_document --------------------------


class _Limits(ConfigModel):
    unknown_key = "is not a limit ({known})"
    ceiling: Annotated[float, Field(gt=0), expect("expected a number > 0")] = 1.0
    name: Annotated[str, Field(pattern=r"^[a-z]+$"), expect("expected a-z (got {got})", types=True)]
    tags: Annotated[list[str], expect("expected a list of tags (got {got})", items=True)] = []
    on: bool = False


class _Document(ConfigModel):
    document = "a mapping with limits"
    limits: list[_Limits] = []


def _problems(raw: object) -> list[str]:
    with pytest.raises(DocumentError) as refused:
        validate_document(_Document, raw)
    return refused.value.problems


def test_a_document_names_every_problem_at_its_field_in_document_order() -> None:
    problems = _problems(
        {
            "limits": [
                {"name": "ok", "ceiling": None, 2: 1, None: 0, "b": 1},
                {"name": "Bad", "ceiling": -1, "on": 1},
                {"ceiling": float("nan"), "name": "x", "tags": [1, 2]},
            ],
            "extra": [],
        }
    )
    known = "ceiling, name, on, tags"
    assert problems == [
        "extra: is not a known key (limits)",
        f"limits[0].2: is not a limit ({known})",
        f"limits[0].None: is not a limit ({known})",
        f"limits[0].b: is not a limit ({known})",
        "limits[0].ceiling: expected a number (got null)",
        "limits[1].ceiling: expected a number > 0",
        "limits[1].name: expected a-z (got 'Bad')",
        "limits[1].on: expected true or false (got int)",
        "limits[2].ceiling: expected a finite number (got nan)",
        "limits[2].tags: expected a list of tags (got [1, 2])",
    ]


def test_types_are_strict_and_null_is_an_empty_mapping() -> None:
    assert _problems({"limits": [{"name": "a", "ceiling": "50"}]}) == [
        "limits[0].ceiling: expected a number (got text)"
    ]
    assert _problems({"limits": [None]}) == ["limits[0].name: is required"]
    assert _problems({"limits": {"name": "a"}}) == ["limits: expected a list (got a mapping)"]
    document = validate_document(_Document, {"limits": [{"name": "a", "ceiling": 2}]})
    assert document.limits[0].ceiling == 2.0


def test_a_document_that_is_not_a_mapping_and_huge_values_are_named_short() -> None:
    assert _problems([1]) == ["expected a mapping with limits (got a list)"]
    assert _problems(None) == ["expected a mapping with limits (got null)"]
    bomb: list[object] = ["lol"] * 10
    for _ in range(8):  # an alias bomb's shape
        bomb = [bomb] * 10
    [problem] = _problems({"limits": [{"name": bomb}]})
    assert problem.startswith("limits[0].name: expected a-z (got [[")
    assert len(problem) < 200


def test_validate_document_raises_the_files_own_error() -> None:
    class RulesBroken(ValueError):
        def __init__(self, problems: list[str]) -> None:
            super().__init__("; ".join(problems))

    with pytest.raises(RulesBroken, match=r"limits\[0\]\.name: is required"):
        validate_document(_Document, {"limits": [{}]}, error=RulesBroken)
