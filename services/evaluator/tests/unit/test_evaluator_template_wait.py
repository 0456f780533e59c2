"""The evaluator waits for OpenSearch at start-up instead of dying on the first refusal."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opensearchpy import ConnectionError, TransportError

from legation_evaluator.adapters import index as index_module
from legation_evaluator.adapters.index import EventIndex, IndexUnavailable


class FlakyIndices:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls: list[str] = []

    def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        self.calls.append(name)
        if self.failures:
            raise self.failures.pop(0)


class FakeClient:
    def __init__(self, failures: list[Exception]) -> None:
        self.indices = FlakyIndices(failures)


class _NoSleep:
    """The index module's clock without its waits."""

    def sleep(self, seconds: float) -> None:
        """Returns at once."""

    def monotonic(self) -> float:
        return time.monotonic()


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "time", _NoSleep())


def test_template_is_put_once_opensearch_answers() -> None:
    client = FakeClient([ConnectionError("N/A", "refused", None)] * 2)
    EventIndex(client, "legation-events-v1").ensure_template(wait_seconds=30)  # type: ignore[arg-type]
    assert client.indices.calls == ["legation-events-v1"] * 3


def test_an_index_that_never_answers_is_reported_as_unavailable() -> None:
    client = FakeClient([ConnectionError("N/A", "refused", None)] * 1000)
    with pytest.raises(IndexUnavailable, match="does not answer"):
        EventIndex(client, "p").ensure_template(wait_seconds=0.0)  # type: ignore[arg-type]


def test_a_refused_template_is_not_retried() -> None:
    client = FakeClient([TransportError(400, "mapper_parsing_exception", {})])
    with pytest.raises(TransportError):
        EventIndex(client, "p").ensure_template(wait_seconds=30)  # type: ignore[arg-type]
    assert len(client.indices.calls) == 1
