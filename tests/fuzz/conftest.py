"""Shares the fuzz budget (``LEGATION_FUZZ_CASES``, see :mod:`tests.fuzz.budget`) among the
collected fuzz tests by the weight of their ``fuzz`` marker, gives each its Hypothesis
settings through the ``fuzz`` fixture, and ends the session with the cases run per target.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from tests.fuzz.budget import DEFAULT_CASES, Fuzz, budget, counts, outcomes

_SHARE = pytest.StashKey[int]()


def _weight(item: pytest.Item) -> float:
    marker = item.get_closest_marker("fuzz")
    assert marker is not None
    return float(marker.kwargs.get("weight", 1))


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Shares the budget among the fuzz tests collected, by weight."""
    fuzz = [item for item in items if item.get_closest_marker("fuzz") is not None]
    total = sum(_weight(item) for item in fuzz) or 1.0
    for item in fuzz:
        item.stash[_SHARE] = max(1, math.ceil(budget() * _weight(item) / total))


@pytest.fixture
def fuzz(request: pytest.FixtureRequest) -> Iterator[Fuzz]:
    """This test's share of ``LEGATION_FUZZ_CASES`` and its Hypothesis settings."""
    node = request.node
    share = node.stash.get(_SHARE, DEFAULT_CASES)
    runner = Fuzz(node.nodeid, share)
    yield runner
    counts[node.nodeid] = runner.counted[0]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps each fuzz test's outcome for the summary."""
    report = yield
    if item.get_closest_marker("fuzz") is not None and report.when == "call":
        outcomes[item.nodeid] = report.outcome
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Cases run per fuzz target, and in total."""
    if not counts:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fuzz cases")
    for nodeid, count in sorted(counts.items()):
        write(f"{count:>8,}  {outcomes.get(nodeid, 'error'):<7}  {nodeid}")
    failed = sum(1 for nodeid in counts if outcomes.get(nodeid) != "passed")
    write(
        f"{sum(counts.values()):>8,}  cases in {len(counts)} fuzz targets, {failed} failed "
        f"(LEGATION_FUZZ_CASES={budget()})"
    )
