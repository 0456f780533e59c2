"""The live page's errors over a real HTTP server: an index that does not answer is a 503
saying so, anything else a generic 500 whose details stay in the log."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from legation_core.http_server import HttpServer
from legation_evaluator.adapters.index import IndexUnavailable
from legation_evaluator.adapters.web import ScorecardPage


class FailingData:
    """Campaign reads that fail with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def campaigns(self) -> list[Any]:
        raise self.error

    def campaign(self, campaign_id: str) -> Any:
        raise self.error


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[HttpServer] = []

    def start(error: Exception) -> int:
        page = ScorecardPage(FailingData(error), 2.0)  # type: ignore[arg-type]
        servers.append(HttpServer("scorecard-page", 0, page, host="127.0.0.1"))
        servers[-1].start()
        return servers[-1].port

    yield start
    for server in servers:
        server.stop()


def answer(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("path", ["/", "/api/campaigns", "/api/campaigns/c-1"])
def test_an_index_that_does_not_answer_is_a_503(serve: Any, path: str) -> None:
    port = serve(IndexUnavailable("OpenSearch does not answer: 10.0.0.5:9200 refused"))
    status, body = answer(port, path)
    assert (status, body) == (503, b'{"error": "index unavailable"}')


@pytest.mark.parametrize("path", ["/", "/api/campaigns", "/api/campaigns/c-1"])
def test_a_bug_is_a_generic_500_with_the_stack_in_the_log(
    serve: Any, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = serve(KeyError("/opt/legation/secret-path"))
    with caplog.at_level(logging.ERROR, logger="legation_core.http_server"):
        status, body = answer(port, path)
    assert (status, body) == (500, b"internal error")
    assert any(r.exc_info and "secret-path" in str(r.exc_info[1]) for r in caplog.records)
