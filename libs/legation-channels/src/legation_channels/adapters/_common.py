"""What every adapter shares."""

from __future__ import annotations

from legation_channels.base import ChannelLimits, Delivered, Reconcile


class Adapter:
    """Name and limits of one configured channel. Adapters whose reconcile mode is not
    ``lookup`` cannot look anything up: :meth:`find` returns None."""

    kind: str
    reconcile: Reconcile

    def __init__(self, name: str, limits: ChannelLimits) -> None:
        self._name = name
        self._limits = limits

    @property
    def name(self) -> str:
        return self._name

    @property
    def limits(self) -> ChannelLimits:
        return self._limits

    def find(self, idempotency_key: str) -> Delivered | None:
        return None

    def close(self) -> None:
        """Releases the adapter's connections (nothing to release by default)."""
