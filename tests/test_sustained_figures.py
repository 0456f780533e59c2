"""The sustained-load bench's figures (legation_devstack.sustained): plain arithmetic over
the produced and counted curves, checked on hand-made curves."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from legation_devstack.processes import cpu_seconds, machine_cpu_seconds, memory_kib
from legation_devstack.sustained import (
    Point,
    cpu_shares,
    hottest_frames,
    latencies,
    percentile,
    reached_at,
)


def test_each_mention_waits_until_the_count_reaches_it() -> None:
    produced = [Point(10.0, 2), Point(11.0, 4)]
    counted = [Point(10.5, 1), Point(11.2, 3), Point(12.0, 4)]
    waits, missing = latencies(produced, counted)
    assert missing == 0
    # Mentions 1 and 2 (produced at 10.0) counted at 10.5 and 11.2; 3 and 4 (at 11.0) at
    # 11.2 and 12.0.
    assert waits == pytest.approx([0.5, 1.2, 0.2, 1.0])


def test_a_count_that_dips_does_not_undo_an_earlier_one() -> None:
    produced = [Point(0.0, 2)]
    counted = [Point(1.0, 2), Point(2.0, 1), Point(3.0, 2)]
    waits, _ = latencies(produced, counted)
    assert waits == pytest.approx([1.0, 1.0])


def test_mentions_never_counted_are_reported_not_timed() -> None:
    waits, missing = latencies([Point(0.0, 3)], [Point(1.0, 1)])
    assert waits == pytest.approx([1.0])
    assert missing == 2


def test_mentions_before_the_run_are_left_out() -> None:
    waits, missing = latencies([Point(5.0, 3)], [Point(0.0, 1), Point(6.0, 3)], already=1)
    assert waits == pytest.approx([1.0, 1.0])
    assert missing == 0


def test_a_sample_taken_before_the_acknowledgement_counts_as_no_wait() -> None:
    # The count can already hold a batch the webhook has not answered yet.
    waits, _ = latencies([Point(2.0, 1)], [Point(1.5, 1)])
    assert waits == [0.0]


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([3.0], 0.99) == 3.0
    assert math.isnan(percentile([], 0.5))


def test_the_count_reaches_a_target_at_the_first_sample_at_or_above_it() -> None:
    counted = [Point(3.0, 10), Point(1.0, 4), Point(2.0, 7)]
    assert reached_at(counted, 7) == 2.0
    assert reached_at(counted, 11) is None


def test_cpu_as_share_of_a_core_and_per_event() -> None:
    shares = cpu_shares({"listener": 1.0}, {"listener": 6.0, "new": 2.0}, wall=10.0, events=1000)
    assert shares["listener"].share_of_core == pytest.approx(0.5)
    assert shares["listener"].per_event_us == pytest.approx(5000.0)
    assert shares["new"].seconds == pytest.approx(2.0)
    assert cpu_shares({}, {"x": 1.0}, wall=1.0, events=0)["x"].per_event_us is None


def test_process_readings_from_proc() -> None:
    rss, peak = memory_kib(os.getpid()) or (0, 0)
    assert 0 < rss <= peak
    assert (cpu_seconds(os.getpid()) or 0.0) > 0.0
    busy, total = machine_cpu_seconds()
    assert 0.0 < busy <= total
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert memory_kib(gone.pid) is None
    assert cpu_seconds(gone.pid) is None


def test_hottest_frames_from_collapsed_stacks() -> None:
    collapsed = [
        "main (app.py:1);loop (app.py:5);encode (codec.py:9) 6",
        "main (app.py:1);loop (app.py:5);loop (app.py:5);send (kafka.py:3) 3",
        "main (app.py:1);idle (app.py:8) 1",
        "not a sample line",
    ]
    inclusive = hottest_frames(collapsed, top=2)
    assert [frame for frame, _, _ in inclusive] == ["main (app.py:1)", "loop (app.py:5)"]
    assert [share for _, share, _ in inclusive] == pytest.approx([1.0, 0.9])
    assert [own for _, _, own in inclusive] == [0.0, 0.0]
    own = hottest_frames(collapsed, top=1, by_own=True)
    assert [frame for frame, _, _ in own] == ["encode (codec.py:9)"]
    assert own[0][1:] == pytest.approx((0.6, 0.6))
    assert hottest_frames([]) == []
