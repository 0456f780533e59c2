"""IdleWait: how long a polling loop sleeps after each poll, read from the waits it asks
of its stop event (which returns at once here, so nothing really sleeps)."""

from __future__ import annotations

import threading
import time

import pytest

from legation_core.config import CoreSettings
from legation_core.consumer import IdleWait


class Waits(threading.Event):
    """A stop event that records each wait instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.asked.append(timeout)
        return False


def settings(idle_wait_ms: int) -> CoreSettings:
    return CoreSettings(consumer_idle_wait_ms=idle_wait_ms, consumer_poll_timeout_ms=400)


def test_empty_polls_double_the_sleep_up_to_the_poll_timeout_and_records_reset_it() -> None:
    stop = Waits()
    idle = IdleWait(settings(50), stop)
    for _ in range(5):
        idle.after(False)
    idle.after(True)
    idle.after(False)
    assert stop.asked == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.4, 0.05])


def test_a_broker_that_long_polls_never_sleeps_between_polls() -> None:
    stop = Waits()
    idle = IdleWait(settings(0), stop)
    idle.after(False)
    idle.after(True)
    assert stop.asked == []


def test_with_a_pace_a_poll_that_found_a_few_records_waits_out_the_pace() -> None:
    stop = Waits()
    started = time.monotonic()
    idle = IdleWait(settings(50), stop, pace=0.25)
    idle.after(True)
    [asked] = stop.asked
    # From the previous poll (the wait's creation here) to a quarter of a second later.
    assert 0.25 - (time.monotonic() - started) <= asked <= 0.25


def test_with_a_pace_a_full_batch_or_a_late_poll_goes_on_at_once() -> None:
    stop = Waits()
    idle = IdleWait(settings(50), stop, pace=0.25)
    idle.after(True, full=True)  # behind: the next batch waits already
    time.sleep(0.3)
    idle.after(True)  # the pace has passed since the last poll
    assert stop.asked == []


def test_without_a_pace_records_never_wait() -> None:
    stop = Waits()
    idle = IdleWait(settings(50), stop)
    idle.after(True)
    idle.after(True, full=False)
    assert stop.asked == []
