"""The most recent items the listener fetched, for previewing queries (memory only)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from legation_listener.domain.items import FeedItem


class RecentItems:
    """A bounded buffer of ``(feed, item)``, one entry per feed and item id: reading an item
    again refreshes it; beyond ``capacity`` the least recently read goes. Thread-safe."""

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 0:
            raise ValueError("capacity cannot be negative")
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], FeedItem] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, feed: str, items: Iterable[FeedItem]) -> None:
        with self._lock:
            for item in items:
                key = (feed, item.item_id)
                self._items.pop(key, None)
                self._items[key] = item
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def snapshot(self) -> list[tuple[str, FeedItem]]:
        """Every buffered ``(feed, item)``, most recently read last."""
        with self._lock:
            return [(feed, item) for (feed, _), item in self._items.items()]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
