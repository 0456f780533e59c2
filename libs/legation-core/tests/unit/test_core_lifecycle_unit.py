"""Start-up paths that need no broker: configuration errors, and JSON logs."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator

import pytest

from legation_core import bootstrap
from legation_core.config import ENV_PREFIX, CoreSettings
from legation_core.lifecycle import ServiceRuntime, main_for
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
