"""What a sustained-load run measured, as plain functions without I/O.

A run pushes mentions in batches and records two curves: when each batch was *produced*
(the listener's webhook answered, i.e. Kafka acknowledged its mentions) with the running
total of mentions produced, and how many mentions the campaign's scorecard *counted* at
each moment it was sampled. The k-th mention produced counts as counted when the count
first reached k: exact when the evaluator counts in the order the listener produced
(one partition per key, batches in order), an approximation otherwise, and never better
than the sampling interval.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    """A running total at a moment (monotonic seconds)."""

    at: float
    total: int


def latencies(
    produced: Sequence[Point], counted: Sequence[Point], already: int = 0
) -> tuple[list[float], int]:
    """Seconds from produced to counted for every mention the count reached, and how many
    it never reached. ``produced`` grows with each batch from ``already`` (mentions counted
    before the run, left out); ``counted`` is made monotonic (a later sample never undoes
    an earlier one: the count only grows)."""
    times: list[float] = []
    highest: list[int] = []
    for point in sorted(counted, key=lambda p: p.at):
        times.append(point.at)
        highest.append(max(point.total, highest[-1] if highest else 0))
    result: list[float] = []
    missing = 0
    before = already
    for batch in sorted(produced, key=lambda p: p.total):
        for k in range(before + 1, batch.total + 1):
            where = bisect.bisect_left(highest, k)
            if where == len(highest):
                missing += 1
                continue
            # A sample taken before the batch was acknowledged cannot be its count
            # (the webhook answers only after Kafka has the mentions).
            result.append(max(0.0, times[where] - batch.at))
        before = max(before, batch.total)
    return result, missing


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in [0, 1]); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def reached_at(counted: Sequence[Point], target: int) -> float | None:
    """The first moment the count reached ``target``, or None."""
    for point in sorted(counted, key=lambda p: p.at):
        if point.total >= target:
            return point.at
    return None


@dataclass(frozen=True)
class CpuShare:
    """One process's CPU over an interval."""

    seconds: float
    share_of_core: float
    per_event_us: float | None


def cpu_shares(
    before: Mapping[str, float], after: Mapping[str, float], wall: float, events: int
) -> dict[str, CpuShare]:
    """CPU seconds per process between two readings, as a share of one core over ``wall``
    seconds and in microseconds per event (None when no event went through)."""
    shares = {}
    for name in after:
        used = after[name] - before.get(name, 0.0)
        shares[name] = CpuShare(
            seconds=used,
            share_of_core=used / wall if wall > 0 else math.nan,
            per_event_us=used / events * 1e6 if events else None,
        )
    return shares


def format_kib(kib: int) -> str:
    """A memory figure in MiB with one decimal."""
    return f"{kib / 1024:,.1f} MiB"


def hottest_frames(
    collapsed: Iterable[str], top: int = 15, by_own: bool = False
) -> list[tuple[str, float, float]]:
    """(frame, inclusive share, own share) of the ``top`` frames by inclusive share (or by
    own share), from a sampling profiler's collapsed stacks (``frame;frame;... count`` per
    line, as py-spy's raw format writes them). A frame counts once per stack however often
    it recurs."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    samples = 0
    for line in collapsed:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    if not samples:
        return []
    ranked = (own if by_own else inclusive).most_common(top)
    return [(frame, inclusive[frame] / samples, own[frame] / samples) for frame, _ in ranked]
