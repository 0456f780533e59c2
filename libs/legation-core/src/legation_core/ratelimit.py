"""A per-key rate limit (a token bucket per key), for the public HTTP surfaces: questions
per client address on the engager's form, counted clicks per address on the publisher's
short links. Plain code with an injected clock; no I/O."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimit:
    """At most ``limit`` requests per ``period_seconds`` per key, in bursts of up to
    ``limit`` (a token bucket each). The most recently seen ``max_keys`` keys are kept, so
    memory stays bounded whatever the number of clients."""

    def __init__(
        self,
        limit: int,
        period_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if limit < 1 or period_seconds <= 0:
            raise ValueError("a rate limit needs at least 1 request per a positive period")
        self.limit = limit
        self.period_seconds = period_seconds
        self.clock = clock
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait(self, key: str) -> float:
        """0 when ``key`` may go on now (and counts it), else the seconds to wait."""
        now = self.clock()
        rate = self.limit / self.period_seconds
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.limit), now))
            tokens = min(float(self.limit), tokens + (now - last) * rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
            self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait
