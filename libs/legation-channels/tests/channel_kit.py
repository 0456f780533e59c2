"""What the channel tests share: a short timeout for the local servers, and a process that
dies between a platform accepting a message and the outbox recording it."""

from __future__ import annotations

import httpx

from legation_channels.base import Channel, Delivered, Outgoing

# The local servers answer at once: connect quickly or fail the test.
FAST = httpx.Timeout(5.0, connect=2.0)


class Crash(BaseException):
    """The process dies: nothing after the raise runs, nothing is caught."""


class CrashAfterDeliver:
    """The real adapter, in a process that dies right after the channel accepted the
    message, before anything records the result."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.name, self.kind = channel.name, channel.kind
        self.limits, self.reconcile = channel.limits, channel.reconcile

    def deliver(self, message: Outgoing) -> Delivered:
        self.channel.deliver(message)
        raise Crash

    def find(self, idempotency_key: str) -> Delivered | None:
        return self.channel.find(idempotency_key)
