"""Start-up paths that need no broker: configuration errors, and JSON logs."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from legation_core import bootstrap
from legation_core.config import ENV_PREFIX, ConfigError, CoreSettings, load_settings
from legation_core.lifecycle import (
    ServiceRuntime,
    auth_directory,
    http_tls,
    main_for,
    server_tls,
)
from legation_core.logs import configure_logging


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    kafka_level = logging.getLogger("kafka").level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("kafka").setLevel(kafka_level)


def test_main_for_exits_2_on_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEGATION_GRPC_PORT", "abc")
    wired: list[ServiceRuntime] = []

    def wire(runtime: ServiceRuntime, settings: CoreSettings) -> None:
        wired.append(runtime)

    assert main_for("engager", CoreSettings, wire) == 2
    assert wired == []
    error = capsys.readouterr().err
    assert error.startswith("engager: invalid configuration")
    assert "LEGATION_GRPC_PORT" in error


def test_topic_bootstrap_exits_2_on_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEGATION_KAFKA_SECURITY_PROTOCOL", "FOO")
    assert bootstrap.main([]) == 2
    assert "LEGATION_KAFKA_SECURITY_PROTOCOL" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_root_logger")
def test_configure_logging_writes_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("engager", "INFO")
    logging.getLogger("legation.test").info("hello", extra={"topic": "t"})
    logging.getLogger("legation.test").debug("hidden")
    logging.getLogger("kafka.conn").info("connection noise")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["service"] == "engager"
    assert record["level"] == "INFO"
    assert record["logger"] == "legation.test"
    assert record["message"] == "hello"
    assert record["topic"] == "t"
    assert "time" in record


def test_main_for_exits_2_without_a_users_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wired: list[ServiceRuntime] = []
    assert main_for("engager", CoreSettings, lambda runtime, _: wired.append(runtime)) == 2
    assert wired == []
    error = capsys.readouterr().err
    assert "engager: LEGATION_AUTH_USERS_FILE is required" in error
    assert "LEGATION_AUTH_DISABLED=true" in error


def test_main_for_exits_2_on_an_invalid_users_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    users = tmp_path / "users.yaml"
    users.write_text("users:\n  - name: ana\n    roles: [editor]\n    token_sha256: [plaintext]\n")
    monkeypatch.setenv("LEGATION_AUTH_USERS_FILE", str(users))
    assert main_for("engager", CoreSettings, lambda runtime, _: None) == 2
    error = capsys.readouterr().err
    assert "LEGATION_AUTH_USERS_FILE: " in error
    assert "users[0].token_sha256: expected 64 lowercase hex digits" in error


def test_disabled_auth_needs_no_users_file_and_warns_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        assert auth_directory(CoreSettings(auth_disabled=True)) is None
    assert "AUTHENTICATION IS DISABLED" in caplog.text


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"LEGATION_GRPC_TLS_CERT": "c.pem"}, "LEGATION_GRPC_TLS_CERT and LEGATION_GRPC_TLS_KEY"),
        ({"LEGATION_GRPC_TLS_CLIENT_CA": "ca.pem"}, "LEGATION_GRPC_TLS_CLIENT_CA needs"),
    ],
)
def test_incomplete_tls_settings_name_the_variables(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings(CoreSettings)


def test_unreadable_tls_files_name_the_variable(tmp_path: Path) -> None:
    settings = CoreSettings(
        auth_disabled=True, grpc_tls_cert=tmp_path / "no.pem", grpc_tls_key=tmp_path / "no.key"
    )
    with pytest.raises(ConfigError, match=r"LEGATION_GRPC_TLS_CERT: .* is not a readable file"):
        server_tls(settings)


def test_unreadable_http_tls_files_name_the_variable(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("x")
    settings = CoreSettings(
        auth_disabled=True,
        http_tls_cert=tmp_path / "cert.pem",
        http_tls_key=tmp_path / "no.key",
    )
    with pytest.raises(ConfigError, match=r"LEGATION_HTTP_TLS_KEY: .* is not a readable file"):
        http_tls(settings)
    assert http_tls(CoreSettings(auth_disabled=True)) is None


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"LEGATION_HTTP_TLS_CERT": "cert.pem"},
            "LEGATION_HTTP_TLS_CERT and LEGATION_HTTP_TLS_KEY go",
        ),
        ({"LEGATION_METRICS_HOST": "example.org"}, r"LEGATION_METRICS_HOST: .*expected an IP"),
        ({"LEGATION_HTTP_TRUSTED_PROXIES": "10.0.0.0/8,lb"}, r"TRUSTED_PROXIES: .*'lb' is not"),
    ],
)
def test_bad_http_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings(CoreSettings)


def test_http_settings_that_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATION_METRICS_HOST", "127.0.0.1")
    monkeypatch.setenv("LEGATION_HTTP_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8")
    settings = load_settings(CoreSettings)
    assert settings.metrics_host == "127.0.0.1"
    assert [str(n) for n in settings.trusted_proxies()] == ["10.0.0.0/8", "fd00::/8"]
