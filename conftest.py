"""Shared pytest fixtures: the stand-in servers (see legation_devstack.pytest_fixtures)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

pytest_plugins = ["legation_devstack.pytest_fixtures"]


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Command-line entry points under test configure the root logger (basicConfig, the JSON
    logs); their handlers write to the stream that was sys.stderr then, which pytest closes
    after the test. Restoring the root logger keeps later tests from logging into it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
